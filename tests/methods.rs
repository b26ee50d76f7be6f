//! Every kind of alignment run, pinned: its name (results.json, metrics.csv, cache keys, model folders and the
//! page's URLs all carry it) and its legend label, in the figures' order. Written before `Method` became a
//! product of the paper's axes, so that the switch could change no committed result, key or link.

use alignment_gap::experiments::method::Method;

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
