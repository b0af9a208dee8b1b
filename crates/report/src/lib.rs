//! Crate `report`: the KCSAN report model and a forgiving parser for it.
//!
//! [`parse`] takes anything a user pastes (a bare report, a console log with timestamps, an email
//! with `> ` quoting, CRLF text, several reports in one log) and returns a [`ParseOutput`]: the
//! reports found, each with its own [`Warning`]s, plus input-level warnings. Parsing never fails,
//! like rust-analyzer: the result is always `(T, Vec<Warning>)`; an input with no report simply yields
//! no reports and a [`WarningKind::NoReport`] warning. The model lives in [`model`]; the JSON shape is
//! documented in docs/report-format.md and docs/report.schema.json.

pub mod model;
mod parser;

pub use model::*;

/// Parses every KCSAN report in `text`. Never panics, never fails; see the crate docs.
pub fn parse(text: &str) -> ParseOutput {
    parser::parse(text)
}

/// Classifies a function name the way stack frames are classified (KCSAN runtime,
/// instrumentation, entry plumbing, or interesting).
pub fn classify_function(function: &str) -> FrameClass {
    parser::classify(function)
}

/// The JSON schema of [`ParseOutput`], as checked in at docs/report.schema.json.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(ParseOutput)).unwrap_or(serde_json::Value::Null)
}
