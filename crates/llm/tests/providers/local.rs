//! Local and misbehaving servers (issue 14 and 13): deterministic failures are not retried,
//! overflows are recognised from the message whatever the status, bodies are capped, named
//! tool choice reaches every wire, models are discovered, deadlines hold, short keys stay.

use std::time::{Duration, Instant};

use fakellm::openai;
use llm::{ChatModel, LlmError, Message, Provider};
use serde_json::{Value, json};

use crate::common::{FakeServer, Reply, config, request};

fn connect_openai(server: &FakeServer, models: &str) -> std::sync::Arc<dyn ChatModel> {
    llm::connect(server.config(Provider::OpenAi, models, None)).unwrap()
}

fn hi() -> llm::ChatRequest {
    request(vec![Message::user_text("hi")])
}

#[tokio::test]
async fn deterministic_500_is_not_retried() {
    let server = FakeServer::start(vec![openai::template_error(), openai::text_reply("no")]).await;
    let err = connect_openai(&server, "gemma")
        .chat(&hi())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::Provider { message, .. } if message.contains("HTTP 500") && message.contains("NoneType")),
        "{err}"
    );
    assert_eq!(server.requests().len(), 1, "a template error fails once");
}

#[tokio::test]
async fn transient_statuses_are_retried_and_others_are_not() {
    for status in [502u16, 503, 504] {
        let server = FakeServer::start(vec![
            Reply::json(status, openai::error("busy", "server_error", Value::Null)),
            openai::text_reply("ok"),
        ])
        .await;
        let r = connect_openai(&server, "m").chat(&hi()).await.unwrap();
        assert_eq!(r.message.text(), "ok", "HTTP {status}");
    }
    for status in [400u16, 501, 422] {
        let server = FakeServer::start(vec![
            Reply::json(status, openai::error("no", "server_error", Value::Null)),
            openai::text_reply("ok"),
        ])
        .await;
        connect_openai(&server, "m").chat(&hi()).await.unwrap_err();
        assert_eq!(server.requests().len(), 1, "HTTP {status} is not retried");
    }
}

#[tokio::test]
async fn llama_cpp_overflow_is_input_too_long_whatever_the_status() {
    for status in [500u16, 400] {
        let server = FakeServer::start(vec![openai::llama_overflow(status)]).await;
        let err = connect_openai(&server, "gemma")
            .chat(&hi())
            .await
            .unwrap_err();
        assert!(
            matches!(err, LlmError::InputTooLong { .. }),
            "HTTP {status}: {err}"
        );
        assert_eq!(server.requests().len(), 1);
    }
    // llama-cpp-python's wording, without an error code.
    let server = FakeServer::start(vec![Reply::json(
        400,
        openai::error(
            "Requested tokens (5000) exceed context window of 2048",
            "invalid_request_error",
            Value::Null,
        ),
    )])
    .await;
    let err = connect_openai(&server, "gemma")
        .chat(&hi())
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::InputTooLong { .. }), "{err}");
}

#[tokio::test]
async fn anthropic_and_gemini_overflow_as_500_are_recognised() {
    let server = FakeServer::start(vec![Reply::json(
        500,
        json!({"type": "error", "error": {"type": "api_error", "message": "prompt is too long: 210000 tokens > 200000 maximum"}}),
    )])
    .await;
    let model = llm::connect(server.config(Provider::Anthropic, "claude-test", Some("k"))).unwrap();
    let err = model.chat(&hi()).await.unwrap_err();
    assert!(matches!(err, LlmError::InputTooLong { .. }), "{err}");

    let server = FakeServer::start(vec![Reply::json(
        500,
        json!({"error": {"code": 500, "status": "INTERNAL", "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."}}),
    )])
    .await;
    let model = llm::connect(server.config(Provider::Gemini, "gemini-test", Some("k"))).unwrap();
    let err = model.chat(&hi()).await.unwrap_err();
    assert!(matches!(err, LlmError::InputTooLong { .. }), "{err}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn unparseable_200_is_not_retried_and_is_clipped() {
    let garbage = "<html>".repeat(100_000);
    let server = FakeServer::start(vec![
        Reply::raw(200, garbage.clone()),
        openai::text_reply("ok"),
    ])
    .await;
    let failure = connect_openai(&server, "m")
        .chat_recorded(&hi())
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 1);
    assert!(
        failure.error.to_string().contains("unparseable response"),
        "{}",
        failure.error
    );
    assert!(failure.error.to_string().len() < 2_000);
    let recorded = serde_json::to_string(&failure.exchanges).unwrap();
    assert!(
        recorded.len() < 80 * 1024 && recorded.contains("clipped"),
        "recorded {} bytes",
        recorded.len()
    );
}

