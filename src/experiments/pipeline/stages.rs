//! A seed's shared stages: SFT → D_golden and the held-out pairs → the proxy PM → the fixed evaluation set (and the
//! SFT policies of a scaling ladder's other sizes, and the pair datasets of Figs 5 and 12).

use super::*;
use crate::rng::streams;
use crate::bail;
use crate::clock::now_ms;
use crate::engine::Engine;
use crate::error::Result;
use crate::model::Gpt;
use crate::experiments::method::{early_steps, Judge, Method, PairDataset, Sampler};
use crate::train::align::ReferenceLogps;
use crate::train::eval::{EvalPrompts, EvalSet, ValidationPrompts};
use crate::train::data::golden_pairs;
use crate::train::eval::sample_responses;
use crate::train::pm::{train_pm_ladder, Ladder, Pairs, PmData, Proxy};
use crate::train::sft::train_sft;

/// A seed's shared stages, trained or from the cache.
pub struct SeedStages {
    pub seed: u32,
    pub sft: Gpt,
    pub sft_loss: Vec<f32>,
    pub d_golden: Pairs,
    pub heldout: Pairs,
    pub proxy: Proxy,
    pub proxy_report: ProxyReport,
    /// The proxy map's weaker proxies: the proxy's run at each step of `proxy_ladder`.
    pub ladder: Vec<(u32, Proxy)>,
    /// The SFT policies of the scaling ladder's other sizes ([`SeedStages::add_size`]).
    pub sized: Vec<SizedSft>,
    pub timings: Vec<(String, f64)>,
    /// π_sft's log-probs of D_golden's pairs, shared by this seed's offline runs at the config's policy size.
    pub d_golden_reference: ReferenceLogps,
}

/// SFT → D_golden and held-out pairs → proxy PM for one seed.
pub async fn seed_stages(e: &Engine, spec: &StageSpec<'_>, seed: u32, cache: &mut dyn StageCache, progress: &mut dyn FnMut(Progress)) -> Result<SeedStages> {
    seed_stages_reading(e, spec, seed, None, cache, progress).await
}

/// How many of D_golden's pairs `runs` read, when they read only its start: offline IPO on D_golden reads its
/// pairs in order, `batch` per step, up to its last possible step (its stopping rule's cap); none when a run
/// reads all of D_golden (a pair dataset is built on every one of its prompts). Rounded up to whole chunks of
/// [`streams::PAIR_CHUNK`], so that each chunk is drawn exactly as in the whole D_golden.
pub fn d_golden_read(spec: &StageSpec<'_>, runs: &[RunSpec]) -> Option<usize> {
    use crate::experiments::method::{Data, Offline};
    let mut most = 0usize;
    for r in runs {
        match r.method.data {
            Data::Offline(Offline::Pairs(_)) => return None,
            Data::Offline(Offline::Golden) => {
                let last = past_best_of(spec, r).map_or(r.steps, |p| p.max_steps.max(r.steps));
                most = most.max(last as usize * spec.batch);
            }
            _ => {}
        }
    }
    Some(most.div_ceil(streams::PAIR_CHUNK) * streams::PAIR_CHUNK)
}

