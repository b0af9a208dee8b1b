/*!
LLM providers behind one trait.

The principal type is [`ChatModel`]: given a [`ChatRequest`] (system instruction, history, tool
declarations) it returns one model turn as a [`ChatResponse`]. Adapters for Gemini
(`generateContent`), OpenAI-compatible chat completions and Anthropic Messages implement it over
HTTP; each owns its provider's wire format, retries, fallback chain and key redaction.

Architecture invariants:
- Provider JSON lives only in this crate. The agent loop sees [`types`] only.
- API keys never appear in errors, logs or the recorded [`Exchange`]s.
- No knowledge of tools' behaviour, kernels or KCSAN.
*/

pub mod types;

pub use types::*;

/// Why a model turn failed after the adapter's own retries and fallbacks.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The request (history + tools) is larger than the model accepts. The loop may summarise.
    #[error("input too long for {model}: {message}")]
    InputTooLong { model: String, message: String },
    /// The model stopped at its output limit without a usable answer.
    #[error("output truncated by {model} at its token limit")]
    OutputTruncated { model: String },
    /// Every model of the chain failed; `message` summarises the last failure.
    #[error("{provider} request failed: {message}")]
    Provider { provider: String, message: String },
    /// Misconfiguration: missing key, unknown provider, bad base URL.
    #[error("LLM configuration: {0}")]
    Config(String),
}

/// One LLM endpoint (possibly a fallback chain of models).
pub trait ChatModel: Send + Sync {
    /// A short stable name for spans, e.g. `gemini:gemini-3-flash-preview`.
    fn name(&self) -> String;
    /// Approximate context window in tokens of the first model of the chain.
    fn context_window(&self) -> u64;
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<ChatResponse, LlmError>> + Send + 'a>>;
}
