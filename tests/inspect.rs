//! Looking into one alignment step (the page's "Step"): what it shows is the step the run trained, and looking
//! changes nothing in the run.
#![cfg(not(target_arch = "wasm32"))]

use alignment_gap::control;
use alignment_gap::engine::Engine;
use alignment_gap::experiments::{self, ExperimentConfig, Method, Placement};
use alignment_gap::experiments::pipeline::{NoCache, Progress, Row};
use std::cell::RefCell;
use std::rc::Rc;

fn run(cfg: &ExperimentConfig, look_after: &[(Method, u32)]) -> (Vec<Row>, Vec<serde_json::Value>) {
    let e = Engine::cpu();
    let seen = Rc::new(RefCell::new(vec![]));
    let sink = seen.clone();
    control::set_step_sink(Some(Box::new(move |v| sink.borrow_mut().push(v))));
    let r = pollster::block_on(experiments::run_seed(&e, cfg, 0, &cfg.runs_for(0), &mut NoCache, Placement::default(), |p| {
        if let Progress::Checkpoint(row) = p {
            if look_after.contains(&(row.method, row.checkpoint.step)) {
                control::request_step_inside();
            }
        }
    }, |_| Ok(())))
    .unwrap();
    control::set_step_sink(None);
    let seen = seen.borrow().clone();
    (r.checkpoints, seen)
}

#[test]
fn a_looked_into_step_shows_the_update_the_run_trained() {
    // A checkpoint after every step, so a checkpoint's train_loss is its one step's loss.
    let cfg = ExperimentConfig { eval_every: 1, golden_reference: false, ..ExperimentConfig::preset("fig1-tiny").unwrap() };
    let (plain, none) = run(&cfg, &[]);
    assert!(none.is_empty());
    let (looked, steps) = run(&cfg, &[(Method::ONLINE, 3), (Method::OFFLINE, 3)]);
    assert_eq!(looked, plain, "looking into a step changes nothing in the run");
    assert_eq!(steps.len(), 2);
    for (inside, method, labels) in [(&steps[0], Method::ONLINE, "proxy"), (&steps[1], Method::OFFLINE, "golden")] {
        assert_eq!(inside["step"], 4);
        assert_eq!(inside["source"], method.name());
        assert_eq!(inside["labels"], labels);
        let row = looked.iter().find(|r| r.method == method && r.checkpoint.step == 4).unwrap();
        let loss = inside["loss"].as_f64().unwrap();
        assert_eq!(loss as f32, row.checkpoint.train_loss.unwrap(), "{method}: the step's loss is the run's own");
        let (beta, target) = (inside["beta"].as_f64().unwrap(), inside["target"].as_f64().unwrap());
        assert!((target - 1.0 / (2.0 * beta)).abs() < 1e-6);
        let pairs = inside["pairs"].as_array().unwrap();
        assert_eq!(pairs.len(), cfg.batch);
        let f = |v: &serde_json::Value| v.as_f64().unwrap();
        let mean: f64 = pairs.iter().map(|p| f(&p["loss"])).sum::<f64>() / pairs.len() as f64;
        assert!((mean - loss).abs() < 1e-4 * loss.max(1.0), "{method}: pair losses average to the step's ({mean} vs {loss})");
        let mut moved_up = 0;
        for p in pairs {
            // IPO: (βh − ½)².
            assert!((f(&p["loss"]) - (beta * f(&p["h"]) - 0.5).powi(2)).abs() < 1e-3, "{p}");
            // The tokens' log-probs sum to the response's, before and after the update.
            for (side, tokens) in [("logp_preferred", "tokens_preferred"), ("logp_rejected", "tokens_rejected")] {
                for (k, when) in ["before", "after"].iter().enumerate() {
                    let sum: f64 = p[tokens].as_array().unwrap().iter().map(|t| f(&t[*when])).sum();
                    assert!((sum - f(&p[side][k])).abs() < 1e-3, "{method} {side} {when}: {sum} vs {}", p[side][k]);
                }
            }
            let margin = |k: usize| f(&p["logp_preferred"][k]) - f(&p["logp_rejected"][k]);
            moved_up += (margin(1) > margin(0)) as usize;
            if method == Method::ONLINE {
                assert_ne!(p["proxy_agrees"], false, "online pairs are ordered by the proxy's preference (or it ranks neither first)");
            }
        }
        println!("{method} step 4: loss {loss:.4}, the preferred response gained on the rejected one in {moved_up} of {} pairs", pairs.len());
        assert!(moved_up > pairs.len() / 2, "{method}: the update raises the preferred response's margin in most pairs ({moved_up} of {})", pairs.len());
    }
}
