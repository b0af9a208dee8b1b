//! The machinery every adapter shares: HTTP attempts, retries, the model fallback chain and the
//! recording of [`Exchange`]s.
//!
//! An adapter only implements [`Wire`]: how to build a request body for one model and how to
//! read one HTTP answer into a [`Verdict`]. [`Adapter`] owns everything else, so retry, backoff,
//! fallback and redaction behave identically for Gemini, OpenAI-compatible servers and Anthropic.
//!
//! Policy, in one place:
//! - [`Verdict::Retry`] (transient only: 408, 425, 429, 500 unless it describes the request,
//!   502, 503, 504, 529, timeouts, connection errors, malformed function calls) sleeps the
//!   server-requested delay (capped) or an exponential backoff with full jitter, then tries the
//!   same model again, up to [`RetryPolicy::max_attempts`](crate::RetryPolicy) attempts and
//!   within the turn's deadline ([`ProviderConfig::deadline`]);
//! - [`Verdict::NextModel`] (daily quota) / [`Verdict::UnknownModel`] (the server lists what it
//!   has) and exhausted retries move to the next model of the chain;
//! - [`Verdict::Fail`] (input too long, recognised from the message whatever the status; auth
//!   errors; bad requests; other 4xx/5xx; bodies that do not parse or exceed
//!   [`MAX_RESPONSE_BYTES`]) returns at once, except that an output truncated while thinking
//!   retries with the next lower [`ThinkingLevel`].
//!
//! What is kept of an answer is bounded: bodies are read up to [`MAX_RESPONSE_BYTES`], non-JSON
//! text and failed answers are recorded clipped to [`RECORD_CLIP`] bytes, error messages to 2000.
//!
//! A turn that fails still hands back its exchanges ([`ChatFailure`]) so the transcript can show
//! every attempt of a failed turn.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::config::ProviderConfig;
use crate::redact::Redactor;
use crate::{
    ChatFailure, ChatModel, ChatRequest, ChatResponse, Exchange, FinishReason, LlmError, Message,
    RecordedChat, ThinkingLevel, Usage,
};

/// One parsed model turn, before the transport adds the model name and exchanges.
#[derive(Debug, Clone)]
pub(crate) struct Turn {
    pub message: Message,
    pub usage: Usage,
    pub finish: FinishReason,
}

/// What to do with one HTTP answer.
#[derive(Debug)]
pub(crate) enum Verdict {
    Done(Turn),
    /// Try the same model again; `after` is the server-requested delay, if it gave one.
    Retry {
        after: Option<Duration>,
        why: String,
    },
    /// This model cannot serve us (daily quota, not found); try the next one.
    NextModel(String),
    /// The server does not know this model: like [`Verdict::NextModel`], and the failure lists
    /// the models the server does serve when it can tell.
    UnknownModel(String),
    Fail(LlmError),
}

/// An HTTP answer as the adapters see it. Non-JSON bodies (proxy error pages) arrive as
/// `Value::String` so they can still be recorded and matched.
pub(crate) struct Answer<'a> {
    pub status: u16,
    pub headers: &'a HeaderMap,
    pub body: &'a Value,
}

