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

// A whole 4×4 block inside C: the same sums in the same order as the edge path below, written without
// dynamic indexing so that the compiler keeps the block in registers (on lavapipe this path is several
// times faster than the general one).
fn full_block(a0: u32, b0: u32, c0: u32) {
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var kk = 0u; kk < p.k; kk = kk + 1u) {
        let bk = b0 + kk * p.b_row;
        let bv = vec4<f32>(b[bk], b[bk + p.b_col], b[bk + 2u * p.b_col], b[bk + 3u * p.b_col]);
        let ak = a0 + kk * p.a_col;
        acc0 = acc0 + a[ak] * bv;
        acc1 = acc1 + a[ak + p.a_row] * bv;
        acc2 = acc2 + a[ak + 2u * p.a_row] * bv;
        acc3 = acc3 + a[ak + 3u * p.a_row] * bv;
    }
    store_row(c0, acc0);
    store_row(c0 + p.n, acc1);
    store_row(c0 + 2u * p.n, acc2);
    store_row(c0 + 3u * p.n, acc3);
}

fn store_row(i: u32, v: vec4<f32>) {
    if (p.accumulate == 1u) {
        c[i] = c[i] + v.x;
        c[i + 1u] = c[i + 1u] + v.y;
        c[i + 2u] = c[i + 2u] + v.z;
        c[i + 3u] = c[i + 3u] + v.w;
    } else {
        c[i] = v.x;
        c[i + 1u] = v.y;
        c[i + 2u] = v.z;
        c[i + 3u] = v.w;
    }
}

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

    if (rows == 4u && cols == 4u) {
        full_block(a_base + row0 * p.a_row, b_base + col0 * p.b_col, c_base + row0 * p.n + col0);
        return;
    }
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
