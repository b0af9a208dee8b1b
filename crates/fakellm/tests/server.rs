//! The fake server itself (scripting, recording, exhaustion) over plain HTTP, and each
//! provider module's replies read back through the real `llm` clients, so a helper that drifts
//! from what the adapters understand fails here rather than in a scenario far away.

use fakellm::{FakeServer, Reply, anthropic, gemini, openai};
use llm::{ChatRequest, LlmError, Message, Provider, ThinkingLevel};
use serde_json::json;

#[tokio::test]
async fn serves_the_script_in_order_and_records_requests() {
    let server = FakeServer::start(vec![
        Reply::ok(json!({"n": 1})).header("retry-after", "3"),
        Reply::json(503, json!({"n": 2})),
    ])
    .await;
    server.push([Reply::ok(json!({"n": 3}))]);
    assert_eq!(server.unused(), 3);
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for i in 0..4 {
        let response = http
            .post(format!("{}/v1/x?alt=json", server.base))
            .header("x-test", format!("req-{i}"))
            .json(&json!({"i": i}))
            .send()
            .await
            .unwrap();
        if i == 0 {
            assert_eq!(response.headers()["retry-after"], "3");
        }
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        statuses.push((status, body));
    }
    assert_eq!(statuses[0], (200, r#"{"n":1}"#.to_string()));
    assert_eq!(statuses[1], (503, r#"{"n":2}"#.to_string()));
    assert_eq!(statuses[2], (200, r#"{"n":3}"#.to_string()));
    assert_eq!(statuses[3].0, 418, "an exhausted script answers 418");
    let seen = server.requests();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[1].path, "/v1/x");
    assert_eq!(seen[1].query.as_deref(), Some("alt=json"));
    assert_eq!(seen[1].header("x-test"), Some("req-1"));
    assert_eq!(server.bodies()[2], json!({"i": 2}));
    assert_eq!(server.unused(), 0);
    assert_eq!(
        server.base_url(Provider::OpenAi),
        format!("{}/v1", server.base)
    );
    assert_eq!(server.base_url(Provider::Gemini), server.base);
}

fn request() -> ChatRequest {
    ChatRequest {
        system: "sys".into(),
        messages: vec![Message::user_text("hi")],
        tools: Vec::new(),
        temperature: None,
        thinking: ThinkingLevel::Default,
        max_output_tokens: None,
        force_tool: None,
    }
}

struct Helpers {
    provider: Provider,
    text: fn(&str) -> Reply,
    rate_limited: Reply,
    server_error: Reply,
    overflow: Reply,
    daily_quota: Reply,
}

fn helpers() -> [Helpers; 3] {
    [
        Helpers {
            provider: Provider::Gemini,
            text: gemini::text_reply,
            rate_limited: gemini::rate_limited("0s"),
            server_error: gemini::server_error(),
            overflow: gemini::overflow(),
            daily_quota: gemini::daily_quota(),
        },
        Helpers {
            provider: Provider::OpenAi,
            text: openai::text_reply,
            rate_limited: openai::rate_limited("0"),
            server_error: openai::server_error(),
            overflow: openai::overflow(),
            daily_quota: openai::daily_quota(),
        },
        Helpers {
            provider: Provider::Anthropic,
            text: anthropic::text_reply,
            rate_limited: anthropic::rate_limited("0"),
            server_error: anthropic::overloaded(),
            overflow: anthropic::overflow(),
            daily_quota: anthropic::daily_quota(),
        },
    ]
}

async fn chat(
    h: &Helpers,
    models: &str,
    script: Vec<Reply>,
) -> (Result<llm::ChatResponse, llm::ChatFailure>, FakeServer) {
    let server = FakeServer::start(script).await;
    let model = llm::connect(server.config(h.provider, models, Some("test-key-123"))).unwrap();
    let result = model.chat_recorded(&request()).await;
    (result, server)
}

#[tokio::test]
async fn provider_replies_mean_what_their_names_say_to_the_real_clients() {
    for h in helpers() {
        let p = h.provider;
        let (ok, _) = chat(&h, "m", vec![(h.text)("hello")]).await;
        assert_eq!(ok.unwrap().message.text(), "hello", "{p}");

        let (retried, _) = chat(&h, "m", vec![h.rate_limited.clone(), (h.text)("later")]).await;
        let retried = retried.unwrap();
        assert!(
            retried.exchanges[0]
                .outcome
                .starts_with("retry after 0.000s"),
            "{p}: {}",
            retried.exchanges[0].outcome
        );

        let (after_error, _) = chat(&h, "m", vec![h.server_error.clone(), (h.text)("fine")]).await;
        let statuses: Vec<_> = after_error
            .unwrap()
            .exchanges
            .iter()
            .map(|e| e.status)
            .collect();
        assert_eq!(statuses[1], Some(200), "{p}");
        assert!(statuses[0].is_some_and(|s| s >= 500), "{p}");

        let (overflow, server) = chat(&h, "m", vec![h.overflow.clone()]).await;
        let failure = overflow.unwrap_err();
        assert!(
            matches!(failure.error, LlmError::InputTooLong { .. }),
            "{p}: {}",
            failure.error
        );
        assert_eq!(failure.exchanges().len(), 1, "{p}");
        assert_eq!(server.unused(), 0);

        let (fallback, server) = chat(
            &h,
            "m1,m2",
            vec![h.daily_quota.clone(), (h.text)("from m2")],
        )
        .await;
        assert_eq!(fallback.unwrap().model, "m2", "{p}");
        assert_eq!(server.requests().len(), 2);
    }
}

#[tokio::test]
async fn gemini_malformed_function_call_is_retried_by_the_client() {
    let h = &helpers()[0];
    let (result, _) = chat(
        h,
        "m",
        vec![
            gemini::malformed_function_call(),
            gemini::reply(vec![gemini::call("grep", json!({"pattern": "x"}))], "STOP"),
        ],
    )
    .await;
    let response = result.unwrap();
    assert!(
        response.exchanges[0]
            .outcome
            .contains("MALFORMED_FUNCTION_CALL")
    );
    assert_eq!(response.message.tool_calls().count(), 1);
}