/// A provider's wire format.
pub(crate) trait Wire: Send + Sync + 'static {
    fn provider(&self) -> &'static str;
    /// The endpoint for `model`. Never contains the key.
    fn url(&self, model: &str) -> String;
    fn body(&self, model: &str, request: &ChatRequest) -> Result<Value, LlmError>;
    /// Adds authentication and protocol headers.
    fn headers(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder;
    fn interpret(&self, model: &str, request: &ChatRequest, answer: &Answer<'_>) -> Verdict;
    /// Where the server lists its models (OpenAI-compatible `GET {base}/models`), if it can.
    fn models_url(&self) -> Option<String> {
        None
    }
    /// Extra text for a 404 that suggests a wrong base URL rather than a wrong model.
    fn not_found_hint(&self, _status: u16) -> String {
        String::new()
    }
}

/// A [`ChatModel`] over any [`Wire`].
pub(crate) struct Adapter<W: Wire> {
    wire: W,
    config: ProviderConfig,
    http: reqwest::Client,
    redactor: Redactor,
    /// The server's only model, asked on first use when the config names none.
    discovered: tokio::sync::OnceCell<String>,
}

impl<W: Wire> Adapter<W> {
    pub(crate) fn new(wire: W, config: ProviderConfig) -> Result<Self, LlmError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout.min(Duration::from_secs(30)))
            .build()
            .map_err(|e| LlmError::Config(format!("cannot build HTTP client: {e}")))?;
        let redactor = Redactor::new(config.api_key.as_ref().map(|k| k.expose().to_string()));
        Ok(Adapter {
            wire,
            config,
            http,
            redactor,
            discovered: tokio::sync::OnceCell::new(),
        })
    }

    async fn run(&self, request: &ChatRequest) -> Result<ChatResponse, ChatFailure> {
        let provider = self.wire.provider();
        let mut exchanges = Vec::new();
        let mut last_failure = String::from("no model was tried");
        let turn_started = Instant::now();
        let models = self.models().await?;
        // The configured output limit applies when the caller sets none of its own.
        let request = match (request.max_output_tokens, self.config.max_output_tokens) {
            (None, Some(max)) => Cow::Owned(ChatRequest {
                max_output_tokens: Some(max),
                ..request.clone()
            }),
            _ => Cow::Borrowed(request),
        };
        let request = request.as_ref();
        for (index, model) in models.iter().enumerate() {
            let give_up = if index + 1 < models.len() {
                "fallback to next model"
            } else {
                "fail"
            };
            // Each model starts from the caller's thinking level; only truncation lowers it.
            let mut current = Cow::Borrowed(request);
            let mut body = match self.wire.body(model, &current) {
                Ok(body) => body,
                Err(error) => return Err(ChatFailure { error, exchanges }),
            };
            let url = self.wire.url(model);
            let mut attempt = 0u32;
            loop {
                attempt += 1;
                let Some(timeout) = self.attempt_timeout(turn_started) else {
                    return Err(self.deadline_failure(model, &last_failure, exchanges));
                };
                let started = Instant::now();
                let (status, response_body, verdict) =
                    self.attempt(model, &url, &body, &current, timeout).await;
                let elapsed = started.elapsed();
                let mut exchange = Exchange {
                    model: model.clone(),
                    url: self.redactor.text(&url),
                    request_body: self.redactor.value(&body),
                    status,
                    response_body: response_body
                        .as_ref()
                        .map(|b| self.redactor.value(&clip_failed(b, &verdict))),
                    outcome: String::new(),
                    duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
                };
                match verdict {
                    Verdict::Done(turn) => {
                        exchange.outcome = "ok".into();
                        exchanges.push(exchange);
                        tracing::debug!(provider, model = %model, attempt, "model turn ok");
                        return Ok(ChatResponse {
                            message: turn.message,
                            usage: turn.usage,
                            finish: turn.finish,
                            model: model.clone(),
                            exchanges,
                        });
                    }
                    Verdict::Retry { after, why } if attempt < self.config.retry.max_attempts => {
                        let delay = self.delay(after, attempt);
                        let why = self.redactor.text(&why);
                        if self.past_deadline(turn_started, delay) {
                            exchange.outcome = "fail: deadline".into();
                            exchanges.push(exchange);
                            return Err(self.deadline_failure(model, &why, exchanges));
                        }
                        exchange.outcome =
                            format!("retry after {:.3}s: {why}", delay.as_secs_f64());
                        exchanges.push(exchange);
                        tracing::warn!(provider, model = %model, attempt, delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), reason = %why, "retrying model call");
                        last_failure = why;
                        tokio::time::sleep(delay).await;
                    }
                    Verdict::Retry { why, .. } => {
                        last_failure = format!(
                            "{model}: gave up after {attempt} attempts: {}",
                            self.redactor.text(&why)
                        );
                        exchange.outcome = give_up.into();
                        exchanges.push(exchange);
                        tracing::warn!(provider, model = %model, reason = %last_failure, "retries exhausted");
                        break;
                    }
                    Verdict::UnknownModel(why) => {
                        // Only a failure that ends the turn needs the list; a chain moving on
                        // to its next model does not.
                        let hint = if index + 1 == models.len() {
                            self.served_models_hint().await
                        } else {
                            String::new()
                        };
                        last_failure = format!("{model}: {}{hint}", self.redactor.text(&why));
                        exchange.outcome = give_up.into();
                        exchanges.push(exchange);
                        tracing::warn!(provider, model = %model, reason = %last_failure, "model unknown to the server");
                        break;
                    }
                    Verdict::NextModel(why) => {
                        last_failure = format!("{model}: {}", self.redactor.text(&why));
                        exchange.outcome = give_up.into();
                        exchanges.push(exchange);
                        tracing::warn!(provider, model = %model, reason = %last_failure, "model unavailable");
                        break;
                    }
                    // Thinking ate the output budget: like the reference backend, think less
                    // and ask again rather than fail the turn.
                    Verdict::Fail(LlmError::OutputTruncated { .. })
                        if attempt < self.config.retry.max_attempts
                            && lower_thinking(current.thinking).is_some() =>
                    {
                        let mut lowered = current.into_owned();
                        lowered.thinking = lower_thinking(lowered.thinking).unwrap_or_default();
                        exchange.outcome = format!(
                            "output truncated; retry with thinking {:?}",
                            lowered.thinking
                        );
                        exchanges.push(exchange);
                        tracing::warn!(provider, model = %model, thinking = ?lowered.thinking, "output truncated, lowering thinking");
                        body = match self.wire.body(model, &lowered) {
                            Ok(body) => body,
                            Err(error) => return Err(ChatFailure { error, exchanges }),
                        };
                        current = Cow::Owned(lowered);
                    }
                    Verdict::Fail(err) => {
                        exchange.outcome = "fail".into();
                        exchanges.push(exchange);
                        let err = self.redactor.error(err);
                        tracing::warn!(provider, model = %model, error = %err, "model call failed");
                        return Err(ChatFailure {
                            error: err,
                            exchanges,
                        });
                    }
                }
            }
        }
        Err(ChatFailure {
            error: LlmError::Provider {
                provider: provider.to_string(),
                message: last_failure,
            },
            exchanges,
        })
    }

    /// One HTTP attempt: status (if any answer came), the body (if any), and the verdict.
    /// `timeout` is this attempt's share of the turn (the per-attempt timeout, or less when the
    /// turn's deadline is nearer).
    async fn attempt(
        &self,
        model: &str,
        url: &str,
        body: &Value,
        request: &ChatRequest,
        timeout: Duration,
    ) -> (Option<u16>, Option<Value>, Verdict) {
        let builder = self.http.post(url).timeout(timeout).json(body);
        let mut response = match self.wire.headers(builder).send().await {
            Ok(r) => r,
            Err(e) => {
                return (
                    None,
                    None,
                    Verdict::Retry {
                        after: None,
                        why: describe(&e),
                    },
                );
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = match read_capped(&mut response, MAX_RESPONSE_BYTES).await {
            Ok(b) => b,
            Err(BodyError::Transport(e)) => {
                return (
                    Some(status),
                    None,
                    Verdict::Retry {
                        after: None,
                        why: describe(&e),
                    },
                );
            }
            Err(BodyError::TooLarge { head }) => {
                // A body this large is no model turn; asking again would only fetch it again.
                let recorded = Value::String(clip(&String::from_utf8_lossy(&head), RECORD_CLIP));
                return (
                    Some(status),
                    Some(recorded),
                    Verdict::Fail(LlmError::Provider {
                        provider: self.wire.provider().to_string(),
                        message: format!(
                            "{model}: HTTP {status}: response body larger than {} MiB (not retried)",
                            MAX_RESPONSE_BYTES / (1024 * 1024)
                        ),
                    }),
                );
            }
        };
        // Non-JSON bodies (proxy error pages, garbage) are kept as a clipped string: enough to
        // match an error message and to show in the transcript, never megabytes of it.
        let value = serde_json::from_slice::<Value>(&bytes)
            .unwrap_or_else(|_| Value::String(clip(&String::from_utf8_lossy(&bytes), RECORD_CLIP)));
        let verdict = self.wire.interpret(
            model,
            request,
            &Answer {
                status,
                headers: &headers,
                body: &value,
            },
        );
        (Some(status), Some(value), verdict)
    }

    /// This attempt's timeout: the per-attempt timeout, cut to what is left of the turn's
    /// deadline; `None` when the deadline has passed.
    fn attempt_timeout(&self, turn_started: Instant) -> Option<Duration> {
        match self.config.deadline {
            None => Some(self.config.timeout),
            Some(deadline) => {
                let left = deadline.checked_sub(turn_started.elapsed())?;
                (!left.is_zero()).then(|| left.min(self.config.timeout))
            }
        }
    }

    /// Whether sleeping `delay` would take the turn past its deadline.
    fn past_deadline(&self, turn_started: Instant, delay: Duration) -> bool {
        self.config
            .deadline
            .is_some_and(|d| turn_started.elapsed() + delay >= d)
    }

    /// The failure of a turn whose deadline passed; `last` is the latest attempt's trouble.
    fn deadline_failure(&self, model: &str, last: &str, exchanges: Vec<Exchange>) -> ChatFailure {
        let secs = self.config.deadline.unwrap_or_default().as_secs_f64();
        tracing::warn!(provider = self.wire.provider(), model = %model, deadline_s = secs, "model turn deadline reached");
        ChatFailure {
            error: LlmError::Provider {
                provider: self.wire.provider().to_string(),
                message: format!(
                    "{model}: no answer within the turn deadline of {secs:.1}s (retries included); last: {last}"
                ),
            },
            exchanges,
        }
    }

    /// The model chain: the configured one, or (OpenAI-compatible servers, no model given) the
    /// server's only model, asked once per adapter.
    async fn models(&self) -> Result<Cow<'_, [String]>, ChatFailure> {
        if !self.config.models.is_empty() {
            return Ok(Cow::Borrowed(&self.config.models));
        }
        let found = self
            .discovered
            .get_or_try_init(|| self.discover())
            .await
            .map_err(|e| ChatFailure::from(self.redactor.error(e)))?;
        Ok(Cow::Owned(vec![found.clone()]))
    }

    /// Asks the server which models it serves and picks the only one; several is an error that
    /// lists them, since picking one of them silently would judge with an arbitrary model.
    async fn discover(&self) -> Result<String, LlmError> {
        let provider = self.wire.provider();
        let Some(url) = self.wire.models_url() else {
            return Err(LlmError::Config(format!("{provider}: no model given")));
        };
        let ids = self.list_models(&url).await?;
        match ids.as_slice() {
            [only] => {
                tracing::info!(provider, model = %only, "no model given; using the server's only model");
                if self.config.context_window.is_none() && !crate::window::is_known(only) {
                    tracing::warn!(provider, model = %only, assumed = crate::window::DEFAULT_CONTEXT_WINDOW, "context window of this model is unknown; set it with --context-window");
                }
                Ok(only.clone())
            }
            [] => Err(LlmError::Config(format!(
                "{provider}: no model given and {url} lists none; pass --model"
            ))),
            many => Err(LlmError::Config(format!(
                "{provider}: no model given and the server serves several; pass --model with one of: {}",
                list(many)
            ))),
        }
    }

    /// `GET {models_url}`: the ids under `data[].id` (OpenAI's list-models shape, which vLLM,
    /// ollama and llama.cpp servers share).
    async fn list_models(&self, url: &str) -> Result<Vec<String>, LlmError> {
        let provider = self.wire.provider();
        let fail = |message: String| LlmError::Provider {
            provider: provider.to_string(),
            message,
        };
        let builder = self
            .http
            .get(url)
            .timeout(self.config.timeout.min(Duration::from_secs(30)));
        let mut response = self
            .wire
            .headers(builder)
            .send()
            .await
            .map_err(|e| fail(format!("listing models at {url}: {}", describe(&e))))?;
        let status = response.status().as_u16();
        let bytes = read_capped(&mut response, MAX_RESPONSE_BYTES)
            .await
            .map_err(|_| fail(format!("listing models at {url}: unreadable answer")))?;
        if status != 200 {
            let body = serde_json::from_slice::<Value>(&bytes).unwrap_or_else(|_| {
                Value::String(clip(&String::from_utf8_lossy(&bytes), RECORD_CLIP))
            });
            return Err(fail(format!(
                "listing models at {url}: HTTP {status}: {}{}",
                error_text(&body),
                self.wire.not_found_hint(status)
            )));
        }
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| fail(format!("listing models at {url}: not JSON: {e}")))?;
        Ok(body
            .get("data")
            .and_then(Value::as_array)
            .map(|data| {
                data.iter()
                    .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `"; the server serves: a, b"` when the wire can list models and the server answers;
    /// empty otherwise (a hint must never turn one failure into another).
    async fn served_models_hint(&self) -> String {
        let Some(url) = self.wire.models_url() else {
            return String::new();
        };
        match self.list_models(&url).await {
            Ok(ids) if !ids.is_empty() => format!("; the server serves: {}", list(&ids)),
            _ => String::new(),
        }
    }

    fn delay(&self, server: Option<Duration>, attempt: u32) -> Duration {
        let policy = &self.config.retry;
        match server {
            Some(d) => d.min(policy.max_server_delay),
            None => full_jitter(policy.base_delay, policy.max_backoff, attempt),
        }
    }
}

impl<W: Wire> ChatModel for Adapter<W> {
    fn name(&self) -> String {
        let models = match (self.config.models.is_empty(), self.discovered.get()) {
            (false, _) => self.config.models.join(","),
            (true, Some(found)) => found.clone(),
            (true, None) => "(server's model)".to_string(),
        };
        format!("{}:{models}", self.wire.provider())
    }

    fn context_window(&self) -> u64 {
        self.config.context_window()
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<ChatResponse, LlmError>> + Send + 'a>,
    > {
        Box::pin(async move { self.run(request).await.map_err(|f| f.error) })
    }

    fn chat_recorded<'a>(&'a self, request: &'a ChatRequest) -> RecordedChat<'a> {
        Box::pin(self.run(request))
    }
}

/// The next lower thinking level, if any; `Default` is left alone since we don't know what the
/// model's default spends.
fn lower_thinking(level: ThinkingLevel) -> Option<ThinkingLevel> {
    match level {
        ThinkingLevel::High => Some(ThinkingLevel::Medium),
        ThinkingLevel::Medium => Some(ThinkingLevel::Low),
        ThinkingLevel::Low | ThinkingLevel::Default => None,
    }
}

/// Uniform in `[0, min(cap, base * 2^(attempt-1))]`.
fn full_jitter(base: Duration, cap: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(
        1u32.checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX),
    );
    let ceiling = exp.min(cap);
    if ceiling.is_zero() {
        return ceiling;
    }
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::rng().random_range(0..=nanos))
}

fn describe(e: &reqwest::Error) -> String {
    // reqwest's Display names the URL, which never holds the key (keys go in headers); the
    // transport still runs it through the redactor before recording.
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    let mut msg = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}

/// Decodes a 200 body into a provider's response type. A body that does not match fails the
/// turn: it is not a transient state (the same server gives the same kind of body again), and
/// retrying a garbage answer only multiplies it in memory, logs and transcripts.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    provider: &str,
    model: &str,
    body: &Value,
) -> Result<T, Verdict> {
    serde_json::from_value(body.clone()).map_err(|e| {
        Verdict::Fail(LlmError::Provider {
            provider: provider.to_string(),
            // serde's message quotes the offending value, which may be the whole body.
            message: format!(
                "{model}: unparseable response (not retried): {}",
                clip(&e.to_string(), 300)
            ),
        })
    })
}

/// The end of every provider's error classification, after its own special cases (input too
/// long, daily quotas): an unknown model moves on to the next model, a retryable status is
/// retried after the server's requested delay, anything else fails with the provider's text.
pub(crate) fn classify_status(
    provider: &str,
    model: &str,
    answer: &Answer<'_>,
    message: String,
) -> Verdict {
    let status = answer.status;
    if status == 404 {
        return Verdict::UnknownModel(format!("model not found (HTTP 404): {message}"));
    }
    if retryable_status(status) && !(status == 500 && deterministic_500(answer.body, &message)) {
        return Verdict::Retry {
            after: retry_after(answer.headers),
            why: format!("HTTP {status}: {message}"),
        };
    }
    Verdict::Fail(LlmError::Provider {
        provider: provider.to_string(),
        message: format!("{model}: HTTP {status}: {message}"),
    })
}

/// Statuses worth retrying on every provider: rate limits, timeouts, overload, gateways, and
/// 500 (see [`deterministic_500`]). Other 4xx/5xx say the same thing again when asked again.
pub(crate) fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 425 | 429 | 500 | 502 | 503 | 504 | 529)
}

