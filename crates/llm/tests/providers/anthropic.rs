//! Anthropic adapter scenarios.
//!
//! Fake-server shapes follow the Anthropic API reference "Messages" (request `system`,
//! `messages`, `tools[].input_schema`, `max_tokens`, `thinking`; response `content` blocks,
//! `stop_reason`, `usage` with cache counters; error `{type: "error", error: {type, message}}`,
//! `retry-after` header, 529 `overloaded_error`), the tool-use guide (`tool_use` /
//! `tool_result` blocks) and the extended-thinking guide (`thinking` + `signature`,
//! `redacted_thinking`, blocks passed back during tool use).

use std::time::Duration;

use llm::{ChatModel, FinishReason, LlmError, Message, Part, Provider, Role, ToolResult};
use serde_json::{Value, json};

use crate::common::{FakeServer, Reply, config, gap, request};

const KEY: &str = "sk-ant-test-0123456789";

fn message(content: Value, stop: &str) -> Value {
    json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
        "content": content, "stop_reason": stop, "stop_sequence": null,
        "usage": {"input_tokens": 50, "output_tokens": 400, "cache_read_input_tokens": 1000,
                  "cache_creation_input_tokens": 200}
    })
}

fn text(t: &str) -> Value {
    message(json!([{"type": "text", "text": t}]), "end_turn")
}

fn error(kind: &str, msg: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": msg}})
}

fn connect(server: &FakeServer, models: &str) -> std::sync::Arc<dyn ChatModel> {
    llm::connect(config(Provider::Anthropic, models, &server.base, Some(KEY))).unwrap()
}

#[tokio::test]
async fn tool_use_round_trips_thinking_blocks() {
    let server = FakeServer::start(vec![
        Reply::ok(message(
            json!([
                {"type": "thinking", "thinking": "Who else writes foo?", "signature": "EqQBCkYIARgCKkA="},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix="},
                {"type": "text", "text": "Let me search."},
                {"type": "tool_use", "id": "toolu_01", "name": "grep", "input": {"pattern": "foo"}}
            ]),
            "tool_use",
        )),
        Reply::ok(text("benign")),
    ])
    .await;
    let model = connect(&server, "claude-test");
    let mut history = vec![Message::user_text("Assess.")];
    let first = model.chat(&request(history.clone())).await.unwrap();
    assert_eq!(first.finish, FinishReason::ToolCalls);
    let u = first.usage;
    assert_eq!(
        (u.input_tokens, u.output_tokens, u.cached_tokens),
        (1250, 400, 1000)
    );
    let call = first.message.tool_calls().next().unwrap().clone();
    assert_eq!((call.id.as_str(), call.name.as_str()), ("toolu_01", "grep"));

    history.push(first.message.clone());
    history.push(Message {
        role: Role::User,
        parts: vec![Part::ToolResult(ToolResult {
            id: call.id.clone(),
            name: call.name.clone(),
            content: json!({"matches": 2}),
            is_error: false,
        })],
    });
    let second = model.chat(&request(history)).await.unwrap();
    assert_eq!(second.message.text(), "benign");
    assert_eq!(second.finish, FinishReason::Stop);

    let reqs = server.requests();
    assert_eq!(reqs[0].path, "/v1/messages");
    assert_eq!(reqs[0].header("x-api-key"), Some(KEY));
    assert_eq!(reqs[0].header("anthropic-version"), Some("2023-06-01"));
    let body = &reqs[0].body;
    assert_eq!(
        body["system"],
        json!([{"type": "text", "text": "You judge KCSAN reports.", "cache_control": {"type": "ephemeral"}}])
    );
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 16384})
    );
    assert!(body["max_tokens"].as_u64().unwrap() > 16384);
    assert!(body.get("temperature").is_none());
    assert_eq!(body["tools"][0]["name"], "grep");
    assert_eq!(
        body["tools"][0]["input_schema"]["required"],
        json!(["pattern"])
    );
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [
            {"type": "text", "text": "Assess.", "cache_control": {"type": "ephemeral"}}
        ]}])
    );

    let messages = &reqs[1].body["messages"];
    assert_eq!(
        messages[1],
        json!({"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Who else writes foo?", "signature": "EqQBCkYIARgCKkA="},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix="},
            {"type": "text", "text": "Let me search."},
            {"type": "tool_use", "id": "toolu_01", "name": "grep", "input": {"pattern": "foo"}}
        ]})
    );
    assert_eq!(
        messages[2],
        json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01",
                                            "content": "{\"matches\":2}", "cache_control": {"type": "ephemeral"}}]})
    );
}

#[tokio::test]
async fn parallel_tool_results_share_one_user_message() {
    let server = FakeServer::start(vec![
        Reply::ok(message(
            json!([
                {"type": "tool_use", "id": "toolu_a", "name": "grep", "input": {"pattern": "a"}},
                {"type": "tool_use", "id": "toolu_b", "name": "read_file", "input": {"path": "x.c"}}
            ]),
            "tool_use",
        )),
        Reply::ok(text("done")),
    ])
    .await;
    let model = connect(&server, "claude-test");
    let mut history = vec![Message::user_text("go")];
    let first = model.chat(&request(history.clone())).await.unwrap();
    let calls: Vec<_> = first.message.tool_calls().cloned().collect();
    assert_eq!(calls.len(), 2);
    history.push(first.message.clone());
    history.push(Message {
        role: Role::User,
        parts: vec![
            Part::Text {
                text: "SYSTEM WARNING: be brief".into(),
            },
            Part::ToolResult(ToolResult {
                id: "toolu_a".into(),
                name: "grep".into(),
                content: json!("3 matches"),
                is_error: false,
            }),
            Part::ToolResult(ToolResult {
                id: "toolu_b".into(),
                name: "read_file".into(),
                content: json!({"error": "no such file"}),
                is_error: true,
            }),
        ],
    });
    model.chat(&request(history)).await.unwrap();
    let user = &server.bodies()[1]["messages"][2];
    assert_eq!(
        user,
        &json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_a", "content": "3 matches"},
            {"type": "tool_result", "tool_use_id": "toolu_b", "content": "{\"error\":\"no such file\"}", "is_error": true},
            {"type": "text", "text": "SYSTEM WARNING: be brief", "cache_control": {"type": "ephemeral"}}
        ]})
    );
}

