//! A kind of alignment run as a point on the paper's axes: where its pairs come from (sampled from the policy
//! being trained and labelled as it trains, or a fixed dataset) and the loss it trains with. Everything else
//! knows of a method is derived here from those axes: its name (results, cache keys, model folders, URLs), its
//! legend label and colour, what a step of it costs, and which stopping rule it trains under.
//!
//! A figure that is a new point on an existing axis (another refresh interval, window or mixture weight) needs a
//! value here only where the paper's set of values is listed ([`STREAM_WINDOWS`], [`SEMI_ONLINE_REFRESH`],
//! [`MIXTURES`]), and a colour where it should not be grey.

use crate::train::losses::Loss;
use serde::{Deserialize, Serialize};

/// A kind of alignment run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Method {
    pub data: Data,
    /// The loss it trains with; none: the experiment's own (its config's `loss`). The loss-family experiment runs
    /// online and offline again with each other loss of the GPO family (same proxy, β, lr, batch, steps, stopping rule).
    pub loss: Option<Loss>,
}

/// Where a run's pairs come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Data {
    /// Two samples per prompt from the current policy, labelled by `judge`.
    /// - `refresh`: the pairs of the next `refresh` steps are sampled at once, every `refresh` steps (semi-online IPO,
    ///   beyond the paper); 1 is online IPO itself, 0 never refreshes (every pair from π_sft at step 0).
    /// - `mixture`: π_sft's weight in percent in the per-token geometric mixture π_θ^(1−m)·π_sft^m both samples are
    ///   drawn from (IPO-MD, beyond the paper; Calandriello et al. 2024); 0 is online IPO itself.
    Online { judge: Judge, refresh: u32, mixture: u32 },
    /// A fixed dataset, read in order, cycling.
    Offline(Offline),
}

/// Who labels an online run's pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judge {
    /// The proxy preference model trained on D_golden (the paper's online IPO).
    Proxy,
    /// The golden preference itself (the paper's "golden policy", the reference no proxy can beat).
    Golden,
    /// A weaker proxy of the proxy map: the proxy's own run stopped at this step (beyond the paper).
    ProxyAt(u32),
}

/// The fixed dataset of an offline run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offline {
    /// D_golden: golden-labelled pairs of π_sft's samples (the paper's offline IPO).
    Golden,
    /// The stream of the online run with the same setting (D_online: its prompts, samples and proxy labels),
    /// shuffled within windows of this many batches ([`STREAM_WINDOWS`]): 1 keeps the order (the exact replay of
    /// the paper's App. F), 0 shuffles the whole stream (Fig. 4).
    Stream { window: u32 },
    /// A golden-labelled dataset on D_golden's prompts whose two sides come from π_sft or the online run with the
    /// same setting, early or at its end (the paper's Figs 5 and 12).
    Pairs(PairDataset),
    /// A dataset file given to `train-offline` (JSONL pairs, or a run's saved stream): no experiment plans it.
    File,
}

/// The mixture weights of π_sft in IPO-MD's sampling, in percent.
pub const MIXTURES: [u32; 3] = [25, 50, 75];

/// The refresh intervals of the semi-online experiment: 4, 16, 64 steps, 0 (never: offline on π_sft's samples
/// with proxy labels). Online IPO is refresh 1.
pub const SEMI_ONLINE_REFRESH: [u32; 4] = [4, 16, 64, 0];

/// The windows of the data experiments (the paper's Fig. 13): 1 (in order), 2, 8, 32 batches, 0 (whole stream).
pub const STREAM_WINDOWS: [u32; 5] = [1, 2, 8, 32, 0];

/// The pair datasets of the paper's Figs 5 and 12, each named by the policies its two sides come from: π_sft,
/// the online run at [`EARLY`] of its steps, or at its end (the paper: steps 800 and 4000 of 4000). D_golden
/// itself is sft-vs-sft.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairDataset {
    SftVsEarly,
    EarlyVsLate,
    LateVsLate,
}

