/*!
Scripted fake LLM provider servers on 127.0.0.1, for tests only (`publish = false`).

The principal type is [`FakeServer`]: an HTTP server on an ephemeral loopback port that answers
every request, whatever its path, with the next [`Reply`] of its script, and records what it
received ([`Recorded`]: path, query, headers, JSON body, arrival time). Tests point a real
provider client at it (`llm::connect(server.config(provider, models, key))`) and then assert
both what the client made of the replies and what it *sent* — the wire format, the echoed
thought signatures, the retry timing.

The provider modules build replies in each provider's documented wire format, so tests read as
conversations rather than JSON:
- [`gemini`]: `models.generateContent` (`GenerateContentResponse`, `google.rpc.Status` errors
  with `RetryInfo` / `QuotaFailure` details, `MALFORMED_FUNCTION_CALL`);
- [`openai`]: chat completions (`choices[].message.tool_calls`, error objects, `Retry-After`);
- [`anthropic`]: Messages (`content` blocks incl. `thinking` + `signature`, typed errors).

The whole API:
- [`FakeServer::start`]`(Vec<Reply>)`, [`FakeServer::push`], [`FakeServer::requests`] /
  [`FakeServer::bodies`] (what arrived), [`FakeServer::unused`] (replies left; assert 0),
  [`FakeServer::base_url`] / [`FakeServer::config`] (a `ProviderConfig` aimed at the server);
- [`Reply::ok`] / [`Reply::json`] with [`Reply::header`] and [`Reply::delayed`];
  [`Reply::raw`] for non-JSON bodies (proxy pages, garbage, oversized answers) and
  [`Reply::models`] for an OpenAI-compatible `GET /v1/models` list ([`Recorded::method`] tells
  the `GET` from the `POST`s);
- [`config`]: a fast-retry `ProviderConfig` for any base URL; [`gap`]: time between requests;
- per provider (`gemini::`, `openai::`, `anthropic::`): `text_reply`, tool-call turns
  (`gemini::reply` + `call`/`signed`/`thought`, `openai::calls_reply` + `tool_call`,
  `anthropic::reply` + `tool_use`/`thinking`), and the failures `rate_limited(delay)`,
  `server_error()`, `overflow()`, `daily_quota()` (plus `gemini::malformed_function_call()`,
  `anthropic::overloaded()`, and llama.cpp's `openai::llama_overflow(status)` and
  `openai::template_error()`).

A typical test:

```no_run
# async fn demo() {
use fakellm::{FakeServer, gemini};
use llm::Provider;
let server = FakeServer::start(vec![
    gemini::rate_limited("0.05s"),
    gemini::reply(vec![gemini::text("benign")], "STOP"),
])
.await;
let model = llm::connect(server.config(Provider::Gemini, "gemini-test", Some("k"))).unwrap();
// ... drive `model`, then:
assert_eq!(server.requests().len(), 2);
assert_eq!(server.unused(), 0);
# }
```

Why a crate: the `llm` adapter tests, the `agent` end-to-end tests and the `assess` expert tests
all need the same server; keeping it in one dev-only crate keeps the provider shapes in one
place. Its helpers panic on setup failure (no free port), as test scaffolding should: a test
cannot proceed without its server.
*/

pub mod anthropic;
pub mod gemini;
pub mod openai;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use llm::{Provider, ProviderConfig, RetryPolicy, Secret};
use serde_json::Value;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// Wait this long before answering (to trigger client timeouts).
    pub delay: Duration,
    /// Sent verbatim instead of `body` (non-JSON answers: proxy pages, garbage, huge bodies).
    pub raw: Option<String>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body,
            delay: Duration::ZERO,
            raw: None,
        }
    }

    /// A non-JSON answer with `status` and `text` as the body, verbatim.
    pub fn raw(status: u16, text: impl Into<String>) -> Self {
        Reply {
            raw: Some(text.into()),
            ..Self::json(status, Value::Null)
        }
    }

    /// An OpenAI-compatible `GET /v1/models` answer listing `ids`.
    pub fn models(ids: &[&str]) -> Self {
        let data: Vec<Value> = ids
            .iter()
            .map(|id| serde_json::json!({"id": id, "object": "model", "owned_by": "fakellm"}))
            .collect();
        Self::ok(serde_json::json!({"object": "list", "data": data}))
    }

    pub fn ok(body: Value) -> Self {
        Self::json(200, body)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `GET` or `POST`.
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// The JSON body; `Value::Null` when the body was not JSON.
    pub body: Value,
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Recorded>>,
}

