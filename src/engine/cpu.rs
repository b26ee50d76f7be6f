//! The CPU backend: one plain function per kernel. These are the twins every WGSL kernel is tested
//! against, so they favour being obviously right; GEMM goes to `matrixmultiply` because a hand-written
//! loop would be 50× slower and no clearer.

use super::{MatmulSpec, Op};

pub struct CpuBackend;

/// C = op(A)·op(B) (+ C), see [`MatmulSpec`]. Transposes are just other strides.
pub fn matmul(a: &[f32], b: &[f32], c: &mut [f32], spec: MatmulSpec) {
    let MatmulSpec { batch, m, n, k, accumulate, .. } = spec;
    let (ars, acs) = spec.a_strides();
    let (brs, bcs) = spec.b_strides();
    let beta = if accumulate { 1.0 } else { 0.0 };
    for i in 0..batch {
        let a = &a[i * m * k..(i + 1) * m * k];
        let b = &b[i * k * n..(i + 1) * k * n];
        let c = &mut c[i * m * n..(i + 1) * m * n];
        // SAFETY: the slices hold exactly m·k, k·n and m·n values (checked by MatmulSpec::check and the
        // slicing above), and the strides address only inside them.
        unsafe {
            matrixmultiply::sgemm(
                m, k, n, 1.0,
                a.as_ptr(), ars as isize, acs as isize,
                b.as_ptr(), brs as isize, bcs as isize,
                beta,
                c.as_mut_ptr(), n as isize, 1,
            );
        }
    }
}

/// Numerically stable softmax of each row of `cols` values: subtract the row max before exp.
pub fn softmax_rows(x: &[f32], y: &mut [f32], cols: usize) {
    for (xr, yr) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        let max = xr.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for (o, &v) in yr.iter_mut().zip(xr) {
            *o = (v - max).exp();
            sum += *o;
        }
        let inv = 1.0 / sum;
        yr.iter_mut().for_each(|o| *o *= inv);
    }
}

// ---- GPT-2 layer kernels (forward and backward), after llm.c. Shapes: B sequences, T positions, C channels,
// N = B·T rows. Backward kernels *accumulate* into parameter gradients (+=) and, where noted, into dx.

/// out[n, :] = wte[tokens[n], :] + wpe[n % T, :]
pub fn embed_forward(out: &mut [f32], tokens: &[u32], wte: &[f32], wpe: &[f32], t: usize, c: usize) {
    for (n, (o, &tok)) in out.chunks_exact_mut(c).zip(tokens).enumerate() {
        let (e, p) = (&wte[tok as usize * c..][..c], &wpe[(n % t) * c..][..c]);
        for i in 0..c {
            o[i] = e[i] + p[i];
        }
    }
}

/// dwte[tokens[n]] += dout[n]; dwpe[n % T] += dout[n]
pub fn embed_backward(dwte: &mut [f32], dwpe: &mut [f32], dout: &[f32], tokens: &[u32], t: usize, c: usize) {
    for (n, (d, &tok)) in dout.chunks_exact(c).zip(tokens).enumerate() {
        let e = &mut dwte[tok as usize * c..][..c];
        for i in 0..c {
            e[i] += d[i];
        }
        let p = &mut dwpe[(n % t) * c..][..c];
        for i in 0..c {
            p[i] += d[i];
        }
    }
}

pub const LAYERNORM_EPS: f32 = 1e-5;

/// out = (x − mean) · rstd · w + b per row of C; saves mean and rstd (1/σ) for the backward pass.
pub fn layernorm_forward(out: &mut [f32], mean: &mut [f32], rstd: &mut [f32], x: &[f32], w: &[f32], b: &[f32], c: usize) {
    for (n, (xr, o)) in x.chunks_exact(c).zip(out.chunks_exact_mut(c)).enumerate() {
        let m = xr.iter().sum::<f32>() / c as f32;
        let var = xr.iter().map(|v| (v - m) * (v - m)).sum::<f32>() / c as f32;
        let s = 1.0 / (var + LAYERNORM_EPS).sqrt();
        for i in 0..c {
            o[i] = (xr[i] - m) * s * w[i] + b[i];
        }
        mean[n] = m;
        rstd[n] = s;
    }
}

