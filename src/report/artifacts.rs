//! Every figure a result has and the file it is written to: one list that `reproduce` and `summarize` write, and
//! whose names the page downloads under (`web.rs`'s `figureFiles`). summary.md and metrics.csv are beside them.

use super::{classifiers, figure, scaling, stats};
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
    out
}

/// The file stem of each figure the page draws below Figure 1, by the key it draws it under (an analysis's
/// snake_case name, `fig10`, `fig11`): its downloads take the CLI's names.
pub fn page_figure_files() -> Vec<(String, String)> {
    let stem = |f: Figure| f.file().trim_end_matches(".svg").to_string();
    let analyses = Analysis::ALL.iter().map(|&a| (serde_json::to_value(a).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(), stem(Figure::Analysis(a))));
    analyses.chain([("fig10".to_string(), stem(Figure::Fig10)), ("fig11".to_string(), stem(Figure::Fig11))]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::ExperimentConfig;

    #[test]
    fn every_figure_has_its_own_file_and_the_page_uses_the_cli_names() {
        let cfg = ExperimentConfig { loss_family: vec![Loss::Dpo, Loss::Slic], analyses: Analysis::ALL.to_vec(), scaling: vec!["1x16h1".parse().unwrap()], ..ExperimentConfig::preset("fig1-tiny").unwrap() };
        let files: Vec<String> = figures(&cfg).into_iter().map(Figure::file).collect();
        assert_eq!(files, ["fig1.svg", "fig1-phone.svg", "fig1-dpo.svg", "fig1-slic.svg", "fig7.svg", "fig8.svg", "selfclass.svg", "fig6.svg", "fig10.svg", "fig11.svg"]);
        let page = page_figure_files();
        assert!(page.contains(&("over_training".to_string(), "fig8".to_string())) && page.contains(&("fig11".to_string(), "fig11".to_string())), "{page:?}");
        assert_eq!(figures(&ExperimentConfig::preset("fig1-tiny").unwrap()).len(), 2);
    }
}
