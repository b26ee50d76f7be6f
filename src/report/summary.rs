//! summary.md: the comparison the figure makes, as numbers (from [`super::stats`]), and every section's verdict,
//! computed from the data.

use crate::experiments::{ExperimentResults, Method};
use super::{gao, verdict};
use crate::experiments::pipeline::Row;
use super::stats::{best_at_last_checkpoint, best_and_last_steps, estimate, family_rows, main_rows, methods, peak, show_plain, Bin, Estimate};

fn show(e: Option<&Estimate>) -> String {
    match e {
        None => "—".into(),
        Some(Estimate { mean, ci: Some(ci), seeds }) => format!("{mean:.3} ± {ci:.3} ({seeds} seeds)"),
        Some(Estimate { mean, ci: None, seeds }) => format!("{mean:.3} ({seeds} seed{})", if *seeds == 1 { "" } else { "s" }),
    }
}

/// summary.md: the setting, the proxy, the binned table (`bins`, of [`main_rows`]), the peaks and the
/// verdict, all from the data; and the spread of alignment seeds over one proxy when the config has them.
pub fn summary_md(results: &ExperimentResults, bins: &[Bin]) -> String {
    let main = main_rows(&results.checkpoints);
    let rows = &main;
    let c = &results.config;
    let mut s = String::from("# Figure 1 — online vs offline IPO: golden win rate against KL\n\n");
    if !results.complete {
        s += "**Partial results**: the run has not finished (or stopped on an error); these are the checkpoints written so far. Rerun the same command to complete them.\n\n";
    }
    s += &format!(
        "Seeds {:?}; loss {:?}; β {:?}; lr {:?}; online {} steps, offline {:?} steps, of {} pairs; policy {} layers × d {}; D_golden {} pairs. Every checkpoint of every setting is pooled, as in the paper. Backend: {}.\n\n",
        c.seeds, c.loss, c.betas, c.lrs, c.steps, c.offline_steps, c.batch, c.policy.layers, c.policy.d_model, c.d_golden, results.backend
    );
    s += "Proxy preference model";
    if let Some(trunk) = c.proxy.trunk_apart_from(c.policy) {
        s += &format!(" (its own trunk, {trunk}, started from the SFT policy of that size)");
    }
    s += ", held-out accuracy on golden labels: ";
    s += &results
        .proxy
        .iter()
        .map(|p| match (p.tie_free_accuracy, p.ceiling()) {
            (Some(free), Some(ceiling)) => format!("seed {} {:.3} (ceiling {ceiling:.3}; tie-free {free:.3}; best step {} of {})", p.seed, p.heldout_accuracy, p.best_step, p.steps_run),
            _ => format!("seed {} {:.3}", p.seed, p.heldout_accuracy),
        })
        .collect::<Vec<_>>()
        .join(", ");
    if results.proxy.iter().any(|p| p.tie_rate.is_some()) {
        s += ". The ceiling is the best a proxy can do with golden ties labelled by a coin (1 − tie rate / 2); tie-free accuracy leaves the ties out";
    }
    s += "\n\nWin rate is against π_sft's samples on fixed prompts, judged by the golden reward (ties count ½). Bins are equal-width in ln KL; each cell is the mean over seeds of each seed's mean in the bin, with a 95 % t-interval across seeds.\n\n";
    let ms = methods(rows);
    s += &format!("| ln KL | {} |\n|---|{}\n", ms.iter().map(|m| m.name()).collect::<Vec<_>>().join(" | "), "---|".repeat(ms.len()));
    for b in bins {
        s += &format!("| {:.2} … {:.2} | {} |\n", b.lo, b.hi, ms.iter().map(|&m| show(b.get(m))).collect::<Vec<_>>().join(" | "));
    }
    let (p_on, p_off) = (peak(rows, Method::ONLINE), peak(rows, Method::OFFLINE));
    s += &format!("\nPeak (each seed's best checkpoint): online {}, offline {}", show(p_on.as_ref()), show(p_off.as_ref()));
    if let Some(g) = peak(rows, Method::ONLINE_GOLDEN) {
        s += &format!(", online with golden labels {}", show(Some(&g)));
    }
    s += ".\n\n";
    // Every method's, so that a method cut short shows whichever it is (online_golden's too).
    for &m in &ms {
        let (last, runs) = best_at_last_checkpoint(rows, m);
        if runs > 0 {
            s += &format!("{m} runs whose best checkpoint is their last (still rising when they stopped): {last} of {runs}");
            match super::stats::best_at_last_on_validation(rows, m) {
                Some((on_validation, _)) => s += &format!(" by the reported win rate, {on_validation} of {runs} by the validation prompts' (the one the stopping rule reads).\n"),
                None => s += ".\n",
            }
        }
    }
    if c.offline_patience > 0 && c.past_best_every_method {
        s += &format!(
            "Every run (online, online with golden labels, offline) trains past its length of {} steps until its best checkpoint is {} steps behind, up to {} steps{}:",
            c.steps,
            c.offline_patience,
            c.offline_max_steps,
            if c.validation_prompts > 0 { format!(", its best judged by the golden win rate on {} validation prompts disjoint from the reported ones", c.validation_prompts) } else { String::new() }
        );
        for &m in &ms {
            let mut lengths: Vec<u32> = best_and_last_steps(rows, m).iter().map(|&(_, last)| last).collect();
            lengths.sort_unstable();
            if let (Some(lo), Some(hi)) = (lengths.first(), lengths.last()) {
                let capped = lengths.iter().filter(|&&l| l >= c.offline_max_steps).count();
                s += &format!(" {m} {lo}–{hi} steps (median {}, {capped} at the cap);", lengths[lengths.len() / 2]);
            }
        }
        s.pop();
        s += ".\n";
    } else if c.offline_patience > 0 {
        let mut lengths: Vec<u32> = best_and_last_steps(rows, Method::OFFLINE).iter().map(|&(_, last)| last).collect();
        lengths.sort_unstable();
        if let (Some(lo), Some(hi)) = (lengths.first(), lengths.last()) {
            let capped = lengths.iter().filter(|&&l| l >= c.offline_max_steps).count();
            s += &format!(
                "Offline runs go on past their length until their best checkpoint is {} steps behind, up to {} steps: they trained {lo}–{hi} steps (median {}); {capped} stopped at the cap.\n",
                c.offline_patience, c.offline_max_steps, lengths[lengths.len() / 2]
            );
        }
    }
    s += "\n## Verdict (computed)\n\n";
    let seeds = &c.seeds;
    if c.offline_only {
        // A task search (issue 29): nothing here may show online − offline.
        s += "Not computed: this experiment trained offline IPO alone (`offline_only = true`), so that what it measures cannot show online − offline.\n";
        s += &super::classifiers::analyses_md(results);
        return s;
    }
    s += "The paper's finding: online IPO reaches a higher golden win rate than offline IPO at the same KL. Each matching below is computed per seed, only inside the KL range both methods reached on that seed, then across seeds (mean, 95 % t-interval).\n\n";
    s += &verdict::comparison_md(&verdict::compare(rows, seeds, Method::ONLINE, Method::OFFLINE, &c.matching));
    let has_golden = rows.iter().any(|r| r.method == Method::ONLINE_GOLDEN);
    if has_golden {
        s += "\n### Online with golden labels against offline\n\n";
        s += &verdict::comparison_md(&verdict::compare(rows, seeds, Method::ONLINE_GOLDEN, Method::OFFLINE, &c.matching));
        s += "\n### What the proxy costs: online against online with golden labels\n\n";
        s += &verdict::comparison_md(&verdict::compare(rows, seeds, Method::ONLINE, Method::ONLINE_GOLDEN, &c.matching));
    }
    if let (Some(&first), false) = (seeds.first(), c.align_seeds.is_empty()) {
        // The first seed's runs and their repeats, each repeat standing in as a seed of its own.
        let repeats: Vec<Row> = results
            .checkpoints
            .iter()
            .filter(|r| r.seed == first)
            .map(|r| Row { seed: r.align_seed.unwrap_or(first), align_seed: None, ..r.clone() })
            .collect();
        let alignment_seeds: Vec<u32> = std::iter::once(first).chain(c.align_seeds.iter().copied()).collect();
        s += &format!(
            "\n### Alignment seeds over one proxy (seed {first}'s SFT, D_golden and proxy; alignment seeds {alignment_seeds:?})\n\nThe paper had one proxy. Here each row below is one alignment seed over the same proxy, so its spread is the alignment's alone; the seeds' spread above also holds the proxy's.\n\n"
        );
        s += &verdict::comparison_md(&verdict::compare(&repeats, &alignment_seeds, Method::ONLINE, Method::OFFLINE, &c.matching));
    }
    s += &data_experiments_md(rows, seeds, c);
    s += "\n### Peaks within the KL range both reached\n\n";
    s += &shared_peaks_md(rows, seeds, Method::ONLINE, Method::OFFLINE, c.matching.kl_floor);
    s += "\n### Gao et al.'s form R(d) = d(α − β_g ln d), d = √KL, R = win rate − ½\n\n";
    s += "Fitted by least squares to each seed's pooled checkpoints of a method; α is the initial rise, β_g the bend back (over-optimisation), the peak at d* = exp(α/β_g − 1).\n\n| method | α | β_g | seeds fitted |\n|---|---|---|---|\n";
    for &m in &ms {
        let (fits, across) = gao::across_seeds(rows, m, seeds);
        if let Some((a, b)) = across {
            s += &format!("| {m} | {} | {} | {} |\n", show_plain(&a), show_plain(&b), fits.len());
        }
    }
    s += &loss_family_md(rows, seeds, c);
    s += &mixtures_md(rows, seeds, c);
    s += &super::proxy_map::proxy_map_md(results);
    s += &super::classifiers::analyses_md(results);
    s += &super::scaling::scaling_md(results);
    if c.loss != crate::train::losses::Loss::Ipo {
        // The sections are written for the paper's IPO; every run here trained with another loss of the family.
        let note = match c.loss {
            crate::train::losses::Loss::BestOf2 => " Best-of-2 (SFT on the preferred response of each pair) has no β: the β in the tables only names the runs.",
            _ => "",
        };
        s = s.replace("IPO", c.loss.display());
        s = s.replacen("\n\n", &format!("\n\nEvery run trained with the {} loss (the sections' \"{}\" is it).{note}\n\n", c.loss.display(), c.loss.display()), 1);
    }
    s
}

