//! What the streamable HTTP endpoint checks before rmcp's service sees a request:
//!
//! - `Origin`: the MCP spec requires servers to validate it against DNS rebinding, and rmcp
//!   leaves it unchecked by default. A browser page on another site must not drive a local
//!   server, so only loopback origins (and the bound address, for a deliberate LAN bind) pass;
//!   others get HTTP 403. Requests without `Origin` (every non-browser client) pass.
//! - The body of a POST, read up to [`MAX_MESSAGE_BYTES`] (HTTP 413 past that) and checked by
//!   [`wire::check_message`]: malformed JSON gets HTTP 400 with a JSON-RPC `-32700` body (rmcp
//!   answers 415, which clients report as a transport failure), a malformed `tools/call` a
//!   JSON-RPC `-32602` under its id.
//! - The number of sessions: an `initialize` that would open more than [`MAX_SESSIONS`] gets
//!   HTTP 503 with a JSON-RPC error. Sessions idle for [`SESSION_IDLE`] are closed by rmcp.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use serde_json::Value;

use crate::wire::{self, MAX_MESSAGE_BYTES};

/// Most sessions open at once; each costs tens of KB until it is closed or expires.
pub const MAX_SESSIONS: usize = 64;

/// A session without a request for this long is closed (rmcp's default is 300 s).
pub const SESSION_IDLE: Duration = Duration::from_secs(120);

/// JSON-RPC's implementation-defined server error, for "too many sessions".
const SERVER_BUSY: i64 = -32000;

/// State of the checks: the bound address and the session store they count.
#[derive(Clone)]
pub struct HttpGuard {
    addr: SocketAddr,
    sessions: Arc<LocalSessionManager>,
    /// Held while an `initialize` is served, so concurrent ones cannot all pass the count.
    opening: Arc<tokio::sync::Mutex<()>>,
}

impl HttpGuard {
    pub fn new(addr: SocketAddr, sessions: Arc<LocalSessionManager>) -> Self {
        Self {
            addr,
            sessions,
            opening: Arc::default(),
        }
    }
}

/// The session store the service uses, with [`SESSION_IDLE`] as its idle timeout.
pub fn session_manager() -> Arc<LocalSessionManager> {
    let mut manager = LocalSessionManager::default();
    manager.session_config.keep_alive = Some(SESSION_IDLE);
    Arc::new(manager)
}

/// Whether a request with this `Origin` may reach the server.
pub fn origin_allowed(origin: &str, bound: SocketAddr) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        // Includes "null" (sandboxed frames, file: pages): not a local origin.
        return false;
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return false;
    }
    // An origin is scheme://host[:port] with no path; the host may be a bracketed IPv6 address.
    let host = if let Some(v6) = rest.strip_prefix('[') {
        match v6.split_once(']') {
            Some((host, port)) if port.is_empty() || port.starts_with(':') => host,
            _ => return false,
        }
    } else {
        match rest.rsplit_once(':') {
            Some((host, _port)) => host,
            None => rest,
        }
    };
    if host.is_empty() || host.contains(['/', '@', '?', '#']) {
        return false;
    }
    let host = host.to_ascii_lowercase();
    if host == "localhost" {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback() || (!bound.ip().is_unspecified() && ip == bound.ip()),
        Err(_) => false,
    }
}

fn json_rpc_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The axum middleware running the checks; see the module documentation.
pub async fn check(State(guard): State<HttpGuard>, request: Request, next: Next) -> Response {
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let allowed = origin
            .to_str()
            .is_ok_and(|origin| origin_allowed(origin, guard.addr));
        if !allowed {
            tracing::warn!(origin = ?origin, "MCP HTTP request from a foreign Origin refused");
            return (
                StatusCode::FORBIDDEN,
                "Forbidden: Origin is not allowed (only local origins may use this server)",
            )
                .into_response();
        }
    }
    if request.method() != axum::http::Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_MESSAGE_BYTES).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(error = %e, "MCP HTTP request body refused");
            return json_rpc_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &wire::too_large_reply(Value::Null, MAX_MESSAGE_BYTES + 1),
            );
        }
    };
    // Only JSON bodies are ours to judge; rmcp answers a wrong Content-Type with 415 itself.
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    let mut opening = None;
    if is_json {
        if let Some(reply) = wire::check_message(&bytes) {
            let status = if reply["error"]["code"] == wire::PARSE_ERROR {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            return json_rpc_response(status, &reply);
        }
        let message: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let opens_session = message["method"] == "initialize"
            && message.get("id").is_some()
            && !parts.headers.contains_key("mcp-session-id");
        if opens_session {
            let lock = guard.opening.clone().lock_owned().await;
            let open = guard.sessions.sessions.read().await.len();
            if open >= MAX_SESSIONS {
                tracing::warn!(open, "MCP HTTP session refused: too many open sessions");
                let reply = wire::error_reply(
                    message["id"].clone(),
                    SERVER_BUSY,
                    format!(
                        "too many open sessions ({open}, the limit is {MAX_SESSIONS}); close one \
                         (HTTP DELETE) or retry after idle ones expire ({} s)",
                        SESSION_IDLE.as_secs()
                    ),
                );
                let mut response = json_rpc_response(StatusCode::SERVICE_UNAVAILABLE, &reply);
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
                return response;
            }
            opening = Some(lock);
        }
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    // The session exists once its `initialize` is answered; only then may the next one count.
    drop(opening);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_origins_pass_and_foreign_ones_do_not() {
        let bound: SocketAddr = "127.0.0.1:8765".parse().unwrap();
        for origin in [
            "http://localhost",
            "http://localhost:6274",
            "https://LOCALHOST:1",
            "http://127.0.0.1:8765",
            "http://127.0.0.2",
            "http://[::1]:3000",
        ] {
            assert!(origin_allowed(origin, bound), "{origin}");
        }
        for origin in [
            "null",
            "http://evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example:80",
            "http://192.168.1.5:8765",
            "file://",
            "ftp://localhost",
            "http://[::2]:1",
            "http://user@localhost",
            "",
        ] {
            assert!(!origin_allowed(origin, bound), "{origin}");
        }
    }

    #[test]
    fn a_lan_bind_also_allows_its_own_address_as_origin() {
        let bound: SocketAddr = "192.168.1.5:8765".parse().unwrap();
        assert!(origin_allowed("http://192.168.1.5:8765", bound));
        assert!(!origin_allowed("http://192.168.1.6:8765", bound));
        let any: SocketAddr = "0.0.0.0:8765".parse().unwrap();
        assert!(!origin_allowed("http://0.0.0.0:8765", any));
    }

    #[test]
    fn sessions_expire_sooner_than_rmcps_default() {
        let manager = session_manager();
        assert_eq!(manager.session_config.keep_alive, Some(SESSION_IDLE));
        assert!(SESSION_IDLE < Duration::from_secs(300));
    }
}
