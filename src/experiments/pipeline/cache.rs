//! The stage cache: trained stages, finished runs and saved run states, stored by the hash of everything that
//! determines them (their keys are here), behind one interface; the directory cache of the CLI.

use super::*;
use crate::error::Result;
use crate::model::{Gpt, GptConfig, Head};
use crate::task::TaskConfig;
use crate::experiments::method::early_steps;
use crate::train::align::{AlignState, PastBest};

/// Trained stages and finished runs stored by the hash of everything that determines them. `meta` carries
/// what the stage reported (its loss curve, its accuracy, a run's checkpoints).
pub trait StageCache {
    fn get(&mut self, key: &str) -> Option<(GptConfig, Head, Vec<Vec<f32>>, serde_json::Value)>;
    /// Whether `get` would find a usable entry (a cache may answer more cheaply than loading it).
    fn contains(&mut self, key: &str) -> bool {
        self.get(key).is_some()
    }
    fn put(&mut self, key: &str, model: &Gpt, values: &[Vec<f32>], meta: serde_json::Value) -> Result<()>;
    /// Drops an entry (a resumed run's saved state once the run is done); a cache may keep it.
    fn remove(&mut self, _key: &str) {}
}

/// The cache keys of a run's saved [`AlignState`]: the state (its policy, with the rest as meta), then AdamW's first and
/// second moments (as models of the policy's shape).
pub fn resume_keys(run_key: &str) -> [String; 3] {
    [format!("{run_key}-state"), format!("{run_key}-adam-m"), format!("{run_key}-adam-v")]
}

/// No caching (the page, the tests).
pub struct NoCache;

impl StageCache for NoCache {
    fn get(&mut self, _: &str) -> Option<(GptConfig, Head, Vec<Vec<f32>>, serde_json::Value)> {
        None
    }
    fn put(&mut self, _: &str, _: &Gpt, _: &[Vec<f32>], _: serde_json::Value) -> Result<()> {
        Ok(())
    }
}