/// IPO-MD's section: online against each mixture (what mixing in π_sft changes), then each against offline.
fn mixtures_md(rows: &[Row], seeds: &[u32], c: &crate::experiments::ExperimentConfig) -> String {
    use crate::experiments::method::Method;
    if c.mixtures.is_empty() {
        return String::new();
    }
    let mut s = String::from("\n## Beyond the paper: IPO-MD, samples from a mixture with π_sft\n\n");
    s += "Online IPO whose two samples per prompt come from the per-token geometric mixture π^(1−m)·π_sft^m of the current policy and π_sft (Calandriello et al. 2024), labelled by the proxy; same proxy, β, lr, batch and steps as online. m leans the data toward π_sft: m = 0 is online IPO, m → 1 samples from π_sft alone like D_golden (with proxy labels). Below, online against each m (a gap > 0 is what the mixture costs), then each against offline.\n";
    for &m in &c.mixtures {
        s += &between_online_and_offline(rows, seeds, Method::mixture((m * 100.0).round() as u32), c);
    }
    s
}

/// The loss family's section: for each loss, online against offline by the figure's verdict, and their peaks.
fn loss_family_md(rows: &[Row], seeds: &[u32], c: &crate::experiments::ExperimentConfig) -> String {
    if c.loss_family.is_empty() {
        return String::new();
    }
    let mut s = String::from("\n## The loss family: does online > offline hold for each loss?\n\n");
    s += &format!(
        "The question: is online > offline specific to IPO, the loss of the paper's Figure 1, or does it hold across the GPO family? Each loss below trains its own online (proxy labels) and offline (D_golden) runs from the same π_sft, proxy, β, lr, batch and steps as the {} runs above (offline trained by the same stopping rule); each is judged by the figure's verdict, and drawn in its own fig1-LOSS.svg. DPO: −log σ(β·h); SLiC: max(0, 1 − β·h); IPO: (β·h − ½)².\n\n",
        c.loss.display()
    );
    s += "| loss | online − offline (figure's verdict) | peak online | peak offline |\n|---|---|---|---|\n";
    let own = verdict::compare(rows, seeds, Method::ONLINE, Method::OFFLINE, &c.matching);
    s += &format!("| {} | {} | {} | {} |\n", c.loss.display(), own.outcome.words(), show(peak(rows, Method::ONLINE).as_ref()), show(peak(rows, Method::OFFLINE).as_ref()));
    let mut detail = String::new();
    for &l in &c.loss_family {
        let family = family_rows(rows, l);
        let cmp = verdict::compare(&family, seeds, Method::ONLINE, Method::OFFLINE, &c.matching);
        s += &format!("| {} | {} | {} | {} |\n", l.display(), cmp.outcome.words(), show(peak(&family, Method::ONLINE).as_ref()), show(peak(&family, Method::OFFLINE).as_ref()));
        detail += &format!("\n### {}\n\n", l.display());
        detail += &verdict::comparison_md(&cmp).replace("**online − offline**", &format!("**online {0} − offline {0}**", l.display()));
    }
    s + &detail
}