/// dx += ∂L/∂x, dw += ∂L/∂w, db += ∂L/∂b for `layernorm_forward`.
pub fn layernorm_backward((dx, dw, db): (&mut [f32], &mut [f32], &mut [f32]), dout: &[f32], x: &[f32], w: &[f32], (mean, rstd): (&[f32], &[f32]), c: usize) {
    for (n, ((d, xr), dxr)) in dout.chunks_exact(c).zip(x.chunks_exact(c)).zip(dx.chunks_exact_mut(c)).enumerate() {
        let (m, s) = (mean[n], rstd[n]);
        // dnorm = dout·w; dx = s·(dnorm − mean(dnorm) − xhat·mean(dnorm·xhat))
        let (mut dnorm_mean, mut dnorm_xhat_mean) = (0.0, 0.0);
        for i in 0..c {
            let xhat = (xr[i] - m) * s;
            let dnorm = d[i] * w[i];
            dnorm_mean += dnorm;
            dnorm_xhat_mean += dnorm * xhat;
        }
        dnorm_mean /= c as f32;
        dnorm_xhat_mean /= c as f32;
        for i in 0..c {
            let xhat = (xr[i] - m) * s;
            db[i] += d[i];
            dw[i] += d[i] * xhat;
            dxr[i] += s * (d[i] * w[i] - dnorm_mean - xhat * dnorm_xhat_mean);
        }
    }
}

/// y[n, :] += bias
pub fn add_bias(y: &mut [f32], bias: &[f32]) {
    for row in y.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

/// dbias += Σ_n dy[n, :]
pub fn bias_backward(dbias: &mut [f32], dy: &[f32]) {
    for row in dy.chunks_exact(dbias.len()) {
        for (d, v) in dbias.iter_mut().zip(row) {
            *d += v;
        }
    }
}

/// dst += src
pub fn add_into(dst: &mut [f32], src: &[f32]) {
    dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
}

/// out = a + b
pub fn add(out: &mut [f32], a: &[f32], b: &[f32]) {
    for i in 0..out.len() {
        out[i] = a[i] + b[i];
    }
}

const GELU_SCALE: f32 = 0.797_884_6; // sqrt(2/π)

/// tanh through one exp of a clamped argument — the same formula as the WGSL kernel, and 3× faster than
/// libm's tanhf, which dominated the CPU training step.
fn tanh(u: f32) -> f32 {
    let e = (2.0 * u.clamp(-15.0, 15.0)).exp();
    (e - 1.0) / (e + 1.0)
}

/// GELU, tanh form (GPT-2's "gelu_new").
pub fn gelu_forward(y: &mut [f32], x: &[f32]) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = 0.5 * v * (1.0 + tanh(GELU_SCALE * (v + 0.044715 * v * v * v)));
    }
}

/// dx = dy · gelu'(x). Overwrites.
pub fn gelu_backward(dx: &mut [f32], dy: &[f32], x: &[f32]) {
    for i in 0..x.len() {
        let v = x[i];
        let u = GELU_SCALE * (v + 0.044715 * v * v * v);
        let th = tanh(u);
        let du = GELU_SCALE * (1.0 + 3.0 * 0.044715 * v * v);
        dx[i] = dy[i] * (0.5 * (1.0 + th) + 0.5 * v * (1.0 - th * th) * du);
    }
}

/// qkv [B,T,3C] → q, k, v [B,H,T,D] (D = C/H), the layout batched attention matmuls want.
pub fn split_heads(q: &mut [f32], k: &mut [f32], v: &mut [f32], qkv: &[f32], t: usize, h: usize, d: usize) {
    let c = h * d;
    for (n, row) in qkv.chunks_exact(3 * c).enumerate() {
        let (b, tt) = (n / t, n % t);
        for hh in 0..h {
            let dst = ((b * h + hh) * t + tt) * d;
            q[dst..dst + d].copy_from_slice(&row[hh * d..][..d]);
            k[dst..dst + d].copy_from_slice(&row[c + hh * d..][..d]);
            v[dst..dst + d].copy_from_slice(&row[2 * c + hh * d..][..d]);
        }
    }
}