/// Which policy one side of a pair dataset is sampled from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampler {
    Sft,
    /// The online run after [`early_steps`] of its steps.
    Early,
    /// The online run's final policy.
    Late,
}

impl Sampler {
    pub fn describe(self) -> &'static str {
        match self {
            Sampler::Sft => "π_sft",
            Sampler::Early => "the early online policy",
            Sampler::Late => "the final online policy",
        }
    }
}

/// The fraction of the online run's steps at which its "early" policy is taken: the paper's 800 of 4000.
pub const EARLY: f64 = 0.2;

/// Steps of the online run's early policy.
pub fn early_steps(online_steps: u32) -> u32 {
    ((online_steps as f64 * EARLY).round() as u32).max(1)
}

impl PairDataset {
    pub const ALL: [PairDataset; 3] = [PairDataset::SftVsEarly, PairDataset::EarlyVsLate, PairDataset::LateVsLate];

    pub fn samplers(self) -> (Sampler, Sampler) {
        match self {
            PairDataset::SftVsEarly => (Sampler::Sft, Sampler::Early),
            PairDataset::EarlyVsLate => (Sampler::Early, Sampler::Late),
            PairDataset::LateVsLate => (Sampler::Late, Sampler::Late),
        }
    }

    /// Its name in results and configs (its serde name).
    pub fn name(self) -> &'static str {
        match self {
            PairDataset::SftVsEarly => "sft_vs_early",
            PairDataset::EarlyVsLate => "early_vs_late",
            PairDataset::LateVsLate => "late_vs_late",
        }
    }
}

/// What one step of a run costs beyond the update itself, for the estimate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepCost {
    /// Two responses per prompt are sampled from the policy.
    pub samples: bool,
    /// The proxy scores each sampled pair (both orders).
    pub proxy: bool,
    /// Every sampled token runs π_sft's forward too (IPO-MD's mixture).
    pub mixture: bool,
}

impl Method {
    /// Online IPO: two samples per prompt from the current policy, labelled by the proxy PM.
    pub const ONLINE: Method = Method::online(Judge::Proxy, 1, 0);
    /// Online IPO labelled by the golden preference (the paper's "golden policy").
    pub const ONLINE_GOLDEN: Method = Method::online(Judge::Golden, 1, 0);
    /// Offline IPO on D_golden.
    pub const OFFLINE: Method = Method::offline(Offline::Golden);
    /// Offline IPO on a dataset file (`train-offline`).
    pub const OFFLINE_FILE: Method = Method::offline(Offline::File);

    const fn online(judge: Judge, refresh: u32, mixture: u32) -> Method {
        Method { data: Data::Online { judge, refresh, mixture }, loss: None }
    }

    const fn offline(data: Offline) -> Method {
        Method { data: Data::Offline(data), loss: None }
    }

    /// Offline IPO on the online run's stream, shuffled within `window` batches ([`Offline::Stream`]).
    pub const fn stream(window: u32) -> Method {
        Method::offline(Offline::Stream { window })
    }

    /// Semi-online IPO refreshing its pairs every `refresh` steps (0: never).
    pub const fn semi_online(refresh: u32) -> Method {
        Method::online(Judge::Proxy, refresh, 0)
    }

    /// IPO-MD with π_sft's weight `percent` in the sampling mixture.
    pub const fn mixture(percent: u32) -> Method {
        Method::online(Judge::Proxy, 1, percent)
    }

    /// Online IPO labelled by the proxy's own run stopped at `step` (the proxy map's weaker proxies).
    pub const fn online_proxy_at(step: u32) -> Method {
        Method::online(Judge::ProxyAt(step), 1, 0)
    }

    /// Offline IPO on a pair dataset of Figs 5 and 12.
    pub const fn pairs(dataset: PairDataset) -> Method {
        Method::offline(Offline::Pairs(dataset))
    }