/// The data experiments' sections (the runs on the online stream D_online, present when the config asks for
/// them): the exact replay's check against online, checkpoint by checkpoint; and each reordered stream against
/// online and against offline, by the same verdict as the figure's.
fn data_experiments_md(rows: &[Row], seeds: &[u32], c: &crate::experiments::ExperimentConfig) -> String {
    use crate::experiments::method::{Method, EARLY};
    let mut s = String::new();
    let with_rows = |ms: Vec<Method>| -> Vec<Method> { ms.into_iter().filter(|m| rows.iter().any(|r| r.method == *m)).collect() };
    let pairs = with_rows(c.pair_datasets.iter().map(|&d| Method::pairs(d)).collect());
    if !pairs.is_empty() {
        s += "\n## Which pairs teach: golden-labelled datasets sampled from the online run (the paper's Figs 5 and 12)\n\n";
        s += &format!(
            "Offline IPO on D_golden's prompts with golden labels, each response sampled from π_sft (sft), from the online run with the same setting after {:.0} % of its steps (early; the paper: step 800 of 4000) or from its final policy (late). D_golden itself is sft-vs-sft. Same β, lr, batch, warm-up and stopping rule as offline IPO on D_golden, so the arms differ in their data alone.\n\n",
            EARLY * 100.0
        );
        s += "The paper's findings: offline IPO on D_4k-vs-4k (late-vs-late here) barely beats SFT (Fig. 5); D_sft-vs-800 ≳ D_golden > D_800-vs-4k, D_4k-vs-4k (Fig. 12).\n\n";
        s += "Peak golden win rate (each seed's best checkpoint; π_sft is 0.5): ";
        let peaks: Vec<String> = std::iter::once(Method::OFFLINE).chain(pairs.iter().copied()).map(|m| format!("{m} {}", show(peak(rows, m).as_ref()))).collect();
        s += &peaks.join(", ");
        s += ".\n";
        if pairs.contains(&Method::pairs(crate::experiments::method::PairDataset::LateVsLate)) {
            s += &barely_beats_sft_md(rows, seeds);
        }
        for m in &pairs {
            s += &between_online_and_offline(rows, seeds, *m, c);
        }
    }
    let semi = with_rows(c.semi_online.iter().map(|&r| Method::semi_online(r)).collect());
    if !semi.is_empty() {
        s += "\n## Semi-online IPO (beyond the paper)\n\n";
        s += "Every s steps the next s steps' pairs are sampled from the current policy and labelled by the proxy, then trained on in order (s = 1 is online IPO, \"never\" samples every pair from π_sft). Same proxy, β, lr, batch and steps as online. Lanchantin et al. (2025) found semi-online DPO close to online; below, online against each refresh interval (a gap > 0 is what refreshing less often costs), and each against offline.\n";
        for m in &semi {
            s += &between_online_and_offline(rows, seeds, *m, c);
        }
    }
    let present = with_rows(c.stream_windows.iter().map(|&w| Method::stream(w)).collect());
    if present.is_empty() {
        return s;
    }
    s += "\n## The data experiments: offline IPO on the online stream D_online\n\n";
    s += "Each online run's stream (its prompts, both samples and the proxy's labels, batch by batch) is trained on by offline IPO from the same π_sft with the same β, lr, batch and steps, in its order (replay) or shuffled within windows of w batches.\n\n";
    s += "The paper's findings: replayed in order, the stream reproduces the online run (to ~0.1 %, App. F); shuffled over the whole run, offline IPO on it loses most of online's advantage (Fig. 4); shuffled within small windows it stays close to online (Fig. 13). Ours are below, each by the figure's verdict: online against the reordered stream (a gap > 0 is advantage lost by reordering), and the reordered stream against offline IPO on D_golden.\n";
    if present.contains(&Method::stream(1)) {
        let mut compared = 0;
        let mut worst = 0f32;
        let mut worst_at = String::new();
        for r in rows.iter().filter(|r| r.method == Method::stream(1)) {
            let Some(o) = rows.iter().find(|o| o.method == Method::ONLINE && o.seed == r.seed && o.align_seed == r.align_seed && o.beta == r.beta && o.lr == r.lr && o.run_steps == r.run_steps && o.checkpoint.step == r.checkpoint.step) else { continue };
            let (a, b) = (&r.checkpoint, &o.checkpoint);
            let diffs = [
                (a.kl - b.kl).abs(),
                (a.golden_win_rate - b.golden_win_rate).abs(),
                (a.classifier_accuracy - b.classifier_accuracy).abs(),
                (a.train_loss.unwrap_or(0.0) - b.train_loss.unwrap_or(0.0)).abs(),
                (a.responses.golden_reward - b.responses.golden_reward).abs(),
            ];
            let d = diffs.into_iter().fold(0f32, f32::max);
            compared += 1;
            if d > worst || worst_at.is_empty() {
                worst = worst.max(d);
                worst_at = format!("seed {} β={} step {}", r.seed, r.beta, a.step);
            }
        }
        s += "\n### Exact replay (the paper's App. F)\n\n";
        if compared == 0 {
            s += "No replay checkpoint has an online checkpoint to compare with.\n";
        } else {
            let verdict = if worst == 0.0 { "identical: the replay retraces the online run exactly" } else if worst < 1e-3 { "equal to float noise" } else { "**different**: the replay does not retrace the online run" };
            let at = if worst == 0.0 { "at every checkpoint".to_string() } else { format!("at {worst_at}") };
            s += &format!(
                "{compared} replay checkpoints against the online run's at the same step (KL, golden win rate, classifier accuracy, training loss since the previous checkpoint, mean golden reward): largest difference {worst:.2e} {at}: {verdict}. (The paper: ~0.1 %. Per-step losses and final weights bit for bit, and a one-token change breaking the match: `tests/training.rs`.)\n"
            );
        }
    }
    for m in &present {
        if *m != Method::stream(1) {
            s += &between_online_and_offline(rows, seeds, *m, c);
        }
    }
    s
}

