// main: sums[slot] = Σ x², one workgroup striding over the tensor, then a tree reduction in workgroup memory.
// clip: from the squared norms x[0..len] of a gradient's parts, ‖g‖ = √Σ x and the clip factor
// (max_norm / (‖g‖ + 1e-6) when clipping and ‖g‖ > max_norm, else 1): sums[0] = factor, sums[1] = ‖g‖.
// CPU twins: engine::kernels::sum_squares::{sum_squares, clip_scale}.

struct Params { len: u32, slot: u32, max_norm: f32, clips: u32 }

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

@compute @workgroup_size(1)
fn clip() {
    var s = 0.0;
    for (var i = 0u; i < p.len; i = i + 1u) {
        s = s + x[i];
    }
    let norm = sqrt(s);
    var factor = 1.0;
    // NaN compares false: an unfinite norm is not clipped (the run's loss check stops it).
    if (p.clips != 0u && norm > p.max_norm) {
        factor = p.max_norm / (norm + 1e-6);
    }
    sums[0] = factor;
    sums[1] = norm;
}
