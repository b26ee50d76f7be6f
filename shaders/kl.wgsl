// Exact per-token KL(p ‖ q) over the whole vocabulary, one thread per row. CPU twin: engine::kernels::kl::token_kl.

struct Params { n: u32, v: u32, _pad0: u32, _pad1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits_p: array<f32>;
@group(0) @binding(2) var<storage, read> logits_q: array<f32>;
@group(0) @binding(3) var<storage, read_write> kl: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = thread_index(gid, groups);
    if (r >= p.n) { return; }
    let base = r * p.v;
    var mp = logits_p[base];
    var mq = logits_q[base];
    for (var j = 1u; j < p.v; j = j + 1u) {
        mp = max(mp, logits_p[base + j]);
        mq = max(mq, logits_q[base + j]);
    }
    var sp = 0.0;
    var sq = 0.0;
    for (var j = 0u; j < p.v; j = j + 1u) {
        sp = sp + exp(logits_p[base + j] - mp);
        sq = sq + exp(logits_q[base + j] - mq);
    }
    let lse_p = mp + log(sp);
    let lse_q = mq + log(sq);
    var total = 0.0;
    for (var j = 0u; j < p.v; j = j + 1u) {
        let a = logits_p[base + j] - lse_p;
        let b = logits_q[base + j] - lse_q;
        total = total + exp(a) * (a - b);
    }
    kl[r] = total;
}
