//! The optional arms of an experiment: each a row with its config key, the values it allows (the page's slider stops
//! where there are few), its validation, its knob and the runs it adds. The run plan ([`super::plan`]) walks this
//! table, so an arm cannot be left out of one branch of it; a test sets each arm's example on the swept and the
//! unswept protocol and checks that its runs are there or the config is refused by name.

use super::experiment::{check_size, range, training_bytes, ExperimentConfig, Knob};
use super::method::{self, Method, PairDataset};
use super::pipeline::RunSpec;
use crate::bail;
use crate::error::Result;

/// Where an arm's runs go.
#[derive(Clone, Copy, Debug)]
pub enum Adds {
    /// Runs at each (β, lr) of the config, after its online run (and before the offline runs at that lr).
    BesideOnline(fn(&ExperimentConfig, f32, f32) -> Vec<RunSpec>),
    /// Runs at each (β, lr) after the offline runs at online's lr: the arm is compared with offline at the same lr, so
    /// it needs offline at online's lrs (`offline_lrs` empty), for the reason given.
    BesideOffline(fn(&ExperimentConfig, f32, f32) -> Vec<RunSpec>, &'static str),
    /// Runs at each (β, lr), last.
    Last(fn(&ExperimentConfig, f32, f32) -> Vec<RunSpec>),
    /// Every run of the seed's own list again, changed (the scaling ladder: at another policy size).
    Again(fn(&ExperimentConfig, &[RunSpec]) -> Vec<RunSpec>),
}

/// Where in a (β, lr)'s runs an arm's [`Adds`] puts its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    BesideOnline,
    BesideOffline,
    Last,
}

impl Adds {
    /// The runs it adds at (β, lr) when it adds them at `place` (none otherwise, and never for [`Adds::Again`]).
    pub fn runs_at(&self, place: Place, c: &ExperimentConfig, beta: f32, lr: f32) -> Vec<RunSpec> {
        match (*self, place) {
            (Adds::BesideOnline(runs), Place::BesideOnline) | (Adds::BesideOffline(runs, _), Place::BesideOffline) | (Adds::Last(runs), Place::Last) => runs(c, beta, lr),
            _ => vec![],
        }
    }
}

/// One optional arm.
#[derive(Clone, Copy, Debug)]
pub struct Arm {
    /// Its config key: `--set KEY=…`, the page's URL and knob.
    pub key: &'static str,
    /// A value that turns it on, as `--set` takes it (the tests set it; the docs show it).
    pub example: &'static str,
    /// The values the page offers as slider stops, each with what it means (empty: the knob is a text field).
    pub stops: fn() -> Vec<(String, String)>,
    pub knob: fn() -> Knob,
    /// Refuses a value it does not allow, naming the key and the allowed values.
    pub validate: fn(&ExperimentConfig) -> Result<()>,
    pub adds: Adds,
}