    /// This method with `loss` in place of the experiment's.
    pub const fn with_loss(self, loss: Loss) -> Method {
        Method { loss: Some(loss), ..self }
    }

    /// Every method the experiments run, in the figures' order (their legends, the colour table).
    pub const ALL: [Method; 26] = [
        Method::ONLINE,
        Method::OFFLINE,
        Method::ONLINE_GOLDEN,
        Method::stream(1),
        Method::stream(2),
        Method::stream(8),
        Method::stream(32),
        Method::stream(0),
        Method::semi_online(4),
        Method::semi_online(16),
        Method::semi_online(64),
        Method::semi_online(0),
        Method::pairs(PairDataset::SftVsEarly),
        Method::pairs(PairDataset::EarlyVsLate),
        Method::pairs(PairDataset::LateVsLate),
        Method::ONLINE.with_loss(Loss::Ipo),
        Method::OFFLINE.with_loss(Loss::Ipo),
        Method::ONLINE.with_loss(Loss::Dpo),
        Method::OFFLINE.with_loss(Loss::Dpo),
        Method::ONLINE.with_loss(Loss::Slic),
        Method::OFFLINE.with_loss(Loss::Slic),
        Method::ONLINE.with_loss(Loss::BestOf2),
        Method::OFFLINE.with_loss(Loss::BestOf2),
        Method::mixture(25),
        Method::mixture(50),
        Method::mixture(75),
    ];

    /// The method named `name`: the inverse of [`Method::name`], for every point on the axes (not only
    /// [`Method::ALL`]), so that a run of a value no figure has listed is still drawn, labelled and compared.
    pub fn from_name(name: &str) -> Option<Method> {
        let number = |t: &str| t.parse::<u32>().ok();
        let (rest, loss) = match Loss::ALL.iter().find_map(|&l| name.strip_suffix(&format!("_{}", l.name())).map(|d| (d, l))) {
            Some((d, l)) => (d, Some(l)),
            None => (name, None),
        };
        let at_step = rest.rsplit_once("_pm").and_then(|(d, s)| Some((d, Judge::ProxyAt(number(s)?))));
        let (rest, judge) = match (rest.strip_suffix("_golden"), at_step) {
            (Some(d), _) => (d, Judge::Golden),
            (None, Some(at)) => at,
            (None, None) => (rest, Judge::Proxy),
        };
        // A sampler's name with its optional `_md{m}` (the mixture weight in percent).
        let mixed = |t: &str| -> Option<(u32, u32)> {
            match t.split_once("_md") {
                Some((r, m)) => Some((if r.is_empty() { 0 } else { number(r)? }, number(m)?)),
                None => Some((if t.is_empty() { 0 } else { number(t)? }, 0)),
            }
        };
        let data = if rest == "online" {
            Data::Online { judge, refresh: 1, mixture: 0 }
        } else if let Some(m) = rest.strip_prefix("ipo_md") {
            Data::Online { judge, refresh: 1, mixture: number(m)? }
        } else if let Some(t) = rest.strip_prefix("semi_online_never") {
            let (_, mixture) = mixed(t)?;
            Data::Online { judge, refresh: 0, mixture }
        } else if let Some(t) = rest.strip_prefix("semi_online") {
            let (refresh, mixture) = mixed(t)?;
            Data::Online { judge, refresh, mixture }
        } else if judge != Judge::Proxy {
            return None;
        } else if let Some(w) = rest.strip_prefix("stream_window") {
            Data::Offline(Offline::Stream { window: number(w)? })
        } else {
            let offline = match rest {
                "offline" => Offline::Golden,
                "replay" => Offline::Stream { window: 1 },
                "stream_shuffled" => Offline::Stream { window: 0 },
                "offline_file" => Offline::File,
                _ => Offline::Pairs(PairDataset::ALL.into_iter().find(|d| d.name() == rest)?),
            };
            Data::Offline(offline)
        };
        // Only a method's own spelling reads back (no "semi_online1", no "stream_window0").
        Some(Method { data, loss }).filter(|m| m.name() == name)
    }