/// [`seed_stages`] for runs that read only the first `reads` pairs of D_golden ([`d_golden_read`]): when the proxy
/// (and its proxy-map rungs) come from the cache, nothing else reads D_golden, so only that start of it is drawn,
/// pair for pair the start of the whole (the page's first checkpoints come sooner with shipped stages).
pub async fn seed_stages_reading(e: &Engine, spec: &StageSpec<'_>, seed: u32, reads: Option<usize>, cache: &mut dyn StageCache, progress: &mut dyn FnMut(Progress)) -> Result<SeedStages> {
    let task = spec.task;
    let mut timings: Vec<(String, f64)> = vec![];
    let backend = e.identity();
    let (sft_key, proxy_key) = stage_keys(spec, seed, spec.stages_on(&backend));

    let t0 = now_ms();
    let (sft, sft_loss) = sft_stage(e, spec, seed, &sft_key, true, cache, progress).await?;
    add_time(&mut timings, "sft", now_ms() - t0);

    let t0 = now_ms();
    let mut proxy_cached = || cache.get(&proxy_key).is_some() && spec.proxy_ladder.iter().all(|&s| cache.get(&rung_key(&proxy_key, s)).is_some());
    let n = match reads {
        Some(r) if r < spec.d_golden && proxy_cached() => r,
        _ => spec.d_golden,
    };
    let name = match n < spec.d_golden {
        true => format!("seed {seed}: D_golden (its first {n} of {} pairs: the proxy is cached, and the offline runs read no further)", spec.d_golden),
        false => format!("seed {seed}: D_golden"),
    };
    progress(Progress::Stage { name: name.clone(), step: 0, total: 1 });
    let d_golden = golden_pairs(e, task, &sft, n, seed, streams::D_GOLDEN.0, streams::PAIR_CHUNK).await?;
    let heldout = golden_pairs(e, task, &sft, spec.heldout, seed, streams::HELDOUT.0, streams::PAIR_CHUNK).await?;
    progress(Progress::Stage { name, step: 1, total: 1 });
    add_time(&mut timings, "d_golden", now_ms() - t0);

    let t0 = now_ms();
    let (proxy, proxy_report, ladder) = proxy_stage(e, spec, seed, &proxy_key, &sft, &d_golden, &heldout, cache, progress).await?;
    add_time(&mut timings, "proxy", now_ms() - t0);
    if !proxy_report.heldout_accuracy.is_finite() {
        bail!("seed {seed}: the proxy's held-out accuracy is not finite ({})", proxy_report.heldout_accuracy);
    }
    progress(Progress::StagesReady { seed, sft_loss: &sft_loss, proxy: &proxy_report });
    Ok(SeedStages { seed, sft, sft_loss, d_golden, heldout, proxy, proxy_report, ladder, sized: vec![], timings, d_golden_reference: ReferenceLogps::default() })
}

/// The cache key of the proxy's parameters at `step` of its run (a rung of the proxy map).
fn rung_key(proxy_key: &str, step: u32) -> String {
    format!("{proxy_key}-step{step}")
}

