//! Anthropic Messages adapter ([`AnthropicWire`]).
//!
//! Wire facts this module encodes (Anthropic API reference "Messages", the tool-use guide and the
//! extended-thinking guide):
//! - `POST {base}/v1/messages` with `x-api-key` and `anthropic-version: 2023-06-01`;
//!   `max_tokens` is mandatory, so a default is always sent;
//! - tool results are `tool_result` blocks inside a *user* message, placed before any text;
//! - `thinking` blocks (with `signature`) and `redacted_thinking` blocks are echoed back
//!   unchanged on later turns: the API requires them for the assistant turn of an ongoing tool
//!   loop and strips older ones itself, so sending all of them is both simple and valid. Thought
//!   parts without a signature (from another provider) cannot be verified and are dropped;
//! - with thinking enabled the API rejects a `temperature` other than 1, so none is sent, and
//!   `budget_tokens` must be at least 1024 and below `max_tokens`;
//! - prompt caching is opt-in per request: the system block and the newest message block carry
//!   `cache_control: ephemeral`, so each turn of a tool loop re-reads the previous ones from cache;
//! - usage: `input_tokens` excludes cache reads and writes, so [`Usage::input_tokens`] adds them
//!   back to match the other providers; `output_tokens` includes thinking, which Anthropic does
//!   not break out, so [`Usage::thoughts_tokens`] stays 0.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::ProviderConfig;
use crate::transport::{self, Answer, Turn, Verdict, Wire};
use crate::{
    ChatRequest, FinishReason, LlmError, Message, Part, Role, ThinkingLevel, ToolCall, Usage,
};

pub(crate) const API_VERSION: &str = "2023-06-01";
const DEFAULT_MAX_TOKENS: u32 = 8192;
const MIN_THINKING_BUDGET: u32 = 1024;

/// The prompt-caching marker (5-minute cache); see [`mark_cache_breakpoint`].
fn ephemeral() -> Value {
    json!({"type": "ephemeral"})
}

pub(crate) struct AnthropicWire {
    base: String,
    key: String,
}

impl AnthropicWire {
    pub(crate) fn new(config: &ProviderConfig) -> Result<Self, LlmError> {
        let key = config.required_key()?;
        Ok(AnthropicWire {
            base: config.base_url.trim_end_matches('/').to_string(),
            key,
        })
    }
}

impl Wire for AnthropicWire {
    fn provider(&self) -> &'static str {
        "anthropic"
    }

    fn url(&self, _model: &str) -> String {
        format!("{}/v1/messages", self.base)
    }

    fn headers(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        builder
            .header("x-api-key", &self.key)
            .header("anthropic-version", API_VERSION)
    }

    fn body(&self, model: &str, request: &ChatRequest) -> Result<Value, LlmError> {
        Ok(request_body(model, request))
    }

    fn interpret(&self, model: &str, _request: &ChatRequest, answer: &Answer<'_>) -> Verdict {
        if answer.status == 200 {
            return parse_success(model, answer.body);
        }
        classify_error(model, answer)
    }
}

// ---------------------------------------------------------------------------------------------
// Request

