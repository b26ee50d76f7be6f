// C[b] = op(A[b]) · op(B[b])  (+ C[b] when accumulate = 1), row-major.
// Transposes are expressed as strides, so one kernel serves x·W, dy·Wᵀ and xᵀ·dy.
// Each thread computes a 4×4 block of C from registers, with no workgroup memory: on software adapters
// (lavapipe, SwiftShader) barrier-free register blocking measured fastest, and it is a fair start on GPUs.
// CPU twin: engine::kernels::matmul::matmul.

struct Params {
    batch: u32, m: u32, n: u32, k: u32,
    a_row: u32, a_col: u32,      // strides of op(A) within one batch
    b_row: u32, b_col: u32,      // strides of op(B) within one batch
    accumulate: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * 4u;
    let col0 = gid.x * 4u;
    let batch = gid.z;
    if (row0 >= p.m || col0 >= p.n || batch >= p.batch) {
        return;
    }
    let a_base = batch * p.m * p.k;
    let b_base = batch * p.k * p.n;
    let c_base = batch * p.m * p.n;
    // Rows/columns past the edge are clamped for loading and never stored.
    let rows = min(4u, p.m - row0);
    let cols = min(4u, p.n - col0);

    var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var kk = 0u; kk < p.k; kk = kk + 1u) {
        var bv = vec4<f32>(0.0);
        for (var j = 0u; j < cols; j = j + 1u) {
            bv[j] = b[b_base + kk * p.b_row + (col0 + j) * p.b_col];
        }
        for (var i = 0u; i < rows; i = i + 1u) {
            let av = a[a_base + (row0 + i) * p.a_row + kk * p.a_col];
            acc[i] = acc[i] + av * bv;
        }
    }
    for (var i = 0u; i < rows; i = i + 1u) {
        for (var j = 0u; j < cols; j = j + 1u) {
            let idx = c_base + (row0 + i) * p.n + col0 + j;
            if (p.accumulate == 1u) {
                c[idx] = c[idx] + acc[i][j];
            } else {
                c[idx] = acc[i][j];
            }
        }
    }
}
