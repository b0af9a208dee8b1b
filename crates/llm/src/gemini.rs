//! Google Gemini `models.generateContent` adapter ([`GeminiWire`]).
//!
//! Wire facts this module encodes (Gemini API reference: `models.generateContent`, function
//! calling, thinking and thought-signature guides):
//! - the key travels in the `x-goog-api-key` header, never in the `?key=` query, so URLs are
//!   safe to log;
//! - Gemini function calls usually carry no id: we synthesise `gemini-call-<turn>-<index>`
//!   (stable for a given history) and never send synthetic ids back, since Gemini pairs
//!   `functionResponse`s with calls by name and order; provider-given ids are echoed;
//! - `thoughtSignature` may sit on any part and must come back verbatim on the same part. On a
//!   `functionCall` part it rides in [`ToolCall::signature`]; on a thought part in
//!   [`Part::Thought`]; on a plain text part it becomes a text-less `Part::Thought` "carrier"
//!   right after the [`Part::Text`], and is re-attached to that text part on the way back;
//! - declarations go out as `parametersJsonSchema` (full JSON Schema, which keeps
//!   `additionalProperties` and `anyOf`), after [`crate::schema::for_gemini`] strips the keywords
//!   Gemini rejects, rather than the older OpenAPI-subset `parameters` field;
//! - Gemini 2.x models take `thinkingBudget` (tokens), Gemini 3 takes `thinkingLevel`.
//!
//! Base URL: a host root (`https://generativelanguage.googleapis.com`) gets `/v1beta/models/…`;
//! a URL with a path is used as the prefix before `/models/…`, which covers Vertex AI express
//! mode (`https://aiplatform.googleapis.com/v1/publishers/google`, also keyed by
//! `x-goog-api-key`) and proxies.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::ProviderConfig;
use crate::transport::{self, Answer, Turn, Verdict, Wire, retry_after};
use crate::{
    ChatRequest, FinishReason, LlmError, Message, Part, Role, ThinkingLevel, ToolCall, Usage,
};

const SYNTHETIC_ID_PREFIX: &str = "gemini-call-";

pub(crate) struct GeminiWire {
    /// Everything before `/models/{model}:generateContent`.
    prefix: String,
    key: String,
}

impl GeminiWire {
    pub(crate) fn new(config: &ProviderConfig) -> Result<Self, LlmError> {
        let key = config.required_key()?;
        let base = config.base_url.trim_end_matches('/');
        let url = reqwest::Url::parse(base)
            .map_err(|e| LlmError::Config(format!("invalid Gemini base URL: {e}")))?;
        let has_path = !url.path().trim_matches('/').is_empty();
        let prefix = if has_path {
            base.to_string()
        } else {
            format!("{base}/v1beta")
        };
        Ok(GeminiWire { prefix, key })
    }
}

impl Wire for GeminiWire {
    fn provider(&self) -> &'static str {
        "gemini"
    }

    fn url(&self, model: &str) -> String {
        format!(
            "{}/models/{}:generateContent",
            self.prefix,
            bare_model(model)
        )
    }

    fn headers(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        builder.header("x-goog-api-key", &self.key)
    }

    fn body(&self, model: &str, request: &ChatRequest) -> Result<Value, LlmError> {
        Ok(request_body(model, request))
    }

    fn interpret(&self, model: &str, request: &ChatRequest, answer: &Answer<'_>) -> Verdict {
        if answer.status == 200 {
            return parse_success(model, request, answer.body);
        }
        classify_error(model, answer)
    }
}

fn bare_model(model: &str) -> &str {
    model.strip_prefix("models/").unwrap_or(model)
}

// ---------------------------------------------------------------------------------------------
// Request