#[tokio::test]
async fn overloaded_then_success() {
    let server = FakeServer::start(vec![
        Reply::json(529, error("overloaded_error", "Overloaded")),
        Reply::ok(text("ok")),
    ])
    .await;
    let model = connect(&server, "claude-test");
    let response = model
        .chat(&request(vec![Message::user_text("hi")]))
        .await
        .unwrap();
    assert_eq!(response.exchanges[0].status, Some(529));
    assert_eq!(response.message.text(), "ok");
}

#[tokio::test]
async fn retry_after_is_honoured_up_to_the_cap() {
    let server = FakeServer::start(vec![
        Reply::json(
            429,
            error(
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
            ),
        )
        .header("retry-after", "30"),
        Reply::ok(text("ok")),
    ])
    .await;
    let mut cfg = config(Provider::Anthropic, "claude-test", &server.base, Some(KEY));
    cfg.retry.max_server_delay = Duration::from_millis(250);
    let model = llm::connect(cfg).unwrap();
    let response = model
        .chat(&request(vec![Message::user_text("hi")]))
        .await
        .unwrap();
    let reqs = server.requests();
    // Backoff alone is at most 10 ms; the wait came from the header, capped at 250 ms.
    assert!(
        gap(&reqs, 0) >= Duration::from_millis(250),
        "gap {:?}",
        gap(&reqs, 0)
    );
    assert!(
        response.exchanges[0]
            .outcome
            .starts_with("retry after 0.250s"),
        "{}",
        response.exchanges[0].outcome
    );
}

#[tokio::test]
async fn prompt_too_long_is_input_too_long() {
    let server = FakeServer::start(vec![Reply::json(
        400,
        error(
            "invalid_request_error",
            "prompt is too long: 210000 tokens > 200000 maximum",
        ),
    )])
    .await;
    let model = connect(&server, "claude-test");
    let err = model
        .chat(&request(vec![Message::user_text("huge")]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::InputTooLong { message, .. } if message.contains("210000")),
        "{err:?}"
    );
}

#[tokio::test]
async fn unknown_model_falls_back() {
    let server = FakeServer::start(vec![
        Reply::json(404, error("not_found_error", "model: claude-gone")),
        Reply::ok(text("second")),
    ])
    .await;
    let model = connect(&server, "claude-gone,claude-test");
    let response = model
        .chat(&request(vec![Message::user_text("hi")]))
        .await
        .unwrap();
    assert_eq!(response.model, "claude-test");
    assert_eq!(server.bodies()[1]["model"], "claude-test");
}

#[tokio::test]
async fn max_tokens_without_content_thinks_less_and_retries() {
    let server = FakeServer::start(vec![
        Reply::ok(message(
            json!([{"type": "thinking", "thinking": "hmm", "signature": "c2ln"}]),
            "max_tokens",
        )),
        Reply::ok(text("short answer")),
    ])
    .await;
    let model = connect(&server, "claude-test");
    let response = model
        .chat(&request(vec![Message::user_text("hi")]))
        .await
        .unwrap();
    assert_eq!(response.message.text(), "short answer");
    let budgets: Vec<_> = server
        .bodies()
        .iter()
        .map(|b| b["thinking"]["budget_tokens"].clone())
        .collect();
    assert_eq!(budgets, [json!(16384), json!(8192)]);
    assert!(
        response.exchanges[0]
            .outcome
            .contains("retry with thinking Medium"),
        "{}",
        response.exchanges[0].outcome
    );
}

#[tokio::test]
async fn max_tokens_without_thinking_is_output_truncated() {
    let server = FakeServer::start(vec![Reply::ok(message(json!([]), "max_tokens"))]).await;
    let model = connect(&server, "claude-test");
    let mut req = request(vec![Message::user_text("hi")]);
    req.thinking = llm::ThinkingLevel::Default;
    let err = model.chat(&req).await.unwrap_err();
    assert!(matches!(err, LlmError::OutputTruncated { .. }), "{err:?}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn keys_never_reach_exchanges_or_errors() {
    let echo = format!("invalid x-api-key {KEY}");
    let server = FakeServer::start(vec![
        Reply::json(529, error("overloaded_error", &echo)),
        Reply::ok(text("ok")),
        Reply::json(401, error("authentication_error", &echo)),
    ])
    .await;
    let model = connect(&server, "claude-test");
    let response = model
        .chat(&request(vec![Message::user_text("hi")]))
        .await
        .unwrap();
    let recorded = serde_json::to_string(&response.exchanges).unwrap();
    assert!(
        !recorded.contains(KEY) && recorded.contains("[REDACTED]"),
        "{recorded}"
    );
    let err = model
        .chat(&request(vec![Message::user_text("hi")]))
        .await
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains(KEY), "{err}");
    assert!(
        err.to_string().contains("invalid x-api-key [REDACTED]"),
        "{err}"
    );
}
