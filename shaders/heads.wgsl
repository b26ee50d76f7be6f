// Moving between rows [B,T,C] (or [B,T,3C] for q|k|v) and heads [B,H,T,D]. One thread per head element.
// CPU twins: engine::kernels::heads::split_heads, merge_heads_qkv, permute_heads.

struct Params { n: u32, t: u32, h: u32, d: u32 }

@group(0) @binding(0) var<uniform> p: Params;
// Rows are [N, 3C] for q|k|v, else [N, C]; heads are [B, H, T, D] (q alone for the plain permutations).
@group(0) @binding(1) var<storage, read> rows_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> k: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> q_in: array<f32>;
@group(0) @binding(6) var<storage, read> k_in: array<f32>;
@group(0) @binding(7) var<storage, read> v_in: array<f32>;
@group(0) @binding(8) var<storage, read_write> rows: array<f32>;

// Index of head element i in a row layout of width `width`, for part `part` (0 = q, 1 = k, 2 = v).
fn row_index(i: u32, width: u32, part: u32) -> u32 {
    let c = p.h * p.d;
    let dd = i % p.d;
    let tt = (i / p.d) % p.t;
    let hh = (i / (p.d * p.t)) % p.h;
    let bb = i / (p.d * p.t * p.h);
    return (bb * p.t + tt) * width + part * c + hh * p.d + dd;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn split_heads(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = thread_index(gid, groups);
    if (i >= p.n * p.h * p.d) { return; }
    let w = 3u * p.h * p.d;
    q[i] = rows_in[row_index(i, w, 0u)];
    k[i] = rows_in[row_index(i, w, 1u)];
    v[i] = rows_in[row_index(i, w, 2u)];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn merge_heads_qkv(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = thread_index(gid, groups);
    if (i >= p.n * p.h * p.d) { return; }
    let w = 3u * p.h * p.d;
    rows[row_index(i, w, 0u)] = q_in[i];
    rows[row_index(i, w, 1u)] = k_in[i];
    rows[row_index(i, w, 2u)] = v_in[i];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn heads_to_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = thread_index(gid, groups);
    if (i >= p.n * p.h * p.d) { return; }
    rows[row_index(i, p.h * p.d, 0u)] = q_in[i];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn rows_to_heads(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = thread_index(gid, groups);
    if (i >= p.n * p.h * p.d) { return; }
    q[i] = rows_in[row_index(i, p.h * p.d, 0u)];
}
