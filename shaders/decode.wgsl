// Autoregressive decoding with a KV cache: one position of B sequences per step, everything on the device
// (the sampled token is written where the next step's embedding reads it, so nothing is read back per
// token). CPU twins: engine::kernels::decode::embed_position, cached_attention, sample_next.

struct Params {
    b: u32, c: u32, vocab: u32, context: u32,
    pos: u32, h: u32, d: u32, temperature: f32,
    seed: u32, stream: u32, eos: u32, pad: u32,
    banned: u32, row0: u32, _pad1: u32, _pad2: u32,
}

// Token ids < 32 whose bit is set in `banned` are never drawn.
fn allowed(j: u32) -> bool {
    return j >= 32u || ((p.banned >> j) & 1u) == 0u;
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> tokens_in: array<u32>;         // [B, context]
@group(0) @binding(2) var<storage, read> wte: array<f32>;
@group(0) @binding(3) var<storage, read> wpe: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;         // [B, C]
@group(0) @binding(5) var<storage, read> qkv: array<f32>;         // [B, 3C]
@group(0) @binding(6) var<storage, read_write> kcache: array<f32>;      // [B, H, context, D]
@group(0) @binding(7) var<storage, read_write> vcache: array<f32>;
@group(0) @binding(8) var<storage, read> logits: array<f32>;      // [B, V]
@group(0) @binding(9) var<storage, read_write> tokens_out: array<u32>;  // [B, context]
@group(0) @binding(10) var<storage, read_write> done: array<f32>;       // [B]
@group(0) @binding(11) var<storage, read_write> logprobs: array<f32>;   // [B, context]

// The same counter-based generator as rng::pcg4d on the CPU.
fn pcg4d(input: vec4<u32>) -> vec4<u32> {
    var v = input * 1664525u + 1013904223u;
    v.x = v.x + v.y * v.w; v.y = v.y + v.z * v.x; v.z = v.z + v.x * v.y; v.w = v.w + v.y * v.z;
    v = v ^ (v >> vec4<u32>(16u));
    v.x = v.x + v.y * v.w; v.y = v.y + v.z * v.x; v.z = v.z + v.x * v.y; v.w = v.w + v.y * v.z;
    return v;
}

fn uniform01(seed: u32, stream: u32, row: u32, index: u32) -> f32 {
    return f32(pcg4d(vec4<u32>(seed, stream, row, index)).x >> 8u) * (1.0 / 16777216.0);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn embed_position(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = thread_index(gid, groups);
    if (i >= p.b * p.c) { return; }
    let b = i / p.c;
    let ch = i % p.c;
    out[i] = wte[tokens_in[b * p.context + p.pos] * p.c + ch] + wpe[p.pos * p.c + ch];
}

// One thread per (sequence, head): store k and v at `pos`, then softmax over positions 0..=pos.
@compute @workgroup_size(WORKGROUP_SIZE)
fn cached_attention(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = thread_index(gid, groups);
    if (i >= p.b * p.h) { return; }
    let b = i / p.h;
    let hh = i % p.h;
    let c = p.h * p.d;
    let row = b * 3u * c;
    let cache = (b * p.h + hh) * p.context * p.d;
    for (var k = 0u; k < p.d; k = k + 1u) {
        kcache[cache + p.pos * p.d + k] = qkv[row + c + hh * p.d + k];
        vcache[cache + p.pos * p.d + k] = qkv[row + 2u * c + hh * p.d + k];
    }
    let scale = 1.0 / sqrt(f32(p.d));
    var m = -3.0e38;
    for (var j = 0u; j <= p.pos; j = j + 1u) {
        var s = 0.0;
        for (var k = 0u; k < p.d; k = k + 1u) { s = s + qkv[row + hh * p.d + k] * kcache[cache + j * p.d + k]; }
        m = max(m, s);
    }
    var total = 0.0;
    for (var j = 0u; j <= p.pos; j = j + 1u) {
        var s = 0.0;
        for (var k = 0u; k < p.d; k = k + 1u) { s = s + qkv[row + hh * p.d + k] * kcache[cache + j * p.d + k]; }
        total = total + exp((s - m) * scale);
    }
    let o = b * c + hh * p.d;
    for (var k = 0u; k < p.d; k = k + 1u) { out[o + k] = 0.0; }
    for (var j = 0u; j <= p.pos; j = j + 1u) {
        var s = 0.0;
        for (var k = 0u; k < p.d; k = k + 1u) { s = s + qkv[row + hh * p.d + k] * kcache[cache + j * p.d + k]; }
        let w = exp((s - m) * scale) / total;
        for (var k = 0u; k < p.d; k = k + 1u) { out[o + k] = out[o + k] + w * vcache[cache + j * p.d + k]; }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn sample_next(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let b = thread_index(gid, groups);
    if (b >= p.b) { return; }
    let slot = b * p.context + p.pos + 1u;
    if (done[b] != 0.0) {
        tokens_out[slot] = p.pad;
        logprobs[slot] = 0.0;
        return;
    }
    let base = b * p.vocab;
    // The log-prob is under the model's whole distribution; the draw is among the allowed tokens.
    var m_all = logits[base];
    for (var j = 1u; j < p.vocab; j = j + 1u) { m_all = max(m_all, logits[base + j]); }
    var s = 0.0;
    for (var j = 0u; j < p.vocab; j = j + 1u) { s = s + exp(logits[base + j] - m_all); }
    let lse = m_all + log(s);
    var m = -3.0e38;
    var last = 0u;
    for (var j = 0u; j < p.vocab; j = j + 1u) {
        if (allowed(j)) { m = max(m, logits[base + j]); last = j; }
    }
    var pick = last;
    if (p.temperature == 0.0) {
        var found = false;
        for (var j = 0u; j < p.vocab; j = j + 1u) {
            if (allowed(j) && (!found || logits[base + j] > logits[base + pick])) { pick = j; found = true; }
        }
    } else {
        var total = 0.0;
        for (var j = 0u; j < p.vocab; j = j + 1u) {
            if (allowed(j)) { total = total + exp((logits[base + j] - m) / p.temperature); }
        }
        // Row b of a part sampled apart draws as row row0 + b of the whole batch.
        let threshold = uniform01(p.seed, p.stream, p.row0 + b, p.pos) * total;
        var acc = 0.0;
        for (var j = 0u; j < p.vocab; j = j + 1u) {
            if (!allowed(j)) { continue; }
            acc = acc + exp((logits[base + j] - m) / p.temperature);
            if (threshold < acc) { pick = j; break; }
        }
    }
    tokens_out[slot] = pick;
    logprobs[slot] = logits[base + pick] - lse;
    if (pick == p.eos) { done[b] = 1.0; }
}
