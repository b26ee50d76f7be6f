//! Figure 1 (PAPER.md): golden win rate against KL for online and offline IPO, every checkpoint of every
//! setting, from one config. Per seed: SFT → D_golden → proxy PM → for each (β, lr): online IPO with proxy
//! labels, offline IPO on D_golden, and (optionally) online IPO with golden labels as the reference.
//! Online and offline share the loss, β, lr, batch and steps.

use crate::bail;
use crate::bench::now_ms;
use crate::engine::Engine;
use crate::error::Result;
use crate::model::{Gpt, GptConfig};
use crate::task::TaskConfig;
use crate::train::align::{align, AlignConfig, Checkpoint, EvalSet, Source};
use crate::train::data::golden_pairs;
use crate::train::eval::sample_responses;
use crate::train::losses::Loss;
use crate::train::optim::AdamwConfig;
use crate::train::pm::{train_pm, PmConfig};
use crate::train::sft::{train_sft, SftConfig};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSize {
    pub layers: usize,
    pub d_model: usize,
    pub heads: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fig1Config {
    pub task: TaskConfig,
    pub policy: ModelSize,
    pub sft: SftConfig,
    /// Pairs in D_golden, and held-out pairs (proxy early stopping, classifier accuracy).
    pub d_golden: usize,
    pub heldout: usize,
    pub proxy: PmConfig,
    pub loss: Loss,
    pub betas: Vec<f32>,
    pub lrs: Vec<f32>,
    /// Steps of each online run.
    pub steps: u32,
    /// Steps of the offline runs, one run per value (the paper sweeps offline over steps too; offline moves
    /// less in KL per step, so it needs longer runs to cover the same KL range).
    pub offline_steps: Vec<u32>,
    pub batch: usize,
    pub eval_every: u32,
    pub win_prompts: usize,
    pub kl_prompts: usize,
    pub seeds: Vec<u32>,
    /// Also run online IPO with golden labels (the paper's "golden policy").
    pub golden_reference: bool,
}

pub const PRESETS: [&str; 2] = ["fig1", "fig1-tiny"];

impl Fig1Config {
    pub fn preset(name: &str) -> Result<Self> {
        let full = Fig1Config {
            task: TaskConfig::default(),
            policy: ModelSize { layers: 2, d_model: 64, heads: 4 },
            sft: SftConfig { steps: 3000, batch: 64, ..SftConfig::default() },
            d_golden: 65_536,
            heldout: 2048,
            proxy: PmConfig { steps: 4000, batch: 64, eval_every: 250, ..PmConfig::default() },
            loss: Loss::Ipo,
            betas: vec![0.03, 0.1, 0.5],
            lrs: vec![5e-4],
            steps: 800,
            offline_steps: vec![800, 3200],
            batch: 64,
            eval_every: 50,
            win_prompts: 512,
            kl_prompts: 256,
            seeds: vec![0, 1, 2],
            golden_reference: true,
        };
        match name {
            "fig1" => Ok(full),
            "fig1-tiny" => Ok(Fig1Config {
                policy: ModelSize { layers: 1, d_model: 32, heads: 2 },
                sft: SftConfig { steps: 60, batch: 32, ..SftConfig::default() },
                d_golden: 256,
                heldout: 64,
                proxy: PmConfig { steps: 30, batch: 32, eval_every: 15, ..PmConfig::default() },
                betas: vec![0.1],
                steps: 12,
                offline_steps: vec![12],
                batch: 16,
                eval_every: 6,
                win_prompts: 64,
                kl_prompts: 32,
                seeds: vec![0],
                ..full
            }),
            other => bail!("preset '{other}' is not one of {}", PRESETS.join(", ")),
        }
    }

    pub fn validate(&self) -> Result<()> {
        self.task.validate()?;
        let ranges: [(&str, usize, usize, usize); 10] = [
            ("policy.layers", self.policy.layers, 1, 12),
            ("policy.d_model", self.policy.d_model, 8, 1024),
            ("policy.heads", self.policy.heads, 1, 16),
            ("d_golden", self.d_golden, self.proxy.batch.max(self.batch), 1 << 20),
            ("heldout", self.heldout, 16, 1 << 16),
            ("batch", self.batch, 1, 1024),
            ("win_prompts", self.win_prompts, 16, 1 << 16),
            ("kl_prompts", self.kl_prompts, 8, 1 << 16),
            ("steps", self.steps as usize, 1, 1 << 20),
            ("eval_every", self.eval_every as usize, 1, 1 << 20),
        ];
        for (name, v, lo, hi) in ranges {
            if v < lo || v > hi {
                bail!("{name} = {v} is out of range {lo}..={hi}");
            }
        }
        if self.policy.d_model % self.policy.heads != 0 {
            bail!("policy.d_model = {} must be divisible by policy.heads = {}", self.policy.d_model, self.policy.heads);
        }
        if self.seeds.is_empty() || self.betas.is_empty() || self.lrs.is_empty() || self.offline_steps.is_empty() {
            bail!("seeds, betas, lrs and offline_steps must each hold at least one value");
        }
        if let Some(s) = self.offline_steps.iter().find(|s| **s == 0 || **s > 1 << 20) {
            bail!("offline_steps: {s} is out of range 1..={}", 1 << 20);
        }
        if let Some(b) = self.betas.iter().find(|b| !(**b > 0.0 && **b <= 100.0)) {
            bail!("betas: {b} is out of range (0, 100]");
        }
        if let Some(l) = self.lrs.iter().find(|l| !(**l > 0.0 && **l <= 1.0)) {
            bail!("lrs: {l} is out of range (0, 1]");
        }
        Ok(())
    }

    pub fn model_config(&self) -> GptConfig {
        GptConfig { n_layer: self.policy.layers, n_embd: self.policy.d_model, n_head: self.policy.heads, n_positions: self.task.context(), vocab_size: self.task.vocab_size() }
    }
}

/// One checkpoint of one run, as results.json and metrics.csv hold it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Row {
    pub method: String,
    pub seed: u32,
    pub beta: f32,
    pub lr: f32,
    /// Length of the run this checkpoint belongs to.
    pub run_steps: u32,
    #[serde(flatten)]
    pub checkpoint: Checkpoint,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ProxyReport {
    pub seed: u32,
    pub heldout_accuracy: f32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Fig1Results {
    pub config: Fig1Config,
    pub backend: String,
    pub checkpoints: Vec<Row>,
    pub proxy: Vec<ProxyReport>,
    pub sft_loss: Vec<(u32, Vec<f32>)>,
    /// Seconds per stage, summed over seeds.
    pub timings: Vec<(String, f64)>,
}

/// What the pipeline reports as it goes: (stage, step, total) and each finished checkpoint.
pub enum Progress<'a> {
    Stage { name: String, step: u64, total: u64 },
    Checkpoint(&'a Row),
}

/// Trained models of one seed, for saving.
pub struct SeedModels {
    pub seed: u32,
    pub sft: Gpt,
    pub proxy: Gpt,
    pub policies: Vec<(String, Gpt)>,
}

pub async fn run(e: &Engine, cfg: &Fig1Config, mut progress: impl FnMut(Progress), mut keep: impl FnMut(SeedModels) -> Result<()>) -> Result<Fig1Results> {
    cfg.validate()?;
    let task = &cfg.task;
    let mut results = Fig1Results { config: cfg.clone(), backend: e.describe(), checkpoints: vec![], proxy: vec![], sft_loss: vec![], timings: vec![] };
    let mut timings: Vec<(String, f64)> = vec![];
    let mut time = |name: &str, ms: f64| match timings.iter_mut().find(|(n, _)| n == name) {
        Some((_, t)) => *t += ms / 1e3,
        None => timings.push((name.to_string(), ms / 1e3)),
    };
    for &seed in &cfg.seeds {
        let t0 = now_ms();
        let mut losses = vec![];
        let sft = train_sft(e, task, cfg.model_config(), &cfg.sft, seed, |s, l| {
            losses.push(l);
            progress(Progress::Stage { name: format!("seed {seed}: SFT"), step: s as u64 + 1, total: cfg.sft.steps as u64 });
        })
        .await?;
        results.sft_loss.push((seed, losses));
        time("sft", now_ms() - t0);

        let t0 = now_ms();
        progress(Progress::Stage { name: format!("seed {seed}: D_golden"), step: 0, total: 1 });
        let d_golden = golden_pairs(e, task, &sft, cfg.d_golden, seed, 0xD0_0000, 512).await?;
        let heldout = golden_pairs(e, task, &sft, cfg.heldout, seed, 0xD1_0000, 512).await?;
        progress(Progress::Stage { name: format!("seed {seed}: D_golden"), step: 1, total: 1 });
        time("d_golden", now_ms() - t0);

        let t0 = now_ms();
        let (proxy, accuracy) = train_pm(e, task, &sft, &d_golden, &heldout, &cfg.proxy, seed, |s, _, _| {
            progress(Progress::Stage { name: format!("seed {seed}: proxy PM"), step: s as u64, total: cfg.proxy.steps as u64 });
        })
        .await?;
        results.proxy.push(ProxyReport { seed, heldout_accuracy: accuracy });
        time("proxy", now_ms() - t0);

        // Fixed evaluation data: the same prompts and SFT baseline for every run of this seed.
        let win: Vec<Vec<u32>> = (0..cfg.win_prompts as u32).map(|i| task.prompt(seed, 0xE1_0000, i)).collect();
        let baseline = sample_responses(e, &sft, task, &win, seed, 0xE2_0000).await?;
        let eval = EvalSet { win_prompts: win, baseline, kl_prompts: (0..cfg.kl_prompts as u32).map(|i| task.prompt(seed, 0xE3_0000, i)).collect(), heldout, seed };

        let mut policies = vec![];
        for &beta in &cfg.betas {
            for &lr in &cfg.lrs {
                let run_cfg = AlignConfig { loss: cfg.loss, beta, adamw: AdamwConfig { lr, ..AdamwConfig::default() }, steps: cfg.steps, batch: cfg.batch, eval_every: cfg.eval_every };
                let mut methods = vec![("online", Source::OnlineProxy(&proxy), cfg.steps)];
                methods.extend(cfg.offline_steps.iter().map(|&s| ("offline", Source::Offline(&d_golden), s)));
                if cfg.golden_reference {
                    methods.push(("online_golden", Source::OnlineGolden, cfg.steps));
                }
                for (method, source, steps) in methods {
                    let t0 = now_ms();
                    let name = format!("seed {seed}: {method} β={beta} lr={lr} ({steps} steps)");
                    let run_cfg = AlignConfig { steps, ..run_cfg.clone() };
                    let mut rows = vec![];
                    let (policy, _, _) = align(e, task, &sft, source, &run_cfg, &eval, seed, |c| {
                        let row = Row { method: method.into(), seed, beta, lr, run_steps: steps, checkpoint: c.clone() };
                        progress(Progress::Stage { name: name.clone(), step: c.step as u64, total: steps as u64 });
                        progress(Progress::Checkpoint(&row));
                        rows.push(row);
                    })
                    .await?;
                    results.checkpoints.extend(rows);
                    policies.push((format!("{method}_beta{beta}_lr{lr}_steps{steps}"), policy));
                    time(method, now_ms() - t0);
                }
            }
        }
        keep(SeedModels { seed, sft, proxy, policies })?;
    }
    results.timings = timings;
    Ok(results)
}
