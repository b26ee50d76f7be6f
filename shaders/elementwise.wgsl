// Element-wise and small reduction ops. CPU twins in engine::kernels::elementwise: zero (in run_cpu), add, add_into, mix, add_bias, bias_backward,
// gelu_forward, gelu_backward, weighted_row_sum, weighted_row_sum_backward.

struct Params { len: u32, c: u32, weight: f32, _pad1: u32 }  // c: row width (bias, rows of a weighted sum); weight: mix's

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

// out = a + b
@compute @workgroup_size(WORKGROUP_SIZE)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = thread_index(gid, groups);
    if (i >= p.len) { return; }
    out[i] = a[i] + b[i];
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

// out[n, j] += a[j]  (a: bias of width c)
@compute @workgroup_size(WORKGROUP_SIZE)
fn add_bias(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = thread_index(gid, groups);
    if (i >= p.len) { return; }
    out[i] = out[i] + a[i % p.c];
}

// dbias[j] += Σ_rows dy[row, j]: one workgroup per column j (launched with c · WORKGROUP_SIZE threads); its
// threads stride over the rows and meet in a workgroup sum, so a column of thousands of rows is not one
// thread's serial loop.
@compute @workgroup_size(WORKGROUP_SIZE)
fn bias_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let j = wg.x + wg.y * groups.x;  // uniform across the workgroup, so the barriers below are reached by all
    let lid = lid3.x;
    let rows = p.len / p.c;
    var s = 0.0;
    if (j < p.c) {
        for (var row = lid; row < rows; row = row + WORKGROUP_SIZE) {
            s = s + a[row * p.c + j];
        }
    }
    let total = workgroup_sum(lid, s);
    if (j < p.c && lid == 0u) {
        out[j] = out[j] + total;
    }
}

// out = gelu(a), tanh form
@compute @workgroup_size(WORKGROUP_SIZE)
fn gelu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = thread_index(gid, groups);
    if (i >= p.len) { return; }
    out[i] = gelu(a[i]);
}

// out = a · gelu'(b)   (a: dy, b: x)
@compute @workgroup_size(WORKGROUP_SIZE)
fn gelu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = thread_index(gid, groups);
    if (i >= p.len) { return; }
    out[i] = gelu_grad_times(a[i], b[i]);
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
