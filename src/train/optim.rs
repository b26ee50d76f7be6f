//! AdamW with global-norm gradient clipping and a warm-up/cosine learning-rate schedule, matching
//! torch.optim.AdamW + torch.nn.utils.clip_grad_norm_ (the PyTorch fixture test checks the trajectory).

use crate::engine::kernels::adamw::AdamwStep;
use crate::engine::{Engine, Op, Packed, Tensor};
use crate::error::Result;
use crate::model::params::{segments, DECAY_SEGMENT};
use crate::model::ParamInfo;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamwConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// Clip the global gradient norm to this (None: no clipping).
    pub max_grad_norm: Option<f32>,
}

impl AdamwConfig {
    /// Every field against its range, each error naming it under `prefix` (e.g. `sft.adamw`).
    pub fn validate(&self, prefix: &str) -> Result<()> {
        use crate::limits::{real, Interval};
        let a = self;
        real(&format!("{prefix}.lr"), a.lr, Interval::above(0.0, 1.0), "a step as large as the weights themselves diverges at once")?;
        real(&format!("{prefix}.beta1"), a.beta1, Interval::below(0.0, 1.0), "a moving-average factor; 1 or more never forgets, or amplifies, old gradients")?;
        real(&format!("{prefix}.beta2"), a.beta2, Interval::below(0.0, 1.0), "a moving-average factor; 1 or more never forgets, or amplifies, old gradients")?;
        real(&format!("{prefix}.eps"), a.eps, Interval::closed(1e-12, 1e-2), "it keeps the update finite where a gradient vanishes; large values stall learning")?;
        real(&format!("{prefix}.weight_decay"), a.weight_decay, Interval::closed(0.0, 1.0), "weights shrink by lr·weight_decay per step; negative values grow them")?;
        if let Some(m) = a.max_grad_norm {
            real(&format!("{prefix}.max_grad_norm"), m, Interval::above(0.0, 1e6), "the global gradient norm is clipped to it; 0 would stop learning (null turns clipping off)")?;
        }
        Ok(())
    }
}

impl Default for AdamwConfig {
    fn default() -> Self {
        AdamwConfig { lr: 3e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, max_grad_norm: Some(1.0) }
    }
}

/// Linear warm-up over `warmup_steps`, then cosine decay to `min_lr_ratio`·lr at `total_steps`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub warmup_steps: u32,
    pub total_steps: u32,
    pub min_lr_ratio: f32,
}

impl Schedule {
    pub fn constant() -> Self {
        Schedule { warmup_steps: 0, total_steps: 0, min_lr_ratio: 1.0 }
    }

    /// The multiplier of the base lr at (1-based) `step`.
    pub fn factor(&self, step: u32) -> f32 {
        if step <= self.warmup_steps {
            return step as f32 / self.warmup_steps.max(1) as f32;
        }
        if self.total_steps <= self.warmup_steps {
            return 1.0;
        }
        let progress = ((step - self.warmup_steps) as f32 / (self.total_steps - self.warmup_steps) as f32).min(1.0);
        self.min_lr_ratio + (1.0 - self.min_lr_ratio) * 0.5 * (1.0 + (std::f32::consts::PI * progress).cos())
    }
}

pub struct AdamW {
    pub config: AdamwConfig,
    pub schedule: Schedule,
    /// First and second moments, packed like the parameters.
    m: Packed,
    v: Packed,
    /// Σ g² of each gradient tensor (or segment), filled on the device.
    squared_norms: Tensor,
    /// [clip factor, ‖g‖] of the last step, computed on the device from `squared_norms` and read there by the
    /// update: a step reads nothing back.
    clip: Tensor,
    /// Steps taken so far.
    pub step: u32,
}

/// What one optimiser step did.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct StepStats {
    pub grad_norm: f32,
    pub lr: f32,
}

impl AdamW {
    pub fn new(engine: &Engine, infos: &[ParamInfo], config: AdamwConfig, schedule: Schedule) -> Self {
        let lens: Vec<usize> = infos.iter().map(|i| i.len()).collect();
        let z = || engine.pack_zeros(&lens, &segments(infos));
        AdamW { config, schedule, m: z(), v: z(), squared_norms: engine.zeros(infos.len()), clip: engine.zeros(2), step: 0 }
    }

