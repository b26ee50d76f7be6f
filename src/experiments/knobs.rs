//! The settings the page offers as knobs, in the order it shows them, each with the range `validate` enforces. An
//! optional arm's knob is its row's ([`super::arms`]).

use super::experiment::{range, Knob};

/// The page's knobs, in the order it shows them (any other key can still be set in the URL).
pub fn knobs() -> Vec<Knob> {
    use range::*;
    let k = Knob::new;
    let arm = |key: &str| (super::arms::arm(key).expect("an arm").knob)();
    vec![
        k("seeds", "Seeds", "list", format!("one run per seed, up to {SEEDS}; intervals need ≥ 2")),
        k("betas", "β values", "list", format!("IPO regularisation, each in {BETA}; larger stays closer to SFT")),
        k("lrs", "Learning rates", "list", format!("each in {LR}; the same for online and offline")),
        k("steps", "Online steps", "int", format!("1 – {ONLINE_STEPS} per online run")),
        k("offline_steps", "Offline steps", "list", format!("one offline run per value, each 1 – {MAX_STEPS}")),
        k("offline_patience", "Offline patience", "int", format!("0 – {MAX_STEPS}: offline runs go on past their length until their best checkpoint is this many steps behind (0: off)")),
        k("offline_max_steps", "Offline cap", "int", format!("the longest an offline run may go on, from the longest offline length to {MAX_STEPS}")),
        k("align_seeds", "Alignment seeds", "list", "repeats of the first seed's online and offline runs over its same proxy".into()),
        k("offline_lrs", "Offline sweep lrs", "list", format!("empty: offline uses the online lrs; else an offline run per value × length, each in {LR}")),
        k("batch", "Batch (pairs)", "int", format!("{} – {} pairs per step, online and offline", BATCH.0, BATCH.1)),
        k("eval_every", "Evaluate every", "int", format!("1 – {MAX_STEPS} steps between checkpoints")),
        k("log_evals", "Log-spaced checkpoints", "int", "0 – 64 extra checkpoints per run, dense early".into()),
        k("warmup", "Warm-up (fraction)", "real", "0 – 0.5 of the online steps with a rising lr, the same steps for every run".into()),
        arm("golden_reference"),
        arm("semi_online"),
        arm("mixtures"),
        arm("loss_family"),
        k("analyses", "Analyses", "list", "any of generation_vs_classification (Fig. 7), over_training (Fig. 8), self_classification, stream_classification (Fig. 6), precondition (issue 29: offline IPO's classifier accuracy against its win rate, the proxy, the task's headroom)".into()),
        arm("scaling"),
        arm("pair_datasets"),
        arm("stream_windows"),
        k("task.kind", "Task", "text", crate::task::TaskKind::ALL.iter().map(|t| format!("{}: {}", t.name(), t.describe())).collect::<Vec<_>>().join("; ")),
        k("loss", "Loss", "text", "the loss of every run: ipo, dpo, slic or best_of2 (Best-of-2: SFT on the preferred response)".into()),
        k("sft.steps", "SFT steps", "int", format!("1 – {MAX_STEPS} steps of supervised fine-tuning")),
        k("d_golden", "D_golden pairs", "int", format!("from one batch to {PAIRS} labelled pairs")),
        k("heldout", "Held-out pairs", "int", format!("{} – {} (proxy accuracy, classifier accuracy)", HELDOUT.0, HELDOUT.1)),
        k("proxy.steps", "Proxy PM steps", "int", format!("1 – {MAX_STEPS} training steps of the proxy preference model")),
        k("proxy.kind", "Proxy kind", "text", "pairwise (the paper's: one score of x, y1, y2) or bradley_terry (a score per response, compared)".into()),
        k("matching.kl_floor", "KL floor of the verdict", "real", "0 – 100: checkpoints below this KL are not compared (0: every one past the start)".into()),
        k("win_prompts", "Win-rate prompts", "int", format!("{} – {} prompts per checkpoint", WIN_PROMPTS.0, WIN_PROMPTS.1)),
        k("kl_prompts", "KL prompts", "int", format!("{} – {} prompts per checkpoint", KL_PROMPTS.0, KL_PROMPTS.1)),
        k("policy.layers", "Layers", "int", format!("{} – {} transformer blocks", LAYERS.0, LAYERS.1)),
        k("policy.d_model", "Width (d_model)", "int", format!("{} – {}, divisible by the heads", D_MODEL.0, D_MODEL.1)),
        k("policy.heads", "Heads", "int", format!("{} – {} attention heads", HEADS.0, HEADS.1)),
        k("align_chunks", "Data-parallel chunks", "int", "0 – the batch: each alignment step's pairs in this many chunks, shared by this page's CPU workers (the numbers depend on the chunks, not the workers); 0: one pass, as the CLI. A GPU takes one pass".into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::ExperimentConfig;

    #[test]
    fn every_knob_is_a_setting_and_shows_its_range() {
        let mut leaves = vec![];
        crate::settings::setting_leaves("", &crate::settings::json_value(&ExperimentConfig::preset("fig1").unwrap()).unwrap(), &mut leaves);
        for k in knobs() {
            assert!(leaves.iter().any(|(key, _)| key == k.key), "knob {} is not a setting", k.key);
        }
        let steps = knobs().into_iter().find(|k| k.key == "steps").unwrap();
        assert!(steps.help.contains(&range::ONLINE_STEPS.to_string()), "{}", steps.help);
    }
}