    /// The loss a run of this method trains with, in an experiment whose loss is `loss`.
    pub fn loss(self, loss: Loss) -> Loss {
        self.loss.unwrap_or(loss)
    }

    /// Its pairs are a fixed dataset (not sampled as it trains).
    pub fn is_offline(self) -> bool {
        matches!(self.data, Data::Offline(_))
    }

    /// The window of an offline run on its online run's stream.
    pub fn stream_window(self) -> Option<u32> {
        match self.data {
            Data::Offline(Offline::Stream { window }) => Some(window),
            _ => None,
        }
    }

    /// The dataset of an offline run on a pair dataset.
    pub fn pair_dataset(self) -> Option<PairDataset> {
        match self.data {
            Data::Offline(Offline::Pairs(d)) => Some(d),
            _ => None,
        }
    }

    /// Trains under the experiment's past-its-best stopping rule: offline runs on D_golden, and on a pair dataset
    /// of its size (compared with it, so trained by the same rule). Not a stream run: it is compared with its
    /// online run step for step (the replay retraces it exactly), so it keeps online's length.
    pub fn stops_past_best(self) -> bool {
        matches!(self.data, Data::Offline(Offline::Golden | Offline::Pairs(_)))
    }

    /// Online IPO itself, with proxy or golden labels (any loss): the runs Figure 1 compares with offline, which an
    /// experiment's `past_best_every_method` trains under offline's stopping rule too.
    pub fn is_plain_online(self) -> bool {
        matches!(self.data, Data::Online { refresh: 1, mixture: 0, .. })
    }

    /// What a step costs besides the update.
    pub fn step_cost(self) -> StepCost {
        match self.data {
            Data::Online { judge, mixture, .. } => StepCost { samples: true, proxy: judge != Judge::Golden, mixture: mixture > 0 },
            Data::Offline(_) => StepCost { samples: false, proxy: false, mixture: false },
        }
    }

    /// The name results.json, metrics.csv, cache keys, model folders and the page's URLs use: the data's name, then
    /// `_{loss}` when the method sets its own loss.
    pub fn name(self) -> String {
        let data = match self.data {
            Data::Online { judge, refresh, mixture } => {
                let sampler = match (refresh, mixture) {
                    (1, 0) => "online".to_string(),
                    (1, m) => format!("ipo_md{m}"),
                    (0, m) => format!("semi_online_never{}", mix_suffix(m)),
                    (r, m) => format!("semi_online{r}{}", mix_suffix(m)),
                };
                match judge {
                    Judge::Proxy => sampler,
                    Judge::Golden => format!("{sampler}_golden"),
                    Judge::ProxyAt(step) => format!("{sampler}_pm{step}"),
                }
            }
            Data::Offline(Offline::Golden) => "offline".to_string(),
            Data::Offline(Offline::Stream { window: 1 }) => "replay".to_string(),
            Data::Offline(Offline::Stream { window: 0 }) => "stream_shuffled".to_string(),
            Data::Offline(Offline::Stream { window }) => format!("stream_window{window}"),
            Data::Offline(Offline::Pairs(d)) => d.name().to_string(),
            Data::Offline(Offline::File) => "offline_file".to_string(),
        };
        match self.loss {
            None => data,
            Some(l) => format!("{data}_{}", l.name()),
        }
    }

    /// What the page's legends and the figures call it.
    pub fn label(self) -> String {
        match (self.data, self.loss) {
            (data, None) => data_label(data),
            // The loss family's own IPO run is told apart from the experiment's online and offline IPO.
            (Data::Online { judge, refresh: 1, mixture: 0 }, Some(Loss::Ipo)) => format!("online, IPO loss ({})", judge_label(judge)),
            (Data::Online { judge, refresh: 1, mixture: 0 }, Some(l)) => format!("online {} ({})", l.display(), judge_label(judge)),
            (Data::Offline(Offline::Golden), Some(Loss::Ipo)) => "offline, IPO loss (D_golden)".to_string(),
            (Data::Offline(Offline::Golden), Some(l)) => format!("offline {} (D_golden)", l.display()),
            (data, Some(l)) => format!("{}, {} loss", data_label(data), l.display()),
        }
    }

