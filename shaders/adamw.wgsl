// One AdamW step (torch.optim.AdamW semantics: bias correction, decoupled weight decay) on the gradient
// times clip[0] (the global-norm clip factor, computed on the device by sum_squares.clip).
// CPU twin: engine::kernels::adamw::adamw.

struct Params {
    len: u32, lr: f32, beta1: f32, beta2: f32,
    eps: f32, weight_decay: f32, bias_correction1: f32, bias_correction2: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> clip: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = thread_index(gid, groups);
    if (i >= p.len) { return; }
    let g = grad[i] * clip[0];
    let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
    let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    var w = param[i];
    w = w - p.lr * p.weight_decay * w;
    param[i] = w - p.lr * (mi / p.bias_correction1) / (sqrt(vi / p.bias_correction2) + p.eps);
}
