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
    use alignment_gap::engine::{AdapterRequest, BackendChoice};
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
        }
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
