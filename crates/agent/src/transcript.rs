//! The turn-level transcript: everything the trajectory's spans summarise, verbatim.
//!
//! A [`TranscriptEntry`] is linked to an LLM span by `span_seq`. It records the requests sent
//! (as the messages added since the previous request, so the file grows linearly), every raw
//! HTTP [`Exchange`] the adapter made (retries and fallbacks included, keys already redacted by
//! crate `llm`), each model response, each LLM error, and every [`Corrective`] message the loop
//! injected. The reference kept none of this (aflow.md §10.1); here a job can be audited turn by
//! turn. Entries travel through [`crate::SpanSink::transcript`]; the JSONL sink writes them to
//! `<trajectory stem>.transcript.jsonl` next to the trajectory.

use llm::{Exchange, FinishReason, Message, Usage};
use serde::{Deserialize, Serialize};

/// Why the loop talked to the model on its own initiative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Corrective {
    /// More calls in one turn than allowed: the first N ran, the rest were skipped.
    TooManyCalls,
    /// An identical call was made before: the cached result was returned with a warning.
    DuplicateCall,
    /// A final reply came without a successful `set-results` call.
    MissingResults,
    /// The final reply was empty.
    EmptyReply,
    /// The iteration limit was reached: only `set-results` remains, answer now.
    AnswerNow,
    /// The `set-results` values and the final reply disagree.
    Reconcile,
    /// Older turns were replaced by a summary to fit the context window.
    Summary,
}

/// One transcript line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptEntry {
    /// The LLM span this belongs to: the call whose request/response it is, or, for a
    /// corrective message, the call whose reply prompted it.
    pub span_seq: u64,
    /// The agent (span name) that owns the conversation.
    pub agent: String,
    #[serde(flatten)]
    pub event: TranscriptEvent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TranscriptEvent {
    /// A request as the loop built it. `new_messages` holds the history from index `from`
    /// on; `from == 0` (with the system prompt and tool names) starts a conversation or follows
    /// a history rewrite (summarisation); `tools` is present whenever the offered tool set
    /// changed (first request, answer-now phase).
    Request {
        model: String,
        history_len: usize,
        from: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        system: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tools: Option<Vec<String>>,
        new_messages: Vec<Message>,
    },
    /// One raw HTTP attempt made by the provider adapter (or the cache marker on a replay).
    Exchange {
        exchange: Exchange,
    },
    Response {
        model: String,
        message: Message,
        usage: Usage,
        finish: FinishReason,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        cache_hit: bool,
    },
    /// The call failed after the adapter's own retries and fallbacks.
    LlmError {
        message: String,
        /// The loop will try again after summarising (input too long).
        will_retry: bool,
    },
    Corrective {
        reason: Corrective,
        message: String,
    },
    /// The final reply and `set-results` disagreed (recorded even when later reconciled).
    Disagreement {
        detail: String,
        outputs: serde_json::Value,
    },
}