pub(crate) fn request_body(model: &str, request: &ChatRequest) -> Value {
    let mut body = Map::new();
    if !request.system.is_empty() {
        body.insert(
            "systemInstruction".into(),
            json!({"parts": [{"text": request.system}]}),
        );
    }
    let contents: Vec<Value> = request.messages.iter().filter_map(content).collect();
    body.insert("contents".into(), Value::Array(contents));
    if !request.tools.is_empty() {
        let decls: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "description": t.description,
                    "parametersJsonSchema": crate::schema::for_gemini(&t.parameters),
                })
            })
            .collect();
        body.insert("tools".into(), json!([{"functionDeclarations": decls}]));
        if let Some(name) = &request.force_tool {
            body.insert(
                "toolConfig".into(),
                json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}),
            );
        }
    }
    let mut generation = Map::new();
    if let Some(t) = request.temperature {
        generation.insert("temperature".into(), json!(t));
    }
    if let Some(n) = request.max_output_tokens {
        generation.insert("maxOutputTokens".into(), json!(n));
    }
    if let Some(thinking) = thinking_config(model, request.thinking) {
        generation.insert("thinkingConfig".into(), thinking);
    }
    if !generation.is_empty() {
        body.insert("generationConfig".into(), Value::Object(generation));
    }
    Value::Object(body)
}

fn thinking_config(model: &str, level: ThinkingLevel) -> Option<Value> {
    let model = bare_model(model);
    if model.starts_with("gemini-2") {
        let budget = match level {
            ThinkingLevel::Default => return None,
            ThinkingLevel::Low => 1024,
            ThinkingLevel::Medium => 8192,
            ThinkingLevel::High => 24576,
        };
        return Some(json!({"includeThoughts": true, "thinkingBudget": budget}));
    }
    let name = match level {
        ThinkingLevel::Default => return None,
        ThinkingLevel::Low => "low",
        // Gemini 3 Pro documents only low/high.
        ThinkingLevel::Medium if model.starts_with("gemini-3-pro") => "high",
        ThinkingLevel::Medium => "medium",
        ThinkingLevel::High => "high",
    };
    Some(json!({"includeThoughts": true, "thinkingLevel": name}))
}

fn content(message: &Message) -> Option<Value> {
    let role = match message.role {
        Role::User => "user",
        Role::Model => "model",
    };
    let mut parts: Vec<Value> = Vec::new();
    for part in &message.parts {
        match part {
            Part::Text { text } => {
                if !text.is_empty() {
                    parts.push(json!({"text": text}));
                }
            }
            Part::Thought {
                text, signature, ..
            } => {
                if let Some(sig) = signature {
                    if text.is_empty() && attach_signature(parts.last_mut(), sig) {
                        continue;
                    }
                    let mut p = json!({"text": text, "thoughtSignature": sig});
                    if !text.is_empty() {
                        p["thought"] = Value::Bool(true);
                    }
                    parts.push(p);
                } else if !text.is_empty() {
                    parts.push(json!({"text": text, "thought": true}));
                }
            }
            Part::ToolCall(call) => {
                let mut fc = json!({"name": call.name, "args": call_args(&call.args)});
                if !call.id.starts_with(SYNTHETIC_ID_PREFIX) && !call.id.is_empty() {
                    fc["id"] = Value::String(call.id.clone());
                }
                let mut p = json!({"functionCall": fc});
                if let Some(sig) = &call.signature {
                    p["thoughtSignature"] = Value::String(sig.clone());
                }
                parts.push(p);
            }
            Part::ToolResult(result) => {
                let response = match &result.content {
                    Value::Object(_) => result.content.clone(),
                    other if result.is_error => json!({"error": other}),
                    other => json!({"result": other}),
                };
                let mut fr = json!({"name": result.name, "response": response});
                if !result.id.starts_with(SYNTHETIC_ID_PREFIX) && !result.id.is_empty() {
                    fr["id"] = Value::String(result.id.clone());
                }
                parts.push(json!({"functionResponse": fr}));
            }
        }
    }
    (!parts.is_empty()).then(|| json!({"role": role, "parts": parts}))
}

/// Re-attaches a carrier signature to the plain text part it came from.
fn attach_signature(last: Option<&mut Value>, sig: &str) -> bool {
    let Some(Value::Object(p)) = last else {
        return false;
    };
    let plain_text =
        p.contains_key("text") && !p.contains_key("thought") && !p.contains_key("thoughtSignature");
    if plain_text {
        p.insert("thoughtSignature".into(), Value::String(sig.to_string()));
    }
    plain_text
}

/// Gemini wants an object; malformed-argument markers from other providers are sent as-is.
fn call_args(args: &Value) -> Value {
    match args {
        Value::Object(_) => args.clone(),
        Value::Null => json!({}),
        other => json!({"value": other}),
    }
}