    /// Its colour in every figure (the same for a method in each; for one outside [`Method::ALL`], a hue of its
    /// own from its name, [`Method::off_palette`]).
    pub fn colour(self) -> (u8, u8, u8) {
        const ONLINE: (u8, u8, u8) = (31, 119, 180);
        const OFFLINE: (u8, u8, u8) = (230, 120, 20);
        match (self.data, self.loss) {
            (Data::Online { judge: Judge::Proxy, refresh: 1, mixture: 0 }, None | Some(Loss::Ipo)) => ONLINE,
            (Data::Offline(Offline::Golden), None | Some(Loss::Ipo)) => OFFLINE,
            // Near black: tab10's green sat 4 ΔE from offline's orange under protanopia (the palette test in report::figure).
            (Data::Online { judge: Judge::Golden, refresh: 1, mixture: 0 }, None) => (40, 40, 40),
            // The loss family: online in blues, offline in oranges, one shade per loss.
            (Data::Online { judge: Judge::Proxy, refresh: 1, mixture: 0 }, Some(l)) => match l {
                Loss::Ipo => ONLINE,
                Loss::Dpo => (23, 75, 140),
                Loss::Slic => (107, 174, 214),
                Loss::BestOf2 => (8, 48, 107),
            },
            (Data::Offline(Offline::Golden), Some(l)) => match l {
                Loss::Ipo => OFFLINE,
                Loss::Dpo => (166, 77, 0),
                Loss::Slic => (253, 174, 107),
                Loss::BestOf2 => (127, 39, 4),
            },
            (Data::Offline(Offline::Stream { window }), None) => match window {
                1 => (148, 103, 189),
                2 => (227, 119, 194),
                8 => (188, 189, 34),
                32 => (23, 190, 207),
                0 => (140, 86, 75),
                _ => self.off_palette(),
            },
            (Data::Online { judge: Judge::Proxy, refresh, mixture: 0 }, None) => match refresh {
                4 => (158, 218, 229),
                16 => (23, 190, 207),
                64 => (148, 103, 189),
                0 => (127, 127, 127),
                _ => self.off_palette(),
            },
            (Data::Offline(Offline::Pairs(d)), None) => match d {
                PairDataset::SftVsEarly => (214, 39, 40),
                PairDataset::EarlyVsLate => (188, 189, 34),
                PairDataset::LateVsLate => (140, 86, 75),
            },
            // The proxy map's weaker proxies: from a pale blue (few steps) to online's own blue (10,000 steps).
            (Data::Online { judge: Judge::ProxyAt(step), refresh: 1, mixture: 0 }, None) => {
                let t = ((step.max(1) as f32).ln() / 10_000f32.ln()).clamp(0.0, 1.0);
                let mix = |pale: u8, full: u8| (pale as f32 + (full as f32 - pale as f32) * t).round() as u8;
                (mix(170, ONLINE.0), mix(210, ONLINE.1), mix(235, ONLINE.2))
            }
            // IPO-MD: purples, darker as π_sft's weight grows.
            (Data::Online { judge: Judge::Proxy, refresh: 1, mixture }, None) => match mixture {
                25 => (158, 154, 200),
                50 => (117, 107, 177),
                75 => (84, 39, 143),
                _ => self.off_palette(),
            },
            _ => self.off_palette(),
        }
    }
}

