// Causal softmax of attention scores, one thread per row of T (T is the context, small here).
// CPU twins: engine::kernels::attention::causal_softmax_forward / causal_softmax_backward.

struct Params { rows: u32, t: u32, scale: f32, _pad: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> scores: array<f32>;        // forward: pre-softmax scores
@group(0) @binding(2) var<storage, read_write> att: array<f32>;     // forward: the attention weights
@group(0) @binding(3) var<storage, read> datt: array<f32>;          // backward: d loss / d att
@group(0) @binding(4) var<storage, read> att_in: array<f32>;        // backward: the forward's weights
@group(0) @binding(5) var<storage, read_write> dscores: array<f32>; // backward: d loss / d scores

@compute @workgroup_size(WORKGROUP_SIZE)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = thread_index(gid, groups);
    if (r >= p.rows) { return; }
    let base = r * p.t;
    let last = r % p.t;
    var m = scores[base];
    for (var j = 1u; j <= last; j = j + 1u) { m = max(m, scores[base + j]); }
    var s = 0.0;
    for (var j = 0u; j <= last; j = j + 1u) {
        let e = exp((scores[base + j] - m) * p.scale);
        att[base + j] = e;
        s = s + e;
    }
    let inv = 1.0 / s;
    for (var j = 0u; j < p.t; j = j + 1u) {
        if (j <= last) { att[base + j] = att[base + j] * inv; } else { att[base + j] = 0.0; }
    }
}

// dpre = scale·att·(datt − Σ att·datt) on and below the diagonal, 0 above
@compute @workgroup_size(WORKGROUP_SIZE)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = thread_index(gid, groups);
    if (r >= p.rows) { return; }
    let base = r * p.t;
    let last = r % p.t;
    var dot = 0.0;
    for (var j = 0u; j <= last; j = j + 1u) { dot = dot + att_in[base + j] * datt[base + j]; }
    for (var j = 0u; j < p.t; j = j + 1u) {
        if (j <= last) {
            dscores[base + j] = p.scale * att_in[base + j] * (datt[base + j] - dot);
        } else {
            dscores[base + j] = 0.0;
        }
    }
}
