//! OpenAI-compatible Chat Completions adapter ([`OpenAiWire`]): OpenAI itself, vLLM, ollama,
//! llama.cpp server, OpenRouter.
//!
//! Wire facts this module encodes (OpenAI API reference, "Create chat completion"):
//! - `POST {base}/chat/completions` where the base already includes `/v1`; `Authorization:
//!   Bearer` only when a key is configured (local servers run keyless);
//! - tool results are separate `role: tool` messages keyed by `tool_call_id`, and must directly
//!   follow the assistant message that made the calls, so a user message's tool results are
//!   emitted before its text;
//! - `function.arguments` is a JSON *string*. When it does not parse, the call still reaches the
//!   loop, with [`ToolCall::args`] set to [`crate::malformed_args`] so the tool layer can tell the
//!   model what was wrong; the raw string is replayed verbatim in history;
//! - reasoning: vLLM, llama.cpp and DeepSeek return `reasoning_content`, OpenRouter and ollama
//!   `reasoning`. We keep either as a [`Part::Thought`] and send it back as `reasoning_content`
//!   only on assistant messages that carry tool calls: DeepSeek-style thinking-with-tools servers
//!   require it there within a tool loop, and reject or ignore it on plain answers; OpenAI never
//!   returns it, so OpenAI never sees it;
//! - `max_completion_tokens` for api.openai.com (its reasoning models reject `max_tokens`),
//!   `max_tokens` elsewhere (what local servers understand); `reasoning_effort` only when a
//!   thinking level is asked for;
//! - usage: `completion_tokens` includes reasoning tokens, so [`Usage::output_tokens`] is
//!   `completion_tokens - reasoning_tokens` to match Gemini's accounting.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::ProviderConfig;
use crate::transport::{self, Answer, Turn, Verdict, Wire, retry_after};
use crate::{
    ChatRequest, FinishReason, LlmError, Message, Part, Role, ThinkingLevel, ToolCall, Usage,
};

pub(crate) struct OpenAiWire {
    base: String,
    key: Option<String>,
    /// api.openai.com takes `max_completion_tokens`; compatible servers take `max_tokens`.
    official: bool,
}

impl OpenAiWire {
    pub(crate) fn new(config: &ProviderConfig) -> Result<Self, LlmError> {
        let base = config.base_url.trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&base)
            .map_err(|e| LlmError::Config(format!("invalid OpenAI base URL: {e}")))?;
        let official = url.host_str() == Some("api.openai.com");
        let key = config.api_key.as_ref().map(|k| k.expose().to_string());
        Ok(OpenAiWire {
            base,
            key,
            official,
        })
    }
}

