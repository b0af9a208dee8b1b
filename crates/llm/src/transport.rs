//! The machinery every adapter shares: HTTP attempts, retries, the model fallback chain and the
//! recording of [`Exchange`]s.
//!
//! An adapter only implements [`Wire`]: how to build a request body for one model and how to
//! read one HTTP answer into a [`Verdict`]. [`Adapter`] owns everything else, so retry, backoff,
//! fallback and redaction behave identically for Gemini, OpenAI-compatible servers and Anthropic.
//!
//! Policy, in one place:
//! - [`Verdict::Retry`] (429, 5xx, timeouts, connection errors, malformed function calls) sleeps
//!   the server-requested delay (capped) or an exponential backoff with full jitter, then tries the
//!   same model again, up to [`RetryPolicy::max_attempts`](crate::RetryPolicy) attempts;
//! - [`Verdict::NextModel`] (daily quota, unknown model) and exhausted retries move to the next
//!   model of the chain;
//! - [`Verdict::Fail`] (input too long, auth errors, bad requests) returns at once, except that
//!   an output truncated while thinking retries with the next lower [`ThinkingLevel`].
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
}

/// A [`ChatModel`] over any [`Wire`].
pub(crate) struct Adapter<W: Wire> {
    wire: W,
    config: ProviderConfig,
    http: reqwest::Client,
    redactor: Redactor,
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
        })
    }

    async fn run(&self, request: &ChatRequest) -> Result<ChatResponse, ChatFailure> {
        let provider = self.wire.provider();
        let mut exchanges = Vec::new();
        let mut last_failure = String::from("no model was tried");
        let models = &self.config.models;
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
                let started = Instant::now();
                let (status, response_body, verdict) =
                    self.attempt(model, &url, &body, &current).await;
                let elapsed = started.elapsed();
                let mut exchange = Exchange {
                    model: model.clone(),
                    url: self.redactor.text(&url),
                    request_body: self.redactor.value(&body),
                    status,
                    response_body: response_body.as_ref().map(|b| self.redactor.value(b)),
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
                        exchange.outcome = format!(
                            "retry after {:.3}s: {}",
                            delay.as_secs_f64(),
                            self.redactor.text(&why)
                        );
                        exchanges.push(exchange);
                        tracing::warn!(provider, model = %model, attempt, delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), reason = %self.redactor.text(&why), "retrying model call");
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
    async fn attempt(
        &self,
        model: &str,
        url: &str,
        body: &Value,
        request: &ChatRequest,
    ) -> (Option<u16>, Option<Value>, Verdict) {
        let builder = self.http.post(url).timeout(self.config.timeout).json(body);
        let response = match self.wire.headers(builder).send().await {
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
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return (
                    Some(status),
                    None,
                    Verdict::Retry {
                        after: None,
                        why: describe(&e),
                    },
                );
            }
        };
        let value = serde_json::from_slice::<Value>(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
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
        format!("{}:{}", self.wire.provider(), self.config.models.join(","))
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

/// Decodes a 200 body into a provider's response type. A body that does not match is retried,
/// not failed: proxies and overloaded servers sometimes answer 200 with something else.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(body: &Value) -> Result<T, Verdict> {
    serde_json::from_value(body.clone()).map_err(|e| Verdict::Retry {
        after: None,
        why: format!("unparseable response: {e}"),
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
        return Verdict::NextModel(format!("model not found (HTTP 404): {message}"));
    }
    if retryable_status(status) {
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

/// Statuses worth retrying on every provider: rate limits, timeouts, server trouble.
pub(crate) fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 425 | 429 | 499 | 500..=599)
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
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h…");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
