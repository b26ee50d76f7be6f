//! The command line: the same library the page runs, for people who want files, seeds and sweeps.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    native::main()
}

#[cfg(not(target_arch = "wasm32"))]
mod serve;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use alignment_gap::engine::{AdapterRequest, BackendChoice, Engine};
    use alignment_gap::model::checkpoint::{self, SpecialIds};
    use alignment_gap::train::dataset_file;
    use alignment_gap::model::params::init_values;
    use alignment_gap::model::{Gpt, GptConfig, Head};
    use alignment_gap::tokenizer::{WordTokenizer, SPECIALS};
    use alignment_gap::selfcheck;
    use clap::{Parser, Subcommand};
    use std::path::PathBuf;
    use std::process::ExitCode;

    #[derive(Parser)]
    #[command(name = "alignment-gap", version, about = "Online vs offline alignment (Tang et al. 2024) at toy scale")]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Subcommand)]
    enum Command {
        /// Serve the page (index.html, www/, the wasm package) on 127.0.0.1.
        Serve {
            /// Port on 127.0.0.1 (1–65535).
            #[arg(long, default_value_t = 8080, value_parser = clap::value_parser!(u16).range(1..))]
            port: u16,
            /// Folder holding index.html and www/.
            #[arg(long, default_value = ".")]
            root: PathBuf,
        },
        /// Write a randomly initialised checkpoint (GPT-2 init) in Hugging Face's format.
        InitModel {
            #[arg(long)]
            out: PathBuf,
            #[arg(long, default_value_t = 2)]
            layers: usize,
            #[arg(long = "d-model", default_value_t = 64)]
            d_model: usize,
            #[arg(long, default_value_t = 4)]
            heads: usize,
            #[arg(long, default_value_t = 32)]
            context: usize,
            /// Vocabulary size (≥ 5: four special tokens and at least one word).
            #[arg(long, default_value_t = 44)]
            vocab: usize,
            #[arg(long, default_value_t = 0)]
            seed: u32,
            /// lm: a policy (GPT2LMHeadModel); score: a preference model (GPT2ForSequenceClassification).
            #[arg(long, default_value = "lm", value_parser = ["lm", "score"])]
            head: String,
        },
        /// Print, as JSON, the log-prob of each token given the ones before it.
        Logprobs {
            #[arg(long)]
            model: PathBuf,
            /// Comma-separated token ids, e.g. 1,5,9
            #[arg(long, value_delimiter = ',', num_args = 1..)]
            tokens: Vec<u32>,
            #[command(flatten)]
            device: DeviceArgs,
        },
        /// Time a training step and sampling for model sizes S, M, L (context 32, 128 sequences).
        Bench {
            #[command(flatten)]
            device: DeviceArgs,
            /// Sizes to run, from S, M, L.
            #[arg(long, value_delimiter = ',', default_value = "S,M,L")]
            sizes: Vec<String>,
            /// Timed repetitions of the training step (after one warm-up).
            #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
            repeats: u32,
            /// Also write the table as JSON.
            #[arg(long)]
            json: Option<PathBuf>,
            /// Also time every op of a train step (each run to completion) and print its share.
            #[arg(long)]
            profile: bool,
            /// Also time each matmul shape of a train step with both CPU GEMMs (direct, matrixmultiply's
            /// packed) and print which is faster (cpu backend; MATMUL_NUM_THREADS=1 for the browser's one thread).
            #[arg(long)]
            gemm: bool,
            /// Also time a data-parallel alignment step (offline IPO on the bench batch's 64 pairs) in this many
            /// chunks, on 1 and on 2 threads (cpu backend; run with MATMUL_NUM_THREADS=1 so each chunk's GEMMs use one).
            #[arg(long, value_name = "CHUNKS")]
            data_parallel: Option<usize>,
        },
        /// Run a paper figure end to end and write results.json, metrics.csv, the figure (SVG), summary.md and
        /// the trained models.
        Reproduce {
            /// fig1 (the full figure), fig1-quick (one seed, two β) or fig1-tiny (seconds; used by the tests).
            #[arg(long, default_value = "fig1")]
            preset: String,
            #[arg(long)]
            out: PathBuf,
            /// Seeds, e.g. 0,1,2 (default: the preset's).
            #[arg(long, value_delimiter = ',')]
            seeds: Option<Vec<u32>>,
            /// Override a setting: --set key=value (dotted keys into the config, e.g. task.doc_len=10, betas=[0.1]).
            #[arg(long = "set", value_name = "KEY=VALUE")]
            sets: Vec<String>,
            /// Seeds run in parallel on the CPU backend, one thread each (default: every seed at once, up to
            /// 4 per core; always 1 on a GPU).
            #[arg(long)]
            jobs: Option<usize>,
            /// Threads per seed for data-parallel alignment steps (`--set align_chunks=N`, N ≥ 1): each step's chunks
            /// are computed on this many threads; the numbers do not depend on it (default: the cores left per seed)
            #[arg(long)]
            threads: Option<usize>,
            /// Where trained SFT, proxy and policy models are kept by their config's hash, so a rerun resumes
            /// (default: OUT/cache).
            #[arg(long)]
            cache: Option<PathBuf>,
            /// OUT holds results of another config: replace them (results files and models/; the cache is kept).
            #[arg(long)]
            overwrite: bool,
            /// Run only the i-th of n disjoint slices of the runs (seed × setting), e.g. 2/3; combine the n
            /// outputs with `merge`. For job arrays (Slurm, GNU parallel, Kubernetes indexed jobs).
            #[arg(long, value_name = "I/N")]
            shard: Option<alignment_gap::experiments::Shard>,
            #[command(flatten)]
            device: DeviceArgs,
        },
        /// Combine the outputs of `reproduce --shard 1/n … n/n` into one: results.json, the reports and the
        /// models, exactly as one unsharded run writes them. Or combine runs of one config over disjoint seeds
        /// (`reproduce --seeds 10`, `--seeds 11`, …, e.g. one per session) into the run of all their seeds.
        Merge {
            /// Where the combined results go.
            #[arg(long)]
            out: PathBuf,
            /// OUT holds results of another config: replace them.
            #[arg(long)]
            overwrite: bool,
            /// The shards' output folders (each holds results.json).
            #[arg(required = true)]
            shards: Vec<PathBuf>,
        },
        /// Offline IPO on a dataset file (one that reproduce wrote under datasets/, perhaps changed), from a seed's
        /// π_sft of a reproduce output, evaluated as its runs were: writes checkpoints.json, metrics.csv and the
        /// policy, and compares the checkpoints with FROM's runs of the same β, lr and length (the paper's exact
        /// replay, by hand: an online stream trained on in order retraces its online run).
        TrainOffline {
            /// The dataset: a .safetensors file in alignment-gap's pairs format (docs in src/train/dataset_file.rs).
            #[arg(long)]
            data: PathBuf,
            /// A reproduce output (it holds results.json): its config, and the seed's SFT, proxy and evaluation
            /// sets from its stage cache.
            #[arg(long)]
            from: PathBuf,
            #[arg(long)]
            seed: u32,
            #[arg(long)]
            beta: f32,
            #[arg(long)]
            lr: f32,
            /// Steps of the config's batch, over the file's pairs in order (default: as many as it holds).
            #[arg(long)]
            steps: Option<u32>,
            /// The stage cache (default: FROM/cache).
            #[arg(long)]
            cache: Option<PathBuf>,
            #[arg(long)]
            out: PathBuf,
            #[command(flatten)]
            device: DeviceArgs,
        },
        /// Rewrite metrics.csv, fig1.svg and summary.md of a reproduce output from its results.json.
        Summarize {
            /// The folder reproduce wrote (it holds results.json).
            dir: PathBuf,
        },
        /// Write the SFT and proxy models of a preset's seeds (trained, or from the cache) into OUT with a manifest
        /// (OUT/index.json: key, backend, size, SHA-256 of each), for the page to start from: www/stages/ is what the
        /// site ships.
        ShipStages {
            #[arg(long, default_value = "fig1-quick")]
            preset: String,
            #[arg(long, default_value = "www/stages")]
            out: PathBuf,
            /// The stage cache to take them from or train them into (default: OUT/cache, not shipped).
            #[arg(long)]
            cache: Option<PathBuf>,
        },
        /// Write ROOT/index.json, the list of committed experiments the page shows first (each folder's seeds,
        /// backend, times and figures, from its results.json).
        Index {
            #[arg(long, default_value = "results")]
            root: PathBuf,
            /// Only compare with the index.json there, and fail if it is not current.
            #[arg(long)]
            check: bool,
        },
        /// List GPU adapters, pick one, and check every kernel against its CPU twin.
        Doctor {
            #[command(flatten)]
            device: DeviceArgs,
            /// Print the report as JSON instead of text.
            #[arg(long)]
            json: bool,
        },
    }

    #[derive(clap::Args)]
    struct DeviceArgs {
        /// auto: the GPU if one can be had, else the CPU; gpu: fail without one; cpu: plain Rust.
        #[arg(long, default_value = "auto", value_parser = ["auto", "gpu", "cpu"])]
        backend: String,
        /// Use wgpu's fallback (software) adapter, e.g. lavapipe.
        #[arg(long)]
        software: bool,
        /// Use the first adapter whose name contains this text.
        #[arg(long, value_name = "NAME")]
        adapter: Option<String>,
    }

    impl DeviceArgs {
        fn choice(&self) -> (BackendChoice, AdapterRequest) {
            let choice = self.backend.parse().expect("clap restricts the values");
            (choice, AdapterRequest { software: self.software, name_contains: self.adapter.clone() })
        }
    }

    pub fn main() -> ExitCode {
        let cli = Cli::parse();
        match cli.command {
            Command::Serve { port, root } => match super::serve::serve(&root, port) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            },
            Command::Doctor { device, json } => doctor(&device, json),
            Command::InitModel { out, layers, d_model, heads, context, vocab, seed, head } => {
                let config = GptConfig { n_layer: layers, n_embd: d_model, n_head: heads, n_positions: context, vocab_size: vocab };
                let head = if head == "score" { Head::Score } else { Head::Lm };
                report(init_model(&out, config, head, seed))
            }
            Command::Logprobs { model, tokens, device } => report(logprobs(&model, &tokens, &device)),
            Command::Reproduce { preset, out, seeds, sets, jobs, threads, cache, overwrite, shard, device } => {
                report(reproduce(&preset, &out, seeds, &sets, Options { jobs, threads, cache, overwrite, shard }, &device))
            }
            Command::Merge { out, overwrite, shards } => report(merge(&out, overwrite, &shards)),
            Command::Summarize { dir } => report(summarize(&dir)),
            Command::Index { root, check } => report(index(&root, check)),
            Command::ShipStages { preset, out, cache } => report(ship_stages(&preset, &out, cache)),
            Command::TrainOffline { data, from, seed, beta, lr, steps, cache, out, device } => report(train_offline(&TrainOffline { data, from, seed, beta, lr, steps, cache, out }, &device)),
            Command::Bench { device, sizes, repeats, json, profile, gemm, data_parallel } => report(bench(&device, &sizes, repeats as usize, json.as_deref(), profile, gemm, data_parallel)),
        }
    }

    fn report(r: alignment_gap::Result<()>) -> ExitCode {
        match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    }

    fn open_engine(device: &DeviceArgs) -> alignment_gap::Result<Engine> {
        let (choice, request) = device.choice();
        let (engine, note) = pollster::block_on(Engine::open(choice, &request))?;
        if let Some(note) = note {
            eprintln!("note: {note}");
        }
        Ok(engine)
    }

    fn bench(device: &DeviceArgs, sizes: &[String], repeats: usize, json: Option<&std::path::Path>, profile: bool, gemm: bool, data_parallel: Option<usize>) -> alignment_gap::Result<()> {
        use alignment_gap::bench;
        let engine = open_engine(device)?;
        let mut chosen = vec![];
        for name in sizes {
            let Some(&size) = bench::SIZES.iter().find(|s| s.0.eq_ignore_ascii_case(name)) else {
                return Err(alignment_gap::Error::new(format!("sizes: '{name}' is not one of S, M, L")));
            };
            chosen.push(size);
        }
        eprintln!("bench: the attainable f32 rate here (best of three 1024³ GEMMs) on {}", engine.describe());
        let peak = pollster::block_on(bench::peak_gflops(&engine))?;
        let mut rows = Vec::new();
        for &(n, l, d, h) in &chosen {
            eprintln!("bench: size {n} ({l} layers, d_model {d}, {h} heads) on {}", engine.describe());
            rows.push(pollster::block_on(bench::run_size(&engine, n, l, d, h, repeats))?);
        }
        let threads = std::env::var("MATMUL_NUM_THREADS").unwrap_or_else(|_| "all cores".into());
        println!("batch {} x context {}, vocab {}; matmul threads: {threads}", bench::BATCH, bench::CONTEXT, bench::VOCAB);
        println!("peak: a 1024³ GEMM runs at {peak:.1} GFLOP/s here (matrixmultiply on the CPU, our matmul kernel on a GPU)");
        print!("{}", bench::table(&rows, Some(peak)));
        let mut host = vec![];
        for &(n, l, d, h) in &chosen {
            host.extend(pollster::block_on(bench::host_work(&engine, n, l, d, h, repeats))?);
        }
        if !host.is_empty() {
            println!("host work per training step (counted over {repeats} steps after a warm-up; host µs per dispatch, no GPU time in either):");
            print!("{}", bench::host_table(&host));
        }
        if profile {
            for &(n, l, d, h) in &chosen {
                let times = pollster::block_on(bench::profile_size(&engine, l, d, h, repeats.min(3)))?;
                print!("{}", bench::profile_table(n, &times, "each op run to completion"));
                if let Some(times) = pollster::block_on(bench::profile_size_in_step(&engine, l, d, h, repeats.min(3)))? {
                    print!("{}", bench::profile_table(n, &times, "GPU timestamps, each op inside the real step"));
                }
            }
        }
        if let Some(chunks) = data_parallel {
            use alignment_gap::train::parallel::{install, ThreadPool};
            println!("data-parallel alignment step (offline IPO, 64 pairs): the pairs in {chunks} chunks, their gradients summed in chunk order");
            println!("{:<5} {:>8} {:>8} {:>14} {:>10} {:>22}", "size", "chunks", "threads", "step (ms)", "speed-up", "same bits as 1 thread");
            for &(n, l, d, h) in &chosen {
                let mut first: Option<(f64, Vec<Vec<f32>>)> = None;
                for threads in [1, 2] {
                    install(Some(std::rc::Rc::new(ThreadPool { threads })));
                    let timed = pollster::block_on(bench::align_step_size(l, d, h, chunks, repeats));
                    install(None);
                    let (ms, g) = timed?;
                    let (one, g1) = first.get_or_insert_with(|| (ms, g.clone()));
                    let same = g.iter().flatten().map(|v| v.to_bits()).eq(g1.iter().flatten().map(|v| v.to_bits()));
                    println!("{n:<5} {chunks:>8} {threads:>8} {ms:>14.1} {:>9.2}× {:>22}", *one / ms, if same { "yes" } else { "NO" });
                }
            }
        }
        let mut gemm_rows = vec![];
        if gemm {
            for &(n, l, d, h) in &chosen {
                let rows = pollster::block_on(bench::gemm_size(&engine, n, l, d, h))?;
                println!("size {n}: each matmul shape of a training step, ms per call with each CPU GEMM ({})", engine.describe());
                print!("{}", bench::gemm_table(&rows));
                gemm_rows.extend(rows);
            }
        }
        if let Some(path) = json {
            let text = serde_json::to_string_pretty(&serde_json::json!({ "peak_gflops": peak, "sizes": rows, "host_work": host, "gemm": gemm_rows })).expect("json");
            checkpoint::write_atomic(path, text.as_bytes())?;
        }
        Ok(())
    }

    struct TrainOffline {
        data: PathBuf,
        from: PathBuf,
        seed: u32,
        beta: f32,
        lr: f32,
        steps: Option<u32>,
        cache: Option<PathBuf>,
        out: PathBuf,
    }

    fn train_offline(a: &TrainOffline, device: &DeviceArgs) -> alignment_gap::Result<()> {
        use alignment_gap::experiments::{range, ExperimentResults, Method};
        use alignment_gap::experiments::pipeline::{self, Row};
        use alignment_gap::train::align::{align, Source};
        let fail = |m: String| alignment_gap::Error::new(m);
        let path = a.from.join("results.json");
        let text = std::fs::read_to_string(&path).map_err(|e| fail(format!("--from: {}: {e} (a reproduce output holds results.json)", path.display())))?;
        let from: ExperimentResults = serde_json::from_str(&text).map_err(|e| fail(format!("--from: {}: {e}", path.display())))?;
        let cfg = &from.config;
        cfg.validate()?;
        if !cfg.seeds.contains(&a.seed) {
            return Err(fail(format!("--seed {}: {} holds seeds {:?}", a.seed, a.from.display(), cfg.seeds)));
        }
        alignment_gap::limits::real("--beta", a.beta, range::BETA, "IPO's target margin is 1/(2β)")?;
        alignment_gap::limits::real("--lr", a.lr, range::LR, "a step as large as the weights themselves diverges at once")?;
        let bytes = std::fs::read(&a.data).map_err(|e| fail(format!("--data: {}: {e}", a.data.display())))?;
        let (pairs, source) = dataset_file::from_bytes(&bytes, &cfg.task).map_err(|e| fail(format!("--data {}: {}", a.data.display(), e.message)))?;
        let batch = cfg.batch;
        let steps = match a.steps {
            Some(s) => s,
            None => (pairs.len() / batch) as u32,
        };
        if steps == 0 || steps as usize * batch > pairs.len() {
            return Err(fail(format!(
                "--steps = {steps} needs {steps} × batch {batch} = {} pairs, taken in order; {} holds {} (a truncated stream?): at most --steps {}, at least 1",
                steps as usize * batch, a.data.display(), pairs.len(), pairs.len() / batch
            )));
        }
        eprintln!("train-offline: {} pairs ({source}); {steps} steps of {batch}", pairs.len());
        checkpoint::create_dir_all(&a.out)?;
        let e = open_engine(device)?;
        let spec = cfg.stage_spec();
        let mut cache = alignment_gap::experiments::pipeline::DirCache(a.cache.clone().unwrap_or_else(|| a.from.join("cache")));
        let mut last = String::new();
        let stages = pollster::block_on(pipeline::seed_stages(&e, &spec, a.seed, &mut cache, &mut |p| {
            if let pipeline::Progress::Stage { name, .. } = p {
                if name != last {
                    eprintln!("{name}");
                    last = name;
                }
            }
        }))?;
        let eval = pollster::block_on(stages.eval_set(&e, &spec))?;
        let run = spec.align_config(spec.loss, a.beta, a.lr, steps, a.seed, None);
        let (policy, cps, _) = pollster::block_on(align(&e, spec.task, &stages.sft, Source::Offline(&pairs, None), &run, &eval, |c| {
            eprintln!("step {}: KL {:.4}, golden win rate {:.4}", c.step, c.kl, c.golden_win_rate)
        }))?;
        let rows: Vec<Row> = cps.into_iter().map(|checkpoint| Row { method: Method::OFFLINE_FILE, seed: a.seed, beta: a.beta, lr: a.lr, run_steps: steps, align_seed: None, policy: None, checkpoint }).collect();
        let json = serde_json::to_string_pretty(&rows).map_err(|e| fail(e.to_string()))?;
        checkpoint::write_atomic(&a.out.join("checkpoints.json"), json.as_bytes())?;
        checkpoint::write_atomic(&a.out.join("metrics.csv"), alignment_gap::report::metrics_csv(&rows).as_bytes())?;
        let values = pollster::block_on(policy.values(&e))?;
        let tokenizer = cfg.task.tokenizer()?.to_json()?;
        let special = SpecialIds { pad: alignment_gap::task::PAD, eos: alignment_gap::task::EOS };
        checkpoint::save(&a.out.join("model"), &policy.config, policy.head, &values, special, Some(&tokenizer))?;
        // FROM's runs of the same setting, checkpoint by checkpoint: the largest difference in KL, golden win
        // rate and training loss.
        let mut methods: Vec<Method> = vec![];
        for r in &from.checkpoints {
            if !methods.contains(&r.method) {
                methods.push(r.method);
            }
        }
        for m in methods {
            let theirs = |step: u32| from.checkpoints.iter().find(|r| r.method == m && r.seed == a.seed && r.beta == a.beta && r.lr == a.lr && r.run_steps == steps && r.align_seed.is_none() && r.checkpoint.step == step);
            let diffs: Vec<f32> = rows
                .iter()
                .filter_map(|r| {
                    let (x, y) = (&r.checkpoint, &theirs(r.checkpoint.step)?.checkpoint);
                    Some([(x.kl - y.kl).abs(), (x.golden_win_rate - y.golden_win_rate).abs(), (x.train_loss.unwrap_or(0.0) - y.train_loss.unwrap_or(0.0)).abs()].into_iter().fold(0f32, f32::max))
                })
                .collect();
            if diffs.len() == rows.len() {
                let worst = diffs.iter().copied().fold(0f32, f32::max);
                println!("against {}'s {m} run (seed {}, β {}, lr {}, {steps} steps): largest difference over {} checkpoints {worst:.2e}{}", a.from.display(), a.seed, a.beta, a.lr, rows.len(), if worst == 0.0 { " (identical)" } else { "" });
            }
        }
        println!("wrote {}: checkpoints.json, metrics.csv, model/", a.out.display());
        Ok(())
    }

    struct Options {
        jobs: Option<usize>,
        threads: Option<usize>,
        cache: Option<PathBuf>,
        overwrite: bool,
        shard: Option<alignment_gap::experiments::Shard>,
    }

    /// The files reproduce writes in OUT (besides models/ and the default cache/).
    const RESULT_FILES: [&str; 4] = ["results.json", "metrics.csv", "fig1.svg", "summary.md"];

    /// Makes OUT ready: created, writable (checked now, not after an hour of training), and either empty of
    /// results, holding results of this same config (resumed: finished runs come from the cache), or
    /// cleared when `overwrite` says so. Results of another config are never silently replaced.
    /// Returns the results already there when resuming.
    fn prepare_output(
        out: &std::path::Path,
        cfg: &alignment_gap::experiments::ExperimentConfig,
        shard: Option<alignment_gap::experiments::Shard>,
        backend: &str,
        overwrite: bool,
    ) -> alignment_gap::Result<Option<alignment_gap::experiments::ExperimentResults>> {
        use alignment_gap::experiments::ExperimentResults;
        use alignment_gap::settings::differing_keys;
        let err = |p: &std::path::Path, e: std::io::Error| alignment_gap::Error::new(format!("{}: {e}", p.display()));
        checkpoint::create_dir_all(out)?;
        let probe = checkpoint::unique_temp(&out.join("write-test"));
        std::fs::write(&probe, b"").map_err(|e| alignment_gap::Error::new(format!("out: {} is not writable ({e})", out.display())))?;
        std::fs::remove_file(&probe).map_err(|e| err(&probe, e))?;
        let results = out.join("results.json");
        let models = out.join("models");
        let previous = std::fs::read_to_string(&results).ok();
        let same = match previous.map(|text| serde_json::from_str::<ExperimentResults>(&text)) {
            None if !models.exists() => return Ok(None),
            None => "models/ but no results.json (models of unknown settings)".to_string(),
            Some(Ok(prev)) if &prev.config == cfg && prev.shard == shard && prev.backend == backend => {
                eprintln!("note: {} holds results of this config ({} checkpoints); resuming: they are kept, and finished stages and runs come from the cache", out.display(), prev.checkpoints.len());
                return Ok(Some(prev));
            }
            Some(Ok(prev)) if &prev.config == cfg && prev.shard != shard => format!("results of this config's shard {} (this run: {})", show_shard(prev.shard), show_shard(shard)),
            Some(Ok(prev)) if &prev.config == cfg => format!("results of this config from another backend ('{}'; this run: '{backend}')", prev.backend),
            Some(Ok(prev)) => format!("another config (differs in: {})", differing_keys(&prev.config, cfg)?.join(", ")),
            Some(Err(e)) => format!("a results.json this version cannot read ({e})"),
        };
        if !overwrite {
            return Err(alignment_gap::Error::new(format!(
                "out: {} holds {same}; pass --overwrite to replace its results and models (the cache is kept), or choose another --out",
                out.display()
            )));
        }
        eprintln!("note: --overwrite: removing the results and models of {same} from {}", out.display());
        for f in RESULT_FILES {
            let p = out.join(f);
            if p.exists() {
                std::fs::remove_file(&p).map_err(|e| err(&p, e))?;
            }
        }
        for dir in [models, out.join("datasets")] {
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|e| err(&dir, e))?;
            }
        }
        Ok(None)
    }

    fn show_shard(shard: Option<alignment_gap::experiments::Shard>) -> String {
        shard.map(|s| s.to_string()).unwrap_or_else(|| "none (all runs)".into())
    }

    /// results.json as the run goes: the seeds' workers report rows and stage results here, and each report
    /// rewrites results.json and metrics.csv atomically, so a failure later (a full disk, a read-only
    /// remount, a kill) keeps every checkpoint finished before it. The first write error stops every worker.
    struct LiveResults<'a> {
        out: &'a std::path::Path,
        /// Test hook: once this many finished runs are written (and so cached), every later write fails as
        /// on a read-only disk.
        read_only_after_runs: Option<usize>,
        state: std::sync::Mutex<LiveState>,
    }

    struct LiveState {
        /// Starts from the folder's earlier results when resuming, so no row written before is lost.
        results: alignment_gap::experiments::ExperimentResults,
        /// Finished runs in the last results.json written.
        written_runs: usize,
        error: Option<alignment_gap::Error>,
    }

    impl LiveResults<'_> {
        fn update(&self, change: impl FnOnce(&mut alignment_gap::experiments::ExperimentResults)) {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if st.error.is_some() {
                return;
            }
            if self.read_only_after_runs.is_some_and(|n| st.written_runs >= n) {
                checkpoint::simulate_read_only();
            }
            let r = &mut st.results;
            change(r);
            r.sort();
            let runs = r.checkpoints.iter().filter(|row| row.checkpoint.step == row.run_steps).count();
            let written = write_results(self.out, r);
            match written {
                Ok(()) => st.written_runs = runs,
                Err(e) => {
                    alignment_gap::control::abort(e.clone());
                    st.error = Some(e);
                }
            }
        }

        /// The error to end with: `e`, and what results.json kept.
        fn failed(&self, e: alignment_gap::Error) -> alignment_gap::Error {
            let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let e = st.error.clone().unwrap_or(e);
            alignment_gap::Error::new(format!(
                "{e}\n{}/results.json keeps the {} alignment run(s) finished before the failure; run the same command again to resume (finished stages and runs come from the cache)",
                self.out.display(),
                st.written_runs
            ))
        }
    }

    /// results.json and metrics.csv, each written whole or not at all.
    fn write_results(out: &std::path::Path, results: &alignment_gap::experiments::ExperimentResults) -> alignment_gap::Result<()> {
        let json = serde_json::to_string_pretty(results).map_err(|e| alignment_gap::Error::new(e.to_string()))?;
        checkpoint::write_atomic(&out.join("results.json"), json.as_bytes())?;
        write_metrics(out, results)
    }

    fn write_metrics(out: &std::path::Path, results: &alignment_gap::experiments::ExperimentResults) -> alignment_gap::Result<()> {
        checkpoint::write_atomic(&out.join("metrics.csv"), alignment_gap::report::metrics_csv(&results.checkpoints).as_bytes())
    }

    /// A trained model, read back from its engine, waiting to be saved once the results are safe.
    struct TrainedModel {
        seed: u32,
        name: String,
        config: GptConfig,
        head: Head,
        values: Vec<Vec<f32>>,
    }

    fn reproduce(preset: &str, out: &std::path::Path, seeds: Option<Vec<u32>>, sets: &[String], options: Options, device: &DeviceArgs) -> alignment_gap::Result<()> {
        use alignment_gap::experiments::{self, pipeline};
        use alignment_gap::settings::apply_overrides;
        use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
        let mut cfg = experiments::ExperimentConfig::preset(preset)?;
        if seeds.is_some() && sets.iter().any(|s| s.trim_start().starts_with("seeds=")) {
            return Err(alignment_gap::Error::new("seeds: given twice (--seeds and --set seeds=…); give it once"));
        }
        if let Some(seeds) = seeds {
            cfg.seeds = seeds;
        }
        let cfg = apply_overrides(&cfg, sets)?;
        cfg.validate()?;
        // This run's seeds and their runs: all of them, or the shard's slice.
        let assignments = cfg.runs_by_seed(options.shard);
        let engine = open_engine(device)?;
        let on_cpu = matches!(engine, Engine::Cpu);
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let jobs = match options.jobs {
            Some(0) => return Err(alignment_gap::Error::new("jobs = 0 is out of range 1.. (seeds run in parallel)")),
            Some(j) if on_cpu => j,
            Some(_) | None if !on_cpu => 1,
            // All seeds at once: with 3 seeds on 2 cores that finishes in 1.5 seed-times, not 2.
            _ => assignments.len().min(4 * cores),
        }
        .min(assignments.len())
        .max(1);
        let threads = match options.threads {
            Some(0) => return Err(alignment_gap::Error::new("threads = 0 is out of range 1.. (threads per seed for data-parallel steps)")),
            Some(t) => t,
            None => (cores / jobs).max(1),
        };
        if cfg.align_chunks > 0 {
            if !on_cpu {
                return Err(alignment_gap::Error::new(format!("align_chunks = {}: data-parallel steps run on the CPU backend; pass --backend cpu or set align_chunks=0", cfg.align_chunks)));
            }
            alignment_gap::train::parallel::set_default_threads(threads);
        }
        if (jobs > 1 || (cfg.align_chunks > 0 && threads > 1)) && std::env::var_os("MATMUL_NUM_THREADS").is_none() {
            // One thread per seed already fills the cores; GEMM threads on top would only contend.
            std::env::set_var("MATMUL_NUM_THREADS", "1");
        }
        let shard_note = options.shard.map(|s| format!(", shard {s}: {} of {} runs", assignments.iter().map(|(_, r)| r.len()).sum::<usize>(), cfg.run_count())).unwrap_or_default();
        // Only now, with every argument checked and the engine open, is anything in OUT touched.
        let previous = prepare_output(out, &cfg, options.shard, &engine.identity(), options.overwrite)?;
        let parallel_note = match cfg.align_chunks {
            0 => String::new(),
            c => format!(", data-parallel alignment steps in {c} chunks on {} thread(s) per seed", threads.min(c as usize)),
        };
        eprintln!("reproduce {preset}: seeds {:?}, backend {}, {jobs} seed(s) at a time{shard_note}{parallel_note}", cfg.seeds, engine.describe());
        let cache_dir = options.cache.unwrap_or_else(|| out.join("cache"));
        let tokenizer = cfg.task.tokenizer()?.to_json()?;
        let special = SpecialIds { pad: alignment_gap::task::PAD, eos: alignment_gap::task::EOS };
        let style = ProgressStyle::with_template("{msg:<44} {bar:30} {pos}/{len} [{elapsed_precise}, {per_sec}, eta {eta}]").expect("template");
        let bars = MultiProgress::new();
        let started = std::time::Instant::now();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let backend = engine.identity();
        let read_only_after_runs = std::env::var("ALIGNMENT_GAP_FAULT_READONLY_AFTER_RUNS").ok().and_then(|v| v.parse().ok());
        let mut start = previous.unwrap_or_else(|| experiments::ExperimentResults::empty(&cfg, backend.clone()));
        (start.complete, start.shard, start.backend) = (false, options.shard, backend.clone());
        let state = std::sync::Mutex::new(LiveState { results: start, written_runs: 0, error: None });
        let live = LiveResults { out, read_only_after_runs, state };
        let trained = std::sync::Mutex::new(Vec::<TrainedModel>::new());
        // Each dataset the runs trained on besides D_golden, encoded: (seed, name, source, pairs, bytes).
        let data_files = std::sync::Mutex::new(Vec::<(u32, String, String, usize, Vec<u8>)>::new());
        // Each worker takes the next seed; a CPU worker has its own engine, the GPU one shares the device.
        let worker = |engine: &Engine| -> alignment_gap::Result<Vec<pipeline::SeedResults>> {
            let mut done = vec![];
            let bar = bars.add(ProgressBar::new(1).with_style(style.clone()));
            let mut stage = String::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some((seed, runs)) = assignments.get(i) else { break };
                let r = pollster::block_on(experiments::run_seed(
                    engine,
                    &cfg,
                    *seed,
                    runs,
                    &mut alignment_gap::experiments::pipeline::DirCache(cache_dir.clone()),
                    experiments::Placement::default(),
                    |p| match p {
                        pipeline::Progress::Stage { name, step, total } => {
                            if stage != name {
                                // indicatif draws nothing when stderr is not a terminal (CI logs, pipes): say the stage.
                                if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                                    eprintln!("[{:>6.0} s] {name}", started.elapsed().as_secs_f64());
                                }
                                bar.reset();
                                bar.set_length(total);
                                bar.set_message(name.clone());
                                stage = name;
                            }
                            bar.set_position(step);
                        }
                        pipeline::Progress::Checkpoint(row) => live.update(|r| r.upsert_row(row.clone())),
                        pipeline::Progress::StagesReady { seed, sft_loss, proxy } => live.update(|r| r.upsert_stages(seed, sft_loss.to_vec(), proxy.clone())),
                        // The proxy's early stopping, as it goes: what its plateau looks like.
                        pipeline::Progress::ProxyEval { seed, step, eval } => bar.suspend(|| {
                            eprintln!(
                                "[{:>6.0} s] seed {seed}: proxy step {step}: train loss {:.4}, validation loss {:.4}, validation accuracy {:.3}",
                                started.elapsed().as_secs_f64(), eval.train_loss, eval.validation_loss, eval.validation_accuracy
                            )
                        }),
                        pipeline::Progress::SftLoss { .. } => {}
                    },
                    |models| {
                        for (name, m) in models.named() {
                            let values = pollster::block_on(m.values(engine))?;
                            let model = TrainedModel { seed: models.seed, name: name.to_string(), config: m.config, head: m.head, values };
                            trained.lock().unwrap_or_else(|p| p.into_inner()).push(model);
                        }
                        for d in &models.datasets {
                            let bytes = dataset_file::to_bytes(&d.pairs, &cfg.task, &d.source)?;
                            data_files.lock().unwrap_or_else(|p| p.into_inner()).push((d.seed, d.name.clone(), d.source.clone(), d.pairs.len(), bytes));
                        }
                        Ok(())
                    },
                ))
                .inspect_err(|e| alignment_gap::control::abort(e.clone()))?;
                done.push(r);
            }
            bar.finish_and_clear();
            Ok(done)
        };
        let outcome: alignment_gap::Result<Vec<pipeline::SeedResults>> = if jobs == 1 {
            worker(&engine)
        } else {
            let outcomes: Vec<_> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..jobs).map(|_| s.spawn(|| worker(&Engine::cpu()))).collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(alignment_gap::Error::new("a seed's worker thread panicked")))).collect()
            });
            outcomes.into_iter().try_fold(vec![], |mut all, o| {
                all.extend(o?);
                Ok(all)
            })
        };
        let per_seed = outcome.map_err(|e| live.failed(e))?;
        // Everything finished: the complete results, then the reports, then the models.
        let mut results = experiments::merge(&cfg, backend, per_seed)?;
        results.shard = options.shard;
        // The datasets first, so that results.json names only files that are there.
        for (seed, name, source, pairs, bytes) in data_files.into_inner().unwrap_or_else(|p| p.into_inner()) {
            let file = format!("datasets/seed{seed}/{name}.safetensors");
            checkpoint::create_dir_all(&out.join(format!("datasets/seed{seed}")))?;
            checkpoint::write_atomic(&out.join(&file), &bytes).map_err(|e| live.failed(e))?;
            results.datasets.push(experiments::DatasetRecord { seed, name, file, source, pairs, bytes: bytes.len() as u64, sha256: dataset_file::sha256_hex(&bytes) });
        }
        results.sort();
        results.wall_seconds = Some(started.elapsed().as_secs_f64());
        write_results(out, &results).map_err(|e| live.failed(e))?;
        write_reports(out, &results)?;
        let mut models = trained.into_inner().unwrap_or_else(|p| p.into_inner());
        models.sort_by_key(|m| cfg.seeds.iter().position(|&s| s == m.seed));
        for m in &models {
            let dir = out.join("models").join(format!("seed{}", m.seed)).join(&m.name);
            checkpoint::save(&dir, &m.config, m.head, &m.values, special, Some(&tokenizer))
                .map_err(|e| alignment_gap::Error::new(format!("{e}\nresults.json, metrics.csv, fig1.svg and summary.md are written; the models are not all saved: rerun the same command to write them (every stage comes from the cache)")))?;
        }
        eprintln!("stage time, summed over seeds (s): {}", results.timings.iter().map(|(n, s)| format!("{n} {s:.0}")).collect::<Vec<_>>().join(", "));
        let inside = alignment_gap::train::align::phases::totals();
        let names = alignment_gap::train::align::phases::NAMES;
        eprintln!("inside the runs trained here (s): {}", names.iter().zip(inside).map(|(n, s)| format!("{n} {s:.0}")).collect::<Vec<_>>().join(", "));
        println!("wrote {} in {:.0} s", out.display(), started.elapsed().as_secs_f64());
        Ok(())
    }

    /// `merge`: the shards' results.json combined (checked: one config, every shard once, all finished), the
    /// reports rebuilt, and each shard's models copied.
    fn merge(out: &std::path::Path, overwrite: bool, shards: &[PathBuf]) -> alignment_gap::Result<()> {
        use alignment_gap::experiments::{self, ExperimentResults};
        let read = |dir: &PathBuf| -> alignment_gap::Result<ExperimentResults> {
            let path = dir.join("results.json");
            let text = std::fs::read_to_string(&path).map_err(|e| alignment_gap::Error::new(format!("{}: {e}", path.display())))?;
            serde_json::from_str(&text).map_err(|e| alignment_gap::Error::new(format!("{}: {e}", path.display())))
        };
        let parts = shards.iter().map(read).collect::<alignment_gap::Result<Vec<_>>>()?;
        let results = if parts.first().is_some_and(|p| p.shard.is_none()) {
            // Runs of one config over disjoint groups of its seeds (e.g. a seed per session): the config holds them all.
            if let Some((dir, _)) = shards.iter().zip(&parts).find(|(_, p)| !p.complete || p.shard.is_some()) {
                return Err(alignment_gap::Error::new(format!("merge: {} is a shard or has not finished (its results.json is partial); merge seed groups or shards, each complete", dir.display())));
            }
            let mut cfg = parts[0].config.clone();
            cfg.seeds = parts.iter().flat_map(|p| p.config.seeds.iter().copied()).collect();
            cfg.seeds.sort_unstable();
            experiments::merge_seed_groups(&cfg, parts)?
        } else {
            experiments::merge_shards(parts)?
        };
        prepare_output(out, &results.config, None, &results.backend, overwrite)?;
        write_results(out, &results)?;
        write_reports(out, &results)?;
        for dir in shards {
            copy_models(&dir.join("models"), &out.join("models"))?;
        }
        for d in &results.datasets {
            let from = shards.iter().map(|dir| dir.join(&d.file)).find(|p| p.exists());
            let Some(from) = from else { return Err(alignment_gap::Error::new(format!("merge: no shard holds {} (results.json names it)", d.file))) };
            let bytes = std::fs::read(&from).map_err(|e| alignment_gap::Error::new(format!("{}: {e}", from.display())))?;
            if let Some(parent) = out.join(&d.file).parent() {
                checkpoint::create_dir_all(parent)?;
            }
            checkpoint::write_atomic(&out.join(&d.file), &bytes)?;
        }
        println!("merged {} shards into {}", shards.len(), out.display());
        Ok(())
    }

    /// Copies every model folder (`seed*/NAME/`) under `from` into `to`, leaving ones already there.
    fn copy_models(from: &std::path::Path, to: &std::path::Path) -> alignment_gap::Result<()> {
        let err = |p: &std::path::Path, e: std::io::Error| alignment_gap::Error::new(format!("{}: {e}", p.display()));
        let Ok(seeds) = std::fs::read_dir(from) else { return Ok(()) };
        for seed in seeds.flatten() {
            for model in std::fs::read_dir(seed.path()).map_err(|e| err(&seed.path(), e))?.flatten() {
                let target = to.join(seed.file_name()).join(model.file_name());
                if target.exists() {
                    continue;
                }
                checkpoint::create_dir_all(&target)?;
                for file in std::fs::read_dir(model.path()).map_err(|e| err(&model.path(), e))?.flatten() {
                    let bytes = std::fs::read(file.path()).map_err(|e| err(&file.path(), e))?;
                    checkpoint::write_atomic(&target.join(file.file_name()), &bytes)?;
                }
            }
        }
        Ok(())
    }

    /// fig1.svg (and fig1-phone.svg) and summary.md from the results (metrics.csv goes with results.json); prints the
    /// verdict.
    fn write_reports(out: &std::path::Path, results: &alignment_gap::experiments::ExperimentResults) -> alignment_gap::Result<()> {
        use alignment_gap::report::{artifacts, stats, summary};
        let bins = stats::binned(&stats::main_rows(&results.checkpoints), 6);
        for f in artifacts::figures(&results.config) {
            checkpoint::write_atomic(&out.join(f.file()), f.svg(results)?.as_bytes())?;
        }
        let md = summary::summary_md(results, &bins);
        checkpoint::write_atomic(&out.join("summary.md"), md.as_bytes())?;
        println!("{}", md.lines().skip_while(|l| !l.starts_with("## Verdict")).collect::<Vec<_>>().join("\n"));
        Ok(())
    }

    /// Rewrites metrics.csv, fig1.svg and summary.md of DIR from DIR/results.json (no training).
    fn summarize(dir: &std::path::Path) -> alignment_gap::Result<()> {
        let path = dir.join("results.json");
        let text = std::fs::read_to_string(&path).map_err(|e| alignment_gap::Error::new(format!("{}: {e}", path.display())))?;
        let results: alignment_gap::experiments::ExperimentResults =
            serde_json::from_str(&text).map_err(|e| alignment_gap::Error::new(format!("{}: {e}", path.display())))?;
        write_metrics(dir, &results)?;
        write_reports(dir, &results)?;
        println!("rewrote {}/metrics.csv, fig1.svg, the analyses' and the scaling figures and summary.md from results.json", dir.display());
        Ok(())
    }

    /// The preset's SFT and proxy stages on the CPU backend, each as OUT/KEY.safetensors, and OUT/index.json listing
    /// them (other presets' entries there are kept).
    fn ship_stages(preset: &str, out: &std::path::Path, cache: Option<PathBuf>) -> alignment_gap::Result<()> {
        use alignment_gap::experiments::{pipeline, ExperimentConfig};
        use alignment_gap::model::checkpoint::{config_json, safetensors_bytes};
        let cfg = ExperimentConfig::preset(preset)?;
        cfg.validate()?;
        let engine = Engine::cpu();
        let spec = cfg.stage_spec();
        let mut cache = alignment_gap::experiments::pipeline::DirCache(cache.unwrap_or_else(|| out.join("cache")));
        checkpoint::create_dir_all(out)?;
        let manifest_path = out.join("index.json");
        let manifest: serde_json::Value = std::fs::read_to_string(&manifest_path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(serde_json::json!({"entries": []}));
        if manifest.get("backend").and_then(|b| b.as_str()).is_some_and(|b| b != engine.identity()) {
            return Err(alignment_gap::Error::new(format!("{}: its stages were trained on {}, not {}; ship from one backend", manifest_path.display(), manifest["backend"], engine.identity())));
        }
        let mut entries: Vec<serde_json::Value> = manifest["entries"].as_array().cloned().unwrap_or_default().into_iter().filter(|e| e["preset"] != preset).collect();
        let special = SpecialIds { pad: alignment_gap::task::PAD, eos: alignment_gap::task::EOS };
        for &seed in &cfg.seeds {
            pollster::block_on(pipeline::seed_stages(&engine, &spec, seed, &mut cache, &mut |p| {
                if let pipeline::Progress::Stage { name, step, total } = p {
                    if step == total {
                        eprintln!("{name}: done");
                    }
                }
            }))?;
            let (sft, proxy) = pipeline::stage_keys(&spec, seed, &engine.identity());
            for (stage, key) in [("sft", sft), ("proxy", proxy)] {
                use alignment_gap::experiments::pipeline::StageCache;
                let Some((config, head, values, meta)) = cache.get(&key) else { return Err(alignment_gap::Error::new(format!("{key}: not in the cache after training it"))) };
                let bytes = safetensors_bytes(&config, head, &values)?;
                let file = format!("{key}.safetensors");
                checkpoint::write_atomic(&out.join(&file), &bytes)?;
                entries.push(serde_json::json!({
                    "preset": preset, "seed": seed, "stage": stage, "key": key, "file": file, "bytes": bytes.len(),
                    "sha256": alignment_gap::train::dataset_file::sha256_hex(&bytes), "config": config_json(&config, head, special), "meta": meta.to_string(),
                }));
            }
        }
        let manifest = serde_json::json!({ "backend": engine.identity(), "entries": entries });
        checkpoint::write_atomic(&manifest_path, (serde_json::to_string_pretty(&manifest).map_err(|e| alignment_gap::Error::new(e.to_string()))? + "\n").as_bytes())?;
        println!("wrote {} stage(s) of {preset} to {} ({})", 2 * cfg.seeds.len(), out.display(), manifest_path.display());
        Ok(())
    }

    /// ROOT/index.json from every folder under ROOT that holds a results.json; with `check`, only compared.
    fn index(root: &std::path::Path, check: bool) -> alignment_gap::Result<()> {
        use alignment_gap::report::index::{self, IndexEntry};
        let err = |p: &std::path::Path, e: std::io::Error| alignment_gap::Error::new(format!("{}: {e}", p.display()));
        let mut entries = vec![];
        for dir in std::fs::read_dir(root).map_err(|e| err(root, e))?.flatten() {
            let path = dir.path().join("results.json");
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            let results: alignment_gap::experiments::ExperimentResults = serde_json::from_str(&text).map_err(|e| alignment_gap::Error::new(format!("{}: {e}", path.display())))?;
            let figures = std::fs::read_dir(dir.path())
                .map_err(|e| err(&dir.path(), e))?
                .flatten()
                .map(|f| f.file_name().to_string_lossy().into_owned())
                .filter(|f| f.ends_with(".svg"))
                .collect();
            entries.push(IndexEntry::new(&dir.file_name().to_string_lossy(), &results, figures));
        }
        index::sort(&mut entries);
        let json = serde_json::to_string_pretty(&entries).map_err(|e| alignment_gap::Error::new(e.to_string()))? + "\n";
        let file = root.join("index.json");
        if check {
            let old = std::fs::read_to_string(&file).unwrap_or_default();
            if old != json {
                return Err(alignment_gap::Error::new(format!("{} is not current (the results under {} changed): run alignment-gap index --root {}", file.display(), root.display(), root.display())));
            }
            println!("{} is current ({} experiments)", file.display(), entries.len());
            return Ok(());
        }
        checkpoint::write_atomic(&file, json.as_bytes())?;
        println!("wrote {} ({} experiments)", file.display(), entries.len());
        Ok(())
    }

    fn init_model(out: &std::path::Path, config: GptConfig, head: Head, seed: u32) -> alignment_gap::Result<()> {
        config.validate()?;
        if config.vocab_size < 5 {
            return Err(alignment_gap::Error::new(format!("vocab = {} is out of range 5..: four ids are special tokens", config.vocab_size)));
        }
        // The values, their safetensors bytes and the file buffer are alive at once: about 3 × 4 bytes per
        // parameter. Refuse up front rather than abort on allocation.
        let params: usize = alignment_gap::model::param_infos(&config, head).iter().map(|i| i.len()).sum();
        let need = params as u64 * 12;
        if let Some(avail) = available_memory() {
            if need > avail {
                return Err(alignment_gap::Error::new(format!(
                    "init-model: {params} parameters need about {:.1} GiB to initialise and write; this machine has {:.1} GiB available (lower --layers, --d-model, --context or --vocab)",
                    need as f64 / (1u64 << 30) as f64,
                    avail as f64 / (1u64 << 30) as f64
                )));
            }
        }
        let words: Vec<String> = (0..config.vocab_size - SPECIALS.len()).map(|i| format!("w{i}")).collect();
        let tokenizer = WordTokenizer::new(&words.iter().map(String::as_str).collect::<Vec<_>>())?;
        let values = init_values(&config, head, seed);
        let special = SpecialIds { pad: tokenizer.id("<pad>").unwrap_or(0), eos: tokenizer.id("<eos>").unwrap_or(1) };
        checkpoint::save(out, &config, head, &values, special, Some(&tokenizer.to_json()?))?;
        let n: usize = values.iter().map(Vec::len).sum();
        println!("wrote {} ({n} parameters, seed {seed})", out.display());
        Ok(())
    }

    /// MemAvailable from /proc/meminfo (Linux), in bytes.
    fn available_memory() -> Option<u64> {
        let text = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
    }

    fn logprobs(dir: &std::path::Path, tokens: &[u32], device: &DeviceArgs) -> alignment_gap::Result<()> {
        let (config, head, values) = checkpoint::load(dir)?;
        if head != Head::Lm {
            return Err(alignment_gap::Error::new("logprobs: the checkpoint is a preference model (score head), not a policy"));
        }
        if tokens.is_empty() {
            return Err(alignment_gap::Error::new("tokens: give at least one token id"));
        }
        let engine = open_engine(device)?;
        let model = Gpt::new(&engine, config, head, &values)?;
        model.check_tokens(tokens)?;
        let t = tokens.len();
        let acts = model.activations(&engine, 1, t)?;
        let mut targets = tokens[1..].to_vec();
        targets.push(0);
        let (tok, tgt) = (engine.indices(tokens), engine.indices(&targets));
        model.forward(&engine, &acts, &tok)?;
        model.sequence_logprobs(&engine, &acts, &tgt, &engine.tensor(&vec![1.0; t]))?;
        let lp = pollster::block_on(engine.read(&acts.token_logprobs))?;
        let out: Vec<Option<f32>> = std::iter::once(None).chain(lp[..t - 1].iter().map(|&v| Some(v))).collect();
        println!("{}", serde_json::json!({ "logprobs": out }));
        Ok(())
    }

    fn doctor(device: &DeviceArgs, json: bool) -> ExitCode {
        let (choice, request) = device.choice();
        let report = match pollster::block_on(selfcheck::doctor(choice, &request)) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        if json {
            println!("{}", serde_json::to_string_pretty(&report).expect("report serialises"));
        } else {
            println!("adapters found: {}", report.adapters.len());
            for a in &report.adapters {
                let l = &a.limits;
                println!("  - {} [{}; {}; {}]", a.name, a.backend, a.device_type, a.driver);
                println!(
                    "    max buffer {} MiB, storage binding {} MiB, {} storage buffers/stage, workgroup memory {} KiB, {} invocations/workgroup, {} workgroups/dim",
                    l.max_buffer_size >> 20, l.max_storage_buffer_binding_size >> 20, l.max_storage_buffers_per_shader_stage,
                    l.max_compute_workgroup_storage_size >> 10, l.max_compute_invocations_per_workgroup, l.max_compute_workgroups_per_dimension
                );
            }
            if let Some(note) = &report.note {
                println!("note: {note}");
            }
            println!("backend: {}", report.backend);
            for r in &report.selfcheck.results {
                let err = r.relative_error.map(|e| format!("{e:.2e}")).unwrap_or_else(|| "-".into());
                let msg = r.message.as_deref().map(|m| format!("  ({m})")).unwrap_or_default();
                println!("  {} {:<44} rel.err {err:>9} vs {}{msg}", if r.passed { "OK  " } else { "FAIL" }, r.name, r.reference);
            }
            println!("{}", report.selfcheck.summary_line());
        }
        if report.selfcheck.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
    }
}