/// The proxy PM of one seed and, where the spec has a proxy map, its run's parameters at the map's steps: from the
/// cache, or trained. When only the rungs are missing, the proxy's run is trained again up to the last of them
/// (the same run: same data order, schedule and seed), not to its end.
#[allow(clippy::too_many_arguments)]
async fn proxy_stage(
    e: &Engine,
    spec: &StageSpec<'_>,
    seed: u32,
    proxy_key: &str,
    sft: &Gpt,
    d_golden: &Pairs,
    heldout: &Pairs,
    cache: &mut dyn StageCache,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Proxy, ProxyReport, Vec<(u32, Proxy)>)> {
    let form = spec.proxy.form();
    let cached = cache.get(proxy_key).map(|(config, head, values, meta)| {
        let report = serde_json::from_value(meta).unwrap_or(ProxyReport { seed, heldout_accuracy: f32::NAN, ..ProxyReport::default() });
        (config, head, values, report)
    });
    let mut rungs = vec![];
    let mut rung_reports = vec![];
    for &step in spec.proxy_ladder {
        let Some((config, head, values, meta)) = cache.get(&rung_key(proxy_key, step)) else { break };
        let Ok(heldout) = serde_json::from_value::<crate::train::pm::PmAccuracy>(meta) else { break };
        rungs.push((step, Proxy { model: Gpt::new(e, config, head, &values)?, form }));
        rung_reports.push(Rung { step, heldout });
    }
    let rungs_cached = rungs.len() == spec.proxy_ladder.len();
    if let (Some((config, head, values, mut report)), true) = (cached.as_ref().cloned(), rungs_cached) {
        progress(Progress::Stage { name: format!("seed {seed}: proxy PM (cached)"), step: 1, total: 1 });
        report.ladder = rung_reports;
        return Ok((Proxy { model: Gpt::new(e, config, head, &values)?, form }, report, rungs));
    }
    // The proxy selects on a validation split held back from D_golden; the held-out pairs are only reported on.
    let (train, validation) = d_golden.split_tail(spec.proxy.validation_pairs(d_golden.len()));
    // The trunk the proxy starts from: the policy's π_sft, or the SFT policy of the proxy's own size.
    let sized;
    let trunk = match spec.proxy.trunk_apart_from(spec.policy) {
        None => sft,
        Some(size) => {
            sized = sft_of_size(e, spec, seed, size, cache, progress).await?.0;
            &sized
        }
    };
    let ladder = Ladder { steps: if rungs_cached { &[] } else { spec.proxy_ladder }, only: cached.is_some() };
    let last = if ladder.only { ladder.steps.iter().copied().max().unwrap_or(0) } else { spec.proxy.steps };
    let what = if ladder.only { "proxy PM, again up to the proxy map's last step" } else { "proxy PM" };
    let mut trained = train_pm_ladder(e, spec.task, trunk, PmData { train: &train, validation: &validation, heldout }, spec.proxy, seed, ladder, |s, eval| {
        progress(Progress::Stage { name: format!("seed {seed}: {what}"), step: s as u64, total: last as u64 });
        if let Some(eval) = eval {
            progress(Progress::ProxyEval { seed, step: s, eval });
        }
    })
    .await?;
    if !rungs_cached {
        rungs.clear();
        rung_reports.clear();
        for (step, rung, measured) in std::mem::take(&mut trained.rungs) {
            cache.put(&rung_key(proxy_key, step), &rung.model, &rung.model.values(e).await?, serde_json::json!(measured))?;
            let name = format!("seed {seed}: proxy at step {step}: held-out accuracy {:.3} with ties, {:.3} tie-free", measured.with_ties, measured.tie_free);
            progress(Progress::Stage { name, step: 1, total: 1 });
            rungs.push((step, rung));
            rung_reports.push(Rung { step, heldout: measured });
        }
    }
    let (proxy, mut report) = match cached {
        Some((config, head, values, report)) => (Proxy { model: Gpt::new(e, config, head, &values)?, form }, report),
        None => {
            let report = ProxyReport::new(seed, &trained);
            cache.put(proxy_key, &trained.proxy.model, &trained.proxy.model.values(e).await?, serde_json::json!(report))?;
            (trained.proxy, report)
        }
    };
    report.ladder = rung_reports;
    Ok((proxy, report, rungs))
}

/// The SFT policy of `spec`'s size for one seed, from the cache or trained (and cached), with its losses. The SFT
/// progress of a policy of another size than the seed's own names that size.
async fn sft_stage(e: &Engine, spec: &StageSpec<'_>, seed: u32, key: &str, own: bool, cache: &mut dyn StageCache, progress: &mut dyn FnMut(Progress)) -> Result<(Gpt, Vec<f32>)> {
    let label = format!("seed {seed}: SFT{}", if own { String::new() } else { format!(" {}", spec.policy) });
    if let Some((config, head, values, meta)) = cache.get(key) {
        progress(Progress::Stage { name: format!("{label} (cached)"), step: 1, total: 1 });
        return Ok((Gpt::new(e, config, head, &values)?, serde_json::from_value(meta).unwrap_or_default()));
    }
    let mut losses = vec![];
    let sft = train_sft(e, spec.task, spec.model_config(), spec.sft, seed, |s, l| {
        losses.push(l);
        progress(Progress::Stage { name: label.clone(), step: s as u64 + 1, total: spec.sft.steps as u64 });
        if own {
            progress(Progress::SftLoss { seed, step: s + 1, loss: l });
        }
    })
    .await?;
    cache.put(key, &sft, &sft.values(e).await?, serde_json::json!(losses))?;
    Ok((sft, losses))
}

