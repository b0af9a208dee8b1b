/*!
LLM providers behind one trait.

The principal type is [`ChatModel`]: given a [`ChatRequest`] (system instruction, history, tool
declarations) it returns one model turn as a [`ChatResponse`]. Adapters for Gemini
(`generateContent`), OpenAI-compatible chat completions and Anthropic Messages implement it over
HTTP; each owns its provider's wire format, retries, fallback chain and key redaction.
[`ChatModel::chat_recorded`] also returns, on failure, a [`ChatFailure`] holding every HTTP
attempt made before giving up, so failed turns can be audited like successful ones.

Getting one: [`ProviderConfig::from_env`] / [`ProviderConfig::from_file`] (or
[`detect_from_env`] to pick the provider), then [`connect`]. Module map:
- `gemini`, `openai`, `anthropic`: one wire format each (request body, response and error
  mapping), behind the crate-private `Wire` trait;
- `transport`: the shared attempt/retry/backoff/fallback loop, the turn deadline, the response
  size cap ([`MAX_RESPONSE_BYTES`]), model discovery on OpenAI-compatible servers, and
  [`Exchange`] recording;
- `redact`: scrubbing the key from recorded bodies, URLs and errors;
- [`schema`]: tool schemas reduced to what each provider accepts;
- [`window`]: context windows by model name;
- `args`: the marker for tool-call arguments that were not valid JSON ([`malformed_args`]).

Architecture invariants:
- Provider JSON lives only in this crate. The agent loop sees [`types`] only.
- API keys never appear in errors, logs or the recorded [`Exchange`]s.
- No knowledge of tools' behaviour, kernels or KCSAN.
*/

pub mod types;

mod anthropic;
mod args;
mod config;
mod gemini;
mod openai;
mod redact;
pub mod schema;
mod transport;
pub mod window;

use std::sync::Arc;

pub use args::{MALFORMED_ARGS_KEY, malformed_args, malformed_raw};
pub use config::{
    ConfigFile, DEFAULT_DEADLINE, Overrides, Provider, ProviderConfig, RetryPolicy, Secret,
    detect_from_env, detect_with,
};
pub use redact::redact_known_secrets;
pub use transport::MAX_RESPONSE_BYTES;
pub use types::*;
pub use window::{DEFAULT_CONTEXT_WINDOW, context_window_for};

/// Builds the adapter for `config.provider`, after validating the configuration (models,
/// base URL, key presence). No network traffic happens here.
pub fn connect(config: ProviderConfig) -> Result<Arc<dyn ChatModel>, LlmError> {
    config.validate()?;
    if let Some(key) = &config.api_key {
        redact::register_secret(key.expose());
    }
    if let Some(model) = config.models.first()
        && config.context_window.is_none()
        && !window::is_known(model)
    {
        tracing::warn!(
            provider = %config.provider,
            model = %model,
            assumed = DEFAULT_CONTEXT_WINDOW,
            "context window of this model is unknown; set it with --context-window (or \"context_window\" in the config file)"
        );
    }
    let model: Arc<dyn ChatModel> = match config.provider {
        Provider::Gemini => Arc::new(transport::Adapter::new(
            gemini::GeminiWire::new(&config)?,
            config,
        )?),
        Provider::OpenAi => Arc::new(transport::Adapter::new(
            openai::OpenAiWire::new(&config)?,
            config,
        )?),
        Provider::Anthropic => Arc::new(transport::Adapter::new(
            anthropic::AnthropicWire::new(&config)?,
            config,
        )?),
    };
    Ok(model)
}

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

/// A failed model turn together with every HTTP attempt made before giving up, so the
/// transcript keeps the raw record of turns that failed (retries and fallbacks included, keys
/// redacted) and not only of those that succeeded.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct ChatFailure {
    #[source]
    pub error: LlmError,
    pub exchanges: Vec<Exchange>,
}

impl ChatFailure {
    /// The HTTP attempts made for the failed turn (empty when the model keeps no record).
    pub fn exchanges(&self) -> &[Exchange] {
        &self.exchanges
    }
}

impl From<LlmError> for ChatFailure {
    fn from(error: LlmError) -> Self {
        ChatFailure {
            error,
            exchanges: Vec::new(),
        }
    }
}

/// The boxed future of [`ChatModel::chat_recorded`].
pub type RecordedChat<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<ChatResponse, ChatFailure>> + Send + 'a>,
>;

/// One LLM endpoint (possibly a fallback chain of models).
pub trait ChatModel: Send + Sync {
    /// A short stable name for spans, e.g. `gemini:gemini-3-flash-preview`.
    fn name(&self) -> String;
    /// Approximate context window in tokens of the first model of the chain.
    fn context_window(&self) -> u64;
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<ChatResponse, LlmError>> + Send + 'a>,
    >;

    /// Like [`ChatModel::chat`], but a failure carries the exchanges made before giving up.
    /// The default keeps no record of failures; the HTTP adapters override it, and wrappers
    /// (caches) should forward it.
    fn chat_recorded<'a>(&'a self, request: &'a ChatRequest) -> RecordedChat<'a> {
        Box::pin(async move { self.chat(request).await.map_err(ChatFailure::from) })
    }
}