/// 64-bit FNV-1a of a JSON value's canonical text, as 16 hex digits: stable across runs and machines.
pub fn hash_json(v: &serde_json::Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in v.to_string().bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Cache keys of the SFT and proxy stages of one seed. The backend is part of the key: the CPU and GPU
/// backends agree to rounding, not bit for bit.
/// A task as cache keys read it: today's additive task without its `kind`, so that every stage and run cached (and
/// shipped) before task kinds existed keeps its key.
fn task_key(task: &TaskConfig) -> serde_json::Value {
    let mut v = serde_json::json!(task);
    if task.kind.is_additive() {
        v.as_object_mut().expect("a struct").remove("kind");
    }
    v
}

pub fn stage_keys(spec: &StageSpec, seed: u32, backend: &str) -> (String, String) {
    // How golden labels are drawn, and what the golden reward asks for, do not touch SFT (its data is the
    // generator's), so a sweep over label noise or task kinds reuses the SFT stage.
    let task = TaskConfig { labels: crate::task::LabelNoise::Hard, kind: crate::task::TaskKind::Additive, ..spec.task.clone() };
    let sft = serde_json::json!({"stage": "sft", "task": task_key(&task), "policy": spec.policy, "sft": spec.sft, "seed": seed, "backend": backend, "version": 1});
    let sft_key = format!("sft-{}", hash_json(&sft));
    let mut proxy_config = serde_json::json!(spec.proxy);
    if spec.proxy.is_original() {
        // The proxy every experiment had before proxy kinds existed keeps its key (and its cached and shipped
        // stages); `score` does not read a pairwise proxy.
        for k in ["kind", "separator", "score"] {
            proxy_config.as_object_mut().expect("a struct").remove(k);
        }
    }
    if spec.proxy.trunk_apart_from(spec.policy).is_none() {
        // A trunk of the policy's size is the one every proxy had before the trunk was its own setting.
        proxy_config.as_object_mut().expect("a struct").remove("trunk");
    }
    let mut proxy = serde_json::json!({"stage": "proxy", "sft": sft_key, "d_golden": spec.d_golden, "heldout": spec.heldout, "proxy": proxy_config, "version": 1});
    // D_golden's labels (so the proxy) depend on both; keyed where they are not what every proxy had before
    // either existed (hard labels, the additive reward), so those keep their keys.
    if spec.task.labels != crate::task::LabelNoise::Hard {
        proxy["labels"] = serde_json::json!(spec.task.labels);
    }
    if !spec.task.kind.is_additive() {
        proxy["task_kind"] = serde_json::json!(spec.task.kind);
    }
    (sft_key.clone(), format!("proxy-{}", hash_json(&proxy)))
}

/// Cache key of one alignment run: everything that determines its checkpoints and policy (the SFT and
/// proxy keys, the evaluation sets' sizes, the run's own setting).
pub fn run_key(spec: &StageSpec, seed: u32, backend: &str, run: &RunSpec) -> String {
    run_key_with(spec, seed, backend, run, past_best_of(spec, run))
}

/// The stopping rule a run trains under: the spec's [`PastBest`] for offline IPO on D_golden or on a pair
/// dataset of its size (compared with it, so trained by the same rule), none for the others.
pub fn past_best_of(spec: &StageSpec, run: &RunSpec) -> Option<PastBest> {
    spec.offline_past_best.filter(|_| run.method.stops_past_best() || (spec.past_best_every_method && run.method.is_plain_online()))
}

/// [`run_key`] under a given stopping rule. Without one, the key is the one runs had before the rule
/// existed, so their cached entries stay valid.
pub(super) fn run_key_with(spec: &StageSpec, seed: u32, backend: &str, run: &RunSpec, past_best: Option<PastBest>) -> String {
    let (sft, proxy) = stage_keys(spec, seed, spec.stages_on(backend));
    let mut key = serde_json::json!({
        "stage": "run", "sft": sft, "proxy": proxy, "task": task_key(spec.task), "d_golden": spec.d_golden, "heldout": spec.heldout,
        "loss": spec.loss, "batch": spec.batch, "eval_every": spec.eval_every, "win_prompts": spec.win_prompts,
        "kl_prompts": spec.kl_prompts, "method": run.method.name(), "beta": run.beta, "lr": run.lr, "steps": run.steps,
        "log_evals": spec.log_evals, "warmup_steps": spec.warmup_steps, "align_seed": run.align_seed, "version": 3,
    });
    if let Some(p) = past_best {
        key["past_best"] = serde_json::json!(p);
    }
    if spec.align_chunks > 0 {
        // Data-parallel steps differ from one pass in the last bits.
        key["align_chunks"] = serde_json::json!(spec.align_chunks);
    }
    if spec.validation_prompts > 0 {
        key["validation_prompts"] = serde_json::json!(spec.validation_prompts);
    }
    if spec.stages_on(backend) != backend {
        // Trained here from stages trained on another backend.
        key["backend"] = serde_json::json!(backend);
    }
    if let Some(size) = run.policy {
        // Its SFT policy is the seed's SFT config at this size (D_golden and the proxy are the seed's own, keyed above).
        key["policy"] = serde_json::json!(size);
    }
    if run.method.pair_dataset().is_some() {
        // Its data comes from the online run of its setting, early and at its end.
        key["online_steps"] = serde_json::json!(spec.online_steps);
        key["early_steps"] = serde_json::json!(early_steps(spec.online_steps));
    }
    format!("run-{}", hash_json(&key))
}

/// A run's [`AlignState`] from the cache ([`resume_keys`]), when all three entries are there and from one checkpoint.
pub(super) fn read_state(cache: &mut dyn StageCache, keys: &[String; 3]) -> Option<AlignState> {
    let (_, _, params, meta) = cache.get(&keys[0])?;
    let mut state: AlignState = serde_json::from_value(meta).ok()?;
    let (_, _, adam_m, m_step) = cache.get(&keys[1])?;
    let (_, _, adam_v, v_step) = cache.get(&keys[2])?;
    // Written one after another: an interruption between them leaves moments of another step, not used.
    if m_step != serde_json::json!(state.step) || v_step != serde_json::json!(state.step) {
        return None;
    }
    (state.params, state.adam_m, state.adam_v) = (params, adam_m, adam_v);
    Some(state)
}

/// Keeps `state` in the cache under [`resume_keys`]: the moments (each as a model of the policy's shape, `like`'s),
/// then the state itself, whose step the moments' entries must name to be read back.
pub(super) fn write_state(cache: &mut dyn StageCache, keys: &[String; 3], like: &Gpt, state: AlignState) -> Result<()> {
    let step = serde_json::json!(state.step);
    cache.put(&keys[1], like, &state.adam_m, step.clone())?;
    cache.put(&keys[2], like, &state.adam_v, step)?;
    let meta = serde_json::to_value(&state).map_err(|e| crate::Error::new(e.to_string()))?;
    cache.put(&keys[0], like, &state.params, meta)
}

/// A stage cache two runs trained side by side share (each borrows it only inside a call).
pub(super) struct SharedCache<'c, 'd, 'o>(pub(super) &'c std::cell::RefCell<&'d mut (dyn StageCache + 'o)>);