fn request_body(model: &str, request: &ChatRequest) -> Value {
    let budget = match request.thinking {
        ThinkingLevel::Default => None,
        ThinkingLevel::Low => Some(2048),
        ThinkingLevel::Medium => Some(8192),
        ThinkingLevel::High => Some(16384),
    };
    let (max_tokens, budget) = match (request.max_output_tokens, budget) {
        (Some(max), Some(b)) if b >= max => {
            // Keep some room for the visible answer; too small a limit means no thinking at all.
            let shrunk = max.saturating_sub(MIN_THINKING_BUDGET);
            (max, (shrunk >= MIN_THINKING_BUDGET).then_some(shrunk))
        }
        (Some(max), b) => (max, b),
        (None, Some(b)) => (b + DEFAULT_MAX_TOKENS, Some(b)),
        (None, None) => (DEFAULT_MAX_TOKENS, None),
    };
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("max_tokens".into(), json!(max_tokens));
    if !request.system.is_empty() {
        body.insert(
            "system".into(),
            json!([{"type": "text", "text": request.system, "cache_control": ephemeral()}]),
        );
    }
    let mut messages: Vec<Value> = request.messages.iter().filter_map(message).collect();
    mark_cache_breakpoint(&mut messages);
    body.insert("messages".into(), Value::Array(messages));
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "description": t.description,
                    "input_schema": crate::schema::inline_refs(&t.parameters),
                })
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
        if let Some(name) = &request.force_tool {
            body.insert("tool_choice".into(), json!({"type": "tool", "name": name}));
        }
    }
    // Anthropic refuses extended thinking together with a forced tool choice.
    let budget = budget.filter(|_| request.force_tool.is_none() || request.tools.is_empty());
    match budget {
        Some(b) => {
            body.insert(
                "thinking".into(),
                json!({"type": "enabled", "budget_tokens": b}),
            );
        }
        None => {
            if let Some(t) = request.temperature {
                body.insert("temperature".into(), json!(t));
            }
        }
    }
    Value::Object(body)
}

/// Anthropic caches only up to explicit breakpoints. An agent loop resends the whole history
/// every turn, so marking the newest block makes each turn read the previous turns from cache.
/// Tools and system prompt come first in Anthropic's cache order and get their own breakpoint on
/// the system block, so they stay cached even when the history is rewritten (summarised).
fn mark_cache_breakpoint(messages: &mut [Value]) {
    let last_block = messages
        .last_mut()
        .and_then(|m| m.get_mut("content"))
        .and_then(Value::as_array_mut)
        .and_then(|blocks| blocks.last_mut());
    if let Some(Value::Object(block)) = last_block {
        // Thinking blocks cannot carry a breakpoint; they only end a history in odd cases.
        let thinking = block
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.ends_with("thinking"));
        if !thinking {
            block.insert("cache_control".into(), ephemeral());
        }
    }
}

fn message(message: &Message) -> Option<Value> {
    let mut blocks = Vec::new();
    let role = match message.role {
        Role::User => {
            // The API wants tool results first in the user turn.
            for part in &message.parts {
                if let Part::ToolResult(r) = part {
                    let mut block = json!({
                        "type": "tool_result",
                        "tool_use_id": r.id,
                        "content": match &r.content {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        },
                    });
                    if r.is_error {
                        block["is_error"] = Value::Bool(true);
                    }
                    blocks.push(block);
                }
            }
            for part in &message.parts {
                if let Part::Text { text } = part
                    && !text.is_empty()
                {
                    blocks.push(json!({"type": "text", "text": text}));
                }
            }
            "user"
        }
        Role::Model => {
            for part in &message.parts {
                match part {
                    Part::Thought {
                        redacted: Some(data),
                        ..
                    } => {
                        blocks.push(json!({"type": "redacted_thinking", "data": data}));
                    }
                    Part::Thought {
                        text,
                        signature: Some(sig),
                        ..
                    } => {
                        blocks
                            .push(json!({"type": "thinking", "thinking": text, "signature": sig}));
                    }
                    Part::Thought { .. } | Part::ToolResult(_) => {}
                    Part::Text { text } => {
                        if !text.is_empty() {
                            blocks.push(json!({"type": "text", "text": text}));
                        }
                    }
                    Part::ToolCall(call) => blocks.push(json!({
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.name,
                        "input": if call.args.is_object() { call.args.clone() } else { json!({}) },
                    })),
                }
            }
            "assistant"
        }
    };
    (!blocks.is_empty()).then(|| json!({"role": role, "content": blocks}))
}

// ---------------------------------------------------------------------------------------------
// Response

