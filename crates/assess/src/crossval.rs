//! Honest figures for a fitted expert: stratified k-fold cross-validation, bootstrap confidence
//! intervals and calibration.
//!
//! The static expert's evidence carries its feature vector ([`crate::static_expert::model`]);
//! the rules that produce it do not depend on the weights, so one run over a labelled directory
//! is enough: for each fold, weights are fitted on the other folds only and the held-out reports
//! are scored with them. The cross-validated accuracy is the headline; an accuracy on the reports
//! the weights were fitted on is not a result.

use serde::Serialize;

use crate::eval::{Label, Metrics, Outcome};
use crate::static_expert::model::{self, Example, Features};

/// One held-out prediction.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub file: String,
    pub label: Label,
    /// `None` when the expert failed on the report (counted wrong).
    pub predicted: Option<Label>,
    /// Probability of the predicted class.
    pub confidence: f64,
}

/// Stated confidence against accuracy, for one confidence band.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReliabilityBin {
    pub from: f64,
    pub to: f64,
    pub count: usize,
    pub mean_confidence: f64,
    pub accuracy: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CvReport {
    pub folds: usize,
    pub l2: f64,
    pub metrics: Metrics,
    /// 95 % bootstrap interval of the accuracy.
    pub accuracy_ci: [f64; 2],
    /// 95 % bootstrap interval of the harmful recall.
    pub harmful_recall_ci: [f64; 2],
    /// The constant answer "benign" on the same reports.
    pub always_benign_accuracy: f64,
    /// Expected calibration error: Σ (bin share) · |accuracy − mean confidence|.
    pub ece: f64,
    pub reliability: Vec<ReliabilityBin>,
    pub predictions: Vec<Prediction>,
}

/// Which features a fit may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// What the expert decides on: no later-tree rules (the headline).
    ReportTree,
    /// Plus the rules that read a newer tree (comparison only).
    WithLaterTree,
}

fn features_of(o: &Outcome, evidence: Evidence) -> Option<&Features> {
    match evidence {
        Evidence::ReportTree => o.features.as_ref(),
        Evidence::WithLaterTree => o.features_with_later_tree.as_ref(),
    }
}

/// Stratified fold of each outcome: within each label, in file-name order, round-robin. Fixed
/// for a given directory, so reruns agree.
fn folds(outcomes: &[Outcome], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..outcomes.len()).collect();
    order.sort_by(|&a, &b| {
        (outcomes[a].label == Label::Harmful, &outcomes[a].file)
            .cmp(&(outcomes[b].label == Label::Harmful, &outcomes[b].file))
    });
    let mut fold = vec![0; outcomes.len()];
    for (i, &idx) in order.iter().enumerate() {
        fold[idx] = i % k;
    }
    fold
}

/// Cross-validates the static expert's fitted weighting. `None` when the outcomes carry no
/// features (another expert) or there are fewer reports than folds.
pub fn cross_validate(outcomes: &[Outcome], k: usize, evidence: Evidence) -> Option<CvReport> {
    if k < 2 || outcomes.len() < k || outcomes.iter().all(|o| o.features.is_none()) {
        return None;
    }
    let fold = folds(outcomes, k);
    let mut predictions = Vec::with_capacity(outcomes.len());
    for f in 0..k {
        let train: Vec<Example> = outcomes
            .iter()
            .zip(&fold)
            .filter(|(_, of)| **of != f)
            .filter_map(|(o, _)| {
                features_of(o, evidence).map(|x| Example {
                    features: x.clone(),
                    benign: o.label == Label::Benign,
                })
            })
            .collect();
        let weights = model::fit(&train, model::L2);
        for (o, _) in outcomes.iter().zip(&fold).filter(|(_, of)| **of == f) {
            let prediction = match features_of(o, evidence) {
                None => Prediction {
                    file: o.file.clone(),
                    label: o.label,
                    predicted: None,
                    confidence: 0.0,
                },
                Some(x) => {
                    let p = model::probability_benign(weights.score(x));
                    Prediction {
                        file: o.file.clone(),
                        label: o.label,
                        predicted: Some(if p >= 0.5 {
                            Label::Benign
                        } else {
                            Label::Harmful
                        }),
                        confidence: p.max(1.0 - p),
                    }
                }
            };
            predictions.push(prediction);
        }
    }
    predictions.sort_by(|a, b| a.file.cmp(&b.file));
    Some(summarise(predictions, k))
}

