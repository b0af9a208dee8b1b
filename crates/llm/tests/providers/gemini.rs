//! Gemini adapter scenarios.
//!
//! Fake-server shapes follow the Gemini API reference for `models.generateContent`
//! (`GenerateContentResponse`: `candidates[].content.parts`, `finishReason`, `usageMetadata`),
//! the function-calling guide (`functionCall` / `functionResponse` parts), the thinking and
//! thought-signatures guides (`thought: true`, `thoughtSignature` on the part), and the
//! `google.rpc.Status` error shape with `QuotaFailure` / `RetryInfo` details.

use std::time::Duration;

use llm::{ChatModel, FinishReason, LlmError, Message, Part, Provider, Role, ToolResult};
use serde_json::{Value, json};

use crate::common::{FakeServer, Reply, config, gap, request};

const KEY: &str = "AIza-test-key-0123456789";

fn answer(parts: Value, finish: &str) -> Value {
    json!({
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}],
        "usageMetadata": {
            "promptTokenCount": 1200, "candidatesTokenCount": 40, "thoughtsTokenCount": 300,
            "cachedContentTokenCount": 1000, "toolUsePromptTokenCount": 5, "totalTokenCount": 1545
        },
        "modelVersion": "gemini-test"
    })
}

fn text_answer(text: &str) -> Value {
    answer(json!([{"text": text}]), "STOP")
}

fn status_error(code: u16, status: &str, message: &str, details: Value) -> Value {
    json!({"error": {"code": code, "message": message, "status": status, "details": details}})
}

async fn connect(server: &FakeServer, models: &str) -> std::sync::Arc<dyn ChatModel> {
    llm::connect(config(Provider::Gemini, models, &server.base, Some(KEY))).unwrap()
}

#[tokio::test]
async fn multi_turn_tool_use_echoes_thought_signature() {
    let server = FakeServer::start(vec![
        Reply::ok(answer(
            json!([
                {"text": "Look at the writer first.", "thought": true},
                {"functionCall": {"name": "grep", "args": {"pattern": "foo_lock"}}, "thoughtSignature": "c2lnLUE="}
            ]),
            "STOP",
        )),
        Reply::ok(answer(json!([{"text": "The race is benign.", "thoughtSignature": "c2lnLUI="}]), "STOP")),
        Reply::ok(text_answer("done")),
    ])
    .await;
    let model = connect(&server, "gemini-test").await;

    let mut history = vec![Message::user_text("Assess this report.")];
    let first = model.chat(&request(history.clone())).await.unwrap();
    assert_eq!(first.finish, FinishReason::ToolCalls);
    assert_eq!(first.model, "gemini-test");
    let usage = first.usage;
    assert_eq!(
        (
            usage.input_tokens,
            usage.output_tokens,
            usage.thoughts_tokens,
            usage.cached_tokens
        ),
        (1205, 40, 300, 1000)
    );
    let call = first.message.tool_calls().next().unwrap().clone();
    assert_eq!(call.name, "grep");
    assert_eq!(call.args, json!({"pattern": "foo_lock"}));
    assert_eq!(call.signature.as_deref(), Some("c2lnLUE="));
    assert!(!call.id.is_empty());
    assert!(
        matches!(&first.message.parts[0], Part::Thought { text, .. } if text == "Look at the writer first.")
    );

    history.push(first.message.clone());
    history.push(Message {
        role: Role::User,
        parts: vec![Part::ToolResult(ToolResult {
            id: call.id.clone(),
            name: "grep".into(),
            content: json!({"matches": ["kernel/foo.c:12"]}),
            is_error: false,
        })],
    });
    let second = model.chat(&request(history.clone())).await.unwrap();
    assert_eq!(second.message.text(), "The race is benign.");
    assert_eq!(second.finish, FinishReason::Stop);

    // A text part's signature must come back on that same text part.
    history.push(second.message.clone());
    history.push(Message::user_text("Thanks."));
    model.chat(&request(history)).await.unwrap();

    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        assert_eq!(r.path, "/v1beta/models/gemini-test:generateContent");
        assert_eq!(r.query, None, "the key must never travel in the URL");
        assert_eq!(r.header("x-goog-api-key"), Some(KEY));
    }
    let body = &reqs[0].body;
    assert_eq!(
        body["systemInstruction"],
        json!({"parts": [{"text": "You judge KCSAN reports."}]})
    );
    assert_eq!(
        body["contents"],
        json!([{"role": "user", "parts": [{"text": "Assess this report."}]}])
    );
    let decl = &body["tools"][0]["functionDeclarations"][0];
    assert_eq!(decl["name"], "grep");
    assert!(
        decl["parametersJsonSchema"].get("$schema").is_none(),
        "sanitised schema: {decl}"
    );
    assert_eq!(decl["parametersJsonSchema"]["required"], json!(["pattern"]));
    assert_eq!(
        body["generationConfig"]["thinkingConfig"],
        json!({"includeThoughts": true, "thinkingLevel": "high"})
    );
    assert_eq!(body["generationConfig"]["temperature"], json!(0.3f32));

    let contents = &reqs[1].body["contents"];
    assert_eq!(
        contents[1],
        json!({"role": "model", "parts": [
            {"text": "Look at the writer first.", "thought": true},
            {"functionCall": {"name": "grep", "args": {"pattern": "foo_lock"}}, "thoughtSignature": "c2lnLUE="}
        ]})
    );
    assert_eq!(
        contents[2],
        json!({"role": "user", "parts": [
            {"functionResponse": {"name": "grep", "response": {"matches": ["kernel/foo.c:12"]}}}
        ]})
    );
    assert_eq!(
        reqs[2].body["contents"][3],
        json!({"role": "model", "parts": [{"text": "The race is benign.", "thoughtSignature": "c2lnLUI="}]})
    );
    assert_eq!(server.unused(), 0);
}

