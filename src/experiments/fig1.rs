//! Figure 1 (PAPER.md): golden win rate against KL for online and offline IPO, every checkpoint of every
//! setting, from one config. Per seed: SFT → D_golden → proxy PM → for each (β, lr): online IPO with proxy
//! labels, offline IPO on D_golden, and (optionally) online IPO with golden labels as the reference.
//! Online and offline share the loss, β, lr, batch and steps.

use crate::bail;
use crate::bench::now_ms;
use crate::engine::Engine;
use crate::error::Result;
use crate::model::{Gpt, GptConfig, Head};

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

pub const PRESETS: [&str; 3] = ["fig1", "fig1-quick", "fig1-tiny"];

/// What each preset is for, in a line (the CLI's help and the page's preset picker).
pub fn preset_description(name: &str) -> &'static str {
    match name {
        "fig1" => "The full figure: 3 seeds, two values of β, online, offline and golden-labelled IPO; about 25 min on 2 CPU cores.",
        "fig1-quick" => "One seed, two values of β, a smaller D_golden and proxy: the weaker proxy (≈ 0.79) is over-optimised by online IPO — the figure's other regime, in a fraction of the time.",
        "fig1-tiny" => "A smoke test: a tiny model and a few steps of every stage, to see the pipeline work end to end.",
        _ => "",
    }
}

