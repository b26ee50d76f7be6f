//! The CLI as a person runs it.
#![cfg(not(target_arch = "wasm32"))]

use std::process::Command;

fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_alignment-gap")).args(args).env("XDG_RUNTIME_DIR", "/tmp").output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// `doctor --backend gpu` must find an adapter (lavapipe on CI) and pass every kernel check.
#[test]
fn doctor_passes_on_the_gpu() {
    if std::env::var("ALIGNMENT_GAP_ALLOW_NO_GPU").as_deref() == Ok("1") {
        eprintln!("SKIPPED (ALIGNMENT_GAP_ALLOW_NO_GPU=1)");
        return;
    }
    let (ok, stdout, stderr) = cli(&["doctor", "--backend", "gpu"]);
    assert!(ok, "doctor failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("backend: gpu ("), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("self-check: ") && l.ends_with(" passed, 0 failed")), "{stdout}");
}

#[test]
fn doctor_json_on_the_cpu() {
    let (ok, stdout, stderr) = cli(&["doctor", "--backend", "cpu", "--json"]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["selfcheck"]["failed"], 0);
    assert!(v["backend"].as_str().unwrap().starts_with("cpu"));
}

#[test]
fn bad_arguments_name_the_field() {
    let (ok, _, stderr) = cli(&["doctor", "--backend", "tpu"]);
    assert!(!ok && stderr.contains("--backend") && stderr.contains("auto"), "{stderr}");
    let (ok, _, stderr) = cli(&["serve", "--port", "0"]);
    assert!(!ok && stderr.contains("--port"), "{stderr}");
    let (ok, _, stderr) = cli(&["doctor", "--backend", "gpu", "--adapter", "no-such-card"]);
    assert!(!ok && stderr.contains("no-such-card"), "{stderr}");
    let (ok, _, stderr) = cli(&["serve", "--root", "/nonexistent"]);
    assert!(!ok && stderr.contains("index.html"), "{stderr}");
    let out = std::env::temp_dir().join(format!("alignment-gap-bad-chunks-{}", std::process::id()));
    let (ok, _, stderr) = cli(&["reproduce", "--preset", "fig1-tiny", "--backend", "cpu", "--set", "align_chunks=17", "--out", out.to_str().unwrap()]);
    assert!(!ok && stderr.contains("align_chunks = 17 is out of range 0..=16"), "{stderr}");
    let (ok, _, stderr) = cli(&["reproduce", "--preset", "fig1-tiny", "--backend", "cpu", "--threads", "0", "--out", out.to_str().unwrap()]);
    assert!(!ok && stderr.contains("threads = 0 is out of range"), "{stderr}");
}

/// `bench --data-parallel`: a data-parallel alignment step on 1 and 2 threads, the same bits on both.
#[test]
fn bench_times_a_data_parallel_step_on_one_and_two_threads() {
    let (ok, stdout, stderr) = cli(&["bench", "--backend", "cpu", "--sizes", "S", "--repeats", "1", "--data-parallel", "3"]);
    assert!(ok, "{stdout}\n{stderr}");
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("S ") && l.split_whitespace().count() == 6).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(rows.iter().all(|r| r.trim_end().ends_with("yes")), "{stdout}");
}

/// `reproduce --preset fig1-tiny`: every output is written and sane (structure, not the scientific
/// outcome), and a rerun with the same seed reproduces every checkpoint exactly on the CPU backend.
#[test]
fn reproduce_fig1_tiny_writes_sane_results() {
    let out = std::env::temp_dir().join(format!("alignment-gap-fig1-tiny-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let run = |extra: &[&str]| {
        let mut args = vec!["reproduce", "--preset", "fig1-tiny", "--backend", "cpu", "--out", out.to_str().unwrap()];
        args.extend(extra);
        let (ok, stdout, stderr) = cli(&args);
        assert!(ok, "{stdout}\n{stderr}");
        let text = std::fs::read_to_string(out.join("results.json")).unwrap();
        (serde_json::from_str::<serde_json::Value>(&text).unwrap(), stderr)
    };
    let (r, stderr) = run(&[]);
    assert!(!stderr.contains("(cached)"), "{stderr}");
    let cps = r["checkpoints"].as_array().unwrap();
    // 1 seed × 1 β × 1 lr × 3 methods × (12 steps / 6 + 1) checkpoints
    assert_eq!(cps.len(), 9);
    for c in cps {
        let kl = c["kl"].as_f64().unwrap();
        assert!(kl.is_finite() && kl >= -1e-4, "{c}");
        assert!(c["samples"].as_array().is_some_and(|s| !s.is_empty() && s[0]["response"].is_string()), "{c}");
        for k in ["golden_win_rate", "ties", "classifier_accuracy", "proxy_win_rate"] {
            let v = c[k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{k} = {v}");
        }
    }
    assert!(r["proxy"][0]["heldout_accuracy"].as_f64().unwrap() > 0.55, "proxy at chance: {}", r["proxy"]);
    let sft: Vec<f64> = r["sft_loss"][0][1].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let (first, last) = (sft[..5].iter().sum::<f64>(), sft[sft.len() - 5..].iter().sum::<f64>());
    assert!(last < first, "SFT loss did not fall: {sft:?}");
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + cps.len());
    assert!(std::fs::read_to_string(out.join("fig1.svg")).unwrap().contains("<svg"));
    let phone = std::fs::read_to_string(out.join("fig1-phone.svg")).unwrap();
    assert!(phone.contains("width=\"340\"") && phone.contains("online IPO (proxy labels)"), "Figure 1 for a phone, its legend drawn");
    assert!(std::fs::read_to_string(out.join("summary.md")).unwrap().contains("## Verdict (computed)"));
    for m in ["sft", "proxy", "online_beta0.1_lr0.0005_steps12", "offline_beta0.1_lr0.0005_steps12"] {
        assert!(out.join("models/seed0").join(m).join("model.safetensors").is_file(), "{m}");
    }
    // A rerun takes SFT and the proxy from the stage cache and reproduces every checkpoint exactly.
    let (again, stderr) = run(&[]);
    assert!(stderr.contains("SFT (cached)") && stderr.contains("proxy PM (cached)"), "{stderr}");
    assert_eq!(again["checkpoints"], r["checkpoints"], "a rerun with the same seed differs");
    // Seeds in parallel threads, with a fresh cache: seed 0's checkpoints are the same again. (Another
    // seed list is another config: the folder's results are replaced only when asked.)
    let fresh = out.join("fresh-cache");
    let (two, _) = run(&["--seeds", "0,1", "--jobs", "2", "--cache", fresh.to_str().unwrap(), "--overwrite"]);
    let seed0: Vec<&serde_json::Value> = two["checkpoints"].as_array().unwrap().iter().filter(|c| c["seed"] == 0).collect();
    assert_eq!(seed0, cps.iter().collect::<Vec<_>>(), "seed 0 differs when run beside seed 1");
    assert_eq!(two["proxy"].as_array().unwrap().len(), 2);
    // summarize rebuilds the reports from results.json alone, byte for byte.
    let before: Vec<String> = ["metrics.csv", "fig1.svg", "summary.md"].iter().map(|f| std::fs::read_to_string(out.join(f)).unwrap()).collect();
    std::fs::remove_file(out.join("summary.md")).unwrap();
    let (ok, stdout, stderr) = cli(&["summarize", out.to_str().unwrap()]);
    assert!(ok && stdout.contains("## Verdict"), "{stdout}\n{stderr}");
    let after: Vec<String> = ["metrics.csv", "fig1.svg", "summary.md"].iter().map(|f| std::fs::read_to_string(out.join(f)).unwrap()).collect();
    assert_eq!(before, after);
    // Alignment seeds repeat seed 0's online and offline runs over its same (cached) SFT and proxy, with
    // their own randomness; the figure's own runs are untouched and summary.md reports the repeats' spread.
    let (repeats, stderr) = run(&["--set", "align_seeds=[7]", "--overwrite"]);
    assert!(stderr.contains("proxy PM (cached)") && stderr.contains("alignment seed 7"), "{stderr}");
    let all = repeats["checkpoints"].as_array().unwrap();
    let own: Vec<&serde_json::Value> = all.iter().filter(|c| c.get("align_seed").is_none()).collect();
    let seven: Vec<&serde_json::Value> = all.iter().filter(|c| c["align_seed"] == 7).collect();
    assert_eq!(own, cps.iter().collect::<Vec<_>>(), "the figure's own runs changed");
    assert_eq!(seven.len(), 6, "online and offline, 3 checkpoints each");
    let online = |rows: &[&serde_json::Value]| rows.iter().filter(|c| c["method"] == "online" && c["step"] == 12).map(|c| (c["kl"].clone(), c["golden_win_rate"].clone())).collect::<Vec<_>>();
    assert_ne!(online(&seven), online(&own), "a repeat with its own seed draws other samples");
    assert!(std::fs::read_to_string(out.join("summary.md")).unwrap().contains("### Alignment seeds over one proxy"));
    assert!(out.join("models/seed0/online_beta0.1_lr0.0005_steps12_align7/model.safetensors").is_file());
}

/// A tiny run of the second task's search (issue 29): the `ordered` task, offline IPO alone. No online run of any
/// kind is trained, the seed's headroom is measured, and summary.md has the precondition's table and verdict.
#[test]
fn the_task_search_runs_offline_ipo_alone_on_the_new_task() {
    let out = std::env::temp_dir().join(format!("alignment-gap-task2-tiny-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let sets = ["--set", "task.kind=ordered", "--set", "offline_only=true", "--set", "golden_reference=false", "--set", "analyses=[\"precondition\"]"];
    let mut args = vec!["reproduce", "--preset", "fig1-tiny", "--backend", "cpu", "--out", out.to_str().unwrap()];
    args.extend(sets);
    let (ok, stdout, stderr) = cli(&args);
    assert!(ok, "{stdout}\n{stderr}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(r["config"]["task"]["kind"], "ordered");
    let methods: std::collections::BTreeSet<&str> = r["checkpoints"].as_array().unwrap().iter().map(|c| c["method"].as_str().unwrap()).collect();
    assert_eq!(methods.into_iter().collect::<Vec<_>>(), ["offline"], "offline IPO alone");
    let oracle = &r["oracle"][0];
    assert_eq!(oracle["seed"], 0);
    assert!(oracle["win_rate"].as_f64().unwrap() > 0.5, "the oracle summary beats π_sft: {oracle}");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("## The precondition (issue 29): task `ordered`") && summary.contains("**Computed: the task"), "{summary}");
    assert!(std::fs::read_to_string(out.join("precondition.svg")).unwrap().contains("<svg"));
    // Arms that follow an online run are refused by name.
    let (ok, _, stderr) = cli(&["reproduce", "--preset", "fig1-tiny", "--out", "/tmp/x", "--set", "offline_only=true"]);
    assert!(!ok && stderr.contains("golden_reference is on, but offline_only = true"), "{stderr}");
}

/// The second task's tiny preset (issue 29): the chosen `counted` task with its reward (nothing but the count and a
/// missing <eos> charged), every figure the task2 preset computes, each with its computed verdict.
#[test]
fn the_second_tasks_tiny_preset_runs_every_figure_of_the_task() {
    let out = std::env::temp_dir().join(format!("alignment-gap-task2-tiny-preset-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let (ok, stdout, stderr) = cli(&["reproduce", "--preset", "task2-tiny", "--backend", "cpu", "--out", out.to_str().unwrap()]);
    assert!(ok, "{stdout}\n{stderr}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let task = &r["config"]["task"];
    assert_eq!(task["kind"], "counted");
    assert_eq!((task["reward"]["hallucination"].as_f64(), task["reward"]["repeat"].as_f64(), task["reward"]["length"].as_f64()), (Some(0.0), Some(0.0), Some(0.0)));
    let methods: std::collections::BTreeSet<&str> = r["checkpoints"].as_array().unwrap().iter().map(|c| c["method"].as_str().unwrap()).collect();
    assert!(["online", "offline", "late_vs_late"].iter().all(|m| methods.contains(m)), "{methods:?}");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    for section in ["## Verdict (computed)", "late-vs-late barely beats SFT (Fig. 5)", "## Generation vs classification (the paper's Fig. 7)", "## Classification over training (the paper's Fig. 8)", "## Self-classification"] {
        assert!(summary.contains(section), "no {section:?} in summary.md");
    }
    for figure in ["fig1.svg", "fig7.svg", "fig8.svg", "selfclass.svg"] {
        assert!(std::fs::read_to_string(out.join(figure)).unwrap().contains("<svg"), "{figure}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn reproduce_rejects_unknown_settings_by_name() {
    let (ok, _, stderr) = cli(&["reproduce", "--preset", "fig1-tiny", "--out", "/tmp/x", "--set", "task.doc_lenght=9"]);
    assert!(!ok && stderr.contains("unknown key 'task.doc_lenght'") && stderr.contains("doc_len"), "{stderr}");
    let (ok, _, stderr) = cli(&["reproduce", "--preset", "fig1-tiny", "--out", "/tmp/x", "--set", "task.key_words=99"]);
    assert!(!ok && stderr.contains("task.key_words = 99 is out of range"), "{stderr}");
    let (ok, _, stderr) = cli(&["reproduce", "--preset", "fig99", "--out", "/tmp/x"]);
    assert!(!ok && stderr.contains("preset 'fig99'"), "{stderr}");
}

/// `bench --profile` prints the attainable GEMM rate, each step's share of it, and a per-op table whose
/// matmul row carries its GFLOP/s and every row the bytes it moves (what the numbers are is the bench's
/// business, not a test's).
#[test]
fn bench_reports_peak_share_and_per_op_profile() {
    let (ok, stdout, stderr) = cli(&["bench", "--backend", "cpu", "--sizes", "S", "--repeats", "1", "--profile"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("peak: a 1024³ GEMM runs at") && stdout.contains("of peak"), "{stdout}");
    let profile: Vec<&str> = stdout.lines().skip_while(|l| !l.starts_with("size S:")).collect();
    assert!(profile[0].contains("ops per step"), "{stdout}");
    // Columns: op, calls, ms/step, share, GFLOP/s (matmul only), MB/step, GB/s.
    let row = |op: &str| profile.iter().map(|l| l.split_whitespace().collect::<Vec<_>>()).find(|c| c[0] == op);
    let matmul = row("matmul").unwrap_or_else(|| panic!("matmul missing: {stdout}"));
    assert!(matmul.len() == 7 && matmul[4].parse::<f64>().is_ok() && matmul[5].parse::<f64>().unwrap() > 0.0, "{stdout}");
    // The fused ops count their products' FLOPs (GFLOP/s is a number); the others have none.
    for op in ["matmul+bias+gelu", "matmul+gelu_backward", "attention_forward", "attention_backward"] {
        let r = row(op).unwrap_or_else(|| panic!("{op} missing: {stdout}"));
        assert!(r.len() == 7 && r[4].parse::<f64>().is_ok() && r[5].parse::<f64>().unwrap() > 0.0, "{op}: {stdout}");
    }
    for op in ["layernorm_forward", "layernorm_backward", "adamw", "embed_backward"] {
        let r = row(op).unwrap_or_else(|| panic!("{op} missing: {stdout}"));
        assert!(r.len() == 7 && r[4] == "-" && r[5].parse::<f64>().unwrap() > 0.0, "{op}: {stdout}");
    }
}

/// The scripts find the binary where cargo put it: `CARGO_TARGET_DIR` (common among Rust users) moves it
/// out of ./target, and `scripts/serve.sh` used to fail then.
#[test]
fn scripts_ask_cargo_where_the_binary_is() {
    let root = env!("CARGO_MANIFEST_DIR");
    let target_dir = |env: Option<&str>| {
        let mut cmd = Command::new("bash");
        cmd.arg(format!("{root}/scripts/target-dir.sh"));
        match env {
            Some(dir) => cmd.env("CARGO_TARGET_DIR", dir),
            None => cmd.env_remove("CARGO_TARGET_DIR"),
        };
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert_eq!(target_dir(Some("/tmp/alignment-gap-elsewhere")), "/tmp/alignment-gap-elsewhere");
    assert!(target_dir(None).ends_with("target"), "{}", target_dir(None));
    for script in ["serve.sh", "test.sh"] {
        let text = std::fs::read_to_string(format!("{root}/scripts/{script}")).unwrap();
        assert!(text.contains("scripts/target-dir.sh") && !text.contains("target/release/alignment-gap") && !text.contains("target/debug/alignment-gap"), "{script}");
    }
}

/// results/index.json, what the page shows first, is current with the committed results; `index` writes it from
/// each folder's results.json, and `--check` refuses a stale one.
#[test]
fn the_committed_results_index_is_current() {
    let results = concat!(env!("CARGO_MANIFEST_DIR"), "/results");
    let (ok, stdout, stderr) = cli(&["index", "--root", results, "--check"]);
    assert!(ok, "{stdout}\n{stderr}");
    let index: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(format!("{results}/index.json")).unwrap()).unwrap();
    assert_eq!(index[0]["name"], "fig1-fair", "Figure 1 first: the fair, pre-registered one (issue 27)");
    assert_eq!(index[1]["name"], "proxy-map", "then the proxy map, on Figure 1's seeds");
    let names: Vec<&str> = index.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    let fig1 = names.iter().position(|&n| n == "fig1").expect("the first protocol's Figure 1 is listed");
    assert!(names[2..fig1].iter().all(|&n| n == "task2"), "then the second task's figures (once merged), then the first protocol's: {names:?}");
    assert_eq!(index[1]["figures"].as_array().unwrap().iter().filter(|f| *f == "proxy-map.svg").count(), 1);
    assert_eq!(index[0]["figures"][0], "fig1.svg");
    let root = std::env::temp_dir().join(format!("alignment-gap-index-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("fig7")).unwrap();
    std::fs::copy(format!("{results}/fig7/results.json"), root.join("fig7/results.json")).unwrap();
    let (ok, _, stderr) = cli(&["index", "--root", root.to_str().unwrap(), "--check"]);
    assert!(!ok && stderr.contains("is not current"), "{stderr}");
    let (ok, _, stderr) = cli(&["index", "--root", root.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = cli(&["index", "--root", root.to_str().unwrap(), "--check"]);
    assert!(ok, "{stderr}");
    let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join("index.json")).unwrap()).unwrap();
    assert_eq!(written[0]["name"], "fig7");
    assert_eq!(written[0]["seeds"], serde_json::json!([0, 1, 2, 3, 4]));
}

/// The SFT and proxy shipped with the page (www/stages/) are those of the fig1-quick preset as its config stands:
/// each file is intact (size and SHA-256 as in the manifest) and its key is the key the pipeline computes for the
/// preset's seed on the backend that trained it, so a config change that would make them stale fails here.
#[test]
fn the_shipped_stages_are_the_quick_presets() {
    use alignment_gap::experiments::{pipeline, ExperimentConfig};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/www/stages");
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(format!("{dir}/index.json")).unwrap()).unwrap();
    let backend = manifest["backend"].as_str().unwrap();
    let entries = manifest["entries"].as_array().unwrap();
    let cfg = ExperimentConfig::preset("fig1-quick").unwrap();
    assert_eq!(entries.len(), 2 * cfg.seeds.len());
    for e in entries {
        assert_eq!(e["preset"], "fig1-quick");
        let bytes = std::fs::read(format!("{dir}/{}", e["file"].as_str().unwrap())).unwrap();
        assert_eq!(bytes.len() as u64, e["bytes"].as_u64().unwrap());
        assert_eq!(alignment_gap::train::dataset_file::sha256_hex(&bytes), e["sha256"].as_str().unwrap());
        let (sft, proxy) = pipeline::stage_keys(&cfg.stage_spec(), e["seed"].as_u64().unwrap() as u32, backend);
        assert_eq!(e["key"].as_str().unwrap(), if e["stage"] == "sft" { sft } else { proxy }, "{} is stale: run alignment-gap ship-stages --preset fig1-quick", e["file"]);
    }
}
