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
        },
        /// Run a paper figure end to end and write results.json, metrics.csv, the figure (SVG), summary.md and
        /// the trained models.
        Reproduce {
            /// fig1 (the full figure) or fig1-tiny (seconds; used by the tests).
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
            #[command(flatten)]
            device: DeviceArgs,
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
            Command::Reproduce { preset, out, seeds, sets, device } => report(reproduce(&preset, &out, seeds, &sets, &device)),
            Command::Bench { device, sizes, repeats, json } => report(bench(&device, &sizes, repeats as usize, json.as_deref())),
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

    fn bench(device: &DeviceArgs, sizes: &[String], repeats: usize, json: Option<&std::path::Path>) -> alignment_gap::Result<()> {
        use alignment_gap::bench;
        let engine = open_engine(device)?;
        let mut rows = Vec::new();
        for name in sizes {
            let Some(&(n, l, d, h)) = bench::SIZES.iter().find(|s| s.0.eq_ignore_ascii_case(name)) else {
                return Err(alignment_gap::Error(format!("sizes: '{name}' is not one of S, M, L")));
            };
            eprintln!("bench: size {n} ({l} layers, d_model {d}, {h} heads) on {}", engine.describe());
            rows.push(pollster::block_on(bench::run_size(&engine, n, l, d, h, repeats))?);
        }
        let threads = std::env::var("MATMUL_NUM_THREADS").unwrap_or_else(|_| "all cores".into());
        println!("batch {} x context {}, vocab {}; matmul threads: {threads}", bench::BATCH, bench::CONTEXT, bench::VOCAB);
        print!("{}", bench::table(&rows));
        if let Some(path) = json {
            let text = serde_json::to_string_pretty(&rows).expect("json");
            checkpoint::write_atomic(path, text.as_bytes())?;
        }
        Ok(())
    }

    fn reproduce(preset: &str, out: &std::path::Path, seeds: Option<Vec<u32>>, sets: &[String], device: &DeviceArgs) -> alignment_gap::Result<()> {
        use alignment_gap::experiments::{apply_overrides, fig1};
        use alignment_gap::report::{figure, metrics_csv, summary};
        use indicatif::{ProgressBar, ProgressStyle};
        let mut cfg = fig1::Fig1Config::preset(preset)?;
        if let Some(seeds) = seeds {
            cfg.seeds = seeds;
        }
        let cfg = apply_overrides(&cfg, sets)?;
        cfg.validate()?;
        let engine = open_engine(device)?;
        eprintln!("reproduce {preset}: seeds {:?}, backend {}", cfg.seeds, engine.describe());
        std::fs::create_dir_all(out).map_err(|e| alignment_gap::Error(format!("{}: {e}", out.display())))?;
        let tokenizer = cfg.task.tokenizer()?.to_json()?;
        let special = SpecialIds { pad: alignment_gap::task::PAD, eos: alignment_gap::task::EOS };
        let style = ProgressStyle::with_template("{msg:<40} {bar:30} {pos}/{len} [{elapsed_precise}, {per_sec}, eta {eta}]").expect("template");
        let mut bar: Option<(String, ProgressBar)> = None;
        let started = std::time::Instant::now();
        let results = pollster::block_on(fig1::run(
            &engine,
            &cfg,
            |p| {
                if let fig1::Progress::Stage { name, step, total } = p {
                    if bar.as_ref().map(|(n, _)| n != &name).unwrap_or(true) {
                        if let Some((_, b)) = bar.take() {
                            b.finish();
                        }
                        // indicatif draws nothing when stderr is not a terminal (CI logs, pipes): say the stage.
                        if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                            eprintln!("[{:>6.0} s] {name}", started.elapsed().as_secs_f64());
                        }
                        let b = ProgressBar::new(total).with_style(style.clone()).with_message(name.clone());
                        bar = Some((name, b));
                    }
                    if let Some((_, b)) = &bar {
                        b.set_position(step);
                    }
                }
            },
            |models| {
                let dir = out.join("models").join(format!("seed{}", models.seed));
                let mut all = vec![("sft".to_string(), &models.sft), ("proxy".to_string(), &models.proxy)];
                all.extend(models.policies.iter().map(|(n, m)| (n.clone(), m)));
                for (name, m) in all {
                    let values = pollster::block_on(m.values(&engine))?;
                    checkpoint::save(&dir.join(name), &m.config, m.head, &values, special, Some(&tokenizer))?;
                }
                Ok(())
            },
        ))?;
        if let Some((_, b)) = bar.take() {
            b.finish();
        }
        let bins = summary::binned(&results.checkpoints, 6);
        let json = serde_json::to_string_pretty(&results).map_err(|e| alignment_gap::Error(e.to_string()))?;
        checkpoint::write_atomic(&out.join("results.json"), json.as_bytes())?;
        checkpoint::write_atomic(&out.join("metrics.csv"), metrics_csv(&results.checkpoints).as_bytes())?;
        checkpoint::write_atomic(&out.join("fig1.svg"), figure::fig1_svg(&results.checkpoints, &bins)?.as_bytes())?;
        let md = summary::summary_md(&results, &bins);
        checkpoint::write_atomic(&out.join("summary.md"), md.as_bytes())?;
        println!("{}", md.lines().skip_while(|l| !l.starts_with("## Verdict")).collect::<Vec<_>>().join("\n"));
        println!("wrote {} in {:.0} s", out.display(), started.elapsed().as_secs_f64());
        Ok(())
    }

    fn init_model(out: &std::path::Path, config: GptConfig, head: Head, seed: u32) -> alignment_gap::Result<()> {
        config.validate()?;
        if config.vocab_size < 5 {
            return Err(alignment_gap::Error(format!("vocab = {} is out of range 5..: four ids are special tokens", config.vocab_size)));
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

    fn logprobs(dir: &std::path::Path, tokens: &[u32], device: &DeviceArgs) -> alignment_gap::Result<()> {
        let (config, head, values) = checkpoint::load(dir)?;
        if head != Head::Lm {
            return Err(alignment_gap::Error("logprobs: the checkpoint is a preference model (score head), not a policy".into()));
        }
        if tokens.is_empty() {
            return Err(alignment_gap::Error("tokens: give at least one token id".into()));
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
