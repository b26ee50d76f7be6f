//! Every kind of alignment run, pinned: its name (results.json, metrics.csv, cache keys, model folders and the
//! page's URLs all carry it) and its legend label, in the figures' order. Written before `Method` became a
//! product of the paper's axes, so that the switch could change no committed result, key or link.

use alignment_gap::experiments::method::{Data, Judge, Method};
use alignment_gap::train::losses::Loss;

const PINNED: [(&str, &str); 26] = [
    ("online", "online IPO (proxy labels)"),
    ("offline", "offline IPO (D_golden)"),
    ("online_golden", "online IPO (golden labels)"),
    ("replay", "offline IPO on D_online, in order (exact replay)"),
    ("stream_window2", "offline IPO on D_online, shuffled within 2 batches"),
    ("stream_window8", "offline IPO on D_online, shuffled within 8 batches"),
    ("stream_window32", "offline IPO on D_online, shuffled within 32 batches"),
    ("stream_shuffled", "offline IPO on D_online, shuffled"),
    ("semi_online4", "semi-online IPO, data refreshed every 4 steps"),
    ("semi_online16", "semi-online IPO, data refreshed every 16 steps"),
    ("semi_online64", "semi-online IPO, data refreshed every 64 steps"),
    ("semi_online_never", "semi-online IPO, never refreshed (π_sft's samples, proxy labels)"),
    ("sft_vs_early", "offline IPO on D_sft-vs-early (golden labels)"),
    ("early_vs_late", "offline IPO on D_early-vs-late (golden labels)"),
    ("late_vs_late", "offline IPO on D_late-vs-late (golden labels)"),
    ("online_ipo", "online, IPO loss (proxy labels)"),
    ("offline_ipo", "offline, IPO loss (D_golden)"),
    ("online_dpo", "online DPO (proxy labels)"),
    ("offline_dpo", "offline DPO (D_golden)"),
    ("online_slic", "online SLiC (proxy labels)"),
    ("offline_slic", "offline SLiC (D_golden)"),
    ("online_best_of2", "online Best-of-2 (proxy labels)"),
    ("offline_best_of2", "offline Best-of-2 (D_golden)"),
    ("ipo_md25", "IPO-MD: samples from π^0.75·π_sft^0.25"),
    ("ipo_md50", "IPO-MD: samples from π^0.5·π_sft^0.5"),
    ("ipo_md75", "IPO-MD: samples from π^0.25·π_sft^0.75"),
];

#[test]
fn every_method_keeps_its_name_and_label_in_order() {
    assert_eq!(Method::ALL.len(), PINNED.len());
    for (m, (name, label)) in Method::ALL.iter().zip(PINNED) {
        assert_eq!(m.name(), name, "{m:?}");
        assert_eq!(m.label(), label, "{m:?}");
    }
}

/// Names are the identity of results, cache keys and links: no two methods share one, and each reads back.
#[test]
fn names_are_distinct_and_read_back() {
    for (i, m) in Method::ALL.iter().enumerate() {
        assert_eq!(Method::from_name(&m.name()), Some(*m));
        assert!(Method::ALL[..i].iter().all(|o| o.name() != m.name() && o.label() != m.label()), "{m:?}");
        assert_ne!(m.colour(), m.off_palette(), "{m:?} has a colour of its own");
    }
    // Points off the figures' set still get names and labels of their own.
    let off = [Method::ONLINE_GOLDEN.with_loss(Loss::Dpo), Method::stream(0).with_loss(Loss::BestOf2), Method::semi_online(8), Method { data: Data::Online { judge: Judge::Golden, refresh: 4, mixture: 25 }, loss: None }];
    for (i, m) in off.iter().enumerate() {
        assert!(Method::ALL.iter().chain(&off[..i]).all(|o| o.name() != m.name() && o.label() != m.label()), "{}", m.name());
    }
    // Off the palette, each gets a hue of its own, far from online_golden's near-black.
    let far = |a: (u8, u8, u8), b: (u8, u8, u8)| [(a.0, b.0), (a.1, b.1), (a.2, b.2)].iter().map(|&(x, y)| (x as f32 - y as f32).powi(2)).sum::<f32>().sqrt() > 60.0;
    let users = [Method::semi_online(8), Method::stream(4), Method::mixture(10), Method::OFFLINE_FILE];
    for (i, m) in users.iter().enumerate() {
        assert!(far(m.colour(), Method::ONLINE_GOLDEN.colour()), "{m}: {:?}", m.colour());
        assert!(users[..i].iter().all(|o| o.colour() != m.colour()), "{m}");
    }
    assert_eq!(off[3].name(), "semi_online4_md25_golden");
    for m in off.iter().chain(&[Method::semi_online(8), Method::stream(4), Method::mixture(10), Method::semi_online(0).with_loss(Loss::Dpo), Method::OFFLINE_FILE]) {
        assert_eq!(Method::from_name(&m.name()), Some(*m), "{}", m.name());
    }
    // The proxy map's online runs, each labelled by the proxy's run stopped at a step.
    let rung = Method { data: Data::Online { judge: Judge::ProxyAt(250), refresh: 1, mixture: 0 }, loss: None };
    assert_eq!((rung.name().as_str(), rung.label().as_str()), ("online_pm250", "online IPO (labels of the proxy at step 250)"));
    assert!(rung.step_cost().proxy && rung.is_plain_online());
    assert!(far(rung.colour(), Method::ONLINE_GOLDEN.colour()) && rung.colour() != Method::ONLINE.colour());
    for m in [rung, rung.with_loss(Loss::Dpo), Method { data: Data::Online { judge: Judge::ProxyAt(100), refresh: 4, mixture: 0 }, loss: None }] {
        assert_eq!(Method::from_name(&m.name()), Some(m), "{}", m.name());
    }
    for not_a_name in ["online_pm", "online_pmx", "offline_pm100", "online_pm100_golden", "", "semi_online1", "stream_window1", "stream_window0", "offline_golden", "replay_golden", "ipo_md0", "online_ipo_dpo", "sft_vs_sft", "online5"] {
        assert_eq!(Method::from_name(not_a_name), None, "{not_a_name}");
    }
    let json = serde_json::to_string(&Method::ALL).unwrap();
    assert_eq!(serde_json::from_str::<Vec<Method>>(&json).unwrap(), Method::ALL);
    assert_eq!(json.split(',').nth(3), Some("\"replay\""));
    let err = serde_json::from_str::<Method>("\"onlin\"").unwrap_err().to_string();
    assert!(err.contains("\"onlin\"") && err.contains("semi_online4"), "{err}");
}

#[test]
fn offline_runs_and_their_stopping_rule() {
    for m in Method::ALL {
        assert_eq!(m.is_offline(), !m.step_cost().samples, "{m}");
        assert!(!m.stops_past_best() || m.is_offline(), "{m}");
    }
    assert!(!Method::stream(0).stops_past_best() && Method::OFFLINE.with_loss(Loss::Dpo).stops_past_best());
}
