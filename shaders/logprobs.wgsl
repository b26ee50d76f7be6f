// Per-token log-probabilities of the next token, and their gradient. One thread per row of V.
// CPU twins: engine::kernels::logprobs::token_logprobs / token_logprobs_backward.

struct Params { n: u32, v: u32, _pad0: u32, _pad1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> lp: array<f32>;       // forward output
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;  // backward output
@group(0) @binding(5) var<storage, read> dlp: array<f32>;            // backward input

fn row_max(base: u32) -> f32 {
    var m = logits[base];
    for (var j = 1u; j < p.v; j = j + 1u) { m = max(m, logits[base + j]); }
    return m;
}

fn row_sum_exp(base: u32, m: f32) -> f32 {
    var s = 0.0;
    for (var j = 0u; j < p.v; j = j + 1u) { s = s + exp(logits[base + j] - m); }
    return s;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = thread_index(gid, groups);
    if (r >= p.n) { return; }
    let base = r * p.v;
    let m = row_max(base);
    lp[r] = logits[base + targets[r]] - (m + log(row_sum_exp(base, m)));
}

// dlogits = dlp·(onehot(target) − softmax)
@compute @workgroup_size(WORKGROUP_SIZE)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = thread_index(gid, groups);
    if (r >= p.n) { return; }
    let base = r * p.v;
    let m = row_max(base);
    let s = row_sum_exp(base, m);
    let g = dlp[r];
    let tgt = targets[r];
    for (var j = 0u; j < p.v; j = j + 1u) {
        let prob = exp(logits[base + j] - m) / s;
        var onehot = 0.0;
        if (j == tgt) { onehot = 1.0; }
        dlogits[base + j] = g * (onehot - prob);
    }
}
