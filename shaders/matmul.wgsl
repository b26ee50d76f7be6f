// C[b] = op(A[b]) · op(B[b])  (+ C[b] when accumulate = 1), row-major.
// Transposes are expressed as strides, so one kernel serves x·W, dy·Wᵀ and xᵀ·dy; batches too (a_batch, b_batch,
// c_batch: where batch b starts in each), so that a product with few tiles and a long k is split along k as a
// batch over k-chunks into partial products (split-K), which `reduce_splits` then sums in a fixed order.
// Two kernels: `main`, register blocking without workgroup memory (on software adapters — lavapipe, SwiftShader —
// barrier-free kernels measured fastest), and `tiled`, 64×64 tiles through workgroup memory, for hardware GPUs.
// Each value of C can go through an epilogue before it is stored (`then`: a linear layer's bias, GELU or residual,
// or GELU's backward), so those cost no dispatch of their own.
// CPU twin: engine::kernels::matmul::matmul (and run_cpu for the epilogues).

struct Params {
    batch: u32, m: u32, n: u32, k: u32,
    a_row: u32, a_col: u32,      // strides of op(A) within one batch
    b_row: u32, b_col: u32,      // strides of op(B) within one batch
    accumulate: u32,
    a_batch: u32, b_batch: u32, c_batch: u32,
    then: u32,                   // 0: store; 1: + bias; 2: + bias, GELU (pre kept); 3: + bias + residual; 4: · GELU'(pre);
                                 // 5: store, and second[col] += Σ_k op(B)[k, col] (one more row of workgroups)
    _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;        // then 1–3: the bias, one per column
@group(0) @binding(5) var<storage, read> aux: array<f32>;         // then 3: the residual; then 4: the pre-activation
@group(0) @binding(6) var<storage, read_write> second: array<f32>; // then 2: the pre-activation, kept for the backward;
                                                                  // then 5: the column sums of op(B)

// Stores value v of C at idx (column col), through the epilogue. Epilogue products have batch 1 and overwrite.
fn store(idx: u32, col: u32, v: f32) {
    switch p.then {
        case 1u: { c[idx] = v + bias[col]; }
        case 2u: {
            let x = v + bias[col];
            second[idx] = x;
            c[idx] = gelu(x);
        }
        case 3u: { c[idx] = aux[idx] + (v + bias[col]); }
        case 4u: { c[idx] = gelu_grad_times(v, aux[idx]); }
        default: { // 0 and 5
            if (p.accumulate == 1u) { c[idx] = c[idx] + v; } else { c[idx] = v; }
        }
    }
}

// Each workgroup (8×8 threads) computes one 32×32 tile of C; thread (x, y) owns rows y, y+8, y+16, y+24 and
// columns x, x+8, x+16, x+24 of it. Interleaving (rather than a 4×4 block per thread) makes neighbouring
// threads read neighbouring columns of B and write neighbouring values of C: coalesced on a GPU, and
// contiguous vector loads on software adapters, which run neighbouring threads as SIMD lanes.
// Every value is Σ_k in ascending k, the same sums as the CPU twin up to its order of summation.

// A tile wholly inside C: no bounds checks and no dynamic indexing, so the 16 sums stay in registers.
fn full_tile(a0: u32, b0: u32, c0: u32, col0: u32) {
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let b8 = 8u * p.b_col;
    let a8 = 8u * p.a_row;
    for (var kk = 0u; kk < p.k; kk = kk + 1u) {
        let bk = b0 + kk * p.b_row;
        let bv = vec4<f32>(b[bk], b[bk + b8], b[bk + 2u * b8], b[bk + 3u * b8]);
        let ak = a0 + kk * p.a_col;
        acc0 = acc0 + a[ak] * bv;
        acc1 = acc1 + a[ak + a8] * bv;
        acc2 = acc2 + a[ak + 2u * a8] * bv;
        acc3 = acc3 + a[ak + 3u * a8] * bv;
    }
    store_row(c0, col0, acc0);
    store_row(c0 + 8u * p.n, col0, acc1);
    store_row(c0 + 16u * p.n, col0, acc2);
    store_row(c0 + 24u * p.n, col0, acc3);
}

// Four values of one row of C, 8 columns apart (the first at column col).
fn store_row(i: u32, col: u32, v: vec4<f32>) {
    store(i, col, v.x);
    store(i + 8u, col + 8u, v.y);
    store(i + 16u, col + 16u, v.z);
    store(i + 24u, col + 24u, v.w);
}

// then 5's extra row of workgroups: second[col] += Σ_k op(B)[k, col], over the whole k (p.k · p.batch: a split
// product's chunks are batches of one product).
// In `main`, one thread per column walks k alone: no workgroup memory and no barrier, because a barrier anywhere in
// a kernel makes software adapters (llvmpipe) compile all of it far slower, and `main` is their kernel.
fn column_sum_alone(col: u32) {
    if (col >= p.n) { return; }
    let k_all = p.k * p.batch;
    var s = 0.0;
    for (var kk = 0u; kk < k_all; kk = kk + 1u) { s = s + b[kk * p.b_row + col * p.b_col]; }
    second[col] = second[col] + s;
}

// In `tiled` (hardware GPUs, which has barriers anyway): the `width` columns from col0, `threads` threads of the
// workgroup striding along k and meeting in workgroup memory. Call from uniform control flow (it holds a barrier).
var<workgroup> column_parts: array<f32, 256>;
fn column_sums(col0: u32, width: u32, li: u32, threads: u32) {
    let per = threads / width;
    let col = col0 + li % width;
    let k_all = p.k * p.batch;
    var s = 0.0;
    if (col < p.n) {
        for (var kk = li / width; kk < k_all; kk = kk + per) { s = s + b[kk * p.b_row + col * p.b_col]; }
    }
    column_parts[li] = s;
    workgroupBarrier();
    if (li < width && col < p.n) {
        var total = 0.0;
        for (var q = 0u; q < per; q = q + 1u) { total = total + column_parts[q * width + li]; }
        second[col] = second[col] + total;
    }
}

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    if (p.then == 5u && wid.y * 32u >= p.m) {
        let li = lid.y * 8u + lid.x;
        if (wid.z == 0u && li < 32u) { column_sum_alone(wid.x * 32u + li); }
        return;
    }
    let tile_row = wid.y * 32u;
    let tile_col = wid.x * 32u;
    let batch = wid.z;
    let a_base = batch * p.a_batch;
    let b_base = batch * p.b_batch;
    let c_base = batch * p.c_batch;
    let row0 = tile_row + lid.y;
    let col0 = tile_col + lid.x;

