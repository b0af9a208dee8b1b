//! OpenAI chat-completions shapes, from the OpenAI API reference "Create chat completion"
//! (response `choices[].message.{content, tool_calls}`, `finish_reason`,
//! `usage.{prompt_tokens_details, completion_tokens_details}`; error object
//! `{error: {message, type, param, code}}`; `Retry-After` / `retry-after-ms` headers, the
//! rate-limit guide's RPM/RPD messages), plus the `reasoning_content` message field that vLLM,
//! llama.cpp and DeepSeek add.

use serde_json::{Value, json};

use crate::Reply;

/// The request path under the fake server (the client's base URL includes `/v1`).
pub const PATH: &str = "/v1/chat/completions";

/// A `chat.completion` with one choice and fixed usage (900 prompt incl. 512 cached, 120
/// completion incl. 100 reasoning).
pub fn completion(message: Value, finish: &str) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": "gpt-test",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": 900, "completion_tokens": 120, "total_tokens": 1020,
            "prompt_tokens_details": {"cached_tokens": 512},
            "completion_tokens_details": {"reasoning_tokens": 100}
        }
    })
}

/// A final text answer (`finish_reason: stop`).
pub fn text_reply(content: &str) -> Reply {
    Reply::ok(completion(
        json!({"role": "assistant", "content": content}),
        "stop",
    ))
}

/// One `tool_calls[]` entry; `arguments` is the JSON *string* the model wrote (it may be
/// invalid JSON, which is how a malformed call looks on this API).
pub fn tool_call(id: &str, name: &str, arguments: &str) -> Value {
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
}

/// A tool-calling turn (`finish_reason: tool_calls`), optionally with `reasoning_content`.
pub fn calls_reply(reasoning: Option<&str>, calls: Vec<Value>) -> Reply {
    let mut message = json!({"role": "assistant", "content": null, "tool_calls": calls});
    if let (Some(r), Some(map)) = (reasoning, message.as_object_mut()) {
        map.insert("reasoning_content".into(), json!(r));
    }
    Reply::ok(completion(message, "tool_calls"))
}

/// An error object body.
pub fn error(message: &str, kind: &str, code: Value) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

/// `429` for a per-minute limit with a `retry-after` header in seconds (e.g. `"0.05"`).
pub fn rate_limited(retry_after: &str) -> Reply {
    Reply::json(
        429,
        error(
            "Rate limit reached for gpt-test on requests per min (RPM): Limit 3, Used 3, Requested 1.",
            "requests",
            json!("rate_limit_exceeded"),
        ),
    )
    .header("retry-after", retry_after)
}

/// `429` for a per-day limit: the client should fall back to the next model.
pub fn daily_quota() -> Reply {
    Reply::json(
        429,
        error(
            "Rate limit reached for gpt-test on requests per day (RPD): Limit 200, Used 200, Requested 1.",
            "requests",
            json!("rate_limit_exceeded"),
        ),
    )
}

/// `500` server error.
pub fn server_error() -> Reply {
    Reply::json(
        500,
        error(
            "The server had an error while processing your request.",
            "server_error",
            Value::Null,
        ),
    )
}

/// `400 context_length_exceeded`.
pub fn overflow() -> Reply {
    Reply::json(
        400,
        error(
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.",
            "invalid_request_error",
            json!("context_length_exceeded"),
        ),
    )
}

/// llama.cpp's server on a request longer than its context (`-c`): no error code, and some
/// versions send it as a 500.
pub fn llama_overflow(status: u16) -> Reply {
    Reply::json(
        status,
        error(
            "the request exceeds the available context size, try increasing it",
            "exceed_context_size_error",
            Value::Null,
        ),
    )
}

/// A 500 that says what is wrong with the request (llama-cpp-python's chat template choking on
/// `content: null`): the same request fails the same way every time.
pub fn template_error() -> Reply {
    Reply::json(
        500,
        error(
            "TypeError: can only concatenate str (not \"NoneType\") to str",
            "internal_server_error",
            Value::Null,
        ),
    )
}
