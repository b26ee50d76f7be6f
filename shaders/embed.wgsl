// Token + position embeddings. CPU twins: engine::cpu::embed_forward / embed_backward.
// The backward is a scatter-add; WGSL has no float atomics, so each thread owns one output element and
// gathers: a (vocabulary row, channel) pair sums over the positions holding that token, in row order.

struct Params { n: u32, t: u32, c: u32, vocab: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read_write> wte: array<f32>;
@group(0) @binding(3) var<storage, read_write> wpe: array<f32>;
@group(0) @binding(4) var<storage, read_write> act: array<f32>;   // out (forward) or dout (backward)

@compute @workgroup_size(WORKGROUP_SIZE)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = thread_index(gid, groups);
    if (i >= p.n * p.c) { return; }
    let row = i / p.c;
    let ch = i % p.c;
    act[i] = wte[tokens[row] * p.c + ch] + wpe[(row % p.t) * p.c + ch];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn backward_wte(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = thread_index(gid, groups);
    if (i >= p.vocab * p.c) { return; }
    let v = i / p.c;
    let ch = i % p.c;
    var s = 0.0;
    for (var row = 0u; row < p.n; row = row + 1u) {
        if (tokens[row] == v) {
            s = s + act[row * p.c + ch];
        }
    }
    wte[i] = wte[i] + s;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn backward_wpe(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = thread_index(gid, groups);
    if (i >= p.t * p.c) { return; }
    let pos = i / p.c;
    let ch = i % p.c;
    var s = 0.0;
    for (var b = 0u; b < p.n / p.t; b = b + 1u) {
        s = s + act[(b * p.t + pos) * p.c + ch];
    }
    wpe[i] = wpe[i] + s;
}