/// The exact inverse of `split_heads`, for gradients: dqkv = merge(dq, dk, dv). Overwrites.
pub fn merge_heads_qkv(dqkv: &mut [f32], dq: &[f32], dk: &[f32], dv: &[f32], t: usize, h: usize, d: usize) {
    let c = h * d;
    for (n, row) in dqkv.chunks_exact_mut(3 * c).enumerate() {
        let (b, tt) = (n / t, n % t);
        for hh in 0..h {
            let src = ((b * h + hh) * t + tt) * d;
            row[hh * d..][..d].copy_from_slice(&dq[src..src + d]);
            row[c + hh * d..][..d].copy_from_slice(&dk[src..src + d]);
            row[2 * c + hh * d..][..d].copy_from_slice(&dv[src..src + d]);
        }
    }
}

/// [B,H,T,D] → [B,T,C] when `to_rows`, else the inverse. Overwrites.
pub fn permute_heads(dst: &mut [f32], src: &[f32], t: usize, h: usize, d: usize, to_rows: bool) {
    let n_rows = src.len() / (h * d);
    for n in 0..n_rows {
        let (b, tt) = (n / t, n % t);
        for hh in 0..h {
            let heads = ((b * h + hh) * t + tt) * d;
            let rows = n * h * d + hh * d;
            if to_rows {
                dst[rows..rows + d].copy_from_slice(&src[heads..heads + d]);
            } else {
                dst[heads..heads + d].copy_from_slice(&src[rows..rows + d]);
            }
        }
    }
}

/// att[r, j] = softmax_j(scale · pre[r, j]) over j ≤ t (t = r mod T), 0 beyond: causal attention weights.
pub fn causal_softmax_forward(att: &mut [f32], pre: &[f32], t: usize, scale: f32) {
    for (r, (a, p)) in att.chunks_exact_mut(t).zip(pre.chunks_exact(t)).enumerate() {
        let last = r % t;
        let m = p[..=last].iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let mut s = 0.0;
        for j in 0..=last {
            a[j] = ((p[j] - m) * scale).exp();
            s += a[j];
        }
        let inv = 1.0 / s;
        a[..=last].iter_mut().for_each(|v| *v *= inv);
        a[last + 1..].iter_mut().for_each(|v| *v = 0.0);
    }
}

/// dpre = scale · att ⊙ (datt − Σ_j att·datt), 0 beyond the causal edge. Overwrites.
pub fn causal_softmax_backward(dpre: &mut [f32], datt: &[f32], att: &[f32], t: usize, scale: f32) {
    for (r, ((dp, da), a)) in dpre.chunks_exact_mut(t).zip(datt.chunks_exact(t)).zip(att.chunks_exact(t)).enumerate() {
        let last = r % t;
        let dot: f32 = (0..=last).map(|j| a[j] * da[j]).sum();
        for j in 0..t {
            dp[j] = if j <= last { scale * a[j] * (da[j] - dot) } else { 0.0 };
        }
    }
}

/// lp[n] = log softmax(logits[n, :])[targets[n]] — the per-token log-probability of the next token.
pub fn token_logprobs(lp: &mut [f32], logits: &[f32], targets: &[u32], v: usize) {
    for ((o, row), &tgt) in lp.iter_mut().zip(logits.chunks_exact(v)).zip(targets) {
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = m + row.iter().map(|x| (x - m).exp()).sum::<f32>().ln();
        *o = row[tgt as usize] - lse;
    }
}

/// dlogits[n, :] = dlp[n] · (onehot(targets[n]) − softmax(logits[n, :])). Overwrites.
pub fn token_logprobs_backward(dlogits: &mut [f32], dlp: &[f32], logits: &[f32], targets: &[u32], v: usize) {
    for (((dl, row), &tgt), &g) in dlogits.chunks_exact_mut(v).zip(logits.chunks_exact(v)).zip(targets).zip(dlp) {
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let s: f32 = row.iter().map(|x| (x - m).exp()).sum();
        for j in 0..v {
            let p = (row[j] - m).exp() / s;
            dl[j] = g * (if j == tgt as usize { 1.0 } else { 0.0 } - p);
        }
    }
}

/// log softmax of one row, into `out`.
fn log_softmax(out: &mut [f32], row: &[f32]) {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = m + row.iter().map(|x| (x - m).exp()).sum::<f32>().ln();
    for (o, x) in out.iter_mut().zip(row) {
        *o = x - lse;
    }
}