#[tokio::test]
async fn bodies_over_the_cap_fail_without_retry() {
    let huge = "x".repeat(llm::MAX_RESPONSE_BYTES + 1024);
    let server = FakeServer::start(vec![Reply::raw(200, huge), openai::text_reply("ok")]).await;
    let failure = connect_openai(&server, "m")
        .chat_recorded(&hi())
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 1);
    assert!(
        failure.error.to_string().contains("larger than 8 MiB"),
        "{}",
        failure.error
    );
    let recorded = serde_json::to_string(&failure.exchanges).unwrap();
    assert!(
        recorded.len() < 80 * 1024,
        "recorded {} bytes",
        recorded.len()
    );
}

#[tokio::test]
async fn forced_tool_is_named_on_every_wire() {
    let mut req = hi();
    req.force_tool = Some("grep".into());

    let server = FakeServer::start(vec![openai::text_reply("ok")]).await;
    connect_openai(&server, "m").chat(&req).await.unwrap();
    assert_eq!(
        server.bodies()[0]["tool_choice"],
        json!({"type": "function", "function": {"name": "grep"}})
    );

    let server = FakeServer::start(vec![fakellm::anthropic::text_reply("ok")]).await;
    let model = llm::connect(server.config(Provider::Anthropic, "claude-test", Some("k"))).unwrap();
    model.chat(&req).await.unwrap();
    let body = &server.bodies()[0];
    assert_eq!(body["tool_choice"], json!({"type": "tool", "name": "grep"}));
    assert!(
        body.get("thinking").is_none(),
        "Anthropic refuses thinking with a forced tool: {body}"
    );

    let server = FakeServer::start(vec![fakellm::gemini::text_reply("ok")]).await;
    let model = llm::connect(server.config(Provider::Gemini, "gemini-test", Some("k"))).unwrap();
    model.chat(&req).await.unwrap();
    assert_eq!(
        server.bodies()[0]["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["grep"]}})
    );
}

#[tokio::test]
async fn without_a_model_the_servers_only_model_is_used() {
    let server = FakeServer::start(vec![
        Reply::models(&["gemma-3-270m"]),
        openai::text_reply("ok"),
    ])
    .await;
    let model = connect_openai(&server, "");
    let r = model.chat(&hi()).await.unwrap();
    assert_eq!(r.model, "gemma-3-270m");
    let reqs = server.requests();
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path.as_str()),
        ("GET", "/v1/models")
    );
    assert_eq!(reqs[1].body["model"], "gemma-3-270m");
    assert_eq!(model.name(), "openai:gemma-3-270m");
    // Asked once per adapter.
    server.push([openai::text_reply("again")]);
    model.chat(&hi()).await.unwrap();
    assert_eq!(server.requests().len(), 3);

    let server = FakeServer::start(vec![Reply::models(&["a", "b"])]).await;
    let err = connect_openai(&server, "").chat(&hi()).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::Config(m) if m.contains("--model") && m.contains("a, b")),
        "{err}"
    );
    assert_eq!(
        server.requests().len(),
        1,
        "nothing is sent to a guessed model"
    );
}

#[tokio::test]
async fn unknown_model_error_lists_the_servers_models() {
    let server = FakeServer::start(vec![
        Reply::json(
            404,
            openai::error(
                "The model `gpt-4o` does not exist.",
                "NotFoundError",
                Value::Null,
            ),
        ),
        Reply::models(&["qwen3:8b", "llama3.2"]),
    ])
    .await;
    let err = connect_openai(&server, "gpt-4o")
        .chat(&hi())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the server serves: qwen3:8b, llama3.2"),
        "{err}"
    );
}

#[tokio::test]
async fn base_url_without_v1_gets_a_hint() {
    let server = FakeServer::start(vec![Reply::json(404, json!({"detail": "Not Found"}))]).await;
    let cfg = config(Provider::OpenAi, "gemma", &server.base, None);
    let err = llm::connect(cfg).unwrap().chat(&hi()).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("does not end in /v1") && text.contains(&format!("{}/v1", server.base)),
        "{text}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn the_turn_deadline_bounds_retries_and_slow_answers() {
    let server = FakeServer::start(vec![
        openai::text_reply("late").delayed(Duration::from_secs(5)),
        openai::text_reply("late").delayed(Duration::from_secs(5)),
        openai::text_reply("late").delayed(Duration::from_secs(5)),
    ])
    .await;
    let mut cfg = server.config(Provider::OpenAi, "m", None);
    cfg.timeout = Duration::from_millis(200);
    cfg.deadline = Some(Duration::from_millis(500));
    cfg.retry.max_attempts = 100;
    let started = Instant::now();
    let err = llm::connect(cfg).unwrap().chat(&hi()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        err.to_string().contains("deadline") && err.to_string().contains("last: timeout"),
        "{err}"
    );
    let n = server.requests().len();
    assert!((2..=3).contains(&n), "{n} attempts of 200 ms in 500 ms");
}

