// y[r, :] = softmax(x[r, :]), one workgroup per row; 64 threads stride over the columns and reduce the
// row max and the sum of exponentials through workgroup memory. CPU twin: engine::cpu::softmax_rows.

struct Params { rows: u32, cols: u32, rows_per_slice: u32, _pad: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

const THREADS: u32 = 64u;
var<workgroup> scratch: array<f32, THREADS>;

// Tree reduction over `scratch`; `use_max` picks max instead of sum. Every thread gets the result.
fn reduce(value: f32, lid: u32, use_max: bool) -> f32 {
    scratch[lid] = value;
    workgroupBarrier();
    for (var stride = THREADS / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            if (use_max) {
                scratch[lid] = max(scratch[lid], scratch[lid + stride]);
            } else {
                scratch[lid] = scratch[lid] + scratch[lid + stride];
            }
        }
        workgroupBarrier();
    }
    let result = scratch[0];
    workgroupBarrier();
    return result;
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    // Rows beyond 65535 continue in the y dimension of the dispatch.
    let row = wg.x + wg.y * p.rows_per_slice;
    let lid = lid3.x;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.cols;

    var m = -3.40282347e+38;
    for (var j = lid; j < p.cols; j = j + THREADS) {
        m = max(m, x[base + j]);
    }
    m = reduce(m, lid, true);

    var s = 0.0;
    for (var j = lid; j < p.cols; j = j + THREADS) {
        s = s + exp(x[base + j] - m);
    }
    s = reduce(s, lid, false);

    let inv = 1.0 / s;
    for (var j = lid; j < p.cols; j = j + THREADS) {
        y[base + j] = exp(x[base + j] - m) * inv;
    }
}
