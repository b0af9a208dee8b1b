//! Anthropic Messages shapes, from the Anthropic API reference "Messages" (response `content`
//! blocks, `stop_reason`, `usage` with cache counters; errors
//! `{type: "error", error: {type, message}}`, the `retry-after` header, `529 overloaded_error`),
//! the tool-use guide (`tool_use` blocks) and the extended-thinking guide (`thinking` blocks
//! with `signature`, `redacted_thinking`).

use serde_json::{Value, json};

use crate::Reply;

/// The request path.
pub const PATH: &str = "/v1/messages";

/// A `message` with fixed usage (50 input, 400 output, 1000 cache read, 200 cache write).
pub fn message(content: Vec<Value>, stop: &str) -> Value {
    json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
        "content": content, "stop_reason": stop, "stop_sequence": null,
        "usage": {"input_tokens": 50, "output_tokens": 400, "cache_read_input_tokens": 1000,
                  "cache_creation_input_tokens": 200}
    })
}

/// `200` with [`message`].
pub fn reply(content: Vec<Value>, stop: &str) -> Reply {
    Reply::ok(message(content, stop))
}

/// A final text answer (`stop_reason: end_turn`).
pub fn text_reply(t: &str) -> Reply {
    reply(vec![text(t)], "end_turn")
}

pub fn text(t: &str) -> Value {
    json!({"type": "text", "text": t})
}

/// A `thinking` block; the client must send it back unchanged (signature included) with the
/// tool results of the same turn.
pub fn thinking(t: &str, signature: &str) -> Value {
    json!({"type": "thinking", "thinking": t, "signature": signature})
}

pub fn redacted_thinking(data: &str) -> Value {
    json!({"type": "redacted_thinking", "data": data})
}

/// A `tool_use` block. `input` should be an object; anything else is a malformed call.
pub fn tool_use(id: &str, name: &str, input: Value) -> Value {
    json!({"type": "tool_use", "id": id, "name": name, "input": input})
}

/// An error body.
pub fn error(kind: &str, msg: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": msg}})
}

/// `429 rate_limit_error` with a `retry-after` header in seconds.
pub fn rate_limited(retry_after: &str) -> Reply {
    Reply::json(
        429,
        error(
            "rate_limit_error",
            "This request would exceed the rate limit for your organization of 50 requests per minute.",
        ),
    )
    .header("retry-after", retry_after)
}

/// `429` for a daily limit: the client should fall back to the next model.
pub fn daily_quota() -> Reply {
    Reply::json(
        429,
        error(
            "rate_limit_error",
            "This request would exceed your organization's rate limit of 1,000,000 input tokens per day.",
        ),
    )
}

/// `500 api_error`.
pub fn server_error() -> Reply {
    Reply::json(
        500,
        error(
            "api_error",
            "An unexpected error has occurred internal to Anthropic's systems.",
        ),
    )
}

/// `529 overloaded_error`.
pub fn overloaded() -> Reply {
    Reply::json(529, error("overloaded_error", "Overloaded"))
}

/// `400 invalid_request_error`: the prompt is over the context window.
pub fn overflow() -> Reply {
    Reply::json(
        400,
        error(
            "invalid_request_error",
            "prompt is too long: 250000 tokens > 200000 maximum",
        ),
    )
}
