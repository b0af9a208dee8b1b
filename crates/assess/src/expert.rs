//! What every expert returns, and the trait they implement.
//!
//! [`Assessment`] is the shared output of the static and the LLM expert: the verdict (`benign`),
//! whether the expert stands by it (`confident`, plus a numeric `confidence` in 0..=1), a Markdown
//! explanation, and structured evidence (JSON) a reviewer or a later tool can check. A harmful
//! verdict also says what it would break: [`FailureDetectableBy`] (the reference flow's field of
//! that name) and a one-sentence consequence.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which downstream detector would catch the failure a harmful race leads to, with the reference
/// flow's values. Our reading of them:
/// - `kasan`: a KASAN kernel reports it (use-after-free, out-of-bounds access);
/// - `kmsan`: a KMSAN kernel reports it (use of uninitialised memory);
/// - `any`: any kernel shows it (NULL dereference oops, BUG, WARN);
/// - `user`: only user space can notice (a wrong result, a miscounted statistic, lost data);
/// - `none`: nothing notices (internal state silently goes wrong).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureDetectableBy {
    Kasan,
    Kmsan,
    Any,
    User,
    None,
}

impl FailureDetectableBy {
    pub const ALL: [FailureDetectableBy; 5] = [
        FailureDetectableBy::Kasan,
        FailureDetectableBy::Kmsan,
        FailureDetectableBy::Any,
        FailureDetectableBy::User,
        FailureDetectableBy::None,
    ];

    /// The wire value (`set-results`, JSON output).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureDetectableBy::Kasan => "kasan",
            FailureDetectableBy::Kmsan => "kmsan",
            FailureDetectableBy::Any => "any",
            FailureDetectableBy::User => "user",
            FailureDetectableBy::None => "none",
        }
    }

    /// Parses a wire value; models write case freely, so case is ignored.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        Self::ALL
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(text))
    }
}

impl std::fmt::Display for FailureDetectableBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict of one expert on one report.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Assessment {
    pub benign: bool,
    pub confident: bool,
    /// 0.5 = a coin toss, 1.0 = certain.
    pub confidence: f64,
    pub explanation: String,
    pub evidence: Value,
    /// `static` or `llm:<model>`.
    pub expert: String,
    /// Tokens spent (0 for the static expert).
    pub tokens: u64,
    /// For a harmful verdict, the detector that would catch the failure; absent when benign
    /// (as the reference flow clears it for a benign verdict).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_detectable_by: Option<FailureDetectableBy>,
    /// For a harmful verdict, what breaks, in one sentence (use-after-free, lost update, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consequence: Option<String>,
}

/// Why an expert could not give a verdict.
#[derive(Debug, thiserror::Error)]
pub enum ExpertError {
    #[error("the report has no access to analyse")]
    NoAccess,
    #[error("expert unavailable: {0}")]
    Unavailable(String),
    #[error("expert failed: {0}")]
    Failed(String),
}

/// An expert: report in, assessment out.
pub trait Expert: Send + Sync {
    fn name(&self) -> String;
    fn assess(&self, report: &report::Report) -> Result<Assessment, ExpertError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detector_values_are_the_reference_ones_and_round_trip() {
        let wire: Vec<&str> = FailureDetectableBy::ALL
            .iter()
            .map(|d| d.as_str())
            .collect();
        assert_eq!(wire, ["kasan", "kmsan", "any", "user", "none"]);
        for d in FailureDetectableBy::ALL {
            assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
            assert_eq!(FailureDetectableBy::parse(d.as_str()), Some(d));
        }
        assert_eq!(
            FailureDetectableBy::parse(" KASAN "),
            Some(FailureDetectableBy::Kasan)
        );
        assert_eq!(FailureDetectableBy::parse("ubsan"), None);
    }

    #[test]
    fn assessment_uses_the_reference_field_name_and_omits_it_when_benign() {
        let mut a = Assessment {
            benign: false,
            confident: true,
            confidence: 0.9,
            explanation: String::new(),
            evidence: Value::Null,
            expert: "static".into(),
            tokens: 0,
            failure_detectable_by: Some(FailureDetectableBy::Kasan),
            consequence: Some("A freed object is used.".into()),
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["FailureDetectableBy"], "kasan");
        assert_eq!(v["Consequence"], "A freed object is used.");
        a.benign = true;
        a.failure_detectable_by = None;
        a.consequence = None;
        let v = serde_json::to_value(&a).unwrap();
        assert!(v.get("FailureDetectableBy").is_none() && v.get("Consequence").is_none());
    }
}
