// Element-wise and row-wise ops. CPU twins in engine::kernels::elementwise: zero (in run_cpu), add_into, mix,
// weighted_row_sum, weighted_row_sum_backward.

struct Params { len: u32, c: u32, weight: f32, _pad1: u32 }  // c: row width (of the rows a weighted sum runs over); weight: mix's

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;


// out = 0
@compute @workgroup_size(WORKGROUP_SIZE)
fn zero(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = thread_index(gid, groups);
    if (i >= p.len) { return; }
    out[i] = 0.0;
}

// out = (1 - weight)·a + weight·b
@compute @workgroup_size(WORKGROUP_SIZE)
fn mix(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = thread_index(gid, groups);
    if (i >= p.len) { return; }
    out[i] = (1.0 - p.weight) * a[i] + p.weight * b[i];
}

// out += a
@compute @workgroup_size(WORKGROUP_SIZE)
fn add_into(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = thread_index(gid, groups);
    if (i >= p.len) { return; }
    out[i] = out[i] + a[i];
}

// out[r] = Σ_t a[r, t]·b[r, t]; rows of width c; len = number of rows
@compute @workgroup_size(WORKGROUP_SIZE)
fn weighted_row_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = thread_index(gid, groups);
    if (r >= p.len) { return; }
    var s = 0.0;
    for (var t = 0u; t < p.c; t = t + 1u) {
        s = s + b[r * p.c + t] * a[r * p.c + t];
    }
    out[r] = s;
}

// out[r, t] = a[r]·b[r, t]; len = rows·c
@compute @workgroup_size(WORKGROUP_SIZE)
fn weighted_row_sum_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = thread_index(gid, groups);
    if (i >= p.len) { return; }
    out[i] = a[i / p.c] * b[i];
}
