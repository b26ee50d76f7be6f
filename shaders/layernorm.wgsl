// LayerNorm over rows of C (eps 1e-5). CPU twins: engine::kernels::layernorm::layernorm_forward / layernorm_backward.
// One thread per row (C is small here); the parameter gradients use one workgroup per channel.

struct Params { n: u32, c: u32, _pad0: u32, _pad1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;    // forward outputs: out, mean, rstd
@group(0) @binding(5) var<storage, read_write> mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;     // backward outputs (accumulated)
@group(0) @binding(8) var<storage, read_write> db: array<f32>;
@group(0) @binding(9) var<storage, read_write> dw: array<f32>;
@group(0) @binding(10) var<storage, read> dout: array<f32>;        // backward inputs
@group(0) @binding(11) var<storage, read> mean_in: array<f32>;
@group(0) @binding(12) var<storage, read> rstd_in: array<f32>;

const EPS: f32 = 1e-5;

@compute @workgroup_size(WORKGROUP_SIZE)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let row = thread_index(gid, groups);
    if (row >= p.n) { return; }
    let base = row * p.c;
    var m = 0.0;
    for (var i = 0u; i < p.c; i = i + 1u) { m = m + x[base + i]; }
    m = m / f32(p.c);
    var var_ = 0.0;
    for (var i = 0u; i < p.c; i = i + 1u) { let d = x[base + i] - m; var_ = var_ + d * d; }
    let s = 1.0 / sqrt(var_ / f32(p.c) + EPS);
    for (var i = 0u; i < p.c; i = i + 1u) {
        out[base + i] = (x[base + i] - m) * s * w[i] + b[i];
    }
    mean[row] = m;
    rstd[row] = s;
}

// The backward pass in one dispatch of p.c + ⌈n / WORKGROUP_SIZE⌉ workgroups: the first p.c compute the parameter
// gradients, one channel each; the rest compute dx, a row per thread. The two read the same inputs and write
// different outputs, so neither waits for the other.
@compute @workgroup_size(WORKGROUP_SIZE)
fn backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let group = wg.x + wg.y * groups.x;  // uniform across the workgroup, so the parameter sums' barriers are reached by all
    if (group < p.c) {
        backward_params(group, lid3.x);
    } else {
        backward_input((group - p.c) * WORKGROUP_SIZE + lid3.x);
    }
}

// dx += s·(dnorm − mean(dnorm) − xhat·mean(dnorm·xhat)), dnorm = dout·w, for one row
fn backward_input(row: u32) {
    if (row >= p.n) { return; }
    let base = row * p.c;
    let m = mean_in[row];
    let s = rstd_in[row];
    var dnorm_mean = 0.0;
    var dnorm_xhat_mean = 0.0;
    for (var i = 0u; i < p.c; i = i + 1u) {
        let xhat = (x[base + i] - m) * s;
        let dnorm = dout[base + i] * w[i];
        dnorm_mean = dnorm_mean + dnorm;
        dnorm_xhat_mean = dnorm_xhat_mean + dnorm * xhat;
    }
    dnorm_mean = dnorm_mean / f32(p.c);
    dnorm_xhat_mean = dnorm_xhat_mean / f32(p.c);
    for (var i = 0u; i < p.c; i = i + 1u) {
        let xhat = (x[base + i] - m) * s;
        dx[base + i] = dx[base + i] + s * (dout[base + i] * w[i] - dnorm_mean - xhat * dnorm_xhat_mean);
    }
}

// dw[i] += Σ_rows dout·xhat, db[i] += Σ_rows dout: one workgroup per channel i; its threads stride over the rows
// and meet in workgroup sums, so no thread writes where another does and a channel of thousands of rows is not one
// thread's serial loop. Call from uniform control flow (i uniform across the workgroup).
fn backward_params(i: u32, lid: u32) {
    var sw = 0.0;
    var sb = 0.0;
    if (i < p.c) {
        for (var row = lid; row < p.n; row = row + WORKGROUP_SIZE) {
            let d = dout[row * p.c + i];
            sw = sw + d * (x[row * p.c + i] - mean_in[row]) * rstd_in[row];
            sb = sb + d;
        }
    }
    let total_w = workgroup_sum(lid, sw);
    let total_b = workgroup_sum(lid, sb);
    if (i < p.c && lid == 0u) {
        dw[i] = dw[i] + total_w;
        db[i] = db[i] + total_b;
    }
}