/// Every arm, in the order their runs are listed at a (β, lr) (results order).
pub const ARMS: [Arm; 8] = [
    Arm {
        key: "stream_windows",
        example: "[1, 0]",
        stops: || vec![],
        knob: || {
            let help = format!("offline IPO on each online run's own stream, shuffled within this many batches, up to the online steps; e.g. {:?} (1: in order, 0: all)", method::STREAM_WINDOWS);
            Knob::new("stream_windows", "Online-stream windows", "list", help)
        },
        validate: |c| {
            for (i, w) in c.stream_windows.iter().enumerate() {
                if c.stream_windows[..i].contains(w) {
                    bail!("stream_windows[{i}] = {w} appears twice (one run per window; the paper's are {:?}: 1 keeps the online order, 0 shuffles the whole stream)", method::STREAM_WINDOWS);
                }
                if *w > c.steps {
                    bail!("stream_windows[{i}] = {w} batches is larger than the stream: an online run has steps = {} batches (0 shuffles the whole stream)", c.steps);
                }
            }
            Ok(())
        },
        adds: Adds::BesideOnline(|c, beta, lr| c.stream_windows.iter().map(|&w| RunSpec::new(Method::stream(w), beta, lr, c.steps)).collect()),
    },
    Arm {
        key: "semi_online",
        example: "[4]",
        stops: || {
            let every = |r: u32| if r == 0 { "never (π_sft's samples)".to_string() } else { format!("every {r} steps") };
            std::iter::once((String::new(), "off: online and offline only".to_string())).chain(method::SEMI_ONLINE_REFRESH.map(|r| (r.to_string(), every(r)))).collect()
        },
        knob: || {
            let help = format!("semi-online IPO beside online, refreshing its data every this many steps (2 or more), or 0 (never); e.g. {:?}", method::SEMI_ONLINE_REFRESH);
            Knob::new("semi_online", "Semi-online refresh", "list", help)
        },
        validate: |c| {
            for (i, r) in c.semi_online.iter().enumerate() {
                // A refresh at or past the run's length samples every pair at step 0, as 0 does: allowed, as before.
                if *r == 1 || *r as u64 > range::ONLINE_STEPS || c.semi_online[..i].contains(r) {
                    bail!("semi_online[{i}] = {r}: each must be 0 (never refreshed) or 2..={} (steps between refreshes of the data; 1 is online IPO itself), once; e.g. {:?}", range::ONLINE_STEPS, method::SEMI_ONLINE_REFRESH);
                }
            }
            Ok(())
        },
        adds: Adds::BesideOnline(|c, beta, lr| c.semi_online.iter().map(|&r| RunSpec::new(Method::semi_online(r), beta, lr, c.steps)).collect()),
    },
    Arm {
        key: "mixtures",
        example: "[0.25]",
        stops: || {
            let stop = |p: u32| {
                let m = p as f64 / 100.0;
                (m.to_string(), format!("m = {m}: {}", method::mixture_text(p)))
            };
            std::iter::once((String::new(), "off: online samples from π alone".to_string())).chain(method::MIXTURES.map(stop)).collect()
        },
        knob: || {
            let help = "IPO-MD beside online: π_sft's weight m in the sampling mixture π^(1−m)·π_sft^m, each in 0.01 – 0.99 in steps of 0.01, e.g. 0.25, 0.5, 0.75 (0 is online IPO); m leans the samples toward π_sft";
            Knob::new("mixtures", "IPO-MD mixture", "list", help.into())
        },
        validate: |c| {
            for (i, &m) in c.mixtures.iter().enumerate() {
                let key = format!("mixtures[{i}]");
                crate::limits::real(&key, m, crate::limits::Interval::below(0.0, 1.0), "π_sft's weight in IPO-MD's sampling mixture π^(1−m)·π_sft^m; 1 would sample from π_sft alone")?;
                let percent = (m * 100.0).round() as u32;
                // Runs are named by the percent (ipo_md25), so each weight is a whole percent.
                if percent == 0 || (m * 100.0 - percent as f32).abs() > 1e-4 || c.mixtures[..i].contains(&m) {
                    bail!("{key} = {m}: each must be a whole percent in 0.01 – 0.99, e.g. 0.25, 0.5, 0.75 (0 is online IPO itself), once");
                }
            }
            Ok(())
        },
        adds: Adds::BesideOnline(|c, beta, lr| c.mixtures.iter().map(|&m| RunSpec::new(Method::mixture((m * 100.0).round() as u32), beta, lr, c.steps)).collect()),
    },
    Arm {
        key: "pair_datasets",
        example: r#"["late_vs_late"]"#,
        stops: || vec![],
        knob: || {
            let help = format!("offline IPO on golden-labelled pairs from π_sft and the online run, one run per dataset; any of {}", PairDataset::ALL.map(|d| d.name()).join(", "));
            Knob::new("pair_datasets", "Pair datasets", "list", help)
        },
        validate: |c| {
            for (i, d) in c.pair_datasets.iter().enumerate() {
                if c.pair_datasets[..i].contains(d) {
                    bail!("pair_datasets[{i}]: {d:?} appears twice (one run per dataset)");
                }
            }
            Ok(())
        },
        adds: Adds::BesideOffline(
            |c, beta, lr| c.pair_datasets.iter().flat_map(|&d| c.offline_steps.iter().map(move |&steps| RunSpec::new(Method::pairs(d), beta, lr, steps))).collect(),
            "each pair dataset is sampled from the online run with its run's own β and lr",
        ),
    },
    Arm {
        key: "loss_family",
        example: r#"["dpo"]"#,
        stops: || vec![],
        knob: || Knob::new("loss_family", "Loss family", "list", "online and offline beside the config's loss with each of ipo, dpo, slic, best_of2 (not the config's own)".into()),
        validate: |c| {
            for (i, l) in c.loss_family.iter().enumerate() {
                if *l == c.loss || c.loss_family[..i].contains(l) {
                    bail!("loss_family[{i}] = {:?}: each must be a loss of the family other than loss = {:?} (ipo, dpo, slic, best_of2), once", l, c.loss);
                }
            }
            Ok(())
        },
        adds: Adds::BesideOffline(
            |c, beta, lr| {
                let pair = |l| std::iter::once(RunSpec::new(Method::ONLINE.with_loss(l), beta, lr, c.steps)).chain(c.offline_steps.iter().map(move |&steps| RunSpec::new(Method::OFFLINE.with_loss(l), beta, lr, steps)));
                c.loss_family.iter().flat_map(|&l| pair(l)).collect()
            },
            "each loss's offline run is compared with its online run at the same lr",
        ),
    },
    Arm {
        key: "proxy_map",
        example: "[250, 500]",
        stops: || vec![],
        knob: || {
            let help = "the proxy map: online IPO again labelled by the proxy's own run stopped at each of these steps (weaker proxies, each ≤ proxy.steps), e.g. [25, 100, 500, 2000]";
            Knob::new("proxy_map", "Proxy-map steps", "list", help.into())
        },
        validate: |c| {
            for (i, &s) in c.proxy_map.iter().enumerate() {
                if s == 0 || s > c.proxy.steps || c.proxy_map[..i].iter().any(|&o| o >= s) {
                    bail!("proxy_map[{i}] = {s}: each must be a step of the proxy's run, in 1..={} (proxy.steps), ascending, once", c.proxy.steps);
                }
            }
            Ok(())
        },
        adds: Adds::BesideOnline(|c, beta, lr| c.proxy_map.iter().map(|&s| RunSpec::new(Method::online_proxy_at(s), beta, lr, c.steps)).collect()),
    },
    Arm {
        key: "golden_reference",
        example: "true",
        stops: || vec![],
        knob: || Knob::new("golden_reference", "Golden-labelled online run", "bool", "also run online IPO with golden labels".into()),
        validate: |_| Ok(()),
        adds: Adds::Last(|c, beta, lr| if c.golden_reference { vec![RunSpec::new(Method::ONLINE_GOLDEN, beta, lr, c.steps)] } else { vec![] }),
    },
    Arm {
        key: "scaling",
        example: r#"["1x16h1"]"#,
        stops: || vec![],
        knob: || Knob::new("scaling", "Scaling ladder", "list", "every run again at each of these policy sizes LxDhH (L layers of width D, H heads; e.g. 1x32h2), each from its own SFT, over the same proxy; Figs 10 and 11".into()),
        validate: |c| {
            for (i, size) in c.scaling.iter().enumerate() {
                let key = format!("scaling[{i}]");
                check_size(&key, size)?;
                if *size == c.policy || c.scaling[..i].contains(size) {
                    bail!("{key} = {size}: each size of the scaling ladder must differ from policy = {} and from the others, once", c.policy);
                }
                // Training holds the policy (weights, gradients, AdamW's two moments), its SFT reference and the proxy,
                // and the activations of a batch of pairs over the task's whole context.
                let bytes = training_bytes(*size, &c.task, c.batch);
                if bytes > range::TRAINING_BYTES {
                    bail!(
                        "{key} = {size}: training it on batches of {} pairs over the task's context of {} tokens needs about {:.1} GiB, more than the {} GiB a browser tab's WebAssembly memory can give (a smaller size, or a smaller batch)",
                        c.batch, c.task.context(), bytes as f64 / (1u64 << 30) as f64, range::TRAINING_BYTES >> 30
                    );
                }
            }
            Ok(())
        },
        adds: Adds::Again(|c, own| c.scaling.iter().flat_map(|&size| own.iter().map(move |r| RunSpec { policy: Some(size), ..*r })).collect()),
    },
];