    /// The first and second moments of every parameter tensor, read back (what resuming a run needs beside the
    /// parameters and [`AdamW::step`]).
    pub async fn moments(&self, e: &Engine) -> Result<(Vec<Vec<f32>>, Vec<Vec<f32>>)> {
        let (mut m, mut v) = (Vec::with_capacity(self.m.len()), Vec::with_capacity(self.v.len()));
        for (a, b) in self.m.iter().zip(self.v.iter()) {
            m.push(e.read(a).await?);
            v.push(e.read(b).await?);
        }
        Ok((m, v))
    }

    /// Puts back the moments [`AdamW::moments`] read after `step` steps; refuses moments of another shape.
    pub fn restore(&mut self, e: &Engine, m: &[Vec<f32>], v: &[Vec<f32>], step: u32) -> Result<()> {
        let shapes: Vec<usize> = self.m.iter().map(|t| t.len()).collect();
        for (name, x) in [("first", m), ("second", v)] {
            if x.iter().map(|t| t.len()).collect::<Vec<_>>() != shapes {
                crate::bail!("the optimiser's saved {name} moments do not fit this model ({} tensors)", x.len());
            }
        }
        let pack = |x: &[Vec<f32>]| e.pack(&x.iter().map(|t| t.as_slice()).collect::<Vec<_>>(), &self.m.segment_of);
        (self.m, self.v) = (pack(m), pack(v));
        self.step = step;
        Ok(())
    }

    /// One update of `params` from `grads`, recorded and not waited for: the gradient norm and its clip factor
    /// are computed on the device ([`AdamW::last_stats`] reads them back when wanted). Σg² and AdamW run once per
    /// unit of the packs (a segment where all four are packed alike on the GPU, else a tensor); each element's
    /// update is the same either way.
    pub fn step(&mut self, e: &Engine, params: &Packed, grads: &Packed) -> Result<()> {
        let sets = [params, grads, &self.m, &self.v];
        let layout = |u: &[(usize, &Tensor)]| u.iter().map(|(s, t)| (*s, t.len())).collect::<Vec<_>>();
        let mut units = sets.map(|p| p.units());
        if units.iter().any(|u| layout(u) != layout(&units[0])) {
            // Not all packed alike (e.g. tensors uploaded apart): tensor by tensor.
            units = sets.map(|p| p.part_units());
        }
        let slots = self.squared_norms.len();
        for (slot, (_, g)) in units[1].iter().enumerate() {
            e.run(Op::SumSquares { len: g.len(), slot, slots }, &[g], &[&self.squared_norms])?;
        }
        // The slots past the units' stay 0 (a pack's units are the same every step), so all of them sum to ‖g‖².
        e.run(Op::ClipScale { slots, max_norm: self.config.max_grad_norm }, &[&self.squared_norms], &[&self.clip])?;
        self.step += 1;
        let c = self.config;
        let lr = c.lr * self.schedule.factor(self.step);
        for i in 0..units[0].len() {
            let [(segment, p), (_, g), (_, m), (_, v)] = units.each_ref().map(|u| u[i]);
            let step = AdamwStep {
                lr,
                beta1: c.beta1,
                beta2: c.beta2,
                eps: c.eps,
                weight_decay: if segment == DECAY_SEGMENT { c.weight_decay } else { 0.0 },
                step: self.step,
            };
            e.run(Op::Adamw { len: g.len(), step }, &[g, &self.clip], &[p, m, v])?;
        }
        Ok(())
    }

    /// The last step's gradient norm (before clipping) and learning rate; reads the norm back.
    pub async fn last_stats(&self, e: &Engine) -> Result<StepStats> {
        let grad_norm = e.read(&self.clip).await?[1];
        Ok(StepStats { grad_norm, lr: self.config.lr * self.schedule.factor(self.step) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adamw_settings_are_refused_by_name() {
        let bad = AdamwConfig { eps: 0.0, ..AdamwConfig::default() };
        assert!(bad.validate("sft.adamw").unwrap_err().message.starts_with("sft.adamw.eps = 0 is out of range"));
        assert!(AdamwConfig::default().validate("sft.adamw").is_ok());
    }
}