/// kl[n] = Σ_v p(v)·(log p(v) − log q(v)) with p = softmax(lp[n]), q = softmax(lq[n]): exact, over the vocabulary.
pub fn token_kl(kl: &mut [f32], logits_p: &[f32], logits_q: &[f32], v: usize) {
    let (mut a, mut b) = (vec![0.0; v], vec![0.0; v]);
    for ((o, p), q) in kl.iter_mut().zip(logits_p.chunks_exact(v)).zip(logits_q.chunks_exact(v)) {
        log_softmax(&mut a, p);
        log_softmax(&mut b, q);
        *o = (0..v).map(|j| a[j].exp() * (a[j] - b[j])).sum();
    }
}

/// score[b] = lnf[b·T + last[b], :] · w — a scalar read at each sequence's last real token (as Hugging
/// Face's GPT2ForSequenceClassification does with one label).
pub fn score_head(score: &mut [f32], lnf: &[f32], last: &[u32], w: &[f32], t: usize) {
    let c = w.len();
    for (b, s) in score.iter_mut().enumerate() {
        let row = &lnf[(b * t + last[b] as usize) * c..][..c];
        *s = row.iter().zip(w).map(|(x, y)| x * y).sum();
    }
}

/// dlnf = dscore[b]·w at each last token and 0 elsewhere (overwrites); dw += Σ_b dscore[b]·lnf[last row].
pub fn score_head_backward(dlnf: &mut [f32], dw: &mut [f32], dscore: &[f32], lnf: &[f32], last: &[u32], w: &[f32], t: usize) {
    let c = w.len();
    dlnf.iter_mut().for_each(|v| *v = 0.0);
    for (b, &g) in dscore.iter().enumerate() {
        let r = (b * t + last[b] as usize) * c;
        for i in 0..c {
            dlnf[r + i] = g * w[i];
            dw[i] += g * lnf[r + i];
        }
    }
}

/// out[b] = Σ_t w[b, t] · x[b, t] — the masked sum that turns token log-probs into log π(y|x).
pub fn weighted_row_sum(out: &mut [f32], x: &[f32], w: &[f32], t: usize) {
    for (b, o) in out.iter_mut().enumerate() {
        *o = (0..t).map(|i| w[b * t + i] * x[b * t + i]).sum();
    }
}

/// dx[b, t] = dout[b] · w[b, t]. Overwrites.
pub fn weighted_row_sum_backward(dx: &mut [f32], dout: &[f32], w: &[f32], t: usize) {
    for (i, d) in dx.iter_mut().enumerate() {
        *d = dout[i / t] * w[i];
    }
}

/// Σ x² (f64 accumulation, so the clip factor does not depend on summation order).
pub fn sum_squares(x: &[f32]) -> f64 {
    x.iter().map(|&v| v as f64 * v as f64).sum()
}

/// One AdamW step with bias correction and decoupled weight decay (as torch.optim.AdamW), on the gradient
/// times `grad_scale` (the global-norm clip factor).
pub fn adamw(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], h: &AdamwStep) {
    let bc1 = 1.0 - h.beta1.powi(h.step as i32);
    let bc2 = 1.0 - h.beta2.powi(h.step as i32);
    for i in 0..p.len() {
        let gi = g[i] * h.grad_scale;
        m[i] = h.beta1 * m[i] + (1.0 - h.beta1) * gi;
        v[i] = h.beta2 * v[i] + (1.0 - h.beta2) * gi * gi;
        p[i] -= h.lr * h.weight_decay * p[i];
        p[i] -= h.lr * (m[i] / bc1) / ((v[i] / bc2).sqrt() + h.eps);
    }
}

/// The scalars of one AdamW update of one tensor.
#[derive(Clone, Copy, Debug)]
pub struct AdamwStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// 1-based step count, for bias correction.
    pub step: u32,
    pub grad_scale: f32,
}

/// out[b] = wte[tokens[b, pos]] + wpe[pos] — the embedding of one position while decoding.
pub fn embed_position(out: &mut [f32], tokens: &[u32], wte: &[f32], wpe: &[f32], context: usize, pos: usize) {
    let c = wpe.len() / context;
    for (b, o) in out.chunks_exact_mut(c).enumerate() {
        let tok = tokens[b * context + pos] as usize;
        for i in 0..c {
            o[i] = wte[tok * c + i] + wpe[pos * c + i];
        }
    }
}