impl StageCache for SharedCache<'_, '_, '_> {
    fn get(&mut self, key: &str) -> Option<(GptConfig, Head, Vec<Vec<f32>>, serde_json::Value)> {
        self.0.borrow_mut().get(key)
    }
    fn contains(&mut self, key: &str) -> bool {
        self.0.borrow_mut().contains(key)
    }
    fn put(&mut self, key: &str, model: &Gpt, values: &[Vec<f32>], meta: serde_json::Value) -> Result<()> {
        self.0.borrow_mut().put(key, model, values, meta)
    }
    fn remove(&mut self, key: &str) {
        self.0.borrow_mut().remove(key)
    }
}

#[cfg(not(target_arch = "wasm32"))]
/// Stage cache in a directory: one folder per key holding the model (HF format) and meta.json. A folder
/// is written under a unique temporary name and renamed into place whole, so concurrent writers (seeds
/// in threads, two runs sharing `--cache`) never see or clobber a half-written entry. An entry that does
/// not load (missing meta.json, non-finite weights, a damaged file) is rebuilt.
pub struct DirCache(pub std::path::PathBuf);

#[cfg(not(target_arch = "wasm32"))]
impl StageCache for DirCache {
    fn get(&mut self, key: &str) -> Option<(GptConfig, Head, Vec<Vec<f32>>, serde_json::Value)> {
        let dir = self.0.join(key);
        if !dir.exists() {
            return None;
        }
        match load_cache_entry(&dir) {
            Ok(entry) => Some(entry),
            Err(e) => {
                eprintln!("note: cache entry {} is unusable ({e}); rebuilding it", dir.display());
                None
            }
        }
    }
    fn put(&mut self, key: &str, model: &crate::model::Gpt, values: &[Vec<f32>], meta: serde_json::Value) -> crate::Result<()> {
        let dir = self.0.join(key);
        let tmp = crate::model::checkpoint::unique_temp(&dir);
        let special = crate::model::checkpoint::SpecialIds { pad: crate::task::PAD, eos: crate::task::EOS };
        let entry = |e: crate::Error| crate::Error::new(format!("cache entry {}: {e}", dir.display()));
        crate::model::checkpoint::save(&tmp, &model.config, model.head, values, special, None).map_err(entry)?;
        crate::model::checkpoint::write_atomic(&tmp.join("meta.json"), meta.to_string().as_bytes()).map_err(entry)?;
        if dir.exists() {
            match load_cache_entry(&dir) {
                // Another writer stored the same entry (entries of one key are identical): keep theirs.
                Ok((.., theirs)) if theirs == meta => {
                    let _ = std::fs::remove_dir_all(&tmp);
                    return Ok(());
                }
                // Unusable or different (a damaged meta.json): replaced below.
                _ => {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        }
        if std::fs::rename(&tmp, &dir).is_err() {
            // Another writer renamed its entry in between; use it if it loads.
            let _ = std::fs::remove_dir_all(&tmp);
            if load_cache_entry(&dir).is_err() {
                return Err(crate::Error::new(format!("{}: could not store the cache entry", dir.display())));
            }
        }
        Ok(())
    }
}

#[cfg(not(target_arch = "wasm32"))]
/// A cache entry's model and meta.json, or why it cannot be used.
fn load_cache_entry(dir: &std::path::Path) -> crate::Result<(GptConfig, Head, Vec<Vec<f32>>, serde_json::Value)> {
    let meta_path = dir.join("meta.json");
    let bytes = std::fs::read(&meta_path).map_err(|e| crate::Error::new(format!("{}: {e}", meta_path.display())))?;
    let meta = serde_json::from_slice(&bytes).map_err(|e| crate::Error::new(format!("{}: {e}", meta_path.display())))?;
    let (config, head, values) = crate::model::checkpoint::load(dir)?;
    Ok((config, head, values, meta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::ExperimentConfig;
    use crate::task::{LabelNoise, TaskKind};

    /// The proxy's trunk is in its key only when it is not the policy's size, so every proxy cached or shipped before
    /// the trunk was a setting keeps its key; a trunk of another size is another proxy over the same SFT and D_golden.
    #[test]
    fn the_proxy_key_follows_its_trunk_only_when_it_is_not_the_policys() {
        let base = ExperimentConfig::preset("fig1-tiny").unwrap();
        let keys = |trunk: Option<ModelSize>| {
            let cfg = ExperimentConfig { proxy: crate::train::pm::PmConfig { trunk, ..base.proxy.clone() }, ..base.clone() };
            stage_keys(&cfg.stage_spec(), 0, "cpu")
        };
        let (sft, proxy) = keys(None);
        assert_eq!(keys(Some(base.policy)), (sft.clone(), proxy.clone()));
        let (s, p) = keys(Some(ModelSize { layers: 2, ..base.policy }));
        assert_eq!(s, sft);
        assert_ne!(p, proxy);
        // The key every proxy had before trunks: the config's JSON has no "trunk".
        let spec = base.stage_spec();
        let mut old = serde_json::json!(spec.proxy);
        old.as_object_mut().unwrap().remove("trunk");
        assert_eq!(serde_json::from_value::<crate::train::pm::PmConfig>(old).unwrap(), base.proxy, "a config written before trunks reads as the policy's");
    }

    /// SFT does not depend on how D_golden is labelled, the proxy does: a sweep over label noise or task kinds
    /// reuses SFT and trains its own proxy (a proxy trained on other labels was once reused silently).
    #[test]
    fn the_proxy_key_follows_the_labels_and_the_sft_key_does_not() {
        let base = ExperimentConfig::preset("fig1-tiny").unwrap();
        let keys = |task: crate::task::TaskConfig| {
            let cfg = ExperimentConfig { task, ..base.clone() };
            stage_keys(&cfg.stage_spec(), 0, "cpu")
        };
        let (sft, proxy) = keys(base.task.clone());
        for task in [
            crate::task::TaskConfig { labels: LabelNoise::Bernoulli { tau: 1.0 }, ..base.task.clone() },
            crate::task::TaskConfig { kind: TaskKind::Ordered, ..base.task.clone() },
            crate::task::TaskConfig { kind: TaskKind::Paired, ..base.task.clone() },
            crate::task::TaskConfig { kind: TaskKind::Counted, ..base.task.clone() },
        ] {
            let (s, p) = keys(task.clone());
            assert_eq!(s, sft, "{task:?}");
            assert_ne!(p, proxy, "{task:?}");
        }
        assert_ne!(keys(crate::task::TaskConfig { kind: TaskKind::Ordered, ..base.task.clone() }).1, keys(crate::task::TaskConfig { kind: TaskKind::Paired, ..base.task.clone() }).1);
        // The reward's weights reach SFT's key (as before), so do the generator's.
        assert_ne!(keys(crate::task::TaskConfig { doc_len: 7, ..base.task.clone() }).0, sft);
    }
}