impl Wire for OpenAiWire {
    fn provider(&self) -> &'static str {
        "openai"
    }

    fn url(&self, _model: &str) -> String {
        format!("{}/chat/completions", self.base)
    }

    fn headers(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    fn body(&self, model: &str, request: &ChatRequest) -> Result<Value, LlmError> {
        Ok(request_body(model, request, self.official))
    }

    fn interpret(&self, model: &str, _request: &ChatRequest, answer: &Answer<'_>) -> Verdict {
        if answer.status == 200 {
            return parse_success(model, answer.body);
        }
        let hint = self.not_found_hint(answer.status);
        match classify_error(model, answer) {
            // Without `/v1` every path 404s whatever the model: say so instead of blaming it.
            Verdict::UnknownModel(why) if !hint.is_empty() => Verdict::Fail(LlmError::Provider {
                provider: "openai".into(),
                message: format!("{model}: {why}{hint}"),
            }),
            verdict => verdict,
        }
    }

    fn models_url(&self) -> Option<String> {
        Some(format!("{}/models", self.base))
    }

    fn not_found_hint(&self, status: u16) -> String {
        if status == 404 && !self.base.ends_with("/v1") {
            format!(
                " (the base URL {} does not end in /v1; OpenAI-compatible servers usually serve \
                 the API under it: set OPENAI_BASE_URL to {}/v1)",
                self.base, self.base
            )
        } else {
            String::new()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Request

fn request_body(model: &str, request: &ChatRequest, official: bool) -> Value {
    let mut messages = Vec::new();
    if !request.system.is_empty() {
        messages.push(json!({"role": "system", "content": request.system}));
    }
    for message in &request.messages {
        match message.role {
            Role::User => user_messages(message, &mut messages),
            Role::Model => messages.push(assistant_message(message)),
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("messages".into(), Value::Array(messages));
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": crate::schema::inline_refs(&t.parameters),
                }})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
        // "auto" is the default with tools, and some servers (llama.cpp without a
        // function-calling chat format) react to an explicit tool_choice by dropping the
        // tools; so send one only to force a named call.
        if let Some(name) = &request.force_tool {
            body.insert(
                "tool_choice".into(),
                json!({"type": "function", "function": {"name": name}}),
            );
        }
    }
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(n) = request.max_output_tokens {
        let field = if official {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        body.insert(field.into(), json!(n));
    }
    let effort = match request.thinking {
        ThinkingLevel::Default => None,
        ThinkingLevel::Low => Some("low"),
        ThinkingLevel::Medium => Some("medium"),
        ThinkingLevel::High => Some("high"),
    };
    if let Some(effort) = effort {
        body.insert("reasoning_effort".into(), json!(effort));
    }
    Value::Object(body)
}

fn user_messages(message: &Message, out: &mut Vec<Value>) {
    let mut text = String::new();
    for part in &message.parts {
        match part {
            Part::ToolResult(r) => out.push(json!({
                "role": "tool",
                "tool_call_id": r.id,
                "content": tool_content(&r.content),
            })),
            Part::Text { text: t } => text.push_str(t),
            // Reasoning and calls never sit in user messages; other providers' leftovers are dropped.
            Part::Thought { .. } | Part::ToolCall(_) => {}
        }
    }
    if !text.is_empty() {
        out.push(json!({"role": "user", "content": text}));
    }
}

fn tool_content(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn assistant_message(message: &Message) -> Value {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for part in &message.parts {
        match part {
            Part::Text { text: t } => text.push_str(t),
            Part::Thought { text: t, .. } => reasoning.push_str(t),
            Part::ToolCall(call) => calls.push(json!({
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": raw_arguments(&call.args)},
            })),
            Part::ToolResult(_) => {}
        }
    }
    let mut m = Map::new();
    m.insert("role".into(), json!("assistant"));
    // Always a string, never null: the reference allows null beside tool calls, but llama.cpp
    // servers answer 500 to it, and servers reject a message with neither content nor calls.
    m.insert("content".into(), json!(text));
    if !calls.is_empty() {
        if !reasoning.is_empty() {
            m.insert("reasoning_content".into(), json!(reasoning));
        }
        m.insert("tool_calls".into(), Value::Array(calls));
    }
    Value::Object(m)
}

/// The arguments string as the model originally sent it.
fn raw_arguments(args: &Value) -> String {
    match crate::malformed_raw(args) {
        Some(raw) => raw.to_string(),
        None => args.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Response

#[derive(Debug, Deserialize)]
struct CompletionResponse {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    message: Option<WireMessage>,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireMessage {
    /// A string per the reference; some compatible servers send an array of text parts.
    #[serde(default)]
    content: Value,
    reasoning_content: Option<String>,
    reasoning: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireCall>,
    refusal: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireCall {
    id: Option<String>,
    function: WireFunction,
}

#[derive(Debug, Deserialize)]
struct WireFunction {
    name: String,
    /// A JSON string per the reference; some compatible servers send the object itself.
    #[serde(default)]
    arguments: Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    completion_tokens_details: Option<CompletionDetails>,
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CompletionDetails {
    reasoning_tokens: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PromptDetails {
    cached_tokens: u64,
}

fn parse_success(model: &str, body: &Value) -> Verdict {
    let response: CompletionResponse = match transport::decode("openai", model, body) {
        Ok(r) => r,
        Err(retry) => return retry,
    };
    let usage = response.usage.map(usage).unwrap_or_default();
    let Some(choice) = response.choices.into_iter().next() else {
        return Verdict::Retry {
            after: None,
            why: "empty model response (no choices)".into(),
        };
    };
    let Some(wire) = choice.message else {
        return Verdict::Retry {
            after: None,
            why: "choice without a message".into(),
        };
    };
    if let Some(refusal) = wire.refusal.filter(|r| !r.is_empty()) {
        return Verdict::Fail(LlmError::Provider {
            provider: "openai".into(),
            message: format!("{model} refused: {refusal}"),
        });
    }
    let mut parts = Vec::new();
    if let Some(reasoning) = wire
        .reasoning_content
        .or(wire.reasoning)
        .filter(|r| !r.is_empty())
    {
        parts.push(Part::Thought {
            text: reasoning,
            signature: None,
            redacted: None,
        });
    }
    let text = content_text(&wire.content);
    if !text.is_empty() {
        parts.push(Part::Text { text });
    }
    for (index, call) in wire.tool_calls.into_iter().enumerate() {
        let args = match call.function.arguments {
            Value::String(raw) if raw.trim().is_empty() => json!({}),
            Value::String(raw) => serde_json::from_str::<Value>(&raw)
                .unwrap_or_else(|e| crate::malformed_args(&raw, &e.to_string())),
            Value::Null => json!({}),
            other => other,
        };
        parts.push(Part::ToolCall(ToolCall {
            id: call
                .id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| format!("call_{index}")),
            name: call.function.name,
            args,
            signature: None,
        }));
    }
    let message = Message {
        role: Role::Model,
        parts,
    };
    let has_calls = message.tool_calls().next().is_some();
    let finish = match choice.finish_reason.as_deref() {
        Some("length") if transport::is_empty_turn(&message) => {
            return Verdict::Fail(LlmError::OutputTruncated {
                model: model.to_string(),
            });
        }
        Some("length") => FinishReason::MaxTokens,
        Some("content_filter") => {
            return Verdict::Fail(LlmError::Provider {
                provider: "openai".into(),
                message: format!("{model} stopped: content_filter"),
            });
        }
        _ if has_calls => FinishReason::ToolCalls,
        Some("stop") | None => FinishReason::Stop,
        Some(_) => FinishReason::Other,
    };
    Verdict::Done(Turn {
        message,
        usage,
        finish,
    })
}

fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

fn usage(u: WireUsage) -> Usage {
    let reasoning = u
        .completion_tokens_details
        .map(|d| d.reasoning_tokens)
        .unwrap_or(0);
    Usage {
        input_tokens: u.prompt_tokens,
        output_tokens: u.completion_tokens.saturating_sub(reasoning),
        thoughts_tokens: reasoning,
        cached_tokens: u
            .prompt_tokens_details
            .map(|d| d.cached_tokens)
            .unwrap_or(0),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

fn classify_error(model: &str, answer: &Answer<'_>) -> Verdict {
    let status = answer.status;
    let message = transport::error_text(answer.body);
    let code = answer
        .body
        .pointer("/error/code")
        .and_then(Value::as_str)
        .unwrap_or("");
    let lower = message.to_ascii_lowercase();
    if transport::is_context_overflow(code, &message) {
        return Verdict::Fail(LlmError::InputTooLong {
            model: model.to_string(),
            message,
        });
    }
    if status == 429 {
        if code == "insufficient_quota" {
            return Verdict::Fail(LlmError::Provider {
                provider: "openai".into(),
                message: format!("{model}: insufficient quota: {message}"),
            });
        }
        // Per-day limits ("tokens per day (TPD)", "requests per day (RPD)") won't clear by waiting.
        if lower.contains("per day") || lower.contains("(rpd)") || lower.contains("(tpd)") {
            return Verdict::NextModel(format!("over daily quota: {message}"));
        }
        return Verdict::Retry {
            after: retry_after(answer.headers),
            why: format!("HTTP 429: {message}"),
        };
    }
    // Some compatible servers say "model not found" with another status than 404.
    if code == "model_not_found" {
        return Verdict::UnknownModel(format!("model not found (HTTP {status}): {message}"));
    }
    transport::classify_status("openai", model, answer, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ToolResult;

    #[test]
    fn tool_results_precede_user_text() {
        let message = Message {
            role: Role::User,
            parts: vec![
                Part::Text {
                    text: "note".into(),
                },
                Part::ToolResult(ToolResult {
                    id: "call_1".into(),
                    name: "grep".into(),
                    content: json!({"lines": 3}),
                    is_error: false,
                }),
            ],
        };
        let mut out = Vec::new();
        user_messages(&message, &mut out);
        assert_eq!(
            out,
            vec![
                json!({"role": "tool", "tool_call_id": "call_1", "content": "{\"lines\":3}"}),
                json!({"role": "user", "content": "note"}),
            ]
        );
    }

    #[test]
    fn official_endpoint_uses_max_completion_tokens() {
        let request = ChatRequest {
            system: String::new(),
            messages: vec![Message::user_text("hi")],
            tools: vec![],
            temperature: None,
            thinking: ThinkingLevel::Default,
            max_output_tokens: Some(100),
            force_tool: None,
        };
        assert_eq!(
            request_body("m", &request, true)["max_completion_tokens"],
            json!(100)
        );
        assert_eq!(request_body("m", &request, false)["max_tokens"], json!(100));
    }
}
