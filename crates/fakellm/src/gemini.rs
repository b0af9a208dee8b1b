//! Gemini `models.generateContent` shapes, from the Gemini API reference
//! (`GenerateContentResponse`: `candidates[].content.parts`, `finishReason`, `usageMetadata`),
//! the function-calling guide (`functionCall` parts), the thinking and thought-signature guides
//! (`thought: true`, `thoughtSignature` on a part) and the API error guide (`google.rpc.Status`
//! with `QuotaFailure` / `RetryInfo` details).
//!
//! Parts are built with [`text`], [`thought`], [`call`] and [`signed`], a turn with [`reply`];
//! the error helpers return complete [`Reply`]s.

use serde_json::{Value, json};

use crate::Reply;

/// The request path the adapter posts to for `model`.
pub fn path(model: &str) -> String {
    format!("/v1beta/models/{model}:generateContent")
}

/// A `GenerateContentResponse` with one candidate and fixed usage
/// (prompt 1200 + tool-use prompt 5, 40 candidates, 300 thoughts, 1000 cached).
pub fn response(parts: Vec<Value>, finish: &str) -> Value {
    json!({
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}],
        "usageMetadata": {
            "promptTokenCount": 1200, "candidatesTokenCount": 40, "thoughtsTokenCount": 300,
            "cachedContentTokenCount": 1000, "toolUsePromptTokenCount": 5, "totalTokenCount": 1545
        },
        "modelVersion": "gemini-test"
    })
}

/// `200` with [`response`].
pub fn reply(parts: Vec<Value>, finish: &str) -> Reply {
    Reply::ok(response(parts, finish))
}

/// A final text turn (`finishReason: STOP`).
pub fn text_reply(t: &str) -> Reply {
    reply(vec![text(t)], "STOP")
}

pub fn text(t: &str) -> Value {
    json!({"text": t})
}

/// A thought summary part (`thought: true`).
pub fn thought(t: &str) -> Value {
    json!({"text": t, "thought": true})
}

/// A `functionCall` part. Gemini sends no call id unless asked to; the adapter synthesises one.
pub fn call(name: &str, args: Value) -> Value {
    json!({"functionCall": {"name": name, "args": args}})
}

/// `part` with a `thoughtSignature`, which the client must send back on the same part.
pub fn signed(mut part: Value, signature: &str) -> Value {
    if let Some(map) = part.as_object_mut() {
        map.insert("thoughtSignature".into(), json!(signature));
    }
    part
}

/// A `google.rpc.Status` error body.
pub fn status_error(code: u16, status: &str, message: &str, details: Value) -> Value {
    json!({"error": {"code": code, "message": message, "status": status, "details": details}})
}

/// `429 RESOURCE_EXHAUSTED` for a per-minute quota, with `RetryInfo.retryDelay` (e.g. `"0.05s"`).
pub fn rate_limited(retry_delay: &str) -> Reply {
    Reply::json(
        429,
        status_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for metric: generate_content_free_tier_requests, limit: 10",
            json!([
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                 "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                                 "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
            ]),
        ),
    )
}

/// `429 RESOURCE_EXHAUSTED` for a per-day quota: waiting won't help, the client should fall
/// back to the next model.
pub fn daily_quota() -> Reply {
    Reply::json(
        429,
        status_error(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
            json!([
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                 "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_requests_per_model_per_day",
                                 "quotaId": "GenerateRequestsPerDayPerProjectPerModel"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3600s"}
            ]),
        ),
    )
}

/// `500 INTERNAL`.
pub fn server_error() -> Reply {
    Reply::json(
        500,
        status_error(
            500,
            "INTERNAL",
            "An internal error has occurred.",
            json!([]),
        ),
    )
}

/// `400 INVALID_ARGUMENT`: the input is over the model's token limit.
pub fn overflow() -> Reply {
    Reply::json(
        400,
        status_error(
            400,
            "INVALID_ARGUMENT",
            "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            json!([]),
        ),
    )
}

/// `200` with no content and `finishReason: MALFORMED_FUNCTION_CALL`.
pub fn malformed_function_call() -> Reply {
    Reply::ok(json!({"candidates": [{
        "content": {"parts": []},
        "finishReason": "MALFORMED_FUNCTION_CALL",
        "finishMessage": "Malformed function call: grep(pattern=)"
    }]}))
}
