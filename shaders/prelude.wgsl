// Prepended to every shader by engine::gpu (which writes the line defining WORKGROUP_SIZE from its Rust
// constant just above this text), so the thread layout and the reductions are written once.

// The flat index of a 1-D launch of WORKGROUP_SIZE-thread groups folded into x and y when it exceeds one
// dimension (GpuBackend::launch).
fn thread_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * WORKGROUP_SIZE;
}

// Workgroup memory for the reductions below (a shader that never calls them does not allocate it).
var<workgroup> reduce_scratch: array<f32, WORKGROUP_SIZE>;

// The sum of `v` over the workgroup's threads, by a tree in workgroup memory; every thread gets it.
// Call from uniform control flow (it holds barriers).
fn workgroup_sum(lid: u32, v: f32) -> f32 {
    reduce_scratch[lid] = v;
    workgroupBarrier();
    for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            reduce_scratch[lid] = reduce_scratch[lid] + reduce_scratch[lid + stride];
        }
        workgroupBarrier();
    }
    let total = reduce_scratch[0];
    workgroupBarrier(); // before the scratch is used again
    return total;
}

// The maximum of `v` over the workgroup's threads, as workgroup_sum.
fn workgroup_max(lid: u32, v: f32) -> f32 {
    reduce_scratch[lid] = v;
    workgroupBarrier();
    for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            reduce_scratch[lid] = max(reduce_scratch[lid], reduce_scratch[lid + stride]);
        }
        workgroupBarrier();
    }
    let top = reduce_scratch[0];
    workgroupBarrier();
    return top;
}

// GELU, tanh form, and its derivative times an upstream gradient: the matmul's epilogues
// (CPU twins: engine::kernels::elementwise::{gelu, gelu_grad_times}).
const GELU_SCALE: f32 = 0.7978846;  // sqrt(2/π)

// tanh through exp of a clamped argument: some drivers return NaN for tanh of large inputs.
fn safe_tanh(u: f32) -> f32 {
    let e = exp(2.0 * clamp(u, -15.0, 15.0));
    return (e - 1.0) / (e + 1.0);
}

fn gelu(v: f32) -> f32 {
    return 0.5 * v * (1.0 + safe_tanh(GELU_SCALE * (v + 0.044715 * v * v * v)));
}

fn gelu_grad_times(g: f32, v: f32) -> f32 {
    let th = safe_tanh(GELU_SCALE * (v + 0.044715 * v * v * v));
    let du = GELU_SCALE * (1.0 + 3.0 * 0.044715 * v * v);
    return g * (0.5 * (1.0 + th) + 0.5 * v * (1.0 - th * th) * du);
}