/// A run kind placed between online and offline: online against it (what it loses), then it against
/// offline IPO on D_golden when the rows have offline runs, each by the figure's verdict.
fn between_online_and_offline(rows: &[Row], seeds: &[u32], m: crate::experiments::method::Method, c: &crate::experiments::ExperimentConfig) -> String {
    let mut s = format!("\n### {}\n\n", m.label());
    s += &verdict::comparison_md(&verdict::compare(rows, seeds, Method::ONLINE, m, &c.matching));
    if rows.iter().any(|r| r.method == Method::OFFLINE) {
        s += "\n";
        s += &verdict::comparison_md(&verdict::compare(rows, seeds, m, Method::OFFLINE, &c.matching));
    }
    s
}

/// What "barely" means in Fig. 5's "offline IPO on late-vs-late pairs barely beats SFT": its gain over π_sft (peak
/// golden win rate − ½) is at most this share of offline IPO on D_golden's gain, seed by seed.
const BARELY: f32 = 0.25;

/// Fig. 5's finding, computed: per seed, late-vs-late's gain over π_sft as a share of D_golden's.
fn barely_beats_sft_md(rows: &[Row], seeds: &[u32]) -> String {
    use super::classifiers::Finding;
    let best = |m: Method, seed: u32| rows.iter().filter(|r| r.method == m && r.seed == seed && r.checkpoint.kl > super::stats::MIN_KL).map(|r| r.checkpoint.golden_win_rate).reduce(f32::max);
    let late = Method::pairs(crate::experiments::method::PairDataset::LateVsLate);
    let shares: Vec<(u32, f32)> = seeds.iter().filter_map(|&s| Some((s, best(late, s)? - 0.5, best(Method::OFFLINE, s)? - 0.5))).filter(|(_, _, g)| *g > 0.0).map(|(s, l, g)| (s, l / g)).collect();
    if shares.is_empty() {
        return String::new();
    }
    let e = estimate(&shares.iter().map(|p| p.1).collect::<Vec<_>>());
    let finding = match e.ci {
        Some(ci) if e.mean + ci <= BARELY => Finding::Shown,
        _ if e.mean <= BARELY => Finding::DirectionOnly,
        _ => Finding::NotShown,
    };
    let per: Vec<String> = shares.iter().map(|(s, v)| format!("{s}: {v:.2}")).collect();
    format!(
        "\n**Verdict (computed): late-vs-late barely beats SFT (Fig. 5) — {}.** Its gain over π_sft (peak golden win rate − ½) as a share of offline IPO on D_golden's, per seed: {} (mean {}). Rule: \"barely\" is a share of at most {BARELY}; shown when the interval lies at or below it, direction only when the mean does.\n",
        finding.words(),
        per.join(", "),
        show_plain(&e)
    )
}