#[tokio::test]
async fn parallel_calls_get_distinct_ids_and_results_map_back_in_order() {
    let server = FakeServer::start(vec![
        Reply::ok(answer(
            json!([
                {"functionCall": {"name": "grep", "args": {"pattern": "a"}}, "thoughtSignature": "U0lH"},
                {"functionCall": {"name": "read_file", "args": {"path": "mm/slub.c"}}},
                {"functionCall": {"id": "provider-id-7", "name": "grep", "args": {"pattern": "b"}}}
            ]),
            "STOP",
        )),
        Reply::ok(text_answer("ok")),
    ])
    .await;
    let model = connect(&server, "gemini-test").await;
    let mut history = vec![Message::user_text("go")];
    let first = model.chat(&request(history.clone())).await.unwrap();
    let calls: Vec<_> = first.message.tool_calls().cloned().collect();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[2].id, "provider-id-7");
    assert_ne!(calls[0].id, calls[1].id);
    assert_eq!(calls[0].signature.as_deref(), Some("U0lH"));
    assert_eq!(calls[1].signature, None);

    history.push(first.message.clone());
    history.push(Message {
        role: Role::User,
        parts: calls
            .iter()
            .map(|c| {
                Part::ToolResult(ToolResult {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    content: json!(format!("result of {}", c.id)),
                    is_error: c.name == "read_file",
                })
            })
            .collect(),
    });
    model.chat(&request(history)).await.unwrap();
    let sent = &server.bodies()[1]["contents"];
    let model_parts = sent[1]["parts"].as_array().unwrap();
    assert_eq!(model_parts[0]["thoughtSignature"], "U0lH");
    assert!(model_parts[1].get("thoughtSignature").is_none());
    assert!(
        model_parts[0]["functionCall"].get("id").is_none(),
        "synthetic ids stay local"
    );
    assert_eq!(model_parts[2]["functionCall"]["id"], "provider-id-7");
    let responses = sent[2]["parts"].as_array().unwrap();
    assert_eq!(responses.len(), 3);
    assert_eq!(responses[0]["functionResponse"]["name"], "grep");
    assert_eq!(
        responses[0]["functionResponse"]["response"],
        json!({"result": format!("result of {}", calls[0].id)})
    );
    assert_eq!(responses[1]["functionResponse"]["name"], "read_file");
    assert_eq!(
        responses[1]["functionResponse"]["response"],
        json!({"error": format!("result of {}", calls[1].id)})
    );
    assert_eq!(responses[2]["functionResponse"]["id"], "provider-id-7");
}

