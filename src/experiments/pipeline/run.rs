//! One alignment run from a seed's stages (from the cache, resumed, or trained), and a seed's runs in order.

use super::*;
use super::cache::{read_state, run_key_with, write_state, SharedCache};
use super::records::stream_dataset;
use crate::bail;
use crate::clock::now_ms;
use crate::engine::Engine;
use crate::error::Result;
use crate::model::Gpt;
use crate::experiments::method::{early_steps, Data, Method, Offline};
use crate::train::align::{align_from, AlignState, Online, Source};
use crate::train::eval::{Checkpoint, EvalSet, OnlineStream};
use crate::train::pm::Pairs;
use std::borrow::Cow;

impl SeedStages {
    /// One alignment run from these stages: from the cache when it finished before, else trained (and
    /// cached). Its checkpoints are reported as they arrive and returned with the policy. A `Stream` run
    /// trains on `online_stream` (its online run's D_online, already reordered), a `Pairs` run on its dataset
    /// passed the same way. With `want_stream` an
    /// online run is trained even when cached, for its stream of labelled pairs (returned; empty otherwise).
    #[allow(clippy::too_many_arguments)]
    pub async fn align_run(
        &self,
        e: &Engine,
        spec: &StageSpec<'_>,
        eval: &EvalSet<'_>,
        run: &RunSpec,
        cache: &mut dyn StageCache,
        progress: &mut dyn FnMut(Progress),
        online_stream: Option<&Pairs>,
        want_stream: bool,
    ) -> Result<(Gpt, Vec<Row>, Pairs)> {
        let seed = self.seed;
        let (method, beta, lr, steps) = (run.method, run.beta, run.lr, run.steps);
        let repeat = run.align_seed.map(|a| format!(", alignment seed {a}")).unwrap_or_default();
        let size = run.policy.map(|p| format!(", policy {p}")).unwrap_or_default();
        let name = format!("seed {seed}: {method} β={beta} lr={lr} ({steps} steps{repeat}{size})");
        let sft = self.sft_of(run.policy)?;
        let key = run_key(spec, seed, &e.identity(), run);
        let past_best = past_best_of(spec, run);
        // An offline run measured on its online run's stream needs that measure at every checkpoint past the start.
        let on_stream = eval.online_stream.is_some() && run.method == Method::OFFLINE;
        let measured_at = |c: &Checkpoint| {
            (!spec.chosen_logratio || c.chosen_logratio.is_some())
                && (!spec.self_classification || c.self_classified_pairs.is_some())
                && (!on_stream || c.step == 0 || c.stream_pairs.is_some())
        };
        let measured = |rows: &Vec<Row>| rows.iter().all(|r| measured_at(&r.checkpoint));
        let read_any = |cache: &mut dyn StageCache, key: &str| {
            let (config, head, values, meta) = cache.get(key)?;
            Some((config, head, values, serde_json::from_value::<Vec<Row>>(meta).ok()?))
        };
        let read = |cache: &mut dyn StageCache, key: &str| read_any(cache, key).filter(|(.., rows)| measured(rows));
        // This run's entry, read once: reused when it measured what is needed (and no stream is wanted); otherwise
        // its checkpoints say what a retrained run keeps measuring (below).
        // Going on here after its backend was lost (`runs_from`): a run that finished there, or its saved state, is
        // taken over from there.
        let there = spec.runs_from.filter(|b| *b != e.identity()).map(|b| run_key(spec, seed, b, run));
        let entry = read_any(cache, &key).or_else(|| there.as_ref().and_then(|k| read_any(cache, k)));
        let before: Vec<Row> = entry.as_ref().map(|(.., rows)| rows.clone()).unwrap_or_default();
        let mut cached = entry.filter(|(.., rows)| !want_stream && measured(rows));
        if let (None, Some(rule), false) = (&cached, past_best, want_stream) {
            // The same run cached without the rule is this run exactly when the rule stops it at its length
            // (the steps before are the same): reused, and cached under this run's key too.
            let plain = read(cache, &run_key_with(spec, seed, &e.identity(), run, None));
            if let Some((config, head, values, rows)) = plain.filter(|(.., rows)| !rule.still_improving(&rows.iter().map(|r| r.checkpoint.clone()).collect::<Vec<_>>())) {
                let meta = serde_json::to_value(&rows).map_err(|e| crate::Error::new(e.to_string()))?;
                cache.put(&key, &Gpt::new(e, config, head, &values)?, &values, meta)?;
                cached = Some((config, head, values, rows));
            }
        }
        if let Some((config, head, values, rows)) = cached {
            progress(Progress::Stage { name: format!("{name} (cached)"), step: steps as u64, total: steps as u64 });
            for row in &rows {
                check_finite(row)?;
                progress(Progress::Checkpoint(row));
            }
            return Ok((Gpt::new(e, config, head, &values)?, rows, Pairs::default()));
        }
        let source = match (run.method.data, online_stream) {
            (Data::Online { judge, refresh, mixture }, _) => {
                Source::Online(Online { proxy: self.judge_proxy(judge)?, refresh, mixture: mixture as f32 / 100.0 })
            }
            (Data::Offline(Offline::Golden), _) => Source::Offline(&self.d_golden, run.policy.is_none().then_some(&self.d_golden_reference)),
            (Data::Offline(_), Some(pairs)) => Source::Offline(pairs, None),
            (Data::Offline(Offline::Stream { .. }), None) => bail!("{name}: a stream run needs its online run's stream"),
            (Data::Offline(Offline::Pairs(_)), None) => bail!("{name}: a pair-dataset run needs its dataset"),
            (Data::Offline(Offline::File), _) => bail!("{name}: a dataset file is trained on by train-offline, not by an experiment"),
        };
        let run_cfg = spec.align_config(run.method.loss(spec.loss), beta, lr, steps, run.align_seed.unwrap_or(seed), past_best);
        let mut rows = vec![];
        let mut bad = Ok(());
        // A run interrupted before: from its last saved checkpoint, when that measured what this run needs.
        let state_keys = resume_keys(&key);
        let saved = match spec.resumable {
            true => read_state(cache, &state_keys).or_else(|| there.as_ref().and_then(|k| read_state(cache, &resume_keys(k)))).filter(|s| s.checkpoints.iter().all(measured_at)),
            false => None,
        };
        let name = match &saved {
            Some(s) => format!("{name} (resumed at step {})", s.step),
            None => name,
        };
        // Trained again for a metric its cached entry lacks: it keeps measuring what that entry (or its saved state)
        // had, so that two analyses sharing a run do not retrain it in turn.
        let had = |f: fn(&Checkpoint) -> bool| before.iter().map(|r| &r.checkpoint).chain(saved.iter().flat_map(|s| &s.checkpoints)).any(f);
        let (self_classification, stream_classification) =
            (eval.self_classification || had(|c| c.self_classified_pairs.is_some()), eval.stream_classification || had(|c| c.stream_proxy_accuracy.is_some()));
        let wider;
        let eval = if (self_classification, stream_classification) == (eval.self_classification, eval.stream_classification) {
            eval
        } else {
            wider = EvalSet { self_classification, stream_classification, ..eval.clone() };
            &wider
        };
        let mut keep_state = |state: AlignState| write_state(&mut *cache, &state_keys, sft, state);
        let on_state: Option<&mut dyn FnMut(AlignState) -> Result<()>> = if spec.resumable { Some(&mut keep_state) } else { None };
        let (policy, _, stream) = align_from(e, spec.task, sft, source, &run_cfg, eval, saved, |c| {
            let row = Row { method, seed, beta, lr, run_steps: steps, align_seed: run.align_seed, policy: run.policy, checkpoint: c.clone() };
            if bad.is_ok() {
                bad = check_finite(&row);
            }
            if bad.is_ok() {
                // Past its length a run's end is not known in advance: its cap is the total shown.
                progress(Progress::Stage { name: name.clone(), step: c.step as u64, total: past_best.map_or(steps, |p| p.max_steps.max(steps)) as u64 });
                progress(Progress::Checkpoint(&row));
            }
            rows.push(row);
        }, on_state)
        .await?;
        bad?;
        let meta = serde_json::to_value(&rows).map_err(|e| crate::Error::new(e.to_string()))?;
        cache.put(&key, &policy, &policy.values(e).await?, meta)?;
        if spec.resumable {
            for k in &state_keys {
                cache.remove(k);
            }
        }
        Ok((policy, rows, if want_stream { stream } else { Pairs::default() }))
    }
}