fn as_outcomes(predictions: &[Prediction]) -> Vec<Outcome> {
    predictions
        .iter()
        .map(|p| Outcome {
            file: p.file.clone(),
            label: p.label,
            predicted: p.predicted,
            confident: p.confidence >= model::CONFIDENT_AT,
            confidence: p.confidence,
            tokens: 0,
            millis: 0,
            cost_usd: None,
            error: None,
            rules: vec![],
            features: None,
            features_with_later_tree: None,
        })
        .collect()
}

fn summarise(predictions: Vec<Prediction>, k: usize) -> CvReport {
    let outcomes = as_outcomes(&predictions);
    let metrics = Metrics::compute(&outcomes);
    let (accuracy_ci, harmful_recall_ci) = bootstrap(&outcomes, 2000);
    let reliability = reliability(&predictions);
    let n = predictions
        .iter()
        .filter(|p| p.predicted.is_some())
        .count()
        .max(1) as f64;
    let ece = reliability
        .iter()
        .map(|b| b.count as f64 / n * (b.accuracy - b.mean_confidence).abs())
        .sum();
    CvReport {
        folds: k,
        l2: model::L2,
        always_benign_accuracy: predictions
            .iter()
            .filter(|p| p.label == Label::Benign)
            .count() as f64
            / predictions.len().max(1) as f64,
        metrics,
        accuracy_ci,
        harmful_recall_ci,
        ece,
        reliability,
        predictions,
    }
}

/// Five confidence bands from 0.5 (a coin) to 1.0; empty bands are left out.
pub fn reliability(predictions: &[Prediction]) -> Vec<ReliabilityBin> {
    const EDGES: [f64; 6] = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
    let mut bins = Vec::new();
    for w in EDGES.windows(2) {
        let (from, to) = (w[0], w[1]);
        let in_bin: Vec<&Prediction> = predictions
            .iter()
            .filter(|p| p.predicted.is_some())
            .filter(|p| {
                p.confidence >= from && (p.confidence < to || (to == 1.0 && p.confidence <= to))
            })
            .collect();
        if in_bin.is_empty() {
            continue;
        }
        let count = in_bin.len();
        bins.push(ReliabilityBin {
            from,
            to,
            count,
            mean_confidence: in_bin.iter().map(|p| p.confidence).sum::<f64>() / count as f64,
            accuracy: in_bin
                .iter()
                .filter(|p| p.predicted == Some(p.label))
                .count() as f64
                / count as f64,
        });
    }
    bins
}

/// SplitMix64: a fixed seed makes the intervals reproducible run to run.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Percentile bootstrap (resampling reports with replacement) of accuracy and harmful recall.
fn bootstrap(outcomes: &[Outcome], rounds: usize) -> ([f64; 2], [f64; 2]) {
    if outcomes.is_empty() {
        return ([0.0; 2], [0.0; 2]);
    }
    let mut rng = SplitMix(0x5EED);
    let mut accuracy = Vec::with_capacity(rounds);
    let mut recall = Vec::with_capacity(rounds);
    let mut sample = Vec::with_capacity(outcomes.len());
    for _ in 0..rounds {
        sample.clear();
        for _ in 0..outcomes.len() {
            sample.push(outcomes[(rng.next() % outcomes.len() as u64) as usize].clone());
        }
        let m = Metrics::compute(&sample);
        accuracy.push(m.accuracy);
        recall.push(m.harmful_recall);
    }
    (interval(accuracy), interval(recall))
}