#[tokio::test]
async fn placeholder_keys_do_not_rewrite_text() {
    let server = FakeServer::start(vec![openai::text_reply("max x index")]).await;
    let model = llm::connect(server.config(Provider::OpenAi, "m", Some("x"))).unwrap();
    let r = model.chat(&hi()).await.unwrap();
    assert_eq!(r.message.text(), "max x index");
    let recorded = serde_json::to_string(&r.exchanges).unwrap();
    assert!(!recorded.contains("[REDACTED]"), "{recorded}");
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some("Bearer x")
    );
}

#[tokio::test]
async fn configured_output_limit_is_sent() {
    let server = FakeServer::start(vec![openai::text_reply("ok")]).await;
    let mut cfg = server.config(Provider::OpenAi, "m", None);
    cfg.max_output_tokens = Some(300);
    llm::connect(cfg).unwrap().chat(&hi()).await.unwrap();
    assert_eq!(server.bodies()[0]["max_tokens"], 300);
}

#[test]
fn config_file_carries_limits_and_timeouts() {
    let cfg = llm::ProviderConfig::from_json(
        r#"{"provider": "openai", "base_url": "http://127.0.0.1:8080/v1", "timeout_s": 30,
            "max_attempts": 2, "deadline_s": 90, "context_window": 2048, "max_output_tokens": 512}"#,
        |_| None,
    )
    .unwrap();
    assert_eq!(cfg.timeout, Duration::from_secs(30));
    assert_eq!(cfg.retry.max_attempts, 2);
    assert_eq!(cfg.deadline, Some(Duration::from_secs(90)));
    assert_eq!(cfg.context_window(), 2048);
    assert_eq!(cfg.max_output_tokens, Some(512));
    assert!(cfg.models.is_empty(), "no model: ask the server");
    let bad =
        llm::ProviderConfig::from_json(r#"{"provider": "openai", "timeout_s": -1}"#, |_| None);
    assert!(matches!(bad, Err(LlmError::Config(m)) if m.contains("timeout_s")));
}

#[test]
fn overrides_replace_what_the_config_says() {
    let mut cfg = llm::ProviderConfig::from_json(
        r#"{"provider": "openai", "model": "a", "timeout_s": 30, "max_attempts": 2}"#,
        |_| None,
    )
    .unwrap();
    assert_eq!(cfg.deadline, Some(llm::DEFAULT_DEADLINE));
    cfg.apply(&llm::Overrides {
        model: Some("b,c".into()),
        context_window: Some(4096),
        max_output_tokens: Some(128),
        timeout: Some(Duration::from_secs(5)),
        attempts: Some(1),
        deadline: Some(Duration::from_secs(20)),
    })
    .unwrap();
    assert_eq!(cfg.models, ["b", "c"]);
    assert_eq!(cfg.context_window(), 4096);
    assert_eq!(cfg.max_output_tokens, Some(128));
    assert_eq!(cfg.timeout, Duration::from_secs(5));
    assert_eq!(cfg.retry.max_attempts, 1);
    assert_eq!(cfg.deadline, Some(Duration::from_secs(20)));
    let zero = cfg.apply(&llm::Overrides {
        attempts: Some(0),
        ..Default::default()
    });
    assert!(matches!(zero, Err(LlmError::Config(_))));
}

#[tokio::test]
async fn large_error_bodies_are_clipped_in_records_and_errors() {
    let big = "e".repeat(1024 * 1024);
    let server = FakeServer::start(vec![Reply::json(
        400,
        openai::error(&big, "invalid_request_error", Value::Null),
    )])
    .await;
    let failure = connect_openai(&server, "m")
        .chat_recorded(&hi())
        .await
        .unwrap_err();
    assert!(failure.error.to_string().len() < 2_100);
    let recorded = serde_json::to_string(&failure.exchanges).unwrap();
    assert!(
        recorded.len() < 80 * 1024,
        "recorded {} bytes",
        recorded.len()
    );
}