impl Fig1Config {
    pub fn preset(name: &str) -> Result<Self> {
        // The setting chosen by the search in results/fig1/SEARCH.md (seeds 100, 101), confirmed on 0, 1, 2.
        let full = Fig1Config {
            task: TaskConfig::default(),
            policy: ModelSize { layers: 2, d_model: 64, heads: 4 },
            sft: SftConfig { steps: 1500, batch: 64, ..SftConfig::default() },
            d_golden: 65_536,
            heldout: 1024,
            proxy: PmConfig { steps: 3000, batch: 64, eval_every: 250, ..PmConfig::default() },
            loss: Loss::Ipo,
            betas: vec![0.01, 0.1],
            lrs: vec![5e-4],
            steps: 300,
            offline_steps: vec![300],
            batch: 64,
            eval_every: 30,
            win_prompts: 512,
            kl_prompts: 256,
            seeds: vec![0, 1, 2],
            golden_reference: true,
        };
        match name {
            "fig1" => Ok(full),
            "fig1-quick" => Ok(Fig1Config {
                sft: SftConfig { steps: 1000, batch: 64, ..SftConfig::default() },
                d_golden: 8192,
                heldout: 512,
                proxy: PmConfig { steps: 800, batch: 64, eval_every: 200, ..PmConfig::default() },
                steps: 200,
                offline_steps: vec![200],
                eval_every: 25,
                seeds: vec![0],
                golden_reference: false,
                ..full.clone()
            }),
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

    /// Every setting against its range (each with its reason), then the settings that constrain each
    /// other; the error names the key at fault. Runs before anything is trained.
    pub fn validate(&self) -> Result<()> {
        use crate::limits::{adamw, int, list, real, Interval};
        const MAX_STEPS: u64 = 1 << 20;
        self.task.validate()?;
        let p = &self.policy;
        int("policy.layers", p.layers as u64, 1, 12, "GPT-2 small's depth; deeper models do not fit a browser tab's memory")?;
        int("policy.d_model", p.d_model as u64, 8, 1024, "a width of at least 8, at most GPT-2 medium's")?;
        int("policy.heads", p.heads as u64, 1, 16, "attention heads; each needs d_model / heads ≥ 1 dimensions")?;
        if p.d_model % p.heads != 0 {
            bail!("policy.d_model = {} must be divisible by policy.heads = {} (each head gets d_model / heads dimensions)", p.d_model, p.heads);
        }
        int("sft.steps", self.sft.steps as u64, 1, MAX_STEPS, "SFT needs at least one step; every alignment run starts from its policy")?;
        int("sft.batch", self.sft.batch as u64, 1, 1024, "sequences per step; memory grows with it")?;
        int("sft.warmup_steps", self.sft.warmup_steps as u64, 0, self.sft.steps as u64, "a warm-up longer than sft.steps never reaches the learning rate")?;
        adamw("sft.adamw", &self.sft.adamw)?;
        int("proxy.steps", self.proxy.steps as u64, 1, MAX_STEPS, "the proxy needs at least one step to be more than its initialisation")?;
        int("proxy.batch", self.proxy.batch as u64, 1, 1024, "pairs per step, each scored in both orders; memory grows with it")?;
        int("proxy.eval_every", self.proxy.eval_every as u64, 1, self.proxy.steps as u64, "held-out accuracy is measured every this many steps and the best model kept; at most proxy.steps")?;
        adamw("proxy.adamw", &self.proxy.adamw)?;
        int("batch", self.batch as u64, 1, 1024, "pairs per alignment step; memory grows with it")?;
        int("steps", self.steps as u64, 1, MAX_STEPS, "steps of each online run")?;
        int("eval_every", self.eval_every as u64, 1, MAX_STEPS, "a checkpoint every this many alignment steps (and at the first and last)")?;
        int("heldout", self.heldout as u64, 16, 1 << 16, "held-out golden pairs for the proxy's early stopping and classifier accuracy; fewer make them noise")?;
        int("win_prompts", self.win_prompts as u64, 16, 1 << 16, "prompts per golden win-rate estimate; fewer make it noise")?;
        int("kl_prompts", self.kl_prompts as u64, 8, 1 << 16, "prompts per KL estimate; fewer make it noise")?;
        let need = self.proxy.batch.max(self.batch);
        int("d_golden", self.d_golden as u64, need as u64, 1 << 20, "one batch of distinct pairs for the proxy (proxy.batch) and for offline IPO (batch)")?;
        list("seeds", &self.seeds, 64, "independent replicates", |_, _| Ok(()))?;
        for (i, s) in self.seeds.iter().enumerate() {
            if self.seeds[..i].contains(s) {
                bail!("seeds: {s} appears twice (each seed is one independent replicate; a repeat would duplicate its rows)");
            }
        }
        list("betas", &self.betas, 32, "one run per value", |k, b| real(k, b, Interval::above(0.0, 100.0), "IPO's target margin is 1/(2β); β = 0 has none"))?;
        list("lrs", &self.lrs, 32, "one run per value", |k, l| real(k, l, Interval::above(0.0, 1.0), "a step as large as the weights themselves diverges at once"))?;
        list("offline_steps", &self.offline_steps, 32, "one offline run per value", |k, s| int(k, s as u64, 1, MAX_STEPS, "steps of an offline run"))?;
        Ok(())
    }

    /// Seconds this config should take on a device whose S-size bench (`crate::bench`) measured
    /// `train_step_ms` per training step and `sample_tokens_per_s`: a count of the work in each stage,
    /// scaled from the bench's shape. An estimate (attention and the vocabulary are not in the scaling).
    pub fn estimate_seconds(&self, train_step_ms: f64, sample_tokens_per_s: f64) -> f64 {
        use crate::bench::{BATCH, CONTEXT};
        let (t, y) = (self.task.context() as f64, self.task.max_summary as f64);
        let pm_t = crate::train::pm::pm_context(&self.task) as f64;
        let scale = (self.policy.layers * self.policy.d_model * self.policy.d_model) as f64 / (2.0 * 64.0 * 64.0);
        // ms per token of forward + backward + update; a forward alone is about a third of it.
        let fb = train_step_ms / (BATCH * CONTEXT) as f64 * scale;
        let fwd = fb / 3.0;
        let sample = 1e3 / sample_tokens_per_s.max(1e-9) * scale;
        let b = self.batch as f64;
        let sft = self.sft.steps as f64 * self.sft.batch as f64 * t * fb;
        let d_golden = 2.0 * (self.d_golden + self.heldout) as f64 * y * sample;
        let heldout_acc = 4.0 * self.heldout as f64 * pm_t * fwd;
        let proxy = self.proxy.steps as f64 * 2.0 * self.proxy.batch as f64 * pm_t * fb + (self.proxy.steps / self.proxy.eval_every.max(1)) as f64 * heldout_acc;
        let eval = (self.win_prompts + self.kl_prompts) as f64 * y * sample + self.kl_prompts as f64 * t * 2.0 * fwd + 2.0 * self.heldout as f64 * t * fwd + 4.0 * self.win_prompts as f64 * pm_t * fwd;
        let evals = |steps: u32| (steps / self.eval_every + 2) as f64 * eval;
        let offline_step = 2.0 * b * t * (fb + fwd);
        let golden_step = 2.0 * b * y * sample + offline_step;
        let online_step = golden_step + 4.0 * b * pm_t * fwd;
        let steps = self.steps as f64;
        let mut runs = steps * online_step + evals(self.steps);
        runs += self.offline_steps.iter().map(|&s| s as f64 * offline_step + evals(s)).sum::<f64>();
        if self.golden_reference {
            runs += steps * golden_step + evals(self.steps);
        }
        let per_seed = sft + d_golden + proxy + (self.betas.len() * self.lrs.len()) as f64 * runs;
        per_seed * self.seeds.len() as f64 / 1e3
    }

    pub fn model_config(&self) -> GptConfig {
        GptConfig { n_layer: self.policy.layers, n_embd: self.policy.d_model, n_head: self.policy.heads, n_positions: self.task.context(), vocab_size: self.task.vocab_size() }
    }
}

/// One checkpoint of one run, as results.json and metrics.csv hold it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
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

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProxyReport {
    pub seed: u32,
    pub heldout_accuracy: f32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fig1Results {
    pub config: Fig1Config,
    pub backend: String,
    pub checkpoints: Vec<Row>,
    pub proxy: Vec<ProxyReport>,
    pub sft_loss: Vec<(u32, Vec<f32>)>,
    /// Seconds per stage, summed over seeds.
    pub timings: Vec<(String, f64)>,
    /// False in a results.json written while the run is under way (or after it failed): it then holds the
    /// checkpoints finished so far. Absent (true) in a finished one.
    #[serde(default = "finished", skip_serializing_if = "is_finished")]
    pub complete: bool,
}

fn finished() -> bool {
    true
}

fn is_finished(complete: &bool) -> bool {
    *complete
}

/// What the pipeline reports as it goes: (stage, step, total) and each finished checkpoint.
pub enum Progress<'a> {
    Stage { name: String, step: u64, total: u64 },
    SftLoss { seed: u32, step: u32, loss: f32 },
    ProxyEval { seed: u32, step: u32, loss: f32, heldout_accuracy: f32 },
    Checkpoint(&'a Row),
    /// A seed's SFT and proxy are ready (trained or from the cache): what results.json records of them.
    StagesReady { seed: u32, sft_loss: &'a [f32], heldout_accuracy: f32 },
}

/// Trained models of one seed, for saving.
pub struct SeedModels {
    pub seed: u32,
    pub sft: Gpt,
    pub proxy: Gpt,
    pub policies: Vec<(String, Gpt)>,
}

/// Everything one seed contributes to [`Fig1Results`].
pub struct SeedResults {
    pub seed: u32,
    pub checkpoints: Vec<Row>,
    pub proxy: ProxyReport,
    pub sft_loss: Vec<f32>,
    pub timings: Vec<(String, f64)>,
}

/// Trained stages (SFT, proxy) stored by the hash of everything that determines them, so that a sweep over
/// the alignment runs never redoes SFT or the proxy. `meta` carries what the stage reported (its loss
/// curve, its accuracy).
pub trait StageCache {
    fn get(&mut self, key: &str) -> Option<(GptConfig, Head, Vec<Vec<f32>>, serde_json::Value)>;
    fn put(&mut self, key: &str, model: &Gpt, values: &[Vec<f32>], meta: serde_json::Value) -> Result<()>;
}

/// No caching (the page, the tests).
pub struct NoCache;

impl StageCache for NoCache {
    fn get(&mut self, _: &str) -> Option<(GptConfig, Head, Vec<Vec<f32>>, serde_json::Value)> {
        None
    }
    fn put(&mut self, _: &str, _: &Gpt, _: &[Vec<f32>], _: serde_json::Value) -> Result<()> {
        Ok(())
    }
}

/// 64-bit FNV-1a of a JSON value's canonical text, as 16 hex digits: stable across runs and machines.
pub fn hash_json(v: &serde_json::Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in v.to_string().bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Cache keys of the SFT and proxy stages of one seed. The backend is part of the key: the CPU and GPU
/// backends agree to rounding, not bit for bit.
pub fn stage_keys(cfg: &Fig1Config, seed: u32, backend: &str) -> (String, String) {
    // How golden labels are drawn does not touch SFT, so a label-noise sweep reuses the SFT stage.
    let task = crate::task::TaskConfig { labels: crate::task::LabelNoise::Hard, ..cfg.task.clone() };
    let sft = serde_json::json!({"stage": "sft", "task": task, "policy": cfg.policy, "sft": cfg.sft, "seed": seed, "backend": backend, "version": 1});
    let sft_key = format!("sft-{}", hash_json(&sft));
    let proxy = serde_json::json!({"stage": "proxy", "sft": sft_key, "d_golden": cfg.d_golden, "heldout": cfg.heldout, "proxy": cfg.proxy, "version": 1});
    (sft_key.clone(), format!("proxy-{}", hash_json(&proxy)))
}

/// Cache key of one alignment run: everything that determines its checkpoints and policy (the SFT and
/// proxy keys, the evaluation sets' sizes, the run's own setting).
pub fn run_key(cfg: &Fig1Config, seed: u32, backend: &str, method: &str, beta: f32, lr: f32, steps: u32) -> String {
    let (sft, proxy) = stage_keys(cfg, seed, backend);
    let run = serde_json::json!({
        "stage": "run", "sft": sft, "proxy": proxy, "task": cfg.task, "d_golden": cfg.d_golden, "heldout": cfg.heldout,
        "loss": cfg.loss, "batch": cfg.batch, "eval_every": cfg.eval_every, "win_prompts": cfg.win_prompts,
        "kl_prompts": cfg.kl_prompts, "method": method, "beta": beta, "lr": lr, "steps": steps, "version": 1,
    });
    format!("run-{}", hash_json(&run))
}

/// Refuses a checkpoint with a non-finite metric, naming the run, the step and the metric: JSON would
/// write it as `null`, indistinguishable from "not measured".
pub fn check_finite(row: &Row) -> Result<()> {
    let c = &row.checkpoint;
    let r = &c.responses;
    let mut metrics = vec![
        ("kl", Some(c.kl)),
        ("golden_win_rate", Some(c.golden_win_rate)),
        ("ties", Some(c.ties)),
        ("classifier_accuracy", Some(c.classifier_accuracy)),
        ("proxy_win_rate", c.proxy_win_rate),
        ("train_loss", c.train_loss),
        ("responses.golden_reward", Some(r.golden_reward)),
        ("responses.length", Some(r.length)),
        ("responses.repeats", Some(r.repeats)),
        ("responses.hallucinations", Some(r.hallucinations)),
        ("responses.eos_rate", Some(r.eos_rate)),
    ];
    metrics.extend(c.samples.iter().flat_map(|s| [("samples.golden_reward", Some(s.golden_reward)), ("samples.baseline_golden_reward", Some(s.baseline_golden_reward))]));
    if let Some((name, v)) = metrics.into_iter().find_map(|(n, v)| v.filter(|v| !v.is_finite()).map(|v| (n, v))) {
        bail!("seed {} {} β={} lr={} step {}: {name} is not finite ({v}); the policy diverged (lower lrs)", row.seed, row.method, row.beta, row.lr, c.step);
    }
    Ok(())
}

/// Accumulates seconds per stage name.
fn add_time(timings: &mut Vec<(String, f64)>, name: &str, ms: f64) {
    match timings.iter_mut().find(|(n, _)| n == name) {
        Some((_, t)) => *t += ms / 1e3,
        None => timings.push((name.to_string(), ms / 1e3)),
    }
}

/// One seed of the figure: SFT → D_golden → proxy → every (β, lr) run. Seeds are independent, so callers may
/// run them in parallel and [`merge`] the results.
pub async fn run_seed(
    e: &Engine,
    cfg: &Fig1Config,
    seed: u32,
    cache: &mut dyn StageCache,
    mut progress: impl FnMut(Progress),
    mut keep: impl FnMut(SeedModels) -> Result<()>,
) -> Result<SeedResults> {
    cfg.validate()?;
    let task = &cfg.task;
    let mut timings: Vec<(String, f64)> = vec![];
    let (sft_key, proxy_key) = stage_keys(cfg, seed, &e.describe());

    let t0 = now_ms();
    let (sft, sft_loss) = match cache.get(&sft_key) {
        Some((config, head, values, meta)) => {
            progress(Progress::Stage { name: format!("seed {seed}: SFT (cached)"), step: 1, total: 1 });
            (Gpt::new(e, config, head, &values)?, serde_json::from_value(meta).unwrap_or_default())
        }
        None => {
            let mut losses = vec![];
            let sft = train_sft(e, task, cfg.model_config(), &cfg.sft, seed, |s, l| {
                losses.push(l);
                progress(Progress::Stage { name: format!("seed {seed}: SFT"), step: s as u64 + 1, total: cfg.sft.steps as u64 });
                progress(Progress::SftLoss { seed, step: s + 1, loss: l });
            })
            .await?;
            cache.put(&sft_key, &sft, &sft.values(e).await?, serde_json::json!(losses))?;
            (sft, losses)
        }
    };
    add_time(&mut timings, "sft", now_ms() - t0);

    let t0 = now_ms();
    progress(Progress::Stage { name: format!("seed {seed}: D_golden"), step: 0, total: 1 });
    let d_golden = golden_pairs(e, task, &sft, cfg.d_golden, seed, 0xD0_0000, 512).await?;
    let heldout = golden_pairs(e, task, &sft, cfg.heldout, seed, 0xD1_0000, 512).await?;
    progress(Progress::Stage { name: format!("seed {seed}: D_golden"), step: 1, total: 1 });
    add_time(&mut timings, "d_golden", now_ms() - t0);

    let t0 = now_ms();
    let (proxy, accuracy) = match cache.get(&proxy_key) {
        Some((config, head, values, meta)) => {
            progress(Progress::Stage { name: format!("seed {seed}: proxy PM (cached)"), step: 1, total: 1 });
            (Gpt::new(e, config, head, &values)?, meta.as_f64().unwrap_or(f64::NAN) as f32)
        }
        None => {
            let (proxy, accuracy) = train_pm(e, task, &sft, &d_golden, &heldout, &cfg.proxy, seed, |s, eval| {
                progress(Progress::Stage { name: format!("seed {seed}: proxy PM"), step: s as u64, total: cfg.proxy.steps as u64 });
                if let Some((loss, heldout_accuracy)) = eval {
                    progress(Progress::ProxyEval { seed, step: s, loss, heldout_accuracy });
                }
            })
            .await?;
            cache.put(&proxy_key, &proxy, &proxy.values(e).await?, serde_json::json!(accuracy))?;
            (proxy, accuracy)
        }
    };
    add_time(&mut timings, "proxy", now_ms() - t0);
    if !accuracy.is_finite() {
        bail!("seed {seed}: the proxy's held-out accuracy is not finite ({accuracy})");
    }
    progress(Progress::StagesReady { seed, sft_loss: &sft_loss, heldout_accuracy: accuracy });

    // Fixed evaluation data: the same prompts and SFT baseline for every run of this seed.
    let win: Vec<Vec<u32>> = (0..cfg.win_prompts as u32).map(|i| task.prompt(seed, 0xE1_0000, i)).collect();
    let baseline = sample_responses(e, &sft, task, &win, seed, 0xE2_0000).await?;
    let kl_prompts = (0..cfg.kl_prompts as u32).map(|i| task.prompt(seed, 0xE3_0000, i)).collect();
    let eval = EvalSet::new(e, &sft, task, win, baseline, kl_prompts, heldout, Some(&proxy), seed).await?;

    let mut checkpoints = vec![];
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
                let key = run_key(cfg, seed, &e.describe(), method, beta, lr, steps);
                let (policy, rows) = match cache.get(&key).and_then(|(config, head, values, meta)| Some((config, head, values, serde_json::from_value::<Vec<Row>>(meta).ok()?))) {
                    Some((config, head, values, rows)) => {
                        progress(Progress::Stage { name: format!("{name} (cached)"), step: steps as u64, total: steps as u64 });
                        for row in &rows {
                            check_finite(row)?;
                            progress(Progress::Checkpoint(row));
                        }
                        (Gpt::new(e, config, head, &values)?, rows)
                    }
                    None => {
                        let run_cfg = AlignConfig { steps, ..run_cfg.clone() };
                        let mut rows = vec![];
                        let mut bad = Ok(());
                        let (policy, _, _) = align(e, task, &sft, source, &run_cfg, &eval, seed, |c| {
                            let row = Row { method: method.into(), seed, beta, lr, run_steps: steps, checkpoint: c.clone() };
                            if bad.is_ok() {
                                bad = check_finite(&row);
                            }
                            if bad.is_ok() {
                                progress(Progress::Stage { name: name.clone(), step: c.step as u64, total: steps as u64 });
                                progress(Progress::Checkpoint(&row));
                            }
                            rows.push(row);
                        })
                        .await?;
                        bad?;
                        let values = policy.values(e).await?;
                        cache.put(&key, &policy, &values, serde_json::to_value(&rows).map_err(|e| crate::Error(e.to_string()))?)?;
                        (policy, rows)
                    }
                };
                checkpoints.extend(rows);
                policies.push((format!("{method}_beta{beta}_lr{lr}_steps{steps}"), policy));
                add_time(&mut timings, method, now_ms() - t0);
            }
        }
    }
    keep(SeedModels { seed, sft, proxy, policies })?;
    Ok(SeedResults { seed, checkpoints, proxy: ProxyReport { seed, heldout_accuracy: accuracy }, sft_loss, timings })
}

/// The figure's results from per-seed results, in the config's seed order; timings summed over seeds.
pub fn merge(cfg: &Fig1Config, backend: String, mut seeds: Vec<SeedResults>) -> Fig1Results {
    seeds.sort_by_key(|s| cfg.seeds.iter().position(|&x| x == s.seed));
    let mut results = Fig1Results { config: cfg.clone(), backend, checkpoints: vec![], proxy: vec![], sft_loss: vec![], timings: vec![], complete: true };
    for s in seeds {
        results.checkpoints.extend(s.checkpoints);
        results.proxy.push(s.proxy);
        results.sft_loss.push((s.seed, s.sft_loss));
        for (name, secs) in s.timings {
            add_time(&mut results.timings, &name, secs * 1e3);
        }
    }
    results
}

/// Every seed in turn on one engine, no cache.
pub async fn run(e: &Engine, cfg: &Fig1Config, mut progress: impl FnMut(Progress), mut keep: impl FnMut(SeedModels) -> Result<()>) -> Result<Fig1Results> {
    let mut seeds = vec![];
    for &seed in &cfg.seeds {
        seeds.push(run_seed(e, cfg, seed, &mut NoCache, &mut progress, &mut keep).await?);
    }
    Ok(merge(cfg, e.describe(), seeds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::eval::ResponseStats;

    fn row(kl: f32, proxy_win_rate: Option<f32>) -> Row {
        let checkpoint = Checkpoint {
            step: 6,
            kl,
            golden_win_rate: 0.5,
            ties: 0.0,
            classifier_accuracy: 0.6,
            proxy_win_rate,
            train_loss: None,
            responses: ResponseStats::default(),
            samples: vec![],
        };
        Row { method: "online".into(), seed: 3, beta: 0.1, lr: 5e-4, run_steps: 12, checkpoint }
    }

    #[test]
    fn non_finite_metrics_are_refused_by_name_not_written_as_null() {
        assert!(check_finite(&row(0.5, Some(0.7))).is_ok());
        assert!(check_finite(&row(0.5, None)).is_ok(), "an unmeasured metric is not an error");
        let e = check_finite(&row(f32::NAN, None)).unwrap_err().0;
        assert!(e.contains("seed 3 online β=0.1 lr=0.0005 step 6: kl is not finite (NaN)"), "{e}");
        let e = check_finite(&row(0.5, Some(f32::INFINITY))).unwrap_err().0;
        assert!(e.contains("proxy_win_rate is not finite (inf)"), "{e}");
    }

    #[test]
    fn every_preset_passes_its_own_checks_and_duplicate_seeds_do_not() {
        for name in PRESETS {
            Fig1Config::preset(name).unwrap().validate().unwrap();
        }
        let cfg = Fig1Config { seeds: vec![1, 2, 1], ..Fig1Config::preset("fig1-tiny").unwrap() };
        assert!(cfg.validate().unwrap_err().0.contains("seeds: 1 appears twice"));
    }
}
