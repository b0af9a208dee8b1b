//! Evaluation over labelled reports: metadata cutting and metrics.
//!
//! A labelled file is the raw report followed by metadata starting at a `LABEL:` line.
//! [`split_labelled`] cuts the metadata off **before** anything else sees the text, so labels,
//! sources and justifications can never reach an expert. [`Metrics`] computes accuracy,
//! per-class precision/recall and the confusion matrix.

use serde::Serialize;

/// The ground truth of one labelled file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Benign,
    Harmful,
}

/// The report text (everything before the first line starting with `LABEL:`) and the label.
pub fn split_labelled(text: &str) -> (String, Option<Label>) {
    let mut report = String::new();
    let mut label = None;
    let mut in_meta = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if !in_meta && trimmed.starts_with("LABEL:") {
            in_meta = true;
            label = match trimmed["LABEL:".len()..]
                .trim()
                .to_ascii_lowercase()
                .as_str()
            {
                "benign" => Some(Label::Benign),
                "harmful" => Some(Label::Harmful),
                _ => None,
            };
        }
        if !in_meta {
            report.push_str(line);
        }
    }
    (report, label)
}

/// One evaluated report.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub file: String,
    pub label: Label,
    /// `None` when the expert failed.
    pub predicted: Option<Label>,
    pub confident: bool,
    pub confidence: f64,
    pub tokens: u64,
    pub millis: u64,
    /// Approximate cost of the report's LLM calls in US dollars, when the model's price is
    /// known ([`crate::pricing`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Names of the rules that fired (static expert).
    pub rules: Vec<String>,
    /// The static expert's feature vector (what its fitted weights score), for cross-validation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<crate::static_expert::model::Features>,
    /// The same plus the later-tree rules (comparison figure only).
    #[serde(skip)]
    pub features_with_later_tree: Option<crate::static_expert::model::Features>,
}

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Metrics {
    pub total: usize,
    pub errors: usize,
    pub accuracy: f64,
    pub benign_precision: f64,
    pub benign_recall: f64,
    pub harmful_precision: f64,
    pub harmful_recall: f64,
    /// `[[benign→benign, benign→harmful], [harmful→benign, harmful→harmful]]` (rows: truth).
    pub confusion: [[usize; 2]; 2],
    pub confident: usize,
    pub confident_correct: usize,
    pub tokens_per_report: f64,
    pub millis_per_report: f64,
    /// Mean approximate cost over the reports that have one; `None` when none has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd_per_report: Option<f64>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

impl Metrics {
    /// Failed reports count as wrong (they are in `total` but in no confusion cell).
    pub fn compute(outcomes: &[Outcome]) -> Metrics {
        let mut m = Metrics {
            total: outcomes.len(),
            ..Default::default()
        };
        let idx = |l: Label| if l == Label::Benign { 0 } else { 1 };
        let mut correct = 0;
        for o in outcomes {
            match o.predicted {
                None => m.errors += 1,
                Some(p) => {
                    m.confusion[idx(o.label)][idx(p)] += 1;
                    if p == o.label {
                        correct += 1;
                    }
                    if o.confident {
                        m.confident += 1;
                        if p == o.label {
                            m.confident_correct += 1;
                        }
                    }
                }
            }
        }
        let c = m.confusion;
        m.accuracy = ratio(correct, m.total);
        m.benign_precision = ratio(c[0][0], c[0][0] + c[1][0]);
        m.benign_recall = ratio(c[0][0], c[0][0] + c[0][1]);
        m.harmful_precision = ratio(c[1][1], c[1][1] + c[0][1]);
        m.harmful_recall = ratio(c[1][1], c[1][1] + c[1][0]);
        if m.total > 0 {
            m.tokens_per_report =
                outcomes.iter().map(|o| o.tokens as f64).sum::<f64>() / m.total as f64;
            m.millis_per_report =
                outcomes.iter().map(|o| o.millis as f64).sum::<f64>() / m.total as f64;
        }
        let costs: Vec<f64> = outcomes.iter().filter_map(|o| o.cost_usd).collect();
        if !costs.is_empty() {
            m.cost_usd_per_report = Some(costs.iter().sum::<f64>() / costs.len() as f64);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_cut_at_the_label_line() {
        let text = "BUG: KCSAN: data-race in a / b\nread to 0x1 of 4 bytes\nLABEL: harmful\nSOURCE: commit abc fixes it\nJUSTIFICATION: secret\n";
        let (report, label) = split_labelled(text);
        assert_eq!(label, Some(Label::Harmful));
        assert!(!report.contains("LABEL"));
        assert!(!report.contains("secret"));
        assert!(!report.contains("SOURCE"));
        assert!(report.ends_with("4 bytes\n"));
    }

    #[test]
    fn unlabelled_text_is_kept_whole() {
        let (report, label) = split_labelled("just a report\n");
        assert_eq!(report, "just a report\n");
        assert_eq!(label, None);
    }

    fn outcome(label: Label, predicted: Option<Label>) -> Outcome {
        Outcome {
            file: "f".into(),
            label,
            predicted,
            confident: true,
            confidence: 0.9,
            tokens: 0,
            millis: 10,
            cost_usd: None,
            error: None,
            rules: vec![],
            features: None,
            features_with_later_tree: None,
        }
    }

    #[test]
    fn metrics_from_a_confusion_matrix() {
        use Label::*;
        let outs = vec![
            outcome(Benign, Some(Benign)),
            outcome(Benign, Some(Benign)),
            outcome(Benign, Some(Harmful)),
            outcome(Harmful, Some(Harmful)),
            outcome(Harmful, Some(Benign)),
            outcome(Harmful, None),
        ];
        let m = Metrics::compute(&outs);
        assert_eq!(m.confusion, [[2, 1], [1, 1]]);
        assert_eq!(m.errors, 1);
        assert!((m.accuracy - 3.0 / 6.0).abs() < 1e-9);
        assert!((m.benign_precision - 2.0 / 3.0).abs() < 1e-9);
        assert!((m.benign_recall - 2.0 / 3.0).abs() < 1e-9);
        assert!((m.harmful_precision - 0.5).abs() < 1e-9);
        assert!((m.harmful_recall - 0.5).abs() < 1e-9);
        assert_eq!(m.cost_usd_per_report, None, "no report has a price");
    }

    #[test]
    fn cost_per_report_averages_the_priced_reports_only() {
        let mut outs = vec![
            outcome(Label::Benign, Some(Label::Benign)),
            outcome(Label::Benign, Some(Label::Benign)),
            outcome(Label::Harmful, None),
        ];
        outs[0].cost_usd = Some(0.02);
        outs[1].cost_usd = Some(0.04);
        let m = Metrics::compute(&outs);
        assert!((m.cost_usd_per_report.unwrap() - 0.03).abs() < 1e-12);
    }
}
