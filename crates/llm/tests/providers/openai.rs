//! OpenAI-compatible adapter scenarios.
//!
//! Fake-server shapes follow the OpenAI API reference "Create chat completion" (request
//! `messages` / `tools` / `tool_choice`; response `choices[].message.{content, tool_calls}`,
//! `finish_reason`, `usage.{prompt_tokens_details, completion_tokens_details}`; error object
//! `{error: {message, type, param, code}}`, `Retry-After` / `retry-after-ms` headers), plus the
//! `reasoning_content` message field that vLLM, llama.cpp and DeepSeek add.

use std::time::Duration;

use llm::{ChatModel, FinishReason, LlmError, Message, Part, Provider, Role, ToolResult};
use serde_json::{Value, json};

use crate::common::{FakeServer, Reply, config, gap, request};

const KEY: &str = "sk-test-abcdef0123456789";

fn completion(message: Value, finish: &str) -> Value {
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

fn text(content: &str) -> Value {
    completion(json!({"role": "assistant", "content": content}), "stop")
}

fn error(message: &str, kind: &str, code: Value) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

fn base(server: &FakeServer) -> String {
    format!("{}/v1", server.base)
}

fn connect(server: &FakeServer, models: &str) -> std::sync::Arc<dyn ChatModel> {
    llm::connect(config(Provider::OpenAi, models, &base(server), Some(KEY))).unwrap()
}

fn results(calls: &[llm::ToolCall]) -> Message {
    Message {
        role: Role::User,
        parts: calls
            .iter()
            .map(|c| {
                Part::ToolResult(ToolResult {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    content: json!({"for": c.id}),
                    is_error: false,
                })
            })
            .collect(),
    }
}

#[tokio::test]
async fn multi_turn_tool_use_with_reasoning() {
    let server = FakeServer::start(vec![
        Reply::ok(completion(
            json!({
                "role": "assistant", "content": null,
                "reasoning_content": "Need the lock holders.",
                "tool_calls": [{"id": "call_abc", "type": "function",
                                "function": {"name": "grep", "arguments": "{\"pattern\":\"foo_lock\"}"}}]
            }),
            "tool_calls",
        )),
        Reply::ok(text("benign")),
    ])
    .await;
    let model = connect(&server, "gpt-test");
    let mut history = vec![Message::user_text("Assess.")];
    let first = model.chat(&request(history.clone())).await.unwrap();
    assert_eq!(first.finish, FinishReason::ToolCalls);
    let u = first.usage;
    assert_eq!(
        (
            u.input_tokens,
            u.output_tokens,
            u.thoughts_tokens,
            u.cached_tokens
        ),
        (900, 20, 100, 512)
    );
    assert!(
        matches!(&first.message.parts[0], Part::Thought { text, .. } if text == "Need the lock holders.")
    );
    let calls: Vec<_> = first.message.tool_calls().cloned().collect();
    assert_eq!(calls[0].id, "call_abc");
    assert_eq!(calls[0].args, json!({"pattern": "foo_lock"}));

    history.push(first.message.clone());
    history.push(results(&calls));
    let second = model.chat(&request(history)).await.unwrap();
    assert_eq!(second.message.text(), "benign");
    assert_eq!(second.finish, FinishReason::Stop);

    let reqs = server.requests();
    assert_eq!(reqs[0].path, "/v1/chat/completions");
    assert_eq!(
        reqs[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    let body = &reqs[0].body;
    assert_eq!(body["model"], "gpt-test");
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "You judge KCSAN reports."})
    );
    assert_eq!(
        body["messages"][1],
        json!({"role": "user", "content": "Assess."})
    );
    // Tools without tool_choice: "auto" is the default, and llama.cpp drops the tools when
    // told so explicitly without a function-calling chat format.
    assert!(body.get("tool_choice").is_none(), "{body}");
    assert_eq!(body["tools"][0]["type"], "function");
    assert_eq!(body["tools"][0]["function"]["name"], "grep");
    assert_eq!(
        body["tools"][0]["function"]["parameters"]["required"],
        json!(["pattern"])
    );
    assert_eq!(body["reasoning_effort"], "high");

    let messages = reqs[1].body["messages"].as_array().unwrap().clone();
    assert_eq!(
        messages[2],
        json!({"role": "assistant", "content": "", "reasoning_content": "Need the lock holders.",
               "tool_calls": [{"id": "call_abc", "type": "function",
                               "function": {"name": "grep", "arguments": "{\"pattern\":\"foo_lock\"}"}}]})
    );
    assert_eq!(
        messages[3],
        json!({"role": "tool", "tool_call_id": "call_abc", "content": "{\"for\":\"call_abc\"}"})
    );
    assert_eq!(messages.len(), 4);
}

