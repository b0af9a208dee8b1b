//! The racejudge service's HTTP side: the REST API under `/api/v1` ([`api`]) and the
//! server-rendered HTML pages ([`pages`]), both over one [`store::Store`].
//!
//! The server never runs a tool or an expert: it queues jobs, and workers (crate `worker`) claim
//! and run them. Every string that came from a report, a model or a user is HTML-escaped
//! ([`html::esc`]) before it reaches a page; every form carries a CSRF token bound to this
//! process's secret.

pub mod api;
pub mod html;
pub mod pages;

use std::future::Future;
use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use store::{Store, StoreError};

/// What every handler sees.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Random per process: CSRF tokens are MACs under it, so a page from another site cannot
    /// forge one (it cannot read ours). A restart invalidates open forms, which is acceptable.
    csrf_key: Arc<[u8; 32]>,
}

impl AppState {
    pub fn new(store: Store) -> Self {
        AppState {
            store,
            csrf_key: Arc::new(rand::random()),
        }
    }

    /// The CSRF token for forms acting on `scope` (a job id, or `submit`).
    pub fn csrf_token(&self, scope: &str) -> String {
        use sha2::Digest;
        let mut mac = sha2::Sha256::new();
        mac.update(self.csrf_key.as_slice());
        mac.update(b"\0csrf\0");
        mac.update(scope.as_bytes());
        mac.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `token` is the one [`AppState::csrf_token`] made for `scope`, in constant time.
    pub fn csrf_ok(&self, scope: &str, token: &str) -> bool {
        let want = self.csrf_token(scope);
        want.len() == token.len()
            && want
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// The whole application: API and pages.
pub fn router(store: Store) -> axum::Router {
    let state = AppState::new(store);
    axum::Router::new()
        .nest("/api/v1", api::routes())
        .merge(pages::routes())
        .fallback(|| async { ApiError::NotFound("no such page".into()) })
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` completes; requests in flight finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(store))
        .with_graceful_shutdown(shutdown)
        .await
}

/// An HTTP error with a JSON body `{"error": "...", "status": N}` naming the problem.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    TooLarge(String),
    /// The database failed: the detail goes to the log, not to the client.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NoSuchJob(_) | StoreError::NoSuchUser(_) => {
                ApiError::NotFound(err.to_string())
            }
            StoreError::WrongState { .. } | StoreError::Stale { .. } | StoreError::Conflict(_) => {
                ApiError::Conflict(err.to_string())
            }
            StoreError::Invalid(_) => ApiError::BadRequest(err.to_string()),
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::Internal
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        (
            status,
            Json(json!({ "error": self.to_string(), "status": status.as_u16() })),
        )
            .into_response()
    }
}