/// The SFT policy of `size` (not the spec's own policy size), trained with the seed's SFT config and data, from the
/// cache or trained (and cached): a scaling ladder's size, or a proxy's own trunk.
async fn sft_of_size(e: &Engine, spec: &StageSpec<'_>, seed: u32, size: ModelSize, cache: &mut dyn StageCache, progress: &mut dyn FnMut(Progress)) -> Result<(Gpt, Vec<f32>)> {
    let sized = StageSpec { policy: size, ..*spec };
    let (key, _) = stage_keys(&sized, seed, sized.stages_on(&e.identity()));
    sft_stage(e, &sized, seed, &key, false, cache, progress).await
}

/// The SFT policy of one size of the scaling ladder, trained with the seed's SFT config and data.
pub struct SizedSft {
    pub size: ModelSize,
    pub sft: Gpt,
    pub losses: Vec<f32>,
}

impl SeedStages {
    /// Trains (or reads from the cache) the SFT policy of `size`, with the seed's SFT config and data, for the runs
    /// of that size.
    pub async fn add_size(&mut self, e: &Engine, spec: &StageSpec<'_>, size: ModelSize, cache: &mut dyn StageCache, progress: &mut dyn FnMut(Progress)) -> Result<()> {
        if size == spec.policy || self.sized.iter().any(|s| s.size == size) {
            return Ok(());
        }
        let t0 = now_ms();
        let (sft, losses) = sft_of_size(e, spec, self.seed, size, cache, progress).await?;
        add_time(&mut self.timings, "sft_scaling", now_ms() - t0);
        self.sized.push(SizedSft { size, sft, losses });
        Ok(())
    }

    /// The proxy that labels an online run's pairs for `judge` (none: golden labels).
    pub fn judge_proxy(&self, judge: Judge) -> Result<Option<&Proxy>> {
        match judge {
            Judge::Proxy => Ok(Some(&self.proxy)),
            Judge::Golden => Ok(None),
            Judge::ProxyAt(step) => match self.ladder.iter().find(|(s, _)| *s == step) {
                Some((_, p)) => Ok(Some(p)),
                None => bail!("seed {}: no proxy at step {step} (a run labelled by it needs proxy_map to list {step})", self.seed),
            },
        }
    }

    /// The SFT policy a run of size `size` starts from (none: the seed's own policy size).
    pub fn sft_of(&self, size: Option<ModelSize>) -> Result<&Gpt> {
        match size {
            None => Ok(&self.sft),
            Some(size) => match self.sized.iter().find(|s| s.size == size) {
                Some(s) => Ok(&s.sft),
                None => bail!("seed {}: no SFT policy of size {size} (add_size first)", self.seed),
            },
        }
    }