#[derive(Debug, Deserialize)]
struct MessagesResponse {
    #[serde(default)]
    content: Vec<Block>,
    stop_reason: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    /// Server tool results, citations and future block types: nothing the loop can act on.
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireUsage {
    input_tokens: u64,
    output_tokens: u64,
    cache_read_input_tokens: u64,
    cache_creation_input_tokens: u64,
}

fn parse_success(model: &str, body: &Value) -> Verdict {
    let response: MessagesResponse = match transport::decode("anthropic", model, body) {
        Ok(r) => r,
        Err(retry) => return retry,
    };
    let parts: Vec<Part> = response
        .content
        .into_iter()
        .filter_map(|block| match block {
            Block::Text { text } => Some(Part::Text { text }),
            Block::Thinking {
                thinking,
                signature,
            } => Some(Part::Thought {
                text: thinking,
                signature,
                redacted: None,
            }),
            Block::RedactedThinking { data } => Some(Part::Thought {
                text: String::new(),
                signature: None,
                redacted: Some(data),
            }),
            Block::ToolUse { id, name, input } => Some(Part::ToolCall(ToolCall {
                id,
                name,
                args: input,
                signature: None,
            })),
            Block::Other => None,
        })
        .collect();
    let message = Message {
        role: Role::Model,
        parts,
    };
    let has_calls = message.tool_calls().next().is_some();
    let u = response.usage;
    let usage = Usage {
        input_tokens: u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens,
        output_tokens: u.output_tokens,
        thoughts_tokens: 0,
        cached_tokens: u.cache_read_input_tokens,
    };
    let finish = match response.stop_reason.as_deref() {
        Some("max_tokens" | "model_context_window_exceeded")
            if transport::is_empty_turn(&message) =>
        {
            return Verdict::Fail(LlmError::OutputTruncated {
                model: model.to_string(),
            });
        }
        Some("max_tokens" | "model_context_window_exceeded") => FinishReason::MaxTokens,
        Some("refusal") => {
            return Verdict::Fail(LlmError::Provider {
                provider: "anthropic".into(),
                message: format!("{model} refused to answer (stop_reason refusal)"),
            });
        }
        _ if has_calls => FinishReason::ToolCalls,
        Some("end_turn" | "stop_sequence") | None => FinishReason::Stop,
        Some(_) => FinishReason::Other,
    };
    Verdict::Done(Turn {
        message,
        usage,
        finish,
    })
}

// ---------------------------------------------------------------------------------------------
// Errors

fn classify_error(model: &str, answer: &Answer<'_>) -> Verdict {
    let status = answer.status;
    let message = transport::error_text(answer.body);
    let lower = message.to_ascii_lowercase();
    if status == 413 || transport::is_context_overflow("", &message) {
        return Verdict::Fail(LlmError::InputTooLong {
            model: model.to_string(),
            message,
        });
    }
    if status == 429 && (lower.contains("per day") || lower.contains("daily")) {
        return Verdict::NextModel(format!("over daily quota: {message}"));
    }
    // 529 (overloaded_error) is in the 5xx range, retried like the others.
    transport::classify_status("anthropic", model, answer, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(thinking: ThinkingLevel, max: Option<u32>) -> ChatRequest {
        ChatRequest {
            system: "sys".into(),
            messages: vec![Message::user_text("hi")],
            tools: vec![],
            temperature: Some(0.3),
            thinking,
            max_output_tokens: max,
            force_tool: None,
        }
    }

    #[test]
    fn thinking_budget_fits_under_max_tokens() {
        let b = request_body("claude", &request(ThinkingLevel::High, None));
        assert_eq!(
            b["thinking"],
            json!({"type": "enabled", "budget_tokens": 16384})
        );
        assert_eq!(b["max_tokens"], json!(16384 + DEFAULT_MAX_TOKENS));
        assert!(
            b.get("temperature").is_none(),
            "temperature must not be sent with thinking"
        );

        let b = request_body("claude", &request(ThinkingLevel::High, Some(4096)));
        assert_eq!(b["thinking"]["budget_tokens"], json!(3072));
        assert_eq!(b["max_tokens"], json!(4096));

        let b = request_body("claude", &request(ThinkingLevel::Low, Some(1500)));
        assert!(b.get("thinking").is_none());
        assert_eq!(b["temperature"], json!(0.3f32));
    }
}