/// Each seed's best win rate of A and of B among checkpoints inside the ln-KL range both reached, and
/// the difference across seeds: the peak comparison that does not credit a region only one visited.
fn shared_peaks_md(rows: &[Row], seeds: &[u32], a: Method, b: Method, kl_floor: f32) -> String {
    let mut diffs = vec![];
    let mut per = vec![];
    for &seed in seeds {
        let (pa, pb) = (verdict::points_above(rows, a, seed, kl_floor), verdict::points_above(rows, b, seed, kl_floor));
        let Some((ba, bb, (lo, hi))) = verdict::shared_peaks(&pa, &pb) else { continue };
        per.push(format!("{seed}: {ba:.3} vs {bb:.3} (KL {:.2} … {:.2})", lo.exp(), hi.exp()));
        diffs.push(ba - bb);
    }
    if diffs.is_empty() {
        return format!("{a} and {b} reached no common KL range.\n");
    }
    format!("{a} vs {b}, best checkpoint inside the shared range, per seed: {}. Difference across seeds: {}.\n", per.join("; "), show_plain(&estimate(&diffs)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::stats::binned;
    use crate::experiments::{ExperimentConfig, ExperimentResults};
    use crate::experiments::pipeline::Row;
    use crate::train::eval::Checkpoint;

    fn row(method: Method, seed: u32, kl: f32, win: f32) -> Row {
        let checkpoint = Checkpoint { step: 1, kl, golden_win_rate: win, ties: 0.0, classifier_accuracy: 0.5, proxy_win_rate: None, train_loss: None, responses: Default::default(), samples: vec![], ..Default::default() };
        Row { method: method.into(), seed, beta: 0.1, lr: 1e-3, run_steps: 1, align_seed: None, policy: None, checkpoint }
    }

    /// Online and offline at the same KLs (1, e, e²), three seeds, win rates `on + jitter` and `off + jitter`.
    fn verdict(on: f32, off: f32, jitter: f32) -> String {
        let mut rows = vec![];
        for seed in 0..3u32 {
            let j = jitter * (seed as f32 - 1.0);
            for k in 0..3 {
                let kl = (k as f32).exp();
                rows.push(row(Method::ONLINE, seed, kl, on + j));
                rows.push(row(Method::OFFLINE, seed, kl, off - j));
            }
        }
        let config = ExperimentConfig { seeds: vec![0, 1, 2], ..ExperimentConfig::preset("fig1-tiny").unwrap() };
        let results = ExperimentResults { config, backend: "test".into(), checkpoints: rows.clone(), proxy: vec![], oracle: vec![], sft_loss: vec![], timings: vec![], complete: true, shard: None, datasets: vec![], trl_names: crate::experiments::trl_names(), scaling_sft_loss: vec![], wall_seconds: None };
        let md = summary_md(&results, &binned(&rows, 3));
        md[md.find("## Verdict").unwrap()..].to_string()
    }

    #[test]
    fn verdict_follows_the_data() {
        assert!(verdict(0.8, 0.6, 0.01).contains("online > offline **holds**"), "{}", verdict(0.8, 0.6, 0.01));
        let direction = verdict(0.62, 0.6, 0.1);
        assert!(direction.contains("online > offline **holds in direction only**") && direction.contains("2 of 3"), "{direction}");
        assert!(verdict(0.5, 0.7, 0.01).contains("online > offline **is reversed**"));
    }

    #[test]
    fn repeats_over_one_proxy_are_reported_apart_and_left_out_of_the_verdict() {
        let mut rows = vec![];
        for seed in 0..3u32 {
            for k in 0..3 {
                let kl = (k as f32).exp();
                rows.push(row(Method::ONLINE, seed, kl, 0.8 + 0.01 * seed as f32));
                rows.push(row(Method::OFFLINE, seed, kl, 0.6));
                // Seed 0's repeat with alignment seed 9: online below offline there.
                if seed == 0 {
                    rows.push(Row { align_seed: Some(9), ..row(Method::ONLINE, 0, kl, 0.5) });
                    rows.push(Row { align_seed: Some(9), ..row(Method::OFFLINE, 0, kl, 0.6) });
                }
            }
        }
        let config = ExperimentConfig { seeds: vec![0, 1, 2], align_seeds: vec![9], ..ExperimentConfig::preset("fig1-tiny").unwrap() };
        let results = ExperimentResults { config, backend: "test".into(), checkpoints: rows.clone(), proxy: vec![], oracle: vec![], sft_loss: vec![], timings: vec![], complete: true, shard: None, datasets: vec![], trl_names: crate::experiments::trl_names(), scaling_sft_loss: vec![], wall_seconds: None };
        let md = summary_md(&results, &binned(&main_rows(&rows), 3));
        let (main, spread) = md.split_at(md.find("### Alignment seeds over one proxy").expect("the repeats' section"));
        assert!(main.contains("online > offline **holds**"), "the repeat does not enter the verdict: {main}");
        assert!(spread.contains("0: +0.200") && spread.contains("9: -0.100"), "{spread}");
    }

    #[test]
    fn no_common_kl_range_means_no_verdict() {
        let rows = vec![row(Method::ONLINE, 0, 5.0, 0.9), row(Method::ONLINE, 0, 6.0, 0.9), row(Method::OFFLINE, 0, 0.1, 0.6), row(Method::OFFLINE, 0, 0.12, 0.6)];
        let results = ExperimentResults { config: ExperimentConfig::preset("fig1-tiny").unwrap(), backend: "test".into(), checkpoints: rows.clone(), proxy: vec![], oracle: vec![], sft_loss: vec![], timings: vec![], complete: true, shard: None, datasets: vec![], trl_names: crate::experiments::trl_names(), scaling_sft_loss: vec![], wall_seconds: None };
        let md = summary_md(&results, &binned(&rows, 4));
        assert!(md.contains("online > offline **cannot be judged (no shared KL range)**") && md.contains("reached no common KL range"), "{md}");
    }

    #[test]
    fn bins_average_each_seed_then_across_seeds_with_a_t_interval() {
        // Seed 0 has two checkpoints in the bin (mean 0.6), seed 1 one (0.8): mean 0.7, t(1) = 12.706.
        let rows = vec![row(Method::ONLINE, 0, 1.0, 0.5), row(Method::ONLINE, 0, 1.1, 0.7), row(Method::ONLINE, 1, 1.05, 0.8), row(Method::ONLINE, 0, 0.0005, 0.1)];
        let bins = binned(&rows, 1);
        let e = bins[0].get(Method::ONLINE).unwrap();
        assert_eq!(e.seeds, 2);
        assert!((e.mean - 0.7).abs() < 1e-6, "{e:?}");
        let sd = (0.02f32).sqrt(); // sample sd of {0.6, 0.8}
        assert!((e.ci.unwrap() - 12.706 * sd / 2f32.sqrt()).abs() < 1e-4, "{e:?}");
        assert_eq!(peak(&rows, Method::ONLINE).unwrap().mean, (0.7 + 0.8) / 2.0, "the KL ≈ 0 start is left out of the peak");
    }

    /// Fig. 5's "barely beats SFT" is computed from the peaks: a late-vs-late gain a tenth of D_golden's is barely,
    /// one as large as D_golden's is not.
    #[test]
    fn barely_beats_sft_is_computed_from_the_peaks() {
        let late = Method::pairs(crate::experiments::method::PairDataset::LateVsLate);
        let rows = |late_peak: f32| -> Vec<Row> {
            (0..3u32).flat_map(|s| [row(Method::OFFLINE, s, 1.0, 0.9 + 0.01 * s as f32), row(late, s, 1.0, late_peak + 0.005 * s as f32)]).collect()
        };
        let md = barely_beats_sft_md(&rows(0.54), &[0, 1, 2]);
        assert!(md.contains("late-vs-late barely beats SFT (Fig. 5) — shown."), "{md}");
        let md = barely_beats_sft_md(&rows(0.85), &[0, 1, 2]);
        assert!(md.contains("— not shown.") && md.contains("0: 0.88"), "{md}");
    }
}
