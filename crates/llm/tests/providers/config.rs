//! Configuration: environment, JSON config files, key handling, connection errors.

use std::collections::HashMap;

use llm::{LlmError, Provider, ProviderConfig, Secret};

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn from_lookup_reads_key_base_url_and_model_chain() {
    let cfg = ProviderConfig::from_lookup(
        Provider::Gemini,
        Some("gemini-3-pro-preview, gemini-3-flash-preview"),
        None,
        env(&[
            ("GEMINI_API_KEY", "AIza-secret"),
            ("GEMINI_BASE_URL", "http://127.0.0.1:9"),
        ]),
    )
    .unwrap();
    assert_eq!(
        cfg.models,
        ["gemini-3-pro-preview", "gemini-3-flash-preview"]
    );
    assert_eq!(cfg.base_url, "http://127.0.0.1:9");
    assert_eq!(
        cfg.api_key.as_ref().map(Secret::expose),
        Some("AIza-secret")
    );
    assert!(!format!("{cfg:?}").contains("AIza-secret"));
    assert_eq!(cfg.context_window(), 1_048_576);

    let openai = ProviderConfig::from_lookup(Provider::OpenAi, None, None, env(&[])).unwrap();
    assert_eq!(openai.base_url, "https://api.openai.com/v1");
    assert!(
        openai.api_key.is_none(),
        "OpenAI-compatible servers may run keyless"
    );
}

#[test]
fn missing_key_names_the_variable() {
    let err = ProviderConfig::from_lookup(Provider::Anthropic, None, None, env(&[])).unwrap_err();
    assert!(
        matches!(&err, LlmError::Config(m) if m.contains("ANTHROPIC_API_KEY")),
        "{err}"
    );
}

#[test]
fn config_file_names_the_key_variable_and_refuses_literal_keys() {
    let cfg = ProviderConfig::from_json(
        r#"{"provider": "anthropic", "model": "claude-a,claude-b", "base_url": "http://127.0.0.1:1",
            "api_key_env": "MY_CLAUDE_KEY", "max_attempts": 2, "context_window": 100000}"#,
        env(&[("MY_CLAUDE_KEY", "sk-ant-x")]),
    )
    .unwrap();
    assert_eq!(cfg.provider, Provider::Anthropic);
    assert_eq!(cfg.models, ["claude-a", "claude-b"]);
    assert_eq!(cfg.retry.max_attempts, 2);
    assert_eq!(cfg.context_window(), 100_000);
    assert_eq!(cfg.api_key.as_ref().map(Secret::expose), Some("sk-ant-x"));

    let err =
        ProviderConfig::from_json(r#"{"provider": "openai", "api_key": "sk-live"}"#, env(&[]))
            .unwrap_err();
    assert!(
        err.to_string().contains("api_key_env") && !err.to_string().contains("sk-live"),
        "{err}"
    );

    let err = ProviderConfig::from_json(r#"{"provider": "mistral"}"#, env(&[])).unwrap_err();
    assert!(
        err.to_string().contains("unknown provider \"mistral\""),
        "{err}"
    );

    let err =
        ProviderConfig::from_json(r#"{"provider": "openai", "modle": "x"}"#, env(&[])).unwrap_err();
    assert!(err.to_string().contains("modle"), "{err}");
}

#[test]
fn config_file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llm.json");
    std::fs::write(&path, "{not json").unwrap();
    let err = ProviderConfig::from_file(&path).unwrap_err();
    assert!(
        err.to_string().contains("llm.json") && err.to_string().contains("invalid JSON"),
        "{err}"
    );
    let err = ProviderConfig::from_file(&dir.path().join("missing.json")).unwrap_err();
    assert!(err.to_string().contains("missing.json"), "{err}");
}

#[test]
fn connect_rejects_bad_configuration() {
    let bad_url = ProviderConfig::new(Provider::OpenAi, "m", "not a url", None);
    assert!(
        matches!(llm::connect(bad_url), Err(LlmError::Config(m)) if m.contains("invalid base URL"))
    );
    let query = ProviderConfig::new(
        Provider::Gemini,
        "m",
        "https://h/?key=abc",
        Some(Secret::new("abc")),
    );
    assert!(matches!(llm::connect(query), Err(LlmError::Config(m)) if m.contains("query string")));
    let no_model = ProviderConfig::new(
        Provider::Anthropic,
        " , ",
        "http://127.0.0.1:1",
        Some(Secret::new("k")),
    );
    assert!(matches!(llm::connect(no_model), Err(LlmError::Config(m)) if m.contains("no model")));
    let traversal = ProviderConfig::new(
        Provider::Gemini,
        "../../x",
        "http://127.0.0.1:1",
        Some(Secret::new("k")),
    );
    assert!(
        matches!(llm::connect(traversal), Err(LlmError::Config(m)) if m.contains("invalid model name"))
    );
    let keyless = ProviderConfig::new(
        Provider::Gemini,
        "gemini-3-flash-preview",
        "http://127.0.0.1:1",
        None,
    );
    assert!(
        matches!(llm::connect(keyless), Err(LlmError::Config(m)) if m.contains("GEMINI_API_KEY"))
    );
}

#[test]
fn detection_prefers_providers_with_keys() {
    assert_eq!(llm::detect_with(env(&[])), None);
    assert_eq!(
        llm::detect_with(env(&[("OPENAI_API_KEY", "k"), ("ANTHROPIC_API_KEY", "k")])),
        Some(Provider::Anthropic)
    );
    assert_eq!(
        llm::detect_with(env(&[("GEMINI_API_KEY", "k"), ("OPENAI_API_KEY", "k")])),
        Some(Provider::Gemini)
    );
    assert_eq!(
        llm::detect_with(env(&[("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")])),
        Some(Provider::OpenAi)
    );
    assert_eq!(llm::detect_with(env(&[("GEMINI_API_KEY", "  ")])), None);
}

#[test]
fn secret_never_prints() {
    let s = Secret::new("sk-very-secret");
    assert_eq!(format!("{s} {s:?}"), "[REDACTED] [REDACTED]");
    assert_eq!(s.expose(), "sk-very-secret");
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    // Bind and drop a listener to get a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = crate::common::config(
        Provider::OpenAi,
        "m",
        &format!("http://127.0.0.1:{port}/v1"),
        Some("sk-conn"),
    );
    let model = llm::connect(cfg).unwrap();
    let err = model
        .chat(&crate::common::request(vec![llm::Message::user_text("hi")]))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("3 attempts") && text.contains("connection failed"),
        "{text}"
    );
    assert!(!text.contains("sk-conn"));
}

#[test]
fn keys_that_cannot_be_headers_are_rejected_up_front() {
    let cfg = ProviderConfig::new(
        Provider::Anthropic,
        "claude-x",
        "http://127.0.0.1:1",
        Some(Secret::new("sk ant\n")),
    );
    let Err(err) = llm::connect(cfg) else {
        panic!("a key with whitespace was accepted")
    };
    assert!(
        err.to_string().contains("whitespace or non-ASCII") && !err.to_string().contains("sk ant"),
        "{err}"
    );
}