#[tokio::test]
async fn retry_info_delay_is_honoured() {
    let server = FakeServer::start(vec![
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
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.300s"}
                ]),
            ),
        ),
        Reply::ok(text_answer("fine")),
    ])
    .await;
    let model = connect(&server, "gemini-test").await;
    let response = model
        .chat(&request(vec![Message::user_text("hi")]))
        .await
        .unwrap();
    assert_eq!(response.message.text(), "fine");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    // The configured backoff is at most 10 ms, so only the server's 300 ms explains this gap.
    assert!(
        gap(&reqs, 0) >= Duration::from_millis(300),
        "gap {:?}",
        gap(&reqs, 0)
    );
    assert_eq!(response.exchanges.len(), 2);
    assert_eq!(response.exchanges[0].status, Some(429));
    assert!(
        response.exchanges[0]
            .outcome
            .starts_with("retry after 0.300s"),
        "{}",
        response.exchanges[0].outcome
    );
    assert_eq!(response.exchanges[1].outcome, "ok");
}

#[tokio::test]
async fn server_error_then_success() {
    let server = FakeServer::start(vec![
        Reply::json(
            500,
            status_error(
                500,
                "INTERNAL",
                "An internal error has occurred.",
                json!([]),
            ),
        ),
        Reply::json(
            503,
            status_error(503, "UNAVAILABLE", "The model is overloaded.", json!([])),
        ),
        Reply::ok(text_answer("third time lucky")),
    ])
    .await;
    let model = connect(&server, "gemini-test").await;
    let response = model
        .chat(&request(vec![Message::user_text("hi")]))
        .await
        .unwrap();
    assert_eq!(response.message.text(), "third time lucky");
    let statuses: Vec<_> = response.exchanges.iter().map(|e| e.status).collect();
    assert_eq!(statuses, vec![Some(500), Some(503), Some(200)]);
}

