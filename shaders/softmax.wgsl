// y[r, :] = softmax(x[r, :]), one workgroup per row; 64 threads stride over the columns and reduce the
// row max and the sum of exponentials through workgroup memory. CPU twin: engine::kernels::softmax::softmax_rows.

struct Params { rows: u32, cols: u32, rows_per_slice: u32, _pad: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    // Rows beyond 65535 continue in the y dimension of the dispatch.
    let row = wg.x + wg.y * p.rows_per_slice;
    let lid = lid3.x;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.cols;

    // Every thread starts from the row's first value, so no ±infinity constant is needed.
    var m = x[base];
    for (var j = lid; j < p.cols; j = j + WORKGROUP_SIZE) {
        m = max(m, x[base + j]);
    }
    m = workgroup_max(lid, m);

    var s = 0.0;
    for (var j = lid; j < p.cols; j = j + WORKGROUP_SIZE) {
        s = s + exp(x[base + j] - m);
    }
    let inv = 1.0 / workgroup_sum(lid, s);

    for (var j = lid; j < p.cols; j = j + WORKGROUP_SIZE) {
        y[base + j] = exp(x[base + j] - m) * inv;
    }
}