/// Whether a 500 describes our request rather than the server's state: local servers (llama.cpp,
/// llama-cpp-python) answer 500 for requests their chat template or parser rejects, and those
/// fail identically on every retry.
pub(crate) fn deterministic_500(body: &Value, message: &str) -> bool {
    let kind = body
        .pointer("/error/type")
        .and_then(Value::as_str)
        .unwrap_or("");
    if kind.contains("invalid_request") {
        return true;
    }
    let lower = message.to_ascii_lowercase();
    const MARKERS: &[&str] = &[
        "invalid",
        "missing",
        "must be",
        "must not",
        "not supported",
        "unsupported",
        "failed to parse",
        "cannot parse",
        "validation",
        "typeerror",
        "valueerror",
        "keyerror",
        "attributeerror",
        "nonetype",
        "jinja",
        "template",
    ];
    MARKERS.iter().any(|m| lower.contains(m))
}

/// Whether an error message says the request does not fit the model's context, in the words
/// of any server we know: OpenAI and vLLM ("maximum context length", `context_length_exceeded`),
/// llama.cpp ("exceeds the available context size"), llama-cpp-python ("exceed context window"),
/// Anthropic ("prompt is too long"), Gemini ("input token count ... exceeds"). Servers send these
/// with 400, 413 or even 500, so the status is not consulted.
pub(crate) fn is_context_overflow(code: &str, message: &str) -> bool {
    if code == "context_length_exceeded" {
        return true;
    }
    let lower = message.to_ascii_lowercase();
    let exceeds = lower.contains("exceed") || lower.contains("too long");
    lower.contains("maximum context length")
        || lower.contains("prompt is too long")
        || (exceeds
            && (lower.contains("context length")
                || lower.contains("context size")
                || lower.contains("context window")
                || lower.contains("input token count")
                || lower.contains("maximum number of tokens")))
}