/// Both futures to completion, polled in turn: each runs until it yields (every step, `control::yield_point`), then
/// the other.
pub async fn join2<A: std::future::Future, B: std::future::Future>(a: A, b: B) -> (A::Output, B::Output) {
    use std::task::Poll;
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    let (mut out_a, mut out_b) = (None, None);
    std::future::poll_fn(|cx| {
        if out_a.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                out_a = Some(v);
            }
        }
        if out_b.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                out_b = Some(v);
            }
        }
        if out_a.is_some() && out_b.is_some() {
            Poll::Ready((out_a.take().expect("ready"), out_b.take().expect("ready")))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// One seed of an experiment: its shared stages, then each of `runs` in order. Seeds are independent, so
/// callers may run them in parallel and merge the results.
pub async fn run_seed(
    e: &Engine,
    spec: &StageSpec<'_>,
    seed: u32,
    runs: &[RunSpec],
    cache: &mut dyn StageCache,
    progress: &mut dyn FnMut(Progress),
    keep: &mut dyn FnMut(SeedModels) -> Result<()>,
) -> Result<SeedResults> {
    let mut stages = seed_stages_reading(e, spec, seed, d_golden_read(spec, runs), cache, progress).await?;
    // The scaling ladder's other sizes: each its own SFT policy, before any run.
    let mut sizes: Vec<ModelSize> = vec![];
    for size in runs.iter().filter_map(|r| r.policy) {
        if !sizes.contains(&size) {
            sizes.push(size);
        }
    }
    for &size in &sizes {
        stages.add_size(e, spec, size, cache, progress).await?;
    }
    let stages = stages;
    let eval = stages.eval_set(e, spec).await?;
    let mut sized_evals: Vec<(ModelSize, EvalSet)> = vec![];
    for &size in &sizes {
        sized_evals.push((size, stages.sized_eval_set(e, spec, &eval, size).await?));
    }
    let (mut checkpoints, mut policies, mut timings) = (vec![], vec![], stages.timings.clone());
    let online_of = |r: &RunSpec| RunSpec { method: Method::ONLINE, ..*r };
    // Every stream run needs its online run's stream, and every pair run its dataset, even when the run itself
    // comes from the cache: the datasets are saved beside the results (the cache keeps a run's policy and
    // checkpoints, not its data). They are kept here once, by name, and read from here by the runs.
    let stream_runs: Vec<RunSpec> = runs.iter().filter(|r| r.method.stream_window().is_some()).copied().collect();
    let mut datasets: Vec<NamedDataset> = vec![];
    let position = |datasets: &[NamedDataset], name: &str| datasets.iter().position(|d| d.name == name);
    let mut next = 0;
    while next < runs.len() {
        let run = &runs[next];
        next += 1;
        let t0 = now_ms();
        let eval_of = |policy: Option<ModelSize>| match policy {
            None => &eval,
            Some(size) => &sized_evals.iter().find(|(s, _)| *s == size).expect("built above").1,
        };
        // An online run and the offline run of its setting after it, side by side: neither reads the other's data
        // (a Fig. 6 probe would read online's checkpoints, so not then).
        let partner = runs.get(next).filter(|o| {
            spec.interleave && !spec.stream_classification && run.method == Method::ONLINE && o.method == Method::OFFLINE && RunSpec { method: Method::ONLINE, steps: run.steps, ..**o } == *run
        });
        if let Some(offline) = partner {
            next += 1;
            let feeds_a_stream = stream_runs.iter().any(|r| online_of(r) == *run);
            let (shared_cache, shared_progress) = (std::cell::RefCell::new(&mut *cache), std::cell::RefCell::new(&mut *progress));
            let (mut cache_a, mut cache_b) = (SharedCache(&shared_cache), SharedCache(&shared_cache));
            let (mut report_a, mut report_b) = (|p: Progress| (shared_progress.borrow_mut())(p), |p: Progress| (shared_progress.borrow_mut())(p));
            let (a, b) = join2(
                stages.align_run(e, spec, eval_of(run.policy), run, &mut cache_a, &mut report_a, None, feeds_a_stream),
                stages.align_run(e, spec, eval_of(offline.policy), offline, &mut cache_b, &mut report_b, None, false),
            )
            .await;
            let ((policy_a, rows_a, stream), (policy_b, rows_b, _)) = (a?, b?);
            if feeds_a_stream {
                datasets.push(stream_dataset(seed, run, stream, spec.batch));
            }
            checkpoints.extend(rows_a.into_iter().chain(rows_b));
            policies.push((run.model_name(), policy_a));
            policies.push((offline.model_name(), policy_b));
            // Their time together, split evenly.
            let half = (now_ms() - t0) / 2.0;
            add_time(&mut timings, &run.method.name(), half);
            add_time(&mut timings, &offline.method.name(), half);
            continue;
        }
        let eval = eval_of(run.policy);
        let data: Option<Cow<Pairs>> = match run.method.data {
            Data::Offline(Offline::Stream { window }) => {
                let online = online_of(run);
                let name = online.data_name("online_stream");
                if position(&datasets, &name).is_none() {
                    // Its online run is not among this process's runs (a shard): trained again, unreported, for
                    // its stream alone (its time counted as online's).
                    progress(Progress::Stage { name: format!("seed {seed}: online β={} lr={} again, for its stream", run.beta, run.lr), step: 0, total: run.steps as u64 });
                    let (_, _, s) = stages.align_run(e, spec, eval, &online, cache, &mut |_| {}, None, true).await?;
                    datasets.push(stream_dataset(seed, &online, s, spec.batch));
                    add_time(&mut timings, &Method::ONLINE.name(), now_ms() - t0);
                }
                let stream = &datasets[position(&datasets, &name).expect("kept above")].pairs;
                Some(Cow::Owned(crate::train::data::shuffle_in_windows(stream, spec.batch, window, run.align_seed.unwrap_or(seed))))
            }
            Data::Offline(Offline::Pairs(dataset)) => {
                let name = run.data_name(&run.method.name());
                if position(&datasets, &name).is_none() {
                    let pairs = stages.pair_dataset(e, spec, eval, run, dataset, cache, progress).await?;
                    let (a, b) = dataset.samplers();
                    let source = format!(
                        "D_{}: golden-labelled pairs on D_golden's prompts, the first response from {}, the second from {} ({}, online IPO at β {}, lr {}, {} steps; early = step {})",
                        run.method.name().replace("_vs_", "-vs-"), a.describe(), b.describe(), run.whose(seed), run.beta, run.lr, spec.online_steps, early_steps(spec.online_steps)
                    );
                    datasets.push(NamedDataset { seed, name: name.clone(), source, pairs });
                }
                Some(Cow::Borrowed(&datasets[position(&datasets, &name).expect("kept above")].pairs))
            }
            _ => None,
        };
        // An online run that a stream run of this seed follows is trained (not read from the cache), for its
        // stream: the cache keeps a run's policy and checkpoints, not its stream. So is every online run whose
        // stream its checkpoints and its offline runs are measured on (Fig. 6).
        let feeds_a_stream = run.method == Method::ONLINE && (spec.stream_classification || stream_runs.iter().any(|r| online_of(r) == *run));
        // An offline run measured on the stream of its setting's online run: that run's stream and checkpoints.
        let probe = match (spec.stream_classification, run.method) {
            (true, Method::OFFLINE) => position(&datasets, &online_of(run).data_name("online_stream")).map(|i| {
                let online = online_of(run);
                let own = |r: &&Row| r.method == Method::ONLINE && r.beta == online.beta && r.lr == online.lr && r.align_seed == online.align_seed && r.policy == online.policy;
                let checkpoints = checkpoints.iter().filter(own).map(|r: &Row| (r.checkpoint.step, r.checkpoint.kl)).collect();
                EvalSet { online_stream: Some(OnlineStream { pairs: datasets[i].pairs.clone(), checkpoints, batch: spec.batch }), ..eval.clone() }
            }),
            _ => None,
        };
        let (policy, rows, stream) = stages.align_run(e, spec, probe.as_ref().unwrap_or(eval), run, cache, progress, data.as_deref(), feeds_a_stream).await?;
        if feeds_a_stream {
            datasets.push(stream_dataset(seed, run, stream, spec.batch));
        }
        checkpoints.extend(rows);
        policies.push((run.model_name(), policy));
        add_time(&mut timings, &run.method.name(), now_ms() - t0);
    }
    drop(sized_evals);
    let report = stages.proxy_report.clone();
    let oracle = spec.oracle_headroom.then(|| OracleReport::measure(seed, spec.task, &eval.win_prompts, &eval.baseline));
    drop(eval);
    let sft_loss = stages.sft_loss.clone();
    let sized_sft_loss: Vec<(ModelSize, Vec<f32>)> = stages.sized.iter().map(|s| (s.size, s.losses.clone())).collect();
    // Each other size's SFT policy is saved beside the runs, as `sft_{size}`.
    policies.extend(stages.sized.into_iter().map(|s| (format!("sft_{}", s.size), s.sft)));
    keep(SeedModels { seed, sft: stages.sft, proxy: stages.proxy, policies, datasets })?;
    Ok(SeedResults { seed, checkpoints, proxy: report, sft_loss, sized_sft_loss, oracle, timings })
}
