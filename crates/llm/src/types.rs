//! Provider-neutral conversation types: what the agent loop sends and receives.
//!
//! These are the contract between the agent loop (crate `agent`) and the provider adapters in
//! this crate. Provider JSON never leaves the adapters; anything a provider needs echoed back
//! verbatim on the next turn (Gemini thought signatures, Anthropic thinking-block signatures,
//! redacted thinking) rides in [`Part::Thought`]`::signature` / [`ToolCall::signature`] as an
//! opaque string.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Model,
}

/// One call the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Provider call id (OpenAI `call_…`, Anthropic `toolu_…`); synthesised when the provider has
    /// none (Gemini), so results can always be matched to calls.
    pub id: String,
    pub name: String,
    /// The arguments object as the model sent it (may be invalid for the tool's schema).
    pub args: Value,
    /// Opaque provider data that must be sent back with this call (Gemini `thoughtSignature`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// The answer to one [`ToolCall`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    pub id: String,
    pub name: String,
    /// The result object (for errors: `{"error": "..."}`).
    pub content: Value,
    pub is_error: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    Text {
        text: String,
    },
    /// Model reasoning. `text` may be empty when the provider only returns a signature or
    /// redacted/encrypted reasoning.
    Thought {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
        /// Anthropic `redacted_thinking` data, echoed back verbatim.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        redacted: Option<String>,
    },
    ToolCall(ToolCall),
    ToolResult(ToolResult),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

impl Message {
    pub fn user_text(text: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            parts: vec![Part::Text { text: text.into() }],
        }
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            if let Part::Text { text } = part {
                out.push_str(text);
            }
        }
        out
    }

    pub fn tool_calls(&self) -> impl Iterator<Item = &ToolCall> {
        self.parts.iter().filter_map(|p| match p {
            Part::ToolCall(call) => Some(call),
            _ => None,
        })
    }
}

/// A tool as declared to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDecl {
    pub name: String,
    pub description: String,
    /// JSON schema of the arguments; adapters sanitise it for their provider.
    pub parameters: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ThinkingLevel {
    /// Send no thinking configuration (the model's default).
    #[default]
    Default,
    Low,
    Medium,
    High,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub system: String,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolDecl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub thinking: ThinkingLevel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// Makes the model call this tool (one of `tools`) on this turn, by the provider's named
    /// tool choice; `None` lets the model choose. Small local models that answer with empty
    /// text still produce the call this way (llama.cpp constrains the output to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_tool: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub thoughts_tokens: u64,
    pub cached_tokens: u64,
}

impl Usage {
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.thoughts_tokens += other.thoughts_tokens;
        self.cached_tokens += other.cached_tokens;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    ToolCalls,
    MaxTokens,
    Other,
}

/// One model turn, plus the raw exchange for the transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// Always `Role::Model`.
    pub message: Message,
    pub usage: Usage,
    pub finish: FinishReason,
    /// The model that actually answered (after fallback), e.g. `gemini-3-flash-preview`.
    pub model: String,
    /// Every HTTP attempt made for this turn (retries and fallbacks included), keys redacted.
    pub exchanges: Vec<Exchange>,
}

/// One raw HTTP attempt, for the transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    pub model: String,
    pub url: String,
    pub request_body: Value,
    /// HTTP status, or `None` when no response arrived (timeout, connection refused).
    pub status: Option<u16>,
    pub response_body: Option<Value>,
    /// What the client did next: `ok`, `retry after 2.0s`, `fallback to next model`, `fail`.
    pub outcome: String,
    pub duration_ms: u64,
}
