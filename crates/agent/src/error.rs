//! [`AgentError`]: why an agent run ended without an answer.

use llm::LlmError;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The agent is miswired (unknown tool in the allow list, unusable output schema).
    #[error("agent definition {agent:?}: {message}")]
    Definition { agent: String, message: String },
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error("token budget exhausted: {used} tokens used, budget is {limit}")]
    TokenBudget { used: u64, limit: u64 },
    #[error("agent {agent:?} reached its iteration limit ({limit}) and gave no final answer")]
    MaxIterations { agent: String, limit: u32 },
    #[error(
        "agent {agent:?} gave a final reply without calling set-results, even after a reminder"
    )]
    MissingResults { agent: String },
    #[error("agent {agent:?} gave an empty final reply, even after a reminder")]
    EmptyReply { agent: String },
    #[error("all {count} candidates of agent {agent:?} failed; first error: {first}")]
    AllCandidatesFailed {
        agent: String,
        count: usize,
        first: String,
    },
}