// ---------------------------------------------------------------------------------------------
// Response

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateResponse {
    #[serde(default)]
    candidates: Vec<Candidate>,
    prompt_feedback: Option<PromptFeedback>,
    usage_metadata: Option<UsageMetadata>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<Content>,
    finish_reason: Option<String>,
    finish_message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<WirePart>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePart {
    text: Option<String>,
    #[serde(default)]
    thought: bool,
    thought_signature: Option<String>,
    function_call: Option<FunctionCall>,
}

#[derive(Debug, Deserialize)]
struct FunctionCall {
    id: Option<String>,
    name: String,
    #[serde(default)]
    args: Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct UsageMetadata {
    prompt_token_count: u64,
    candidates_token_count: u64,
    thoughts_token_count: u64,
    cached_content_token_count: u64,
    tool_use_prompt_token_count: u64,
}

fn parse_success(model: &str, request: &ChatRequest, body: &Value) -> Verdict {
    let response: GenerateResponse = match transport::decode("gemini", model, body) {
        Ok(r) => r,
        Err(retry) => return retry,
    };
    let usage = response.usage_metadata.map(usage).unwrap_or_default();
    let Some(candidate) = response.candidates.into_iter().next() else {
        if let Some(reason) = response.prompt_feedback.and_then(|f| f.block_reason) {
            return Verdict::Fail(LlmError::Provider {
                provider: "gemini".into(),
                message: format!("{model}: request blocked: {reason}"),
            });
        }
        return Verdict::Retry {
            after: None,
            why: "empty model response (no candidates)".into(),
        };
    };
    let turn = request.messages.len();
    let message = Message {
        role: Role::Model,
        parts: parts(turn, candidate.content.map(|c| c.parts).unwrap_or_default()),
    };
    let has_calls = message.tool_calls().next().is_some();
    let reason = candidate.finish_reason.as_deref().unwrap_or("STOP");
    let finish = match reason {
        "STOP" | "FINISH_REASON_UNSPECIFIED" if has_calls => FinishReason::ToolCalls,
        "STOP" | "FINISH_REASON_UNSPECIFIED" => FinishReason::Stop,
        "MAX_TOKENS" if transport::is_empty_turn(&message) => {
            return Verdict::Fail(LlmError::OutputTruncated {
                model: model.to_string(),
            });
        }
        "MAX_TOKENS" => FinishReason::MaxTokens,
        // The model produced an unparseable call; a fresh sample usually succeeds.
        "MALFORMED_FUNCTION_CALL" => {
            return Verdict::Retry {
                after: Some(Duration::ZERO),
                why: format!(
                    "MALFORMED_FUNCTION_CALL{}",
                    candidate
                        .finish_message
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
            };
        }
        other => {
            return Verdict::Fail(LlmError::Provider {
                provider: "gemini".into(),
                message: format!(
                    "{model} stopped with finishReason {other}{}",
                    candidate
                        .finish_message
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
            });
        }
    };
    Verdict::Done(Turn {
        message,
        usage,
        finish,
    })
}

fn parts(turn: usize, wire: Vec<WirePart>) -> Vec<Part> {
    let mut out = Vec::new();
    let mut call_index = 0usize;
    for p in wire {
        if let Some(call) = p.function_call {
            let id = call
                .id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| format!("{SYNTHETIC_ID_PREFIX}{turn}-{call_index}"));
            call_index += 1;
            out.push(Part::ToolCall(ToolCall {
                id,
                name: call.name,
                // A call without arguments means "no arguments", which tools see as `{}`.
                args: if call.args.is_null() {
                    json!({})
                } else {
                    call.args
                },
                signature: p.thought_signature,
            }));
            continue;
        }
        let text = p.text.unwrap_or_default();
        if p.thought {
            out.push(Part::Thought {
                text,
                signature: p.thought_signature,
                redacted: None,
            });
            continue;
        }
        if !text.is_empty() {
            out.push(Part::Text { text });
        }
        if let Some(sig) = p.thought_signature {
            out.push(Part::Thought {
                text: String::new(),
                signature: Some(sig),
                redacted: None,
            });
        }
    }
    out
}

fn usage(u: UsageMetadata) -> Usage {
    Usage {
        input_tokens: u.prompt_token_count + u.tool_use_prompt_token_count,
        output_tokens: u.candidates_token_count,
        thoughts_tokens: u.thoughts_token_count,
        cached_tokens: u.cached_content_token_count,
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

fn classify_error(model: &str, answer: &Answer<'_>) -> Verdict {
    let status = answer.status;
    let message = transport::error_text(answer.body);
    if transport::is_context_overflow("", &message) {
        return Verdict::Fail(LlmError::InputTooLong {
            model: model.to_string(),
            message,
        });
    }
    if status == 429 {
        if is_daily_quota(answer.body) {
            return Verdict::NextModel(format!("over daily quota: {message}"));
        }
        let after = retry_info(answer.body)
            .or_else(|| retry_after(answer.headers))
            .or_else(|| retry_in_message(&message));
        return Verdict::Retry {
            after,
            why: format!("HTTP 429: {message}"),
        };
    }
    transport::classify_status("gemini", model, answer, message)
}

/// Daily quotas show in `QuotaFailure` quota ids (`…PerDay…`) or in the message (`per_day`).
fn is_daily_quota(body: &Value) -> bool {
    let text = body.to_string().to_ascii_lowercase();
    text.contains("perday") || text.contains("per_day")
}

/// `google.rpc.RetryInfo.retryDelay`, a protobuf Duration in JSON form (`"12s"`, `"0.5s"`).
fn retry_info(body: &Value) -> Option<Duration> {
    body.pointer("/error/details")?
        .as_array()?
        .iter()
        .filter(|d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("google.rpc.RetryInfo"))
        })
        .find_map(|d| {
            d.get("retryDelay")
                .and_then(Value::as_str)
                .and_then(parse_proto_duration)
        })
}

fn parse_proto_duration(s: &str) -> Option<Duration> {
    s.trim()
        .strip_suffix('s')?
        .parse::<f64>()
        .ok()
        .and_then(transport::secs)
}

/// The free tier says "Please retry in 12.3s." in the message when RetryInfo is missing.
fn retry_in_message(message: &str) -> Option<Duration> {
    let rest = &message[message.find("retry in ")? + "retry in ".len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let unit = &rest[end..];
    let n: f64 = rest[..end].trim_end_matches('.').parse().ok()?;
    let seconds = if unit.starts_with("ms") {
        n / 1000.0
    } else {
        n
    };
    transport::secs(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_durations() {
        assert_eq!(parse_proto_duration("12s"), Some(Duration::from_secs(12)));
        assert_eq!(
            parse_proto_duration("0.250s"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_proto_duration("12"), None);
        assert_eq!(parse_proto_duration("-1s"), None);
    }

    #[test]
    fn retry_hint_in_message() {
        assert_eq!(
            retry_in_message("Quota exceeded for metric x. Please retry in 7.5s."),
            Some(Duration::from_millis(7500))
        );
        assert_eq!(
            retry_in_message("Please retry in 300ms"),
            Some(Duration::from_millis(300))
        );
        assert_eq!(retry_in_message("no hint"), None);
    }

    #[test]
    fn thinking_by_generation() {
        assert_eq!(
            thinking_config("gemini-2.5-flash", ThinkingLevel::Low),
            Some(json!({"includeThoughts": true, "thinkingBudget": 1024}))
        );
        assert_eq!(
            thinking_config("models/gemini-3-flash-preview", ThinkingLevel::Medium),
            Some(json!({"includeThoughts": true, "thinkingLevel": "medium"}))
        );
        assert_eq!(
            thinking_config("gemini-3-pro-preview", ThinkingLevel::Medium),
            Some(json!({"includeThoughts": true, "thinkingLevel": "high"}))
        );
        assert_eq!(
            thinking_config("gemini-3-pro-preview", ThinkingLevel::Default),
            None
        );
    }

    #[test]
    fn text_signature_round_trips_onto_the_same_part() {
        let wire: Vec<WirePart> = serde_json::from_value(json!([
            {"text": "thinking...", "thought": true},
            {"text": "answer", "thoughtSignature": "SIG"}
        ]))
        .unwrap();
        let message = Message {
            role: Role::Model,
            parts: parts(1, wire),
        };
        assert_eq!(
            content(&message),
            Some(json!({"role": "model", "parts": [
                {"text": "thinking...", "thought": true},
                {"text": "answer", "thoughtSignature": "SIG"}
            ]}))
        );
    }
}
