//! Every figure a result has and the file it is written to: one list that `reproduce` and `summarize` write, and
//! whose names the page downloads under (`web.rs`'s `figureFiles`). summary.md and metrics.csv are beside them.

use super::{classifiers, figure, proxy_map, scaling, stats};
use crate::error::Result;
use crate::experiments::method::Method;
use crate::experiments::{Analysis, ExperimentResults};
use crate::train::losses::Loss;

/// One figure of a result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Figure {
    /// Figure 1: golden win rate against KL and the frontier, every method but the loss family's.
    Fig1,
    /// The same, laid out for a phone's width (the page's first sight shows it there).
    Fig1Phone,
    /// Figure 1 of one loss of the loss family, its online and offline runs named as Figure 1's.
    Family(Loss),
    /// A classifier analysis of the paper's §5 (Figs 6–8, self-classification).
    Analysis(Analysis),
    /// The scaling experiment: the curves at each size (Fig. 10), best performance over online's (Fig. 11).
    Fig10,
    Fig11,
    /// The proxy map: online − offline against the labelling proxy's accuracy (beyond the paper).
    ProxyMap,
}

impl Figure {
    /// Its file name beside results.json.
    pub fn file(self) -> String {
        match self {
            Figure::Fig1 => "fig1.svg".into(),
            Figure::Fig1Phone => "fig1-phone.svg".into(),
            Figure::Family(l) => format!("fig1-{}.svg", Method::ONLINE.with_loss(l).name().trim_start_matches("online_")),
            Figure::Analysis(a) => a.figure_file().into(),
            Figure::Fig10 => "fig10.svg".into(),
            Figure::Fig11 => "fig11.svg".into(),
            Figure::ProxyMap => "proxy-map.svg".into(),
        }
    }

    /// The figure drawn from `results`' checkpoints.
    pub fn svg(self, results: &ExperimentResults) -> Result<String> {
        let loss = results.config.loss;
        match self {
            Figure::Fig1 => figure::fig1_svg(&stats::without_family(&results.checkpoints), loss),
            Figure::Fig1Phone => figure::fig1_svg_in(&stats::without_family(&results.checkpoints), loss, figure::Layout::Compact),
            Figure::Family(l) => figure::fig1_svg(&stats::family_rows(&results.checkpoints, l), l),
            Figure::Analysis(a) => classifiers::analysis_svg(a, results),
            Figure::Fig10 => scaling::fig10_svg(results),
            Figure::Fig11 => scaling::fig11_svg(results),
            Figure::ProxyMap => proxy_map::proxy_map_svg(results),
        }
    }
}

/// Every figure of a result of `config`, in the order they are written.
pub fn figures(config: &crate::experiments::ExperimentConfig) -> Vec<Figure> {
    let mut out = vec![Figure::Fig1, Figure::Fig1Phone];
    out.extend(config.loss_family.iter().map(|&l| Figure::Family(l)));
    out.extend(config.analyses.iter().map(|&a| Figure::Analysis(a)));
    if !config.scaling.is_empty() {
        out.extend([Figure::Fig10, Figure::Fig11]);
    }
    if !config.proxy_map.is_empty() {
        out.push(Figure::ProxyMap);
    }
    out
}

impl Figure {
    /// The key the page draws it under below Figure 1 (an analysis's name, `fig10`, `fig11`); none for Figure 1
    /// itself and its loss-family panels, which the page draws in Figure 1's place.
    pub fn page_key(self) -> Option<&'static str> {
        match self {
            Figure::Analysis(a) => Some(a.name()),
            Figure::Fig10 => Some("fig10"),
            Figure::Fig11 => Some("fig11"),
            Figure::ProxyMap => Some("proxy_map"),
            Figure::Fig1 | Figure::Fig1Phone | Figure::Family(_) => None,
        }
    }

    /// The figure the page draws under `key`.
    pub fn from_page_key(key: &str) -> Result<Figure> {
        let below = Analysis::ALL.iter().map(|&a| Figure::Analysis(a)).chain([Figure::Fig10, Figure::Fig11, Figure::ProxyMap]);
        let keys: Vec<&str> = below.clone().filter_map(Figure::page_key).collect();
        below.into_iter().find(|f| f.page_key() == Some(key)).ok_or_else(|| crate::Error::new(format!("figure: '{key}' is not one of {}", keys.join(", "))))
    }
}

/// The figures the page draws below Figure 1 for a run of `config`, in [`figures`]' order (the CLI's files, so
/// that its downloads take the CLI's names).
pub fn below_figure_1(config: &crate::experiments::ExperimentConfig) -> Vec<Figure> {
    figures(config).into_iter().filter(|f| f.page_key().is_some()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::ExperimentConfig;

    #[test]
    fn every_figure_has_its_own_file_and_the_page_uses_the_cli_names() {
        let cfg = ExperimentConfig { loss_family: vec![Loss::Dpo, Loss::Slic], analyses: Analysis::ALL.to_vec(), scaling: vec!["1x16h1".parse().unwrap()], proxy_map: vec![10], ..ExperimentConfig::preset("fig1-tiny").unwrap() };
        let files: Vec<String> = figures(&cfg).into_iter().map(Figure::file).collect();
        assert_eq!(files, ["fig1.svg", "fig1-phone.svg", "fig1-dpo.svg", "fig1-slic.svg", "fig7.svg", "fig8.svg", "selfclass.svg", "fig6.svg", "precondition.svg", "fig10.svg", "fig11.svg", "proxy-map.svg"]);
        let below: Vec<(&str, String)> = below_figure_1(&cfg).into_iter().map(|f| (f.page_key().unwrap(), f.file())).collect();
        assert_eq!(below, [("generation_vs_classification", "fig7.svg".into()), ("over_training", "fig8.svg".into()), ("self_classification", "selfclass.svg".into()), ("stream_classification", "fig6.svg".into()), ("precondition", "precondition.svg".into()), ("fig10", "fig10.svg".into()), ("fig11", "fig11.svg".into()), ("proxy_map", "proxy-map.svg".into())]);
        for (key, _) in &below {
            assert_eq!(Figure::from_page_key(key).unwrap().page_key(), Some(*key));
        }
        assert!(Figure::from_page_key("fig1").unwrap_err().message.contains("fig11"));
        // An analysis's name is its serde name (configs and URLs spell it so).
        for a in Analysis::ALL {
            assert_eq!(serde_json::to_value(a).unwrap(), a.name());
        }
        assert_eq!(figures(&ExperimentConfig::preset("fig1-tiny").unwrap()).len(), 2);
        assert!(below_figure_1(&ExperimentConfig::preset("fig1-tiny").unwrap()).is_empty());
    }
}