/// `Retry-After` (seconds, possibly fractional) or OpenAI's `retry-after-ms`. HTTP-date forms are
/// ignored and fall back to backoff: no provider we talk to sends them.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return secs(ms / 1000.0);
    }
    get("retry-after")
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(secs)
}

/// A non-negative, finite number of seconds.
pub(crate) fn secs(s: f64) -> Option<Duration> {
    (0.0..1e9).contains(&s).then(|| Duration::from_secs_f64(s))
}

/// Short text for an error body: the provider's `error.message` when present, else the body.
pub(crate) fn error_text(body: &Value) -> String {
    let text = body
        .pointer("/error/message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| body.as_str().map(str::to_string))
        .unwrap_or_else(|| body.to_string());
    truncate(&text, 2000)
}

/// Most bytes of a response body read into memory; a longer body fails the attempt unretried.
/// 8 MiB is far above any model turn (a full 128k-token answer is well under 1 MiB).
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// Most bytes of a non-JSON body kept for matching, logs and the transcript.
pub(crate) const RECORD_CLIP: usize = 64 * 1024;

pub(crate) enum BodyError {
    Transport(reqwest::Error),
    /// Over the cap; `head` is what was read up to it.
    TooLarge {
        head: Vec<u8>,
    },
}

/// Reads a body chunk by chunk, stopping at `cap` bytes, so a runaway server costs at most
/// `cap` of memory rather than whatever it sends.
pub(crate) async fn read_capped(
    response: &mut reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|n| n > u64::try_from(cap).unwrap_or(u64::MAX))
    {
        return Err(BodyError::TooLarge { head: Vec::new() });
    }
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if out.len() + chunk.len() > cap {
            let room = cap - out.len();
            out.extend_from_slice(&chunk[..room.min(RECORD_CLIP)]);
            out.truncate(RECORD_CLIP);
            return Err(BodyError::TooLarge { head: out });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// `text` cut to at most `max` bytes (on a char boundary), saying how much was cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… [{} more bytes clipped]",
        &text[..end],
        text.len() - end
    )
}

