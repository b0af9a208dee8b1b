//! What every expert returns, and the trait they implement.
//!
//! [`Assessment`] is the shared output of the static and the LLM expert: the verdict (`benign`),
//! whether the expert stands by it (`confident`, plus a numeric `confidence` in 0..=1), a Markdown
//! explanation, and structured evidence (JSON) a reviewer or a later tool can check.

use serde::Serialize;
use serde_json::Value;

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