/// Stores this position's k and v into the caches ([B,H,context,D]) and attends over positions 0..=pos.
/// Where a decoding step attends: H heads of D, caches of `context` positions, the current position.
#[derive(Clone, Copy, Debug)]
pub struct CachePosition {
    pub h: usize,
    pub d: usize,
    pub context: usize,
    pub pos: usize,
}

pub fn cached_attention(kc: &mut [f32], vc: &mut [f32], out: &mut [f32], qkv: &[f32], at: CachePosition) {
    let CachePosition { h, d, context, pos } = at;
    let c = h * d;
    let scale = 1.0 / (d as f32).sqrt();
    let b_count = out.len() / c;
    let mut scores = vec![0.0; pos + 1];
    for b in 0..b_count {
        let row = &qkv[b * 3 * c..][..3 * c];
        for hh in 0..h {
            let cache = (b * h + hh) * context * d;
            kc[cache + pos * d..][..d].copy_from_slice(&row[c + hh * d..][..d]);
            vc[cache + pos * d..][..d].copy_from_slice(&row[2 * c + hh * d..][..d]);
            let q = &row[hh * d..][..d];
            for (j, s) in scores.iter_mut().enumerate() {
                *s = (0..d).map(|i| q[i] * kc[cache + j * d + i]).sum();
            }
            // as causal_softmax_forward: exp((s − max)·scale)
            let m = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut total = 0.0;
            for s in scores.iter_mut() {
                *s = ((*s - m) * scale).exp();
                total += *s;
            }
            let o = &mut out[b * c + hh * d..][..d];
            o.iter_mut().for_each(|v| *v = 0.0);
            for (j, s) in scores.iter().enumerate() {
                let w = s / total;
                for i in 0..d {
                    o[i] += w * vc[cache + j * d + i];
                }
            }
        }
    }
}

/// See `Op::SampleNext`. The draw inverts the CDF of softmax(logits/temperature) at u ~ U[0,1).
/// One decoding draw's settings (the scalars of `Op::SampleNext`).
#[derive(Clone, Copy, Debug)]
pub struct SampleStep {
    pub v: usize,
    pub context: usize,
    pub pos: usize,
    pub temperature: f32,
    pub seed: u32,
    pub stream: u32,
    pub eos: u32,
    pub pad: u32,
}

pub fn sample_next(tokens: &mut [u32], done: &mut [f32], logprobs: &mut [f32], logits: &[f32], step: &SampleStep) {
    let SampleStep { v, context, pos, temperature, seed, stream, eos, pad } = *step;
    for (b, row) in logits.chunks_exact(v).enumerate() {
        let slot = b * context + pos + 1;
        if done[b] != 0.0 {
            tokens[slot] = pad;
            logprobs[slot] = 0.0;
            continue;
        }
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = m + row.iter().map(|x| (x - m).exp()).sum::<f32>().ln();
        let tok = if temperature == 0.0 {
            // first maximum
            row.iter().enumerate().fold(0, |best, (j, &x)| if x > row[best] { j } else { best })
        } else {
            let total: f32 = row.iter().map(|x| ((x - m) / temperature).exp()).sum();
            let target = crate::rng::uniform(seed, stream, b as u32, pos as u32) * total;
            let mut acc = 0.0;
            let mut pick = v - 1;
            for (j, x) in row.iter().enumerate() {
                acc += ((x - m) / temperature).exp();
                if target < acc {
                    pick = j;
                    break;
                }
            }
            pick
        };
        tokens[slot] = tok as u32;
        logprobs[slot] = row[tok] - lse;
        if tok as u32 == eos {
            done[b] = 1.0;
        }
    }
}

/// Token ids travel in f32 slots as u32 bit patterns (see `Engine::indices`).
fn ids(x: &[f32]) -> &[u32] {
    bytemuck::cast_slice(x)
}