    /// The evaluation data of the runs of another policy size: `base`'s prompts and baseline responses (the seed's
    /// own π_sft's, so win rates compare across sizes), with the held-out pairs' log-probs under that size's π_sft
    /// (its runs' reference).
    pub async fn sized_eval_set<'s>(&'s self, e: &Engine, spec: &StageSpec<'_>, base: &EvalSet<'s>, size: ModelSize) -> Result<EvalSet<'s>> {
        let prompts = EvalPrompts { win_prompts: base.win_prompts.clone(), baseline: base.baseline.clone(), kl_prompts: base.kl_prompts.clone() };
        let mut set = self.eval_set_from(e, spec, prompts, self.sft_of(Some(size))?).await?;
        set.validation = base.validation.clone();
        Ok(set)
    }

    /// The evaluation set of runs regularised to `sft`: the held-out pairs' log-probs under it, the proxy, and the
    /// metrics `spec` asks for.
    async fn eval_set_from<'s>(&'s self, e: &Engine, spec: &StageSpec<'_>, prompts: EvalPrompts, sft: &Gpt) -> Result<EvalSet<'s>> {
        let mut set = EvalSet::new(e, sft, spec.task, prompts, self.heldout.clone(), Some(&self.proxy), self.seed).await?;
        set.self_classification = spec.self_classification;
        set.stream_classification = spec.stream_classification;
        Ok(set)
    }

    /// The fixed evaluation data of this seed: the same prompts and π_sft baseline for every run.
    pub async fn eval_set(&self, e: &Engine, spec: &StageSpec<'_>) -> Result<EvalSet<'_>> {
        let (task, seed) = (spec.task, self.seed);
        let win: Vec<Vec<u32>> = (0..spec.win_prompts as u32).map(|i| task.prompt(seed, streams::EVAL_WIN_PROMPTS, i)).collect();
        let baseline = sample_responses(e, &self.sft, task, &win, seed, streams::EVAL_BASELINE).await?;
        let kl_prompts = (0..spec.kl_prompts as u32).map(|i| task.prompt(seed, streams::EVAL_KL_PROMPTS, i)).collect();
        let mut set = self.eval_set_from(e, spec, EvalPrompts { win_prompts: win, baseline, kl_prompts }, &self.sft).await?;
        if spec.validation_prompts > 0 {
            let prompts: Vec<Vec<u32>> = (0..spec.validation_prompts as u32).map(|i| task.prompt(seed, streams::EVAL_VALIDATION_PROMPTS, i)).collect();
            let baseline = sample_responses(e, &self.sft, task, &prompts, seed, streams::EVAL_VALIDATION_BASELINE).await?;
            set.validation = Some(ValidationPrompts { prompts, baseline });
        }
        Ok(set)
    }

    /// The golden-labelled pair dataset of a `Pairs` run: on D_golden's prompts, each side sampled from π_sft or
    /// from the online run with the run's β, lr and alignment seed, after [`early_steps`] or at its end. Those
    /// online policies come from the cache, or are trained (and cached) unreported.
    #[allow(clippy::too_many_arguments)]
    pub async fn pair_dataset(
        &self,
        e: &Engine,
        spec: &StageSpec<'_>,
        eval: &EvalSet<'_>,
        run: &RunSpec,
        dataset: PairDataset,
        cache: &mut dyn StageCache,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Pairs> {
        let seed = run.align_seed.unwrap_or(self.seed);
        let late = RunSpec { method: Method::ONLINE, steps: spec.online_steps, ..*run };
        let early = RunSpec { steps: early_steps(spec.online_steps), ..late };
        let (a, b) = dataset.samplers();
        let mut online = |r: RunSpec| {
            progress(Progress::Stage { name: format!("seed {}: online β={} lr={} ({} steps), for {}", self.seed, r.beta, r.lr, r.steps, run.method.name()), step: 0, total: 1 });
            r
        };
        let early = match [a, b].contains(&Sampler::Early) {
            true => Some(self.align_run(e, spec, eval, &online(early), cache, &mut |_| {}, None, false).await?.0),
            false => None,
        };
        let late = match [a, b].contains(&Sampler::Late) {
            true => Some(self.align_run(e, spec, eval, &online(late), cache, &mut |_| {}, None, false).await?.0),
            false => None,
        };
        let sft = self.sft_of(run.policy)?;
        let policy = |s: Sampler| match s {
            Sampler::Sft => sft,
            Sampler::Early => early.as_ref().expect("trained above"),
            Sampler::Late => late.as_ref().expect("trained above"),
        };
        progress(Progress::Stage { name: format!("seed {}: {} ({} pairs)", self.seed, run.method.name(), self.d_golden.len()), step: 0, total: 1 });
        crate::train::data::pairs_from(e, spec.task, (policy(a), policy(b)), &self.d_golden.prompts, seed, streams::PAIR_DATASETS.0, streams::PAIR_CHUNK).await
    }

}