/// A poisoned lock only means another request handler panicked; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A scripted provider server; stops when dropped.
pub struct FakeServer {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeServer {
    /// Binds an ephemeral port on 127.0.0.1 and serves `script`. Once the script is exhausted
    /// every request gets `418 fake server script exhausted`, which no provider adapter retries
    /// as success, so an over-long conversation fails visibly.
    ///
    /// # Panics
    /// When no loopback port can be bound (the test cannot run without its server).
    pub async fn start(script: Vec<Reply>) -> FakeServer {
        let shared = Arc::new(Shared {
            script: Mutex::new(script.into()),
            seen: Mutex::default(),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("fakellm: cannot bind 127.0.0.1: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("fakellm: no local address: {e}"));
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("fakellm: server stopped: {e}");
            }
        });
        FakeServer {
            base: format!("http://{addr}"),
            shared,
            task,
        }
    }

    /// Appends replies to the script (for conversations built in steps).
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.shared.script).extend(replies);
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.seen).clone()
    }

    /// The JSON bodies of [`FakeServer::requests`].
    pub fn bodies(&self) -> Vec<Value> {
        self.requests().into_iter().map(|r| r.body).collect()
    }

    /// Replies not consumed; tests assert 0 so a scenario can't silently stop early.
    pub fn unused(&self) -> usize {
        lock(&self.shared.script).len()
    }

    /// The base URL a provider's client takes: the host root for Gemini and Anthropic, the
    /// `/v1` prefix for OpenAI-compatible servers (see `llm::Provider::default_base_url`).
    pub fn base_url(&self, provider: Provider) -> String {
        match provider {
            Provider::OpenAi => format!("{}/v1", self.base),
            Provider::Gemini | Provider::Anthropic => self.base.clone(),
        }
    }

    /// [`config`] aimed at this server with the provider's base URL.
    pub fn config(&self, provider: Provider, models: &str, key: Option<&str>) -> ProviderConfig {
        config(provider, models, &self.base_url(provider), key)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    lock(&shared.seen).push(Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        headers,
        body,
        at: Instant::now(),
    });
    let next = lock(&shared.script).pop_front();
    let Some(reply) = next else {
        return (StatusCode::IM_A_TEAPOT, "fake server script exhausted").into_response();
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match reply.raw {
        Some(raw) => (status, raw).into_response(),
        None => (status, axum::Json(reply.body)).into_response(),
    };
    for (name, value) in reply.headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            (Ok(n), Ok(v)) => {
                response.headers_mut().insert(n, v);
            }
            _ => eprintln!("fakellm: skipping invalid scripted header {name:?}"),
        }
    }
    response
}

/// A config for `provider` at `base` with a fast retry policy (3 attempts, at most 10 ms of
/// backoff, server-requested delays honoured up to 5 s) and a 10 s timeout, so retry tests
/// stay fast while a server-requested delay remains measurable.
pub fn config(provider: Provider, models: &str, base: &str, key: Option<&str>) -> ProviderConfig {
    let mut cfg = ProviderConfig::new(provider, models, base, key.map(Secret::new));
    cfg.timeout = Duration::from_secs(10);
    cfg.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_backoff: Duration::from_millis(10),
        max_server_delay: Duration::from_secs(5),
    };
    cfg
}

/// Time between the arrival of request `i` and `i + 1`.
///
/// # Panics
/// When fewer than `i + 2` requests were recorded.
pub fn gap(requests: &[Recorded], i: usize) -> Duration {
    requests[i + 1].at.duration_since(requests[i].at)
}