/// A body as recorded: whole when it is a model turn, clipped to [`RECORD_CLIP`] (as text)
/// when it failed, since a failed answer can be megabytes of anything and is recorded once per
/// attempt.
fn clip_failed<'b>(body: &'b Value, verdict: &Verdict) -> Cow<'b, Value> {
    if matches!(verdict, Verdict::Done(_)) {
        return Cow::Borrowed(body);
    }
    let text = body.to_string();
    if text.len() <= RECORD_CLIP {
        return Cow::Borrowed(body);
    }
    Cow::Owned(Value::String(clip(&text, RECORD_CLIP)))
}

/// A short list of model ids for a message (servers such as api.openai.com list dozens).
fn list(ids: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut out = ids
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > SHOWN {
        out.push_str(&format!(" and {} more", ids.len() - SHOWN));
    }
    out
}

pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Whether a parsed turn has anything the loop can use.
pub(crate) fn is_empty_turn(message: &Message) -> bool {
    message.parts.iter().all(|p| match p {
        crate::Part::Text { text } => text.trim().is_empty(),
        crate::Part::Thought { .. } => true,
        crate::Part::ToolCall(_) | crate::Part::ToolResult(_) => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_under_the_exponential_ceiling() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(1);
        for attempt in 1..40 {
            let d = full_jitter(base, cap, attempt);
            let ceiling = base.saturating_mul(1 << (attempt - 1).min(20)).min(cap);
            assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
        }
        assert_eq!(full_jitter(Duration::ZERO, cap, 3), Duration::ZERO);
    }

    #[test]
    fn retry_after_header_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut date = HeaderMap::new();
        date.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&date), None);
    }

    #[test]
    fn overflow_messages_of_every_server() {
        for m in [
            "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens",
            "the request exceeds the available context size, try increasing it",
            "Requested tokens (5000) exceed context window of 2048",
            "prompt is too long: 210000 tokens > 200000 maximum",
            "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
        ] {
            assert!(is_context_overflow("", m), "{m}");
        }
        assert!(is_context_overflow("context_length_exceeded", "x"));
        assert!(!is_context_overflow("", "The server had an error"));
        assert!(!is_context_overflow("", "Rate limit exceeded"));
    }

    #[test]
    fn only_request_shaped_500s_are_deterministic() {
        let none = Value::Null;
        assert!(deterministic_500(
            &none,
            "TypeError: can only concatenate str (not \"NoneType\") to str"
        ));
        assert!(deterministic_500(&none, "Invalid 'content' type"));
        assert!(!deterministic_500(
            &none,
            "The server had an error while processing your request."
        ));
        assert!(!deterministic_500(&none, "An unexpected error occurred"));
        let typed = serde_json::json!({"error": {"type": "invalid_request_error"}});
        assert!(deterministic_500(&typed, "whatever"));
    }

    #[test]
    fn clip_says_how_much_was_cut() {
        assert_eq!(clip("abcdef", 3), "abc… [3 more bytes clipped]");
        assert_eq!(clip("abc", 3), "abc");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h…");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