impl Method {
    /// The colour of a method outside the figures' palette (a user's window, refresh or mixture): a hue from its
    /// name, at a middle saturation and brightness, so that two such methods differ and none is read as
    /// online_golden's near-black or the greys of the palette.
    pub fn off_palette(self) -> (u8, u8, u8) {
        let hash = self.name().bytes().fold(0x811c9dc5u32, |h, b| (h ^ b as u32).wrapping_mul(0x01000193));
        let hue = (hash % 360) as f32 / 60.0;
        let (s, v) = (0.65f32, 0.8f32);
        let c = v * s;
        let x = c * (1.0 - (hue % 2.0 - 1.0).abs());
        let (r, g, b) = match hue as u32 {
            0 => (c, x, 0.0),
            1 => (x, c, 0.0),
            2 => (0.0, c, x),
            3 => (0.0, x, c),
            4 => (x, 0.0, c),
            _ => (c, 0.0, x),
        };
        let byte = |u: f32| ((u + v - c) * 255.0).round() as u8;
        (byte(r), byte(g), byte(b))
    }
}

fn mix_suffix(m: u32) -> String {
    if m == 0 {
        String::new()
    } else {
        format!("_md{m}")
    }
}

/// Who labelled the pairs, as the legends say it.
fn judge_label(judge: Judge) -> String {
    match judge {
        Judge::Proxy => "proxy labels".into(),
        Judge::Golden => "golden labels".into(),
        Judge::ProxyAt(step) => format!("labels of the proxy at step {step}"),
    }
}

/// IPO-MD's sampling distribution for π_sft's weight `percent`: π^0.75·π_sft^0.25 for 25 (the legends, the page's stops).
pub fn mixture_text(percent: u32) -> String {
    format!("π^{}·π_sft^{}", (100 - percent) as f64 / 100.0, percent as f64 / 100.0)
}

/// The legend label of a method's data, with the experiment's loss (IPO in every legend, as the paper's).
fn data_label(data: Data) -> String {
    match data {
        Data::Online { judge, refresh: 1, mixture: 0 } => format!("online IPO ({})", judge_label(judge)),
        Data::Online { judge: Judge::Proxy, refresh: 0, mixture: 0 } => "semi-online IPO, never refreshed (π_sft's samples, proxy labels)".to_string(),
        Data::Online { judge, refresh, mixture } => {
            let sampled = match (refresh, mixture) {
                (1, m) => format!("IPO-MD: samples from {}", mixture_text(m)),
                (0, m) => format!("semi-online IPO, never refreshed{}", mix_label(m)),
                (r, m) => format!("semi-online IPO, data refreshed every {r} steps{}", mix_label(m)),
            };
            match judge {
                Judge::Proxy => sampled,
                judge => format!("{sampled} ({})", judge_label(judge)),
            }
        }
        Data::Offline(Offline::Golden) => "offline IPO (D_golden)".to_string(),
        Data::Offline(Offline::Stream { window: 1 }) => "offline IPO on D_online, in order (exact replay)".to_string(),
        Data::Offline(Offline::Stream { window: 0 }) => "offline IPO on D_online, shuffled".to_string(),
        Data::Offline(Offline::Stream { window }) => format!("offline IPO on D_online, shuffled within {window} batches"),
        Data::Offline(Offline::Pairs(d)) => format!("offline IPO on D_{} (golden labels)", d.name().replace("_vs_", "-vs-")),
        Data::Offline(Offline::File) => "offline IPO on a dataset file".to_string(),
    }
}

fn mix_label(m: u32) -> String {
    if m == 0 {
        String::new()
    } else {
        format!(", samples from {}", mixture_text(m))
    }
}

/// A method is written by its name (results.json's `method`).
impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// In results.json a method is its name; a name no method has is refused with the names that exist.
impl Serialize for Method {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Method, D::Error> {
        let name = String::deserialize(d)?;
        Method::from_name(&name).ok_or_else(|| {
            let known: Vec<String> = Method::ALL.iter().map(|m| m.name()).collect();
            serde::de::Error::custom(format!("method \"{name}\" is no point on the methods' axes (the figures' methods: {})", known.join(", ")))
        })
    }
}
