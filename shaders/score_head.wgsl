// The preference model's scalar head: a dot product at each sequence's last real token.
// CPU twins: engine::kernels::score_head::score_head / score_head_backward.

struct Params { b: u32, t: u32, c: u32, _pad: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> lnf: array<f32>;
@group(0) @binding(2) var<storage, read> last: array<u32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read_write> score: array<f32>;   // forward output
@group(0) @binding(5) var<storage, read> dscore: array<f32>;        // backward input
@group(0) @binding(6) var<storage, read_write> dw: array<f32>;      // backward outputs
@group(0) @binding(7) var<storage, read_write> dlnf: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let b = thread_index(gid, groups);
    if (b >= p.b) { return; }
    let r = (b * p.t + last[b]) * p.c;
    var s = 0.0;
    for (var i = 0u; i < p.c; i = i + 1u) { s = s + lnf[r + i] * w[i]; }
    score[b] = s;
}

// dlnf[row, i] = dscore[b]·w[i] if row is b's last token, else 0; one thread per element
@compute @workgroup_size(WORKGROUP_SIZE)
fn backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let k = thread_index(gid, groups);
    if (k >= p.b * p.t * p.c) { return; }
    let row = k / p.c;
    let b = row / p.t;
    var g = 0.0;
    if (row % p.t == last[b]) { g = dscore[b] * w[k % p.c]; }
    dlnf[k] = g;
}

// dw[i] += Σ_b dscore[b]·lnf[last row of b, i]; one thread per channel
@compute @workgroup_size(WORKGROUP_SIZE)
fn backward_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = thread_index(gid, groups);
    if (i >= p.c) { return; }
    var s = 0.0;
    for (var b = 0u; b < p.b; b = b + 1u) {
        s = s + dscore[b] * lnf[(b * p.t + last[b]) * p.c + i];
    }
    dw[i] = dw[i] + s;
}