/// Dispatches an op whose lengths `Op::check` has verified. Inputs and outputs in `Op`'s documented order.
pub fn run(op: &Op, i: &[&[f32]], o: &mut [&mut [f32]]) {
    match *op {
        Op::Matmul(spec) => matmul(i[0], i[1], o[0], spec),
        Op::SoftmaxRows { cols, .. } => softmax_rows(i[0], o[0], cols),
        Op::EmbedForward { t, c, .. } => embed_forward(o[0], ids(i[0]), i[1], i[2], t, c),
        Op::EmbedBackward { t, c, .. } => {
            let [dwte, dwpe] = o else { unreachable!() };
            embed_backward(dwte, dwpe, i[0], ids(i[1]), t, c)
        }
        Op::LayernormForward { c, .. } => {
            let [out, mean, rstd] = o else { unreachable!() };
            layernorm_forward(out, mean, rstd, i[0], i[1], i[2], c)
        }
        Op::LayernormBackward { c, .. } => {
            let [dx, dw, db] = o else { unreachable!() };
            layernorm_backward((dx, dw, db), i[0], i[1], i[2], (i[3], i[4]), c)
        }
        Op::AddBias { .. } => add_bias(o[0], i[0]),
        Op::BiasBackward { .. } => bias_backward(o[0], i[0]),
        Op::Zero { .. } => o[0].iter_mut().for_each(|v| *v = 0.0),
        Op::Add { .. } => add(o[0], i[0], i[1]),
        Op::AddInto { .. } => add_into(o[0], i[0]),
        Op::GeluForward { .. } => gelu_forward(o[0], i[0]),
        Op::GeluBackward { .. } => gelu_backward(o[0], i[0], i[1]),
        Op::SplitHeads { t, h, d, .. } => {
            let [q, k, v] = o else { unreachable!() };
            split_heads(q, k, v, i[0], t, h, d)
        }
        Op::MergeHeadsQkv { t, h, d, .. } => merge_heads_qkv(o[0], i[0], i[1], i[2], t, h, d),
        Op::HeadsToRows { t, h, d, .. } => permute_heads(o[0], i[0], t, h, d, true),
        Op::RowsToHeads { t, h, d, .. } => permute_heads(o[0], i[0], t, h, d, false),
        Op::CausalSoftmaxForward { t, scale, .. } => causal_softmax_forward(o[0], i[0], t, scale),
        Op::CausalSoftmaxBackward { t, scale, .. } => causal_softmax_backward(o[0], i[0], i[1], t, scale),
        Op::TokenLogprobs { v, .. } => token_logprobs(o[0], i[0], ids(i[1]), v),
        Op::TokenLogprobsBackward { v, .. } => token_logprobs_backward(o[0], i[0], i[1], ids(i[2]), v),
        Op::TokenKl { v, .. } => token_kl(o[0], i[0], i[1], v),
        Op::ScoreHead { t, .. } => score_head(o[0], i[0], ids(i[1]), i[2], t),
        Op::ScoreHeadBackward { t, .. } => {
            let [dlnf, dw] = o else { unreachable!() };
            score_head_backward(dlnf, dw, i[0], i[1], ids(i[2]), i[3], t)
        }
        Op::WeightedRowSum { t, .. } => weighted_row_sum(o[0], i[0], i[1], t),
        Op::WeightedRowSumBackward { t, .. } => weighted_row_sum_backward(o[0], i[0], i[1], t),
        Op::EmbedPosition { context, pos, .. } => embed_position(o[0], ids(i[0]), i[1], i[2], context, pos),
        Op::CachedAttention { h, d, context, pos, .. } => {
            let [kc, vc, out] = o else { unreachable!() };
            cached_attention(kc, vc, out, i[0], CachePosition { h, d, context, pos })
        }
        Op::SampleNext { v, context, pos, temperature, seed, stream, eos, pad, .. } => {
            let [tokens, done, logprobs] = o else { unreachable!() };
            let step = SampleStep { v, context, pos, temperature, seed, stream, eos, pad };
            sample_next(bytemuck::cast_slice_mut(tokens), done, logprobs, i[0], &step)
        }
        Op::SumSquares { slot, .. } => o[0][slot] = sum_squares(i[0]) as f32,
        Op::Adamw { step, .. } => {
            let [p, m, v] = o else { unreachable!() };
            adamw(p, i[0], m, v, &step)
        }
    }
}