#[tokio::test]
async fn retries_are_bounded_by_max_attempts() {
    let err_reply = Reply::json(500, status_error(500, "INTERNAL", "boom", json!([])));
    let server = FakeServer::start(vec![err_reply.clone(), err_reply.clone(), err_reply]).await;
    let model = connect(&server, "gemini-test").await;
    let err = model
        .chat(&request(vec![Message::user_text("hi")]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::Provider { message, .. } if message.contains("3 attempts") && message.contains("boom")),
        "{err}"
    );
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn malformed_function_call_is_retried() {
    let server = FakeServer::start(vec![
        Reply::ok(json!({"candidates": [{"content": {"parts": []}, "finishReason": "MALFORMED_FUNCTION_CALL",
                                          "finishMessage": "Malformed function call: grep(pattern=)"}]})),
        Reply::ok(answer(json!([{"functionCall": {"name": "grep", "args": {"pattern": "x"}}}]), "STOP")),
    ])
    .await;
    let model = connect(&server, "gemini-test").await;
    let response = model
        .chat(&request(vec![Message::user_text("hi")]))
        .await
        .unwrap();
    assert_eq!(response.finish, FinishReason::ToolCalls);
    assert!(
        response.exchanges[0]
            .outcome
            .contains("MALFORMED_FUNCTION_CALL")
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn input_overflow_is_typed_and_not_retried() {
    let server = FakeServer::start(vec![Reply::json(
        400,
        status_error(
            400,
            "INVALID_ARGUMENT",
            "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            json!([]),
        ),
    )])
    .await;
    let model = connect(&server, "gemini-a,gemini-b").await;
    let err = model
        .chat(&request(vec![Message::user_text("huge")]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::InputTooLong { model, .. } if model == "gemini-a"),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn output_limit_lowers_thinking_then_reports_truncation() {
    let truncated = Reply::ok(answer(
        json!([{"text": "...", "thought": true}]),
        "MAX_TOKENS",
    ));
    let server = FakeServer::start(vec![truncated.clone(), truncated.clone(), truncated]).await;
    let model = connect(&server, "gemini-3-flash-preview").await;
    let err = model
        .chat(&request(vec![Message::user_text("hi")]))
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::OutputTruncated { .. }), "{err:?}");
    let levels: Vec<_> = server
        .bodies()
        .iter()
        .map(|b| {
            b["generationConfig"]["thinkingConfig"]["thinkingLevel"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(levels, ["high", "medium", "low"]);
}

#[tokio::test]
async fn safety_stop_is_an_error() {
    let server = FakeServer::start(vec![Reply::ok(answer(json!([]), "SAFETY"))]).await;
    let model = connect(&server, "gemini-test").await;
    let err = model
        .chat(&request(vec![Message::user_text("hi")]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("SAFETY"), "{err}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn daily_quota_falls_back_to_next_model() {
    let server = FakeServer::start(vec![
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
        ),
        Reply::ok(text_answer("from the second model")),
    ])
    .await;
    let model = connect(&server, "gemini-pro-x,gemini-flash-y").await;
    assert_eq!(model.name(), "gemini:gemini-pro-x,gemini-flash-y");
    let response = model
        .chat(&request(vec![Message::user_text("hi")]))
        .await
        .unwrap();
    assert_eq!(response.model, "gemini-flash-y");
    let paths: Vec<_> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        vec![
            "/v1beta/models/gemini-pro-x:generateContent",
            "/v1beta/models/gemini-flash-y:generateContent"
        ]
    );
    assert_eq!(response.exchanges[0].outcome, "fallback to next model");
    assert_eq!(response.exchanges[0].model, "gemini-pro-x");
}

#[tokio::test]
async fn unknown_model_falls_back_and_last_failure_is_reported() {
    let not_found = Reply::json(
        404,
        status_error(
            404,
            "NOT_FOUND",
            "models/nope is not found for API version v1beta",
            json!([]),
        ),
    );
    let server = FakeServer::start(vec![not_found.clone(), not_found]).await;
    let model = connect(&server, "nope,nope-2").await;
    let err = model
        .chat(&request(vec![Message::user_text("hi")]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::Provider { message, .. } if message.starts_with("nope-2: model not found")),
        "{err}"
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn timeout_is_retried() {
    let server = FakeServer::start(vec![
        Reply::ok(text_answer("too late")).delayed(Duration::from_secs(5)),
        Reply::ok(text_answer("in time")),
    ])
    .await;
    let mut cfg = config(Provider::Gemini, "gemini-test", &server.base, Some(KEY));
    cfg.timeout = Duration::from_millis(200);
    let model = llm::connect(cfg).unwrap();
    let response = model
        .chat(&request(vec![Message::user_text("hi")]))
        .await
        .unwrap();
    assert_eq!(response.message.text(), "in time");
    assert_eq!(response.exchanges[0].status, None);
    assert!(
        response.exchanges[0].outcome.contains("timeout"),
        "{}",
        response.exchanges[0].outcome
    );
}

#[tokio::test]
async fn keys_never_reach_exchanges_or_errors() {
    let echo = format!("API key not valid: {KEY}. Please pass a valid API key.");
    let server = FakeServer::start(vec![
        Reply::json(500, status_error(500, "INTERNAL", &echo, json!([]))),
        Reply::ok(text_answer(&format!("you said {KEY}"))),
        Reply::json(
            400,
            status_error(
                400,
                "INVALID_ARGUMENT",
                &echo,
                json!([{"reason": "API_KEY_INVALID", "key": KEY}]),
            ),
        ),
    ])
    .await;
    let model = connect(&server, "gemini-test").await;
    // The prompt itself contains the key: recorded request bodies must still not.
    let response = model
        .chat(&request(vec![Message::user_text(format!(
            "my key is {KEY}"
        ))]))
        .await
        .unwrap();
    assert_eq!(
        server.requests()[0].header("x-goog-api-key"),
        Some(KEY),
        "the header carries the key"
    );
    let recorded = serde_json::to_string(&response.exchanges).unwrap();
    assert!(!recorded.contains(KEY), "{recorded}");
    assert!(recorded.contains("[REDACTED]"));
    let err = model
        .chat(&request(vec![Message::user_text("again")]))
        .await
        .unwrap_err();
    assert!(
        !err.to_string().contains(KEY) && !format!("{err:?}").contains(KEY),
        "{err}"
    );
    assert!(err.to_string().contains("API key not valid"), "{err}");
}

#[tokio::test]
async fn vertex_style_base_url_is_used_as_prefix() {
    let server = FakeServer::start(vec![Reply::ok(text_answer("vertex"))]).await;
    let base = format!("{}/v1/publishers/google/", server.base);
    let model = llm::connect(config(
        Provider::Gemini,
        "gemini-3-flash-preview",
        &base,
        Some(KEY),
    ))
    .unwrap();
    model
        .chat(&request(vec![Message::user_text("hi")]))
        .await
        .unwrap();
    assert_eq!(
        server.requests()[0].path,
        "/v1/publishers/google/models/gemini-3-flash-preview:generateContent"
    );
    assert_eq!(model.context_window(), 1_048_576);
}