#[tokio::test]
async fn parallel_calls_are_answered_by_id() {
    let server = FakeServer::start(vec![
        Reply::ok(completion(
            json!({"role": "assistant", "content": "Checking two things.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "grep", "arguments": "{\"pattern\":\"a\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\":\"mm/slub.c\"}"}}
            ]}),
            "tool_calls",
        )),
        Reply::ok(text("done")),
    ])
    .await;
    let model = connect(&server, "gpt-test");
    let mut history = vec![Message::user_text("go")];
    let first = model.chat(&request(history.clone())).await.unwrap();
    let calls: Vec<_> = first.message.tool_calls().cloned().collect();
    assert_eq!(
        calls.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["call_1", "call_2"]
    );
    assert_eq!(first.message.text(), "Checking two things.");
    history.push(first.message.clone());
    history.push(results(&calls));
    model.chat(&request(history)).await.unwrap();
    let messages = server.bodies()[1]["messages"].as_array().unwrap().clone();
    assert_eq!(messages[2]["content"], "Checking two things.");
    assert!(messages[2].get("reasoning_content").is_none());
    assert_eq!(messages[3]["tool_call_id"], "call_1");
    assert_eq!(messages[4]["tool_call_id"], "call_2");
    assert_eq!(messages[4]["content"], "{\"for\":\"call_2\"}");
}

#[tokio::test]
async fn malformed_arguments_are_surfaced_and_replayed_verbatim() {
    let raw = "{\"pattern\": \"foo";
    let server = FakeServer::start(vec![
        Reply::ok(completion(
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_bad", "type": "function", "function": {"name": "grep", "arguments": raw}}
            ]}),
            "tool_calls",
        )),
        Reply::ok(text("retrying properly")),
    ])
    .await;
    let model = connect(&server, "gpt-test");
    let mut history = vec![Message::user_text("go")];
    let first = model.chat(&request(history.clone())).await.unwrap();
    let call = first.message.tool_calls().next().unwrap().clone();
    assert_eq!(call.name, "grep");
    let problem = call
        .argument_error()
        .expect("malformed arguments must be flagged");
    assert!(problem.contains("EOF"), "{problem}");
    assert_eq!(llm::malformed_raw(&call.args), Some(raw));

    history.push(first.message.clone());
    history.push(Message {
        role: Role::User,
        parts: vec![Part::ToolResult(ToolResult {
            id: call.id.clone(),
            name: call.name.clone(),
            content: json!({"error": problem}),
            is_error: true,
        })],
    });
    model.chat(&request(history)).await.unwrap();
    let replay = &server.bodies()[1]["messages"][2]["tool_calls"][0]["function"]["arguments"];
    assert_eq!(replay, raw);
}

#[tokio::test]
async fn rate_limit_honours_retry_after() {
    let server = FakeServer::start(vec![
        Reply::json(
            429,
            error(
                "Rate limit reached for gpt-test on requests per min (RPM): Limit 3.",
                "requests",
                json!("rate_limit_exceeded"),
            ),
        )
        .header("retry-after-ms", "300"),
        Reply::ok(text("ok")),
    ])
    .await;
    let model = connect(&server, "gpt-test");
    let response = model
        .chat(&request(vec![Message::user_text("hi")]))
        .await
        .unwrap();
    let reqs = server.requests();
    assert!(
        gap(&reqs, 0) >= Duration::from_millis(300),
        "gap {:?}",
        gap(&reqs, 0)
    );
    assert!(
        response.exchanges[0]
            .outcome
            .starts_with("retry after 0.300s"),
        "{}",
        response.exchanges[0].outcome
    );
}

#[tokio::test]
async fn server_error_then_success() {
    let server = FakeServer::start(vec![
        Reply::json(
            500,
            error(
                "The server had an error while processing your request.",
                "server_error",
                Value::Null,
            ),
        ),
        Reply::ok(text("recovered")),
    ])
    .await;
    let model = connect(&server, "gpt-test");
    let response = model
        .chat(&request(vec![Message::user_text("hi")]))
        .await
        .unwrap();
    assert_eq!(response.message.text(), "recovered");
    assert_eq!(response.exchanges.len(), 2);
}

