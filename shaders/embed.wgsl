// Token + position embeddings. CPU twins: engine::kernels::embed::embed_forward / embed_backward.
// The backward is a scatter-add; WGSL has no float atomics, so each thread owns one output element and
// gathers: a (vocabulary row, channel) pair sums over the positions holding that token, in row order.

struct Params { n: u32, t: u32, c: u32, vocab: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read> wte: array<f32>;          // forward inputs
@group(0) @binding(3) var<storage, read> wpe: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;    // forward output
@group(0) @binding(5) var<storage, read> dout: array<f32>;         // backward input
@group(0) @binding(6) var<storage, read_write> dwte: array<f32>;   // backward outputs (accumulated)
@group(0) @binding(7) var<storage, read_write> dwpe: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = thread_index(gid, groups);
    if (i >= p.n * p.c) { return; }
    let row = i / p.c;
    let ch = i % p.c;
    out[i] = wte[tokens[row] * p.c + ch] + wpe[(row % p.t) * p.c + ch];
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
            s = s + dout[row * p.c + ch];
        }
    }
    dwte[i] = dwte[i] + s;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn backward_wpe(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = thread_index(gid, groups);
    if (i >= p.t * p.c) { return; }
    let pos = i / p.c;
    let ch = i % p.c;
    var s = 0.0;
    for (var b = 0u; b < p.n / p.t; b = b + 1u) {
        s = s + dout[(b * p.t + pos) * p.c + ch];
    }
    dwpe[i] = dwpe[i] + s;
}
