//! Sweeps that outgrow one machine: `reproduce --shard i/n` runs disjoint slices of an experiment's runs and
//! `merge` combines them into exactly what one unsharded run writes.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};
use std::process::Command;

fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_alignment-gap")).args(args).env("XDG_RUNTIME_DIR", "/tmp").output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("alignment-gap-shard-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Two seeds × two β × three methods = 12 runs, so each of three shards holds runs of both seeds.
fn sweep(out: &Path, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec!["reproduce", "--preset", "fig1-tiny", "--backend", "cpu", "--seeds", "0,1", "--set", "betas=[0.1,0.2]", "--out", out.to_str().unwrap()];
    args.extend(extra);
    cli(&args)
}

/// The tiny preset with one `--set` (the experiment's knob), writing to `out`, with `extra` arguments.
fn tiny(set: &str, out: &Path, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec!["reproduce", "--preset", "fig1-tiny", "--backend", "cpu", "--set", set, "--out", out.to_str().unwrap()];
    args.extend(extra);
    cli(&args)
}

/// Runs `tiny(set)` as two shards and merges them; the merged checkpoints must equal `whole`'s. Returns the
/// shards' folders.
fn two_shards_merge_to(name: &str, set: &str, whole: &serde_json::Value) -> Vec<PathBuf> {
    let shards: Vec<PathBuf> = (1..=2).map(|i| tmp(&format!("{name}-part{i}"))).collect();
    for (i, dir) in shards.iter().enumerate() {
        let (ok, _, stderr) = tiny(set, dir, &["--shard", &format!("{}/2", i + 1)]);
        assert!(ok, "{stderr}");
    }
    let merged = tmp(&format!("{name}-merged"));
    let (ok, _, stderr) = cli(&["merge", "--out", merged.to_str().unwrap(), shards[0].to_str().unwrap(), shards[1].to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert_eq!(json(&merged.join("results.json"))["checkpoints"], whole["checkpoints"]);
    shards
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn three_shards_merged_equal_one_unsharded_run() {
    let whole = tmp("whole");
    let (ok, _, stderr) = sweep(&whole, &[]);
    assert!(ok, "{stderr}");
    let shards: Vec<PathBuf> = (1..=3).map(|i| tmp(&format!("part{i}"))).collect();
    for (i, dir) in shards.iter().enumerate() {
        let (ok, _, stderr) = sweep(dir, &["--shard", &format!("{}/3", i + 1)]);
        assert!(ok, "{stderr}");
        assert!(stderr.contains(&format!("shard {}/3: 4 of 12 runs", i + 1)), "{stderr}");
        let part = json(&dir.join("results.json"));
        assert_eq!(part["shard"], serde_json::json!({"index": i + 1, "count": 3}));
        assert_eq!(part["checkpoints"].as_array().unwrap().len(), 4 * 3, "4 runs of 3 checkpoints");
    }
    // Merging refuses an incomplete set before writing anything.
    let merged = tmp("merged");
    let args = |dirs: &[&PathBuf]| -> Vec<String> {
        let mut a = vec!["merge".to_string(), "--out".into(), merged.to_str().unwrap().into()];
        a.extend(dirs.iter().map(|d| d.to_str().unwrap().to_string()));
        a
    };
    let run = |a: Vec<String>| cli(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let (ok, _, stderr) = run(args(&[&shards[0], &shards[2]]));
    assert!(!ok && stderr.contains("shard 2/3 is missing"), "{stderr}");
    let (ok, _, stderr) = run(args(&[&shards[0], &shards[0], &shards[1]]));
    assert!(!ok && stderr.contains("shard 1/3 is given twice"), "{stderr}");
    assert!(!merged.exists());

    let (ok, stdout, stderr) = run(args(&[&shards[2], &shards[0], &shards[1]]));
    assert!(ok, "{stdout}\n{stderr}");
    let (a, b) = (json(&whole.join("results.json")), json(&merged.join("results.json")));
    for key in ["config", "backend", "checkpoints", "proxy", "sft_loss"] {
        assert_eq!(a[key], b[key], "merged {key} differs from the unsharded run's");
    }
    assert!(b.get("shard").is_none() && b.get("complete").is_none());
    for f in ["metrics.csv", "summary.md", "fig1.svg"] {
        assert_eq!(std::fs::read(whole.join(f)).unwrap(), std::fs::read(merged.join(f)).unwrap(), "merged {f} differs");
    }
    for seed in ["seed0", "seed1"] {
        let names = |root: &Path| {
            let mut v: Vec<String> = std::fs::read_dir(root.join("models").join(seed)).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
            v.sort();
            v
        };
        assert_eq!(names(&whole), names(&merged), "{seed}'s models");
        let m = "online_beta0.2_lr0.0005_steps12/model.safetensors";
        assert_eq!(std::fs::read(whole.join("models").join(seed).join(m)).unwrap(), std::fs::read(merged.join("models").join(seed).join(m)).unwrap());
    }
}

/// Runs of one config over disjoint seeds (a seed per session) merge into the run of all their seeds, the
/// seeds in order; an unfinished part is refused.
#[test]
fn runs_of_single_seeds_merge_into_the_run_of_all_of_them() {
    let whole = tmp("seeds-whole");
    let (ok, _, stderr) = sweep(&whole, &[]);
    assert!(ok, "{stderr}");
    let parts: Vec<PathBuf> = ["1", "0"].iter().map(|s| tmp(&format!("seed-{s}"))).collect();
    for (dir, seed) in parts.iter().zip(["1", "0"]) {
        let (ok, _, stderr) = cli(&["reproduce", "--preset", "fig1-tiny", "--backend", "cpu", "--seeds", seed, "--set", "betas=[0.1,0.2]", "--out", dir.to_str().unwrap()]);
        assert!(ok, "{stderr}");
    }
    let merged = tmp("seeds-merged");
    let (ok, stdout, stderr) = cli(&["merge", "--out", merged.to_str().unwrap(), parts[0].to_str().unwrap(), parts[1].to_str().unwrap()]);
    assert!(ok, "{stdout}\n{stderr}");
    let (a, b) = (json(&whole.join("results.json")), json(&merged.join("results.json")));
    for key in ["config", "backend", "checkpoints", "proxy", "sft_loss"] {
        assert_eq!(a[key], b[key], "merged {key} differs from the run of both seeds");
    }
    assert_eq!(std::fs::read(whole.join("summary.md")).unwrap(), std::fs::read(merged.join("summary.md")).unwrap());
    // A partial part is refused before anything is written.
    let mut partial = json(&parts[0].join("results.json"));
    partial["complete"] = serde_json::json!(false);
    std::fs::write(parts[0].join("results.json"), partial.to_string()).unwrap();
    let refused = tmp("seeds-refused");
    let (ok, _, stderr) = cli(&["merge", "--out", refused.to_str().unwrap(), parts[0].to_str().unwrap(), parts[1].to_str().unwrap()]);
    assert!(!ok && stderr.contains("has not finished"), "{stderr}");
    assert!(!refused.exists());
}

/// The data experiments on the tiny preset: offline IPO on each online run's stream D_online. In order
/// (replay) it reproduces every online checkpoint exactly; shuffled it is a run of its own. A shard holding a
/// stream run without its online run trains that online run again for its stream alone (unreported), so
/// the merged shards equal one unsharded run.
#[test]
fn runs_on_the_online_stream_replay_exactly_and_shard_like_any_run() {
    const SET: &str = "stream_windows=[1,0]";
    let whole = tmp("stream-whole");
    let (ok, _, stderr) = tiny(SET, &whole, &[]);
    assert!(ok, "{stderr}");
    let r = json(&whole.join("results.json"));
    let rows = r["checkpoints"].as_array().unwrap();
    let of = |m: &str| -> Vec<serde_json::Value> {
        rows.iter()
            .filter(|c| c["method"] == m)
            .map(|c| {
                let mut c = c.clone();
                c["method"] = "any".into();
                c
            })
            .collect()
    };
    let (online, replay, shuffled) = (of("online"), of("replay"), of("stream_shuffled"));
    assert_eq!(online.len(), 3);
    assert_eq!(replay, online, "the replay's checkpoints are the online run's, every metric");
    assert_ne!(shuffled, online, "the shuffled stream is another run");
    let summary = std::fs::read_to_string(whole.join("summary.md")).unwrap();
    assert!(summary.contains("### Exact replay") && summary.contains("largest difference 0.00e0 at every checkpoint: identical"), "{summary}");
    assert!(summary.contains("**online − stream_shuffled**"), "{summary}");

    // The stream is saved as a dataset file, recorded with its size and digest; trained on in order by
    // `train-offline`, it retraces the online run (the paper's App. F by hand), and a run longer than the
    // file is refused by name.
    let datasets = r["datasets"].as_array().unwrap();
    assert_eq!(datasets.len(), 1, "{datasets:?}");
    let d = &datasets[0];
    assert_eq!((d["name"].as_str().unwrap(), d["pairs"].as_u64().unwrap()), ("online_stream_beta0.1_lr0.0005", 12 * 16));
    let file = whole.join(d["file"].as_str().unwrap());
    assert_eq!(std::fs::metadata(&file).unwrap().len(), d["bytes"].as_u64().unwrap());
    assert_eq!(alignment_gap::train::dataset_file::sha256_hex(&std::fs::read(&file).unwrap()), d["sha256"].as_str().unwrap());
    let again = tmp("stream-train-offline");
    let offline = |extra: &[&str]| {
        let mut args = vec!["train-offline", "--data", file.to_str().unwrap(), "--from", whole.to_str().unwrap(), "--seed", "0", "--beta", "0.1", "--lr", "0.0005", "--backend", "cpu", "--out", again.to_str().unwrap()];
        args.extend(extra);
        cli(&args)
    };
    let (ok, stdout, stderr) = offline(&[]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("'s online run (seed 0, β 0.1, lr 0.0005, 12 steps): largest difference over 3 checkpoints 0.00e0 (identical)"), "{stdout}");
    let mut trained: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(again.join("checkpoints.json")).unwrap()).unwrap();
    trained.iter_mut().for_each(|c| c["method"] = "any".into());
    assert_eq!(trained, online, "the file's pairs in order retrace the online run, every metric");
    let (ok, _, stderr) = offline(&["--steps", "13"]);
    assert!(!ok && stderr.contains("--steps = 13 needs 13 × batch 16 = 208 pairs") && stderr.contains("a truncated stream?"), "{stderr}");
    let (ok, _, stderr) = tiny(SET, &tmp("stream-too-wide"), &["--set", "stream_windows=[32]"]);
    assert!(!ok && stderr.contains("stream_windows[0] = 32 batches is larger than the stream"), "{stderr}");

    // Runs in order: online, replay, shuffled, offline, golden; shard 2/2 takes the replay (and the offline
    // run) but not their online run.
    let shards = two_shards_merge_to("stream", SET, &r);
    let part2 = json(&shards[1].join("results.json"));
    let methods: Vec<&str> = part2["checkpoints"].as_array().unwrap().iter().map(|c| c["method"].as_str().unwrap()).collect();
    assert!(methods.contains(&"replay") && !methods.contains(&"online"), "{methods:?}");
}

/// The quality and dataset experiments (the paper's Figs 5 and 12) on the tiny preset: offline IPO on
/// golden-labelled pairs sampled from π_sft and the online run, one run per dataset at offline's setting,
/// with their own section in the summary; sharded and merged they equal one unsharded run (a shard without
/// the online run trains it again, unreported, for its policies).
#[test]
fn pair_datasets_run_beside_offline_and_shard_like_any_run() {
    const SET: &str = r#"pair_datasets=["sft_vs_early","late_vs_late"]"#;
    let whole = tmp("pairs-whole");
    let (ok, _, stderr) = tiny(SET, &whole, &[]);
    assert!(ok, "{stderr}");
    let r = json(&whole.join("results.json"));
    let rows = r["checkpoints"].as_array().unwrap();
    let setting = |m: &str| -> Vec<(serde_json::Value, serde_json::Value, serde_json::Value, serde_json::Value)> {
        rows.iter().filter(|c| c["method"] == m).map(|c| (c["beta"].clone(), c["lr"].clone(), c["run_steps"].clone(), c["step"].clone())).collect()
    };
    let offline = setting("offline");
    assert!(!offline.is_empty());
    for m in ["sft_vs_early", "late_vs_late"] {
        assert_eq!(setting(m), offline, "{m} runs at offline's β, lr and length, with its checkpoints");
    }
    let wins = |m: &str| -> Vec<f64> { rows.iter().filter(|c| c["method"] == m).map(|c| c["golden_win_rate"].as_f64().unwrap()).collect() };
    assert_ne!(wins("sft_vs_early"), wins("offline"), "another dataset is another run");
    let summary = std::fs::read_to_string(whole.join("summary.md")).unwrap();
    assert!(summary.contains("## Which pairs teach") && summary.contains("**sft_vs_early − offline**") && summary.contains("**late_vs_late − offline**"), "{summary}");
    assert!(summary.contains("Peak golden win rate") && summary.contains("late_vs_late "), "{summary}");

    two_shards_merge_to("pairs", SET, &r);
    // Pair datasets are sampled from the online run of each run's own lr: not with an offline sweep.
    let (ok, _, stderr) = tiny(SET, &tmp("pairs-sweep"), &["--set", "offline_lrs=[0.001]"]);
    assert!(!ok && stderr.contains("pair_datasets needs offline_lrs = []"), "{stderr}");
}

/// The tiny preset with `set`: each of `arms` is a run beside online with online's checkpoints, and the
/// summary holds each of `sections` (structure, not the outcome).
fn arms_beside_online(name: &str, set: &str, arms: &[&str], sections: &[&str]) {
    let out = tmp(name);
    let (ok, _, stderr) = tiny(set, &out, &[]);
    assert!(ok, "{stderr}");
    let r = json(&out.join("results.json"));
    let steps = |m: &str| -> Vec<u64> { r["checkpoints"].as_array().unwrap().iter().filter(|c| c["method"] == m).map(|c| c["step"].as_u64().unwrap()).collect() };
    for arm in arms {
        assert_eq!(steps(arm), steps("online"), "{arm}");
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    for section in sections {
        assert!(summary.contains(section), "{section} missing from {summary}");
    }
}

/// Semi-online IPO: one run per refresh interval (the exact equality of refresh 1 and online is in
/// tests/training.rs).
#[test]
fn semi_online_runs_beside_online() {
    arms_beside_online("semi-online", "semi_online=[4,0]", &["semi_online4", "semi_online_never"], &["## Semi-online IPO", "**online − semi_online4**", "**semi_online_never − offline**"]);
}

/// The shuffle windows of Fig. 13: one run per window, each its own section in the summary.
#[test]
fn shuffle_windows_run_beside_online() {
    arms_beside_online("windows", "stream_windows=[2,8]", &["stream_window2", "stream_window8"], &["**online − stream_window2**", "**stream_window8 − offline**"]);
}