#[tokio::test]
async fn context_length_exceeded_is_input_too_long() {
    let server = FakeServer::start(vec![Reply::json(
        400,
        error(
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.",
            "invalid_request_error",
            json!("context_length_exceeded"),
        ),
    )])
    .await;
    let model = connect(&server, "gpt-test,gpt-other");
    let err = model
        .chat(&request(vec![Message::user_text("huge")]))
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::InputTooLong { .. }), "{err:?}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn daily_limit_and_missing_model_fall_back() {
    let server = FakeServer::start(vec![
        Reply::json(
            429,
            error(
                "Rate limit reached for gpt-a in organization org-x on tokens per day (TPD): Limit 90000, Used 89000.",
                "tokens",
                json!("rate_limit_exceeded"),
            ),
        ),
        Reply::json(404, error("The model `gpt-b` does not exist or you do not have access to it.", "invalid_request_error", json!("model_not_found"))),
        Reply::ok(text("from c")),
    ])
    .await;
    let model = connect(&server, "gpt-a,gpt-b,gpt-c");
    let response = model
        .chat(&request(vec![Message::user_text("hi")]))
        .await
        .unwrap();
    assert_eq!(response.model, "gpt-c");
    let sent: Vec<_> = server
        .bodies()
        .iter()
        .map(|b| b["model"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sent, ["gpt-a", "gpt-b", "gpt-c"]);
}

#[tokio::test]
async fn truncated_output_is_typed() {
    let server = FakeServer::start(vec![Reply::ok(completion(
        json!({"role": "assistant", "content": ""}),
        "length",
    ))])
    .await;
    let model = connect(&server, "gpt-test");
    let mut req = request(vec![Message::user_text("hi")]);
    req.thinking = llm::ThinkingLevel::Low;
    let err = model.chat(&req).await.unwrap_err();
    assert!(matches!(err, LlmError::OutputTruncated { .. }), "{err:?}");
    assert_eq!(
        server.requests().len(),
        1,
        "no lower thinking level to retry with"
    );
}

#[tokio::test]
async fn keyless_local_server_gets_no_authorization_header() {
    let server = FakeServer::start(vec![Reply::ok(text("local"))]).await;
    let mut cfg = config(Provider::OpenAi, "qwen3:8b", &base(&server), None);
    cfg.context_window = Some(32_768);
    let model = llm::connect(cfg).unwrap();
    assert_eq!(model.context_window(), 32_768);
    let mut req = request(vec![Message::user_text("hi")]);
    req.max_output_tokens = Some(256);
    model.chat(&req).await.unwrap();
    let r = &server.requests()[0];
    assert_eq!(r.header("authorization"), None);
    assert_eq!(
        r.body["max_tokens"], 256,
        "compatible servers get max_tokens"
    );
}

#[tokio::test]
async fn keys_never_reach_exchanges_or_errors() {
    let echo = format!(
        "Incorrect API key provided: {KEY}. You can find your API key at https://platform.openai.com."
    );
    let server = FakeServer::start(vec![
        Reply::json(503, error(&echo, "server_error", Value::Null)),
        Reply::ok(text("ok")),
        Reply::json(
            401,
            error(&echo, "invalid_request_error", json!("invalid_api_key")),
        ),
    ])
    .await;
    let model = connect(&server, "gpt-test");
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
    assert!(err.to_string().contains("HTTP 401"), "{err}");
    assert_eq!(server.requests().len(), 3, "401 is not retried");
}

#[tokio::test]
async fn lenient_with_compatible_server_variants() {
    // Some compatible servers send content as text parts and arguments as an object.
    let server = FakeServer::start(vec![Reply::ok(completion(
        json!({"role": "assistant",
               "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
               "reasoning": "thinking via OpenRouter field",
               "tool_calls": [{"id": "c1", "type": "function",
                               "function": {"name": "grep", "arguments": {"pattern": "x"}}}]}),
        "tool_calls",
    ))])
    .await;
    let model = connect(&server, "gpt-test");
    let response = model
        .chat(&request(vec![Message::user_text("hi")]))
        .await
        .unwrap();
    assert_eq!(response.message.text(), "ab");
    assert_eq!(
        response.message.tool_calls().next().unwrap().args,
        json!({"pattern": "x"})
    );
    assert!(
        matches!(&response.message.parts[0], Part::Thought { text, .. } if text.contains("OpenRouter"))
    );
}