    if (tile_row + 32u <= p.m && tile_col + 32u <= p.n) {
        full_tile(a_base + row0 * p.a_row, b_base + col0 * p.b_col, c_base + row0 * p.n + col0, col0);
        return;
    }
    // A tile across the edge of C: the rows and columns of this thread that lie inside it.
    var rows = 0u;
    var cols = 0u;
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (row0 + 8u * i < p.m) { rows = i + 1u; }
        if (col0 + 8u * i < p.n) { cols = i + 1u; }
    }
    var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var kk = 0u; kk < p.k; kk = kk + 1u) {
        var bv = vec4<f32>(0.0);
        for (var j = 0u; j < cols; j = j + 1u) {
            bv[j] = b[b_base + kk * p.b_row + (col0 + 8u * j) * p.b_col];
        }
        for (var i = 0u; i < rows; i = i + 1u) {
            let av = a[a_base + (row0 + 8u * i) * p.a_row + kk * p.a_col];
            acc[i] = acc[i] + av * bv;
        }
    }
    for (var i = 0u; i < rows; i = i + 1u) {
        for (var j = 0u; j < cols; j = j + 1u) {
            store(c_base + (row0 + 8u * i) * p.n + col0 + 8u * j, col0 + 8u * j, acc[i][j]);
        }
    }
}

