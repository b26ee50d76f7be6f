// A block's causal self-attention fused, from q|k|v rows to output rows and back, one thread per (sequence, head,
// position). CPU twins: engine::kernels::attention::{attention_forward, attention_backward}.

struct Params {
    rows: u32, t: u32, scale: f32,
    h: u32, d: u32,             // heads and head width
    _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> att: array<f32>;     // forward: the attention weights [B·H, T, T]
@group(0) @binding(2) var<storage, read> att_in: array<f32>;        // backward: the forward's weights
@group(0) @binding(3) var<storage, read_write> dscores: array<f32>; // backward, first pass: d loss / d scores
@group(0) @binding(4) var<storage, read> qkv: array<f32>;           // q|k|v rows [B·T, 3C]
@group(0) @binding(5) var<storage, read_write> out: array<f32>;     // forward: the heads' outputs in rows [B·T, C]
@group(0) @binding(6) var<storage, read> dout: array<f32>;          // backward: d loss / d out
@group(0) @binding(7) var<storage, read_write> dqkv: array<f32>;    // backward: d loss / d qkv
@group(0) @binding(8) var<storage, read> dpre_in: array<f32>;       // backward, second pass: the first's dscores

// ---- Fused attention. Thread r = (b·H + head)·T + i owns query position i of one head of one sequence; the
// weights' row r is att[r·T ..]. q, k and v of position j of that head sit in q|k|v row b·T + j at columns
// head·D, C + head·D and 2C + head·D.

fn qkv_index(r: u32, j: u32, part: u32) -> u32 {
    let bh = r / p.t;
    let c = p.h * p.d;
    return ((bh / p.h) * p.t + j) * 3u * c + part * c + (bh % p.h) * p.d;
}

// The row of the heads' outputs (and of their gradient) that query position i of thread r writes.
fn out_index(r: u32) -> u32 {
    let bh = r / p.t;
    return ((bh / p.h) * p.t + r % p.t) * p.h * p.d + (bh % p.h) * p.d;
}

// scores q_i·k_j, the causal softmax of scale·scores (exp((s − max)·scale), normalised), then out_i = Σ_j att_ij v_j.
@compute @workgroup_size(WORKGROUP_SIZE)
fn fused_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = thread_index(gid, groups);
    if (r >= p.rows) { return; }
    let base = r * p.t;
    let last = r % p.t;
    let q0 = qkv_index(r, last, 0u);
    var m = 0.0;
    for (var j = 0u; j <= last; j = j + 1u) {
        let k0 = qkv_index(r, j, 1u);
        var s = 0.0;
        for (var e = 0u; e < p.d; e = e + 1u) { s = s + qkv[q0 + e] * qkv[k0 + e]; }
        att[base + j] = s;
        if (j == 0u) { m = s; } else { m = max(m, s); }
    }
    var total = 0.0;
    for (var j = 0u; j <= last; j = j + 1u) {
        let e = exp((att[base + j] - m) * p.scale);
        att[base + j] = e;
        total = total + e;
    }
    let inv = 1.0 / total;
    for (var j = 0u; j < p.t; j = j + 1u) {
        if (j <= last) { att[base + j] = att[base + j] * inv; } else { att[base + j] = 0.0; }
    }
    let o0 = out_index(r);
    for (var e = 0u; e < p.d; e = e + 1u) {
        var acc = 0.0;
        for (var j = 0u; j <= last; j = j + 1u) { acc = acc + att[base + j] * qkv[qkv_index(r, j, 2u) + e]; }
        out[o0 + e] = acc;
    }
}

// First backward pass, per query position i: datt_ij = dout_i·v_j, dpre_ij = scale·att_ij·(datt_ij − Σ_j att·datt)
// (0 above the diagonal), dq_i = Σ_j dpre_ij k_j.
@compute @workgroup_size(WORKGROUP_SIZE)
fn fused_backward_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = thread_index(gid, groups);
    if (r >= p.rows) { return; }
    let base = r * p.t;
    let last = r % p.t;
    let o0 = out_index(r);
    var dot = 0.0;
    for (var j = 0u; j < p.t; j = j + 1u) {
        let v0 = qkv_index(r, j, 2u);
        var s = 0.0;
        for (var e = 0u; e < p.d; e = e + 1u) { s = s + dout[o0 + e] * qkv[v0 + e]; }
        dscores[base + j] = s;
        if (j <= last) { dot = dot + att_in[base + j] * s; }
    }
    for (var j = 0u; j < p.t; j = j + 1u) {
        if (j <= last) {
            dscores[base + j] = p.scale * att_in[base + j] * (dscores[base + j] - dot);
        } else {
            dscores[base + j] = 0.0;
        }
    }
    let q0 = qkv_index(r, last, 0u);
    for (var e = 0u; e < p.d; e = e + 1u) {
        var acc = 0.0;
        for (var j = 0u; j < p.t; j = j + 1u) { acc = acc + dscores[base + j] * qkv[qkv_index(r, j, 1u) + e]; }
        dqkv[q0 + e] = acc;
    }
}

// Second backward pass, per key position j (thread r's position r mod T): dk_j = Σ_i dpre_ij q_i and
// dv_j = Σ_i att_ij dout_i, over every query position i of the head.
@compute @workgroup_size(WORKGROUP_SIZE)
fn fused_backward_columns(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = thread_index(gid, groups);
    if (r >= p.rows) { return; }
    let j = r % p.t;
    let first_row = r - j; // thread index of query position 0 of this head
    let k0 = qkv_index(r, j, 1u);
    let v0 = qkv_index(r, j, 2u);
    for (var e = 0u; e < p.d; e = e + 1u) {
        var dk = 0.0;
        var dv = 0.0;
        for (var i = 0u; i < p.t; i = i + 1u) {
            let w = (first_row + i) * p.t + j;
            dk = dk + dpre_in[w] * qkv[qkv_index(r, i, 0u) + e];
            dv = dv + att_in[w] * dout[out_index(first_row + i) + e];
        }
        dqkv[k0 + e] = dk;
        dqkv[v0 + e] = dv;
    }
}
