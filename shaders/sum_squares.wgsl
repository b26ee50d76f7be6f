// sums[slot] = Σ x², one workgroup striding over the tensor, then a tree reduction in workgroup memory.
// CPU twin: engine::kernels::sum_squares::sum_squares.

struct Params { len: u32, slot: u32, _pad0: u32, _pad1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> sums: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(local_invocation_id) lid3: vec3<u32>) {
    let lid = lid3.x;
    var s = 0.0;
    for (var i = lid; i < p.len; i = i + WORKGROUP_SIZE) {
        s = s + x[i] * x[i];
    }
    let total = workgroup_sum(lid, s);
    if (lid == 0u) {
        sums[p.slot] = total;
    }
}