// ---- The tiled kernel, for hardware GPUs (chosen by adapter type: `GpuBackend::tiled_matmul`)
// Each workgroup (16×16 threads) computes one 64×64 tile of C. Per step of 16 along k, the workgroup copies the
// 64×16 block of op(A) and the 16×64 block of op(B) it needs into workgroup memory (4 values per thread each,
// zero outside the matrices), then every thread reads them from there: each value of A and B is read from
// memory once per workgroup instead of once per thread-row or column. Thread (x, y) owns rows y, y+16, y+32,
// y+48 and columns x, x+16, x+32, x+48 (interleaved: neighbouring threads read neighbouring workgroup-memory
// words and write neighbouring values of C). Each value is still Σ_k in ascending k, added one product at a
// time, as in `main`: the two kernels compute the same sums in the same order.
const TILE: u32 = 64u;
const TILE_K: u32 = 16u;
var<workgroup> a_tile: array<f32, 1024>; // [k within the step][row within the tile]
var<workgroup> b_tile: array<f32, 1024>; // [k within the step][column within the tile]

@compute @workgroup_size(16, 16, 1)
fn tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    if (p.then == 5u && wid.y * TILE >= p.m) {
        if (wid.z == 0u) { column_sums(wid.x * TILE, TILE, li, 256u); }
        return;
    }
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let a_base = wid.z * p.a_batch;
    let b_base = wid.z * p.b_batch;
    let c_base = wid.z * p.c_batch;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < p.k; k0 = k0 + TILE_K) {
        for (var e = 0u; e < 4u; e = e + 1u) {
            let at = li + 256u * e;      // 0..1023: (k within the step) · 64 + (row or column within the tile)
            let kk = at / TILE;
            let rc = at % TILE;
            var av = 0.0;
            if (row0 + rc < p.m && k0 + kk < p.k) { av = a[a_base + (row0 + rc) * p.a_row + (k0 + kk) * p.a_col]; }
            a_tile[at] = av;
            var bv = 0.0;
            if (col0 + rc < p.n && k0 + kk < p.k) { bv = b[b_base + (k0 + kk) * p.b_row + (col0 + rc) * p.b_col]; }
            b_tile[at] = bv;
        }
        workgroupBarrier();
        // Only the steps of k that exist: no padded zero is ever added, so the sums are exactly `main`'s.
        let steps = min(TILE_K, p.k - k0);
        for (var kk = 0u; kk < steps; kk = kk + 1u) {
            let bk = kk * TILE + lid.x;
            let bv = vec4<f32>(b_tile[bk], b_tile[bk + 16u], b_tile[bk + 32u], b_tile[bk + 48u]);
            let ak = kk * TILE + lid.y;
            acc0 = acc0 + a_tile[ak] * bv;
            acc1 = acc1 + a_tile[ak + 16u] * bv;
            acc2 = acc2 + a_tile[ak + 32u] * bv;
            acc3 = acc3 + a_tile[ak + 48u] * bv;
        }
        workgroupBarrier();
    }
    var acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i = i + 1u) {
        let row = row0 + lid.y + 16u * i;
        if (row >= p.m) { continue; }
        for (var j = 0u; j < 4u; j = j + 1u) {
            let col = col0 + lid.x + 16u * j;
            if (col >= p.n) { continue; }
            store(c_base + row * p.n + col, col, acc[i][j]);
        }
    }
}

// Split-K's second pass: c[i] (+)= Σ over the p.k partial products a[s·p.m + i], s ascending (the same order every
// run: the sum is deterministic). p.m is the number of values of C.
@compute @workgroup_size(WORKGROUP_SIZE)
fn reduce_splits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = thread_index(gid, groups);
    if (i >= p.m) { return; }
    var s = 0.0;
    for (var part = 0u; part < p.k; part = part + 1u) {
        s = s + a[part * p.m + i];
    }
    if (p.accumulate == 1u) {
        c[i] = c[i] + s;
    } else {
        c[i] = s;
    }
}
