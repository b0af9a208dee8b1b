//! N independent candidate runs of one agent and a majority vote ([`Agent::run_candidates`]).
//!
//! The reference dropped its self-reported `Confident` output because the model always said
//! yes (aflow.md §10.7). Agreement between independent runs is a measured confidence instead:
//! [`Vote::confidence`] is the winner's votes over all candidates (failed runs count against).
//! Candidates run one after another so the trajectory stays deterministic; give each its own
//! model (e.g. `CachingModel::with_salt("candidate-i")`) so cached replies are not shared.

use std::collections::BTreeMap;
use std::sync::Arc;

use llm::ChatModel;
use serde_json::json;

use crate::definition::{Agent, AgentOutcome, RunContext};
use crate::error::AgentError;
use crate::span::{Span, SpanKind};

/// The result of a vote.
#[derive(Debug, Clone)]
pub struct Vote {
    /// The first candidate (in run order) with the winning key.
    pub winner: AgentOutcome,
    pub winning_key: String,
    /// Votes per key.
    pub tally: BTreeMap<String, usize>,
    pub candidates: usize,
    /// Winner's votes / candidates, in 0..=1.
    pub confidence: f64,
    /// Error messages of failed candidates.
    pub failures: Vec<String>,
}

/// The default vote key: the canonical JSON of the outputs.
pub fn outputs_key(outcome: &AgentOutcome) -> String {
    outcome
        .outputs
        .as_ref()
        .map(|v| v.to_string())
        .unwrap_or_default()
}

impl Agent {
    /// Runs one candidate per model and votes on `key`. A job-wide failure (token budget) stops
    /// the vote; other failures count as votes for nothing.
    pub async fn run_candidates(
        &self,
        models: &[Arc<dyn ChatModel>],
        ctx: &RunContext,
        key: &(dyn Fn(&AgentOutcome) -> String + Sync),
    ) -> Result<Vote, AgentError> {
        let mut span = Span::new(SpanKind::AgentCandidates, ctx.nesting, &self.name);
        span.args = Some(json!({ "Candidates": models.len() }));
        let mut open = ctx.trajectory.start(span);
        let inner = ctx.nested();
        let mut outcomes: Vec<(String, AgentOutcome)> = Vec::new();
        let mut failures = Vec::new();
        for model in models {
            match self.run(model.as_ref(), &inner).await {
                Ok(outcome) => outcomes.push((key(&outcome), outcome)),
                Err(err @ AgentError::TokenBudget { .. })
                | Err(err @ AgentError::Definition { .. }) => {
                    open.finish(Some(err.to_string()));
                    return Err(err);
                }
                Err(err) => failures.push(err.to_string()),
            }
        }
        let mut tally: BTreeMap<String, usize> = BTreeMap::new();
        for (k, _) in &outcomes {
            *tally.entry(k.clone()).or_default() += 1;
        }
        // Highest count wins; ties go to the key that appeared first.
        let best = outcomes.iter().map(|(k, _)| tally[k]).max();
        let Some((winning_key, winner)) = best
            .and_then(|best| outcomes.iter().find(|(k, _)| tally[k] == best))
            .cloned()
        else {
            let first = failures
                .first()
                .cloned()
                .unwrap_or_else(|| "no candidates".into());
            let err = AgentError::AllCandidatesFailed {
                agent: self.name.clone(),
                count: models.len(),
                first,
            };
            open.finish(Some(err.to_string()));
            return Err(err);
        };
        let votes = tally[&winning_key];
        let confidence = votes as f64 / models.len() as f64;
        open.span_mut().results = Some(json!({
            "Votes": tally,
            "Winner": winning_key,
            "Confidence": confidence,
            "Failures": failures.len(),
        }));
        open.finish(None);
        Ok(Vote {
            winner,
            winning_key,
            tally,
            candidates: models.len(),
            confidence,
            failures,
        })
    }
}
