//! The paper's policy experiments at tiny scale (structure and sanity, not the findings): the classifier
//! analyses (Figs 6, 7, 8, self-classification), the Best-of-2 loss (Fig. 9), the loss family and IPO-MD.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};
use std::process::Command;

fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_alignment-gap")).args(args).env("XDG_RUNTIME_DIR", "/tmp").output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("alignment-gap-analyses-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The tiny preset with `sets` (`--set` values), writing to `out`, with its stage cache in `cache`.
fn tiny(sets: &[&str], out: &Path, cache: &Path) -> (serde_json::Value, String) {
    let mut args = vec!["reproduce", "--preset", "fig1-tiny", "--backend", "cpu", "--out", out.to_str().unwrap(), "--cache", cache.to_str().unwrap(), "--overwrite"];
    for s in sets {
        args.extend(["--set", s]);
    }
    let (ok, stdout, stderr) = cli(&args);
    assert!(ok, "{stdout}\n{stderr}");
    (serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap(), stderr)
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const ALL: &str = r#"analyses=["generation_vs_classification","over_training","self_classification"]"#;

/// Asking for the analyses measures their metrics at every checkpoint without changing any other number: a run
/// cached before (without self-classification) is trained again, identically, and its richer checkpoints are
/// then reused; each analysis writes its figure and its computed verdict.
#[test]
fn classifier_analyses_measure_their_metrics_and_write_their_figures() {
    let (out, cache) = (tmp("plain"), tmp("cache"));
    let (plain, _) = tiny(&[], &out, &cache);
    let (with, stderr) = tiny(&[ALL], &out, &cache);
    assert!(stderr.contains("SFT (cached)") && !stderr.contains("(12 steps) (cached)"), "runs without the metric must train again:\n{stderr}");
    let (a, b) = (plain["checkpoints"].as_array().unwrap(), with["checkpoints"].as_array().unwrap());
    assert_eq!(a.len(), b.len());
    for (p, w) in a.iter().zip(b) {
        for k in ["step", "kl", "golden_win_rate", "classifier_accuracy", "train_loss", "method"] {
            assert_eq!(p[k], w[k], "{k} changed by measuring more");
        }
        assert!(w["chosen_logratio"].as_f64().is_some_and(f64::is_finite), "{w}");
        let pairs = w["self_classified_pairs"].as_u64().unwrap();
        assert!(pairs <= 64, "{w}");
        if w["step"] == 0 {
            // π_sft against itself: h = 0 on every pair, so exactly ½.
            assert_eq!(w["self_classifier_accuracy"].as_f64(), Some(0.5), "{w}");
            assert_eq!(w["chosen_logratio"].as_f64(), Some(0.0), "{w}");
        } else if pairs > 0 {
            assert!((0.0..=1.0).contains(&w["self_classifier_accuracy"].as_f64().unwrap()), "{w}");
        }
    }
    // Measured now: a rerun reuses them.
    let (_, stderr) = tiny(&[ALL], &out, &cache);
    assert!(stderr.contains("(12 steps) (cached)"), "{stderr}");
    let summary = read(out.join("summary.md"));
    for section in ["## Generation vs classification (the paper's Fig. 7)", "## Classification over training (the paper's Fig. 8)", "## Self-classification (the paper's §5)"] {
        assert!(summary.contains(section), "{section} missing:\n{summary}");
    }
    assert_eq!(summary.matches("Verdict (computed)").count(), 3, "Figure 1's and two analyses' verdicts:\n{summary}");
    assert!(summary.contains("- **Offline's classifier accuracy above online's at step 12:"), "{summary}");
    for f in ["fig7.svg", "fig8.svg", "selfclass.svg"] {
        assert!(read(out.join(f)).contains("<svg"), "{f}");
    }
    let csv = read(out.join("metrics.csv"));
    assert!(csv.lines().next().unwrap().ends_with(",chosen_logratio,self_classifier_accuracy,policy"));
    assert!(csv.lines().skip(1).all(|l| l.split(',').skip(18).take(2).all(|v| !v.is_empty())), "every checkpoint has both values:\n{csv}");
    let trl: Vec<&str> = with["trl_names"].as_array().unwrap().iter().map(|n| n["trl"].as_str().unwrap()).collect();
    assert!(trl.contains(&"objective/kl") && trl.contains(&"rewards/accuracies") && trl.contains(&"rewards/chosen"), "{trl:?}");
    // summarize redraws the analyses from results.json alone, byte for byte.
    let before = read(out.join("fig8.svg"));
    std::fs::remove_file(out.join("fig8.svg")).unwrap();
    assert!(cli(&["summarize", out.to_str().unwrap()]).0);
    assert_eq!(read(out.join("fig8.svg")), before);
    // An analysis that does not exist is refused by name.
    let (ok, _, stderr) = cli(&["reproduce", "--preset", "fig1-tiny", "--backend", "cpu", "--out", tmp("bad").to_str().unwrap(), "--set", r#"analyses=["fig99"]"#]);
    assert!(!ok && stderr.contains("analyses") && stderr.contains("generation_vs_classification"), "{stderr}");
}

/// Fig. 9: Best-of-2 trains every arm (online, offline, the shuffled stream) with its loss; figure and summary name
/// it, not IPO.
#[test]
fn best_of_2_trains_every_arm_and_names_its_loss() {
    let out = tmp("bo2");
    let (r, _) = tiny(&[r#"loss="best_of2""#, "stream_windows=[0]"], &out, &out.join("cache"));
    let methods: Vec<&str> = r["checkpoints"].as_array().unwrap().iter().map(|c| c["method"].as_str().unwrap()).collect();
    for m in ["online", "offline", "stream_shuffled"] {
        assert!(methods.contains(&m), "{m}: {methods:?}");
    }
    // Best-of-2 moves the policy: SFT on the preferred response raises its likelihood.
    assert!(r["checkpoints"].as_array().unwrap().iter().any(|c| c["kl"].as_f64().unwrap() > 1e-3));
    let summary = read(out.join("summary.md"));
    assert!(summary.contains("Every run trained with the Best-of-2 loss") && summary.contains("**online − stream_shuffled**") && !summary.contains("IPO"), "{summary}");
    assert!(read(out.join("fig1.svg")).contains("online vs offline Best-of-2"));
}

/// The loss family: each loss's online and offline runs beside the config's own, each judged and drawn apart;
/// the config's own loss, a loss twice, or the offline sweep beside it are refused by name.
#[test]
fn the_loss_family_runs_each_loss_beside_the_figures_own() {
    let out = tmp("family");
    let (r, _) = tiny(&[r#"loss_family=["dpo","slic"]"#], &out, &out.join("cache"));
    let cps = r["checkpoints"].as_array().unwrap();
    let steps = |m: &str| -> Vec<u64> { cps.iter().filter(|c| c["method"] == m).map(|c| c["step"].as_u64().unwrap()).collect() };
    for m in ["online_dpo", "offline_dpo", "online_slic", "offline_slic"] {
        assert_eq!(steps(m), steps("online"), "{m}: the same checkpoints as IPO's runs");
    }
    // Another loss trains another policy from the same π_sft.
    let last = |m: &str| cps.iter().rfind(|c| c["method"] == m).unwrap()["kl"].clone();
    assert_ne!(last("online_dpo"), last("online"));
    let summary = read(out.join("summary.md"));
    for section in ["## The loss family", "| DPO |", "| SLiC |", "**online DPO − offline DPO**", "**online SLiC − offline SLiC**"] {
        assert!(summary.contains(section), "{section} missing:\n{summary}");
    }
    assert!(read(out.join("fig1-dpo.svg")).contains("online vs offline DPO"));
    assert!(read(out.join("fig1-slic.svg")).contains("online vs offline SLiC"));
    assert!(!read(out.join("fig1.svg")).contains("online DPO"), "Figure 1 keeps its own loss's runs");
    for (set, field) in [(r#"loss_family=["ipo"]"#, "loss_family[0]"), (r#"loss_family=["dpo","dpo"]"#, "loss_family[1]"), (r#"loss_family=["hinge"]"#, "loss_family")] {
        let (ok, _, stderr) = cli(&["reproduce", "--preset", "fig1-tiny", "--backend", "cpu", "--out", tmp("bad-family").to_str().unwrap(), "--set", set]);
        assert!(!ok && stderr.contains(field), "{set}: {stderr}");
    }
    let (ok, _, stderr) = cli(&["reproduce", "--preset", "fig1-tiny", "--backend", "cpu", "--out", tmp("bad-sweep").to_str().unwrap(), "--set", r#"loss_family=["dpo"]"#, "--set", "offline_lrs=[0.001]"]);
    assert!(!ok && stderr.contains("loss_family needs offline_lrs = []"), "{stderr}");
}

/// Fig. 6: every online checkpoint measures the stretch of its own stream before it (the proxy's labels and the
/// policy), every offline checkpoint the stretch of its online run's checkpoint of the nearest KL.
#[test]
fn stream_classification_measures_online_and_offline_on_the_online_stream() {
    let out = tmp("stream");
    let (r, _) = tiny(&[r#"analyses=["stream_classification"]"#], &out, &out.join("cache"));
    let cps = r["checkpoints"].as_array().unwrap();
    let of = |m: &str| -> Vec<&serde_json::Value> { cps.iter().filter(|c| c["method"] == m && c["step"] != 0).collect() };
    let online_steps: Vec<u64> = of("online").iter().map(|c| c["step"].as_u64().unwrap()).collect();
    for c in of("online") {
        assert_eq!(c["stream_step"], c["step"], "{c}");
        // Measured on the stretch's distinct, golden-untied pairs: some, and at most the stretch.
        assert!((1..=512).contains(&c["stream_pairs"].as_u64().unwrap()), "{c}");
        for k in ["stream_proxy_accuracy", "stream_policy_accuracy"] {
            assert!((0.0..=1.0).contains(&c[k].as_f64().unwrap()), "{k}: {c}");
        }
    }
    for c in of("offline") {
        assert!(online_steps.contains(&c["stream_step"].as_u64().unwrap()), "{c}");
        assert!(c["stream_proxy_accuracy"].is_null() && (0.0..=1.0).contains(&c["stream_policy_accuracy"].as_f64().unwrap()), "{c}");
    }
    // The nearest KL: no other online checkpoint is closer in ln KL than the one each offline checkpoint read.
    let ln_kl = |c: &serde_json::Value| c["kl"].as_f64().unwrap().max(1e-6).ln();
    for c in of("offline") {
        let read = of("online").into_iter().find(|o| o["step"] == c["stream_step"]).unwrap();
        assert!(of("online").iter().all(|o| (ln_kl(o) - ln_kl(c)).abs() >= (ln_kl(read) - ln_kl(c)).abs() - 1e-9), "{c}");
    }
    assert!(cps.iter().filter(|c| c["method"] == "online_golden").all(|c| c.get("stream_step").is_none()), "golden-labelled runs have no proxy labels to judge");
    let summary = read(out.join("summary.md"));
    assert!(summary.contains("## Who classifies the online stream (the paper's Fig. 6)") && summary.contains("- **The proxy classifies the online stream better than the online policy:"), "{summary}");
    assert!(read(out.join("fig6.svg")).contains("<svg"));
    assert!(r["datasets"].as_array().unwrap().iter().any(|d| d["name"].as_str().unwrap().starts_with("online_stream")), "the stream is saved beside the results");
}

/// IPO-MD: one online run per mixture weight beside online, with online's checkpoints; weights outside [0, 1) or
/// off the allowed stops are refused by name.
#[test]
fn ipo_md_runs_beside_online_and_refuses_bad_weights() {
    let out = tmp("ipo-md");
    let (r, _) = tiny(&["mixtures=[0.25,0.75]"], &out, &out.join("cache"));
    let cps = r["checkpoints"].as_array().unwrap();
    let steps = |m: &str| -> Vec<u64> { cps.iter().filter(|c| c["method"] == m).map(|c| c["step"].as_u64().unwrap()).collect() };
    for m in ["ipo_md25", "ipo_md75"] {
        assert_eq!(steps(m), steps("online"), "{m}");
    }
    let last = |m: &str| cps.iter().rfind(|c| c["method"] == m).unwrap()["golden_win_rate"].clone();
    assert_ne!(cps.iter().rfind(|c| c["method"] == "ipo_md25").unwrap()["kl"], cps.iter().rfind(|c| c["method"] == "online").unwrap()["kl"], "{:?} {:?}", last("ipo_md25"), last("online"));
    let summary = read(out.join("summary.md"));
    assert!(summary.contains("## Beyond the paper: IPO-MD") && summary.contains("**online − ipo_md25**") && summary.contains("**ipo_md75 − offline**"), "{summary}");
    for (set, says) in [("mixtures=[1.0]", "mixtures[0] = 1 is out of range [0, 1)"), ("mixtures=[-0.5]", "mixtures[0] = -0.5 is out of range"), ("mixtures=[0.333]", "mixtures[0] = 0.333: each must be a whole percent"), ("mixtures=[0]", "0 is online IPO itself")] {
        let (ok, _, stderr) = cli(&["reproduce", "--preset", "fig1-tiny", "--backend", "cpu", "--out", tmp("bad-md").to_str().unwrap(), "--set", set]);
        assert!(!ok && stderr.contains(says), "{set}: {stderr}");
    }
}

/// Scaling (Figs 10 and 11): every run again at another policy size, from that size's own SFT policy over the seed's
/// proxy, without changing one number of the config's own runs; the sizes' figures and verdicts are written, a
/// rerun reuses every run, and a ladder that is not one (a size twice, an unparsable or out-of-range size, or one
/// too large to train in a tab) is refused by its field.
#[test]
fn scaling_runs_every_method_at_each_size_and_refuses_bad_ladders() {
    let (plain_out, out) = (tmp("scaling-plain"), tmp("scaling"));
    let cache = out.join("cache");
    let (plain, _) = tiny(&["stream_windows=[0]"], &plain_out, &cache);
    let (r, stderr) = tiny(&["stream_windows=[0]", r#"scaling=["1x16h1"]"#], &out, &cache);
    assert!(stderr.contains("seed 0: SFT 1x16h1") && !stderr.contains("SFT 1x16h1 (cached)"), "{stderr}");
    let cps = r["checkpoints"].as_array().unwrap();
    let (own, sized): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) = cps.iter().partition(|c| c.get("policy").is_none());
    assert_eq!(own, plain["checkpoints"].as_array().unwrap().iter().collect::<Vec<_>>(), "the config's own runs are unchanged by the ladder");
    assert!(sized.iter().all(|c| c["policy"] == "1x16h1"));
    let methods = |rows: &[&serde_json::Value]| -> Vec<String> {
        let mut m: Vec<String> = rows.iter().map(|c| c["method"].as_str().unwrap().to_string()).collect();
        m.dedup();
        m
    };
    assert_eq!(methods(&sized), methods(&own), "every method at the other size");
    assert_eq!(sized.len(), own.len(), "the same checkpoints");
    // The other size moves its own way: it is another policy, not a copy.
    assert_ne!(sized.last().unwrap()["kl"], own.last().unwrap()["kl"]);
    assert_eq!(r["scaling_sft_loss"][0]["policy"], "1x16h1");
    assert!(out.join("models/seed0/sft_1x16h1/model.safetensors").exists() && out.join("models/seed0/online_beta0.1_lr0.0005_steps12_1x16h1/model.safetensors").exists());
    assert!(r["datasets"].as_array().unwrap().iter().any(|d| d["name"] == "online_stream_beta0.1_lr0.0005_1x16h1"), "{}", r["datasets"]);
    let summary = read(out.join("summary.md"));
    for line in ["## Scaling (the paper's Figs 10 and 11)", "- **Larger policies peak higher:", "- **The gap to offline closes slowly:", "- **The gap to the shuffled online stream closes faster"] {
        assert!(summary.contains(line), "{line} missing:\n{summary}");
    }
    assert!(read(out.join("fig10.svg")).contains("policy 1x16h1") && read(out.join("fig11.svg")).contains("<svg"));
    let csv = read(out.join("metrics.csv"));
    assert!(csv.lines().next().unwrap().ends_with(",policy") && csv.lines().any(|l| l.ends_with(",1x16h1")));
    let (_, stderr) = tiny(&["stream_windows=[0]", r#"scaling=["1x16h1"]"#], &out, &cache);
    assert!(stderr.contains("SFT 1x16h1 (cached)") && stderr.contains("(12 steps, policy 1x16h1) (cached)"), "{stderr}");
    for (set, says) in [
        (r#"scaling=["1x32h2"]"#, "scaling[0] = 1x32h2: each size of the scaling ladder must differ from policy"),
        (r#"scaling=["1x16h1","1x16h1"]"#, "scaling[1] = 1x16h1"),
        (r#"scaling=["2x30h4"]"#, "scaling[0].d_model = 30 must be divisible by scaling[0].heads = 4"),
        (r#"scaling=["16x64h4"]"#, "scaling[0].layers = 16 is out of range"),
        (r#"scaling=["12x1024h16"]"#, "scaling[0] = 12x1024h16: training it on batches of 16 pairs"),
        (r#"scaling=["big"]"#, "'big' is not a policy size LxDhH"),
    ] {
        let (ok, _, stderr) = cli(&["reproduce", "--preset", "fig1-tiny", "--backend", "cpu", "--out", tmp("bad-ladder").to_str().unwrap(), "--set", set]);
        assert!(!ok && stderr.contains(says), "{set}: {stderr}");
    }
}

/// The proxy map: online again labelled by the proxy's run at earlier steps; each rung's held-out accuracy in the
/// proxy report, its runs beside online's, the summary's section and proxy-map.svg. Over a cache that holds the
/// full proxy (a run without the map), only the rungs are trained (the proxy's run again up to the last), and
/// every number is the one a fresh run gives.
#[test]
fn the_proxy_map_runs_online_with_each_rung_and_reads_it_against_accuracy() {
    let (plain_out, cache) = (tmp("map-plain"), tmp("map-cache"));
    let (plain, _) = tiny(&[], &plain_out, &cache);
    let out = tmp("map");
    let (r, stderr) = tiny(&["proxy_map=[10, 20]"], &out, &cache);
    assert!(stderr.contains("proxy PM, again up to the proxy map's last step") && stderr.contains("offline β=0.1 lr=0.0005 (12 steps) (cached)"), "{stderr}");
    let ladder = r["proxy"][0]["ladder"].as_array().unwrap();
    assert_eq!(ladder.iter().map(|g| g["step"].as_u64().unwrap()).collect::<Vec<_>>(), [10, 20]);
    for g in ladder {
        let h = &g["heldout"];
        assert!((0.0..=1.0).contains(&h["tie_free"].as_f64().unwrap()) && (0.0..=1.0).contains(&h["with_ties"].as_f64().unwrap()), "{g}");
    }
    assert_eq!(r["proxy"][0]["heldout_accuracy"], plain["proxy"][0]["heldout_accuracy"], "the full proxy is the cached one");
    let cps = r["checkpoints"].as_array().unwrap();
    let betas: Vec<f64> = r["config"]["betas"].as_array().unwrap().iter().map(|b| b.as_f64().unwrap()).collect();
    for m in ["online_pm10", "online_pm20"] {
        for &b in &betas {
            assert!(cps.iter().any(|c| c["method"] == m && c["beta"].as_f64() == Some(b)), "{m} at β {b}");
        }
    }
    // Everything else is the plain run's, bit for bit.
    let others: Vec<&serde_json::Value> = cps.iter().filter(|c| !c["method"].as_str().unwrap().contains("_pm")).collect();
    assert_eq!(others.len(), plain["checkpoints"].as_array().unwrap().len());
    for (a, b) in others.iter().zip(plain["checkpoints"].as_array().unwrap()) {
        assert_eq!(*a, b);
    }
    let summary = read(out.join("summary.md"));
    assert!(summary.contains("## The proxy map") && summary.contains("| proxy at step 10 |") && summary.contains("| golden labels |"), "{summary}");
    assert!(summary.contains("Computed threshold") || summary.contains("Too few points"), "{summary}");
    assert!(read(out.join("proxy-map.svg")).contains("<svg"));
    // A fresh cache gives the same rungs and runs (the proxy's run trained once, keeping them on the way).
    let (fresh_out, fresh_cache) = (tmp("map-fresh"), tmp("map-fresh-cache"));
    let (fresh, stderr) = tiny(&["proxy_map=[10, 20]"], &fresh_out, &fresh_cache);
    assert!(!stderr.contains("again up to"), "{stderr}");
    assert_eq!(fresh["proxy"], r["proxy"]);
    assert_eq!(fresh["checkpoints"], r["checkpoints"]);
    // A step the proxy's run does not have is refused by name.
    let (ok, _, stderr) = cli(&["reproduce", "--preset", "fig1-tiny", "--backend", "cpu", "--out", tmp("map-bad").to_str().unwrap(), "--set", "proxy_map=[40]"]);
    assert!(!ok && stderr.contains("proxy_map[0] = 40") && stderr.contains("1..=30"), "{stderr}");
}

/// The proxy's trunk is its own size: a trunk of another size starts from that size's SFT policy (trained, cached and
/// named in the progress), the proxy is that size, and the policy's own SFT and D_golden are unchanged. A size
/// the engine cannot run is refused by its key.
#[test]
fn the_proxy_trunk_has_its_own_size() {
    let cache = tmp("trunk-cache");
    let (own, _) = tiny(&[], &tmp("trunk-own"), &cache);
    let other_dir = tmp("trunk-other");
    let (other, stderr) = tiny(&["proxy.trunk=2x16h2"], &other_dir, &cache);
    assert!(stderr.contains("seed 0: SFT 2x16h2"), "the trunk's SFT is trained:\n{stderr}");
    assert!(stderr.contains("seed 0: SFT (cached)"), "the policy's SFT is the same one:\n{stderr}");
    assert_eq!(other["config"]["proxy"]["trunk"], "2x16h2");
    assert_eq!(own["config"]["proxy"]["trunk"], serde_json::Value::Null);
    assert_eq!(other["sft_loss"], own["sft_loss"], "the policy's SFT does not depend on the proxy's trunk");
    assert_ne!(other["proxy"], own["proxy"], "another trunk is another proxy");
    assert!(read(other_dir.join("summary.md")).contains("(its own trunk, 2x16h2, started from the SFT policy of that size)"));
    // The cached proxy of the other trunk is a 2-layer, 16-wide model.
    let mut widths = vec![];
    for entry in std::fs::read_dir(&cache).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with("proxy-") && !entry.file_name().to_string_lossy().contains("-step") {
            let config: serde_json::Value = serde_json::from_str(&read(entry.path().join("config.json"))).unwrap();
            widths.push((config["n_layer"].as_u64().unwrap(), config["n_embd"].as_u64().unwrap()));
        }
    }
    widths.sort();
    assert_eq!(widths, vec![(1, 32), (2, 16)], "one proxy per trunk");
    let (ok, _, stderr) = cli(&["reproduce", "--preset", "fig1-tiny", "--backend", "cpu", "--out", tmp("trunk-bad").to_str().unwrap(), "--set", "proxy.trunk=2x30h4"]);
    assert!(!ok && stderr.contains("proxy.trunk.d_model = 30 must be divisible by proxy.trunk.heads = 4"), "{stderr}");
    let (ok, _, stderr) = cli(&["reproduce", "--preset", "fig1-tiny", "--backend", "cpu", "--out", tmp("trunk-bad2").to_str().unwrap(), "--set", "proxy.trunk=large"]);
    assert!(!ok && stderr.contains("proxy.trunk") && stderr.contains("LxDhH"), "{stderr}");
}

/// With the proxy cached (shipped stages, a rerun), only the start of D_golden that the offline runs read is
/// drawn, chunk for chunk the start of the whole; every number is the one drawing all of it gives.
#[test]
fn a_cached_proxy_draws_only_the_start_of_d_golden_the_offline_runs_read() {
    let (out, cache) = (tmp("prefix-full"), tmp("prefix-cache"));
    let sets = ["d_golden=2048"];
    let (full, stderr) = tiny(&sets, &out, &cache);
    assert!(!stderr.contains("its first"), "the proxy is trained on all of D_golden:\n{stderr}");
    // The stages alone (SFT and proxy), no cached runs: the runs train again over the shorter D_golden.
    let stages_only = tmp("prefix-stages");
    std::fs::create_dir_all(&stages_only).unwrap();
    for entry in std::fs::read_dir(&cache).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if name.starts_with("sft-") || name.starts_with("proxy-") {
            let to = stages_only.join(&name);
            if entry.path().is_dir() {
                std::fs::create_dir_all(&to).unwrap();
                for f in std::fs::read_dir(entry.path()).unwrap() {
                    let f = f.unwrap();
                    std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
                }
            } else {
                std::fs::copy(entry.path(), &to).unwrap();
            }
        }
    }
    let (again, stderr) = tiny(&sets, &tmp("prefix-again"), &stages_only);
    // Offline reads 12 steps × 16 pairs: the first chunk of 512.
    assert!(stderr.contains("D_golden (its first 512 of 2048 pairs") && stderr.contains("offline β=0.1 lr=0.0005 (12 steps)\n"), "{stderr}");
    assert_eq!(again["checkpoints"], full["checkpoints"]);
    assert_eq!(again["proxy"], full["proxy"]);
}