/// The arm of config key `key`.
pub fn arm(key: &str) -> Option<&'static Arm> {
    ARMS.iter().find(|a| a.key == key)
}

/// Every arm's own checks, then the rule of the arms beside offline: they need offline at online's lrs.
pub fn validate(c: &ExperimentConfig) -> Result<()> {
    for a in &ARMS {
        (a.validate)(c)?;
    }
    if c.offline_only {
        // Every arm compares with, or reads, an online run; offline_only trains none.
        let (beta, lr) = (c.betas.first().copied().unwrap_or(0.1), c.lrs.first().copied().unwrap_or(1e-3));
        for a in &ARMS {
            let adds = [Place::BesideOnline, Place::BesideOffline, Place::Last].iter().any(|&p| !a.adds.runs_at(p, c, beta, lr).is_empty());
            let again = matches!(a.adds, Adds::Again(f) if !f(c, &[RunSpec::new(Method::OFFLINE, beta, lr, c.steps)]).is_empty());
            if adds || again {
                bail!("{} is on, but offline_only = true trains no online run for it to follow or be compared with; turn it off or set offline_only = false", a.key);
            }
        }
    }
    if !c.offline_lrs.is_empty() {
        for a in &ARMS {
            if let (Adds::BesideOffline(runs, why), Some((&beta, &lr))) = (a.adds, c.betas.first().zip(c.lrs.first())) {
                if !runs(c, beta, lr).is_empty() {
                    bail!("{} needs offline_lrs = [] (offline at online's lrs): {why}", a.key);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each arm's example, set through `--set` on the fig1 preset with and without its offline lr sweep: either the
    /// config is refused naming the arm, or every (β, lr) has the arm's runs (at every size of the ladder).
    #[test]
    fn every_arm_adds_its_runs_or_is_refused_by_name() {
        for arm in &ARMS {
            for offline_lrs in ["[0.0005, 0.001]", "[]"] {
                let sets = [format!("offline_lrs={offline_lrs}"), format!("{}={}", arm.key, arm.example)];
                let cfg: ExperimentConfig = crate::settings::apply_overrides(&ExperimentConfig::preset("fig1").unwrap(), &sets).unwrap();
                let runs = cfg.runs_for(cfg.seeds[0]);
                let plain = ExperimentConfig { offline_lrs: cfg.offline_lrs.clone(), ..ExperimentConfig::preset("fig1").unwrap() }.runs_for(cfg.seeds[0]);
                match cfg.validate() {
                    Err(e) => {
                        assert!(matches!(arm.adds, Adds::BesideOffline(..)) && offline_lrs != "[]", "{}: {}", arm.key, e.message);
                        assert!(e.message.starts_with(arm.key), "{}", e.message);
                    }
                    Ok(()) if arm.key == "golden_reference" => assert_eq!(runs.len(), plain.len(), "the fig1 preset has it already"),
                    Ok(()) => {
                        let added: Vec<&RunSpec> = runs.iter().filter(|r| !plain.contains(r)).collect();
                        assert!(!added.is_empty(), "{} ({offline_lrs}) adds no run", arm.key);
                        for &beta in &cfg.betas {
                            for &lr in &cfg.lrs {
                                assert!(added.iter().any(|r| r.beta == beta && r.lr == lr), "{} ({offline_lrs}): none at β {beta}, lr {lr}", arm.key);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Every stop the page offers is a value the config takes, on every preset (the page offers them on each).
    #[test]
    fn slider_stops_are_allowed_values() {
        for arm in &ARMS {
            for (value, _) in (arm.stops)().into_iter().filter(|(v, _)| !v.is_empty()) {
                let set = format!("{}=[{value}]", arm.key);
                for preset in crate::experiments::preset_names() {
                    let cfg: ExperimentConfig = crate::settings::apply_overrides(&ExperimentConfig::preset(preset).unwrap(), &[set.clone()]).unwrap();
                    match cfg.validate() {
                        // A task search trains no online run: every arm is refused there, by name.
                        Err(e) if cfg.offline_only => assert!(e.message.starts_with(arm.key) && e.message.contains("offline_only = true"), "{preset}, {set}: {}", e.message),
                        r => r.unwrap_or_else(|e| panic!("{preset}, {set}: {}", e.message)),
                    }
                }
            }
        }
    }
}