fn interval(mut values: Vec<f64>) -> [f64; 2] {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    [at(0.025), at(0.975)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(file: &str, label: Label, features: &[&str]) -> Outcome {
        let features: Features = features.iter().map(|f| (f.to_string(), 1.0)).collect();
        Outcome {
            file: file.into(),
            label,
            predicted: Some(Label::Benign),
            confident: false,
            confidence: 0.5,
            tokens: 0,
            millis: 0,
            cost_usd: None,
            error: None,
            rules: vec![],
            features_with_later_tree: Some(features.clone()),
            features: Some(features),
        }
    }

    #[test]
    fn folds_are_stratified_and_every_report_is_held_out_once() {
        let mut outs = Vec::new();
        for i in 0..20 {
            outs.push(outcome(&format!("b{i:02}"), Label::Benign, &[]));
        }
        for i in 0..5 {
            outs.push(outcome(&format!("h{i:02}"), Label::Harmful, &[]));
        }
        let fold = folds(&outs, 5);
        for f in 0..5 {
            let harmful = (0..outs.len())
                .filter(|&i| fold[i] == f && outs[i].label == Label::Harmful)
                .count();
            assert_eq!(harmful, 1, "fold {f}");
        }
        let report = cross_validate(&outs, 5, Evidence::ReportTree).unwrap();
        assert_eq!(report.predictions.len(), 25);
        assert!((report.always_benign_accuracy - 0.8).abs() < 1e-9);
    }

    #[test]
    fn a_signal_present_only_in_training_folds_is_learned_and_scored_held_out() {
        let mut outs = Vec::new();
        for i in 0..30 {
            outs.push(outcome(
                &format!("b{i:02}"),
                Label::Benign,
                &["rule:statistics-field"],
            ));
            outs.push(outcome(
                &format!("h{i:02}"),
                Label::Harmful,
                &["rule:pointer-dereferenced"],
            ));
        }
        let report = cross_validate(&outs, 5, Evidence::ReportTree).unwrap();
        assert!(report.metrics.accuracy > 0.95, "{:?}", report.metrics);
        assert!(report.accuracy_ci[0] <= report.metrics.accuracy);
        assert!(report.accuracy_ci[1] >= report.metrics.accuracy);
        assert!(report.metrics.harmful_recall > 0.95);
    }

    /// Each report carries a feature only it has. Had its own label reached the fit that scores
    /// it, that feature would give it away (100 %); held out, it is unseen, so every report gets
    /// the training folds' base rate: the majority class.
    #[test]
    fn a_held_out_report_never_informs_its_own_prediction() {
        let mut outs = Vec::new();
        for i in 0..16 {
            let label = if i % 4 == 0 {
                Label::Harmful
            } else {
                Label::Benign
            };
            let own = format!("rule:only-report-{i}");
            outs.push(outcome(&format!("r{i:02}"), label, &[own.as_str()]));
        }
        let report = cross_validate(&outs, 4, Evidence::ReportTree).unwrap();
        assert!(
            report
                .predictions
                .iter()
                .all(|p| p.predicted == Some(Label::Benign)),
            "{:?}",
            report.predictions
        );
        assert!((report.metrics.accuracy - 0.75).abs() < 1e-9);
    }

    #[test]
    fn calibration_bins_and_ece() {
        let p = |conf: f64, right: bool| Prediction {
            file: String::new(),
            label: Label::Benign,
            predicted: Some(if right { Label::Benign } else { Label::Harmful }),
            confidence: conf,
        };
        // 0.95 stated, right half the time: ECE 0.45 in that bin alone.
        let preds = vec![p(0.95, true), p(0.95, false)];
        let bins = reliability(&preds);
        assert_eq!(bins.len(), 1);
        assert_eq!(bins[0].count, 2);
        assert!((bins[0].accuracy - 0.5).abs() < 1e-9);
        let report = summarise(preds, 2);
        assert!((report.ece - 0.45).abs() < 1e-9, "{}", report.ece);
    }
}
