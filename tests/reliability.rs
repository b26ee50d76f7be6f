//! What a careful user and a failing machine do to `reproduce`: bad settings are refused by name before
//! anything runs, a write that fails late keeps every finished run and a rerun completes the rest, two runs
//! sharing a cache do not trip over each other, and an output folder of another config is never silently
//! overwritten.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};
use std::process::Command;

fn cli(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_alignment-gap")).args(args).envs(env.iter().copied()).env("XDG_RUNTIME_DIR", "/tmp").output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("alignment-gap-rel-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn tiny(out: &Path, extra: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut args = vec!["reproduce", "--preset", "fig1-tiny", "--backend", "cpu", "--out", out.to_str().unwrap()];
    args.extend(extra);
    cli(&args, env)
}

fn results(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap()
}

/// Each value the validator used to accept (and that then panicked, trained to NaN or reported nonsense)
/// is refused before anything runs, naming its own key and range.
#[test]
fn bad_settings_are_refused_by_their_own_key_before_anything_runs() {
    let out = tmp("bad-settings");
    let cases: [(&str, &str); 14] = [
        ("proxy.eval_every=0", "proxy.eval_every = 0 is out of range 1..="),
        ("proxy.adamw.lr=1e30", "proxy.adamw.lr = "),
        ("proxy.steps=0", "proxy.steps = 0 is out of range"),
        ("sft.adamw.lr=-1", "sft.adamw.lr = -1 is out of range (0, 1]"),
        ("sft.adamw.lr=1e30", "sft.adamw.lr = "),
        ("sft.adamw.beta1=2", "sft.adamw.beta1 = 2 is out of range [0, 1)"),
        ("sft.adamw.eps=0", "sft.adamw.eps = 0 is out of range"),
        ("sft.adamw.weight_decay=-0.5", "sft.adamw.weight_decay = -0.5"),
        ("sft.adamw.max_grad_norm=0", "sft.adamw.max_grad_norm = 0"),
        ("sft.warmup_steps=4294967295", "sft.warmup_steps = 4294967295 is out of range 0..=60"),
        ("sft.steps=0", "sft.steps = 0 is out of range"),
        ("sft.batch=0", "sft.batch = 0 is out of range 1..=1024"),
        ("batch=100000", "batch = 100000 is out of range 1..=1024"),
        ("d_golden=8", "d_golden = 8 is out of range 32..="),
    ];
    for (set, want) in cases {
        let (ok, _, stderr) = tiny(&out, &["--set", set], &[]);
        assert!(!ok, "{set} was accepted");
        assert!(stderr.contains(want) && stderr.contains('('), "{set}: expected '{want}' with a reason, got: {stderr}");
        assert!(!stderr.contains("seed 0:") && !stderr.contains("panicked"), "{set}: something ran: {stderr}");
    }
    let (ok, _, stderr) = tiny(&out, &["--seeds", "0,0"], &[]);
    assert!(!ok && stderr.contains("seeds: 0 appears twice"), "{stderr}");
    assert!(!out.exists(), "a refused run must not create its output folder");
}

/// The fault-injection test: the output folder becomes unwritable (as a read-only remount or a full disk
/// would make it) after the first alignment run. The run fails naming the file, results.json keeps the
/// finished run, and a rerun completes the rest with the same checkpoints as a run that never failed.
#[test]
fn a_late_write_failure_keeps_finished_runs_and_a_rerun_completes_them() {
    let out = tmp("fault");
    let (ok, _, stderr) = tiny(&out, &[], &[("ALIGNMENT_GAP_FAULT_READONLY_AFTER_RUNS", "1")]);
    assert!(!ok, "the injected fault must fail the run");
    assert!(stderr.contains("Read-only file system") && stderr.contains(out.to_str().unwrap()), "the failed file is named: {stderr}");
    assert!(stderr.contains("keeps the 1 alignment run(s) finished before the failure"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let kept = results(&out);
    assert_eq!(kept["complete"], false, "a partial results.json says so");
    let rows = kept["checkpoints"].as_array().unwrap();
    // One finished run of 12 steps, a checkpoint every 6: steps 0, 6, 12.
    assert_eq!(rows.iter().map(|r| r["step"].as_u64().unwrap()).collect::<Vec<_>>(), vec![0, 6, 12], "{kept}");
    assert_eq!(kept["proxy"].as_array().unwrap().len(), 1);
    assert_eq!(std::fs::read_to_string(out.join("metrics.csv")).unwrap().lines().count(), 1 + rows.len());
    let (ok, _, stderr) = cli(&["summarize", out.to_str().unwrap()], &[]);
    assert!(ok, "a partial results.json can be summarised: {stderr}");
    assert!(std::fs::read_to_string(out.join("summary.md")).unwrap().contains("Partial results"));

    // The rerun takes SFT, the proxy and the finished run from the cache and completes the other two.
    let (ok, stdout, stderr) = tiny(&out, &[], &[]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stderr.contains("resuming") && stderr.contains("SFT (cached)") && stderr.contains("proxy PM (cached)"), "{stderr}");
    assert_eq!(stderr.matches("steps) (cached)").count(), 1, "exactly the finished run is reused: {stderr}");
    let resumed = results(&out);
    assert!(resumed.get("complete").is_none(), "a finished results.json carries no 'complete: false'");
    for m in ["sft", "proxy", "online_beta0.1_lr0.0005_steps12", "offline_beta0.1_lr0.0005_steps12", "online_golden_beta0.1_lr0.0005_steps12"] {
        assert!(out.join("models/seed0").join(m).join("model.safetensors").is_file(), "{m}");
    }

    // The same command in a fresh folder, never interrupted, gives the same checkpoints.
    let clean = tmp("fault-clean");
    let (ok, _, stderr) = tiny(&clean, &[], &[]);
    assert!(ok, "{stderr}");
    assert_eq!(resumed["checkpoints"], results(&clean)["checkpoints"], "a resumed run differs from an uninterrupted one");

    // A cached stage whose model is damaged (NaN weights) is rebuilt, not used.
    let sft = std::fs::read_dir(out.join("cache")).unwrap().map(|e| e.unwrap().path()).find(|p| p.file_name().unwrap().to_string_lossy().starts_with("sft-")).unwrap();
    let (config, head, mut values) = alignment_gap::model::checkpoint::load(&sft).unwrap();
    values[0][0] = f32::NAN;
    let special = alignment_gap::model::checkpoint::SpecialIds { pad: 0, eos: 1 };
    alignment_gap::model::checkpoint::save(&sft, &config, head, &values, special, None).unwrap();
    let (ok, _, stderr) = tiny(&out, &[], &[]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("is unusable") && stderr.contains("non-finite") && !stderr.contains("SFT (cached)"), "{stderr}");
    assert_eq!(results(&out)["checkpoints"], resumed["checkpoints"]);
    assert!(alignment_gap::model::checkpoint::load(&sft).is_ok(), "the rebuilt entry replaced the damaged one");

    // A run entry whose meta.json is valid JSON but not its checkpoints is retrained and repaired.
    let run = std::fs::read_dir(out.join("cache")).unwrap().map(|e| e.unwrap().path()).find(|p| p.file_name().unwrap().to_string_lossy().starts_with("run-")).unwrap();
    std::fs::write(run.join("meta.json"), "{}").unwrap();
    let (ok, _, stderr) = tiny(&out, &[], &[]);
    assert!(ok && stderr.matches("steps) (cached)").count() == 2, "{stderr}");
    assert!(std::fs::read_to_string(run.join("meta.json")).unwrap().starts_with('['), "the entry was repaired");
    assert_eq!(results(&out)["checkpoints"], resumed["checkpoints"]);
}

/// Two runs sharing one cache (and two seeds inside each) write the same entries at the same time; every
/// writer uses its own temporary name and entries appear whole, so both finish with the same results.
#[test]
fn concurrent_runs_sharing_a_cache_do_not_collide() {
    let cache = tmp("shared-cache");
    let outs = [tmp("shared-a"), tmp("shared-b")];
    let runs: Vec<_> = outs
        .iter()
        .map(|out| {
            let (out, cache) = (out.clone(), cache.clone());
            std::thread::spawn(move || tiny(&out, &["--seeds", "0,1", "--jobs", "2", "--cache", cache.to_str().unwrap()], &[]))
        })
        .collect();
    for r in runs {
        let (ok, stdout, stderr) = r.join().unwrap();
        assert!(ok, "{stdout}\n{stderr}");
    }
    assert_eq!(results(&outs[0])["checkpoints"], results(&outs[1])["checkpoints"]);
    let leftovers: Vec<String> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| n.ends_with(".partial")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A folder holding results of another config is refused (naming what differs) unless --overwrite, which
/// clears its results and models; an unwritable --out is refused before training.
#[test]
fn results_of_another_config_are_not_silently_overwritten() {
    let out = tmp("other-config");
    assert!(tiny(&out, &[], &[]).0);
    let finished = results(&out);
    // Resuming without the cache (another --cache) and failing at once loses none of the rows written.
    let other_cache = tmp("other-cache");
    let (ok, _, stderr) = tiny(&out, &["--cache", other_cache.to_str().unwrap()], &[("ALIGNMENT_GAP_FAULT_READONLY_AFTER_RUNS", "1")]);
    assert!(!ok && stderr.contains("resuming"), "{stderr}");
    assert_eq!(results(&out)["checkpoints"], finished["checkpoints"], "a resumed run dropped rows it had not recomputed");
    // A refusal after --overwrite deletes nothing: every argument is checked before OUT is touched.
    let (ok, _, stderr) = tiny(&out, &["--set", "betas=[0.2]", "--overwrite", "--jobs", "0"], &[]);
    assert!(!ok && stderr.contains("jobs = 0") && !stderr.contains("removing"), "{stderr}");
    assert!(out.join("models/seed0/sft/model.safetensors").is_file());
    let (ok, _, stderr) = tiny(&out, &["--set", "betas=[0.2]"], &[]);
    assert!(!ok && stderr.contains("another config (differs in: betas") && stderr.contains("--overwrite"), "{stderr}");
    let (ok, _, stderr) = tiny(&out, &["--set", "betas=[0.2]", "--overwrite"], &[]);
    assert!(ok, "{stderr}");
    assert!(!out.join("models/seed0/online_beta0.1_lr0.0005_steps12").exists(), "models of the old config are cleared");
    assert!(out.join("models/seed0/online_beta0.2_lr0.0005_steps12/model.safetensors").is_file());
    assert_eq!(results(&out)["config"]["betas"], serde_json::json!([0.2]));
    // Models with no results.json beside them are of unknown settings: not mixed with new ones.
    std::fs::remove_file(out.join("results.json")).unwrap();
    let (ok, _, stderr) = tiny(&out, &["--set", "betas=[0.2]"], &[]);
    assert!(!ok && stderr.contains("models/ but no results.json"), "{stderr}");
    // --out under a regular file cannot be created.
    let file = tmp("a-file");
    std::fs::write(&file, "x").unwrap();
    let (ok, _, stderr) = tiny(&file.join("out"), &[], &[]);
    assert!(!ok && stderr.contains(file.to_str().unwrap()) && !stderr.contains("seed 0:"), "{stderr}");
}

#[test]
fn init_model_refuses_sizes_that_do_not_fit_in_memory() {
    let out = tmp("huge");
    let (ok, _, stderr) = cli(&["init-model", "--out", out.to_str().unwrap(), "--layers", "48", "--d-model", "4096", "--heads", "16", "--context", "4096", "--vocab", "50000"], &[]);
    assert!(!ok && stderr.contains("parameters need about") && stderr.contains("GiB"), "{stderr}");
    assert!(!out.exists());
}
