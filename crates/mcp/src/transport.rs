//! The two ways a client reaches [`RacejudgeMcp`]:
//!
//! - [`serve_stdio`]: newline-delimited JSON-RPC on stdin/stdout, the way Claude Code and
//!   Gemini CLI launch local servers. stdout carries protocol messages only, so all logging must
//!   go to stderr (the binary's tracing subscriber writes there).
//! - [`serve_http`] / [`HttpServer`]: MCP streamable HTTP at [`MCP_HTTP_PATH`], with rmcp's
//!   session manager (`Mcp-Session-Id`) and SSE-framed responses, hosted on axum.
//!
//! Both take a `shutdown` future (ctrl-c / SIGTERM in the binary) and return once the server has
//! stopped; the stdio one also returns when the client closes stdin.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use rmcp::ServiceExt;
use rmcp::service::QuitReason;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;

use crate::{McpError, RacejudgeMcp};

/// The URL path the streamable HTTP endpoint is mounted at.
pub const MCP_HTTP_PATH: &str = "/mcp";

/// Serves one MCP session on stdin/stdout until the client closes stdin or `shutdown` resolves.
///
/// Must run on a Tokio runtime with I/O enabled (`enable_all`/`enable_io`): the pipe transport
/// registers stdin/stdout with the reactor.
pub async fn serve_stdio(
    server: RacejudgeMcp,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), McpError> {
    // The pipe-aware transport keeps reads on the reactor when the client spawned us with pipes
    // (the usual case), so a pending stdin read does not pin a blocking thread at shutdown.
    let running = server
        .serve(rmcp::transport::stdio_pipes())
        .await
        .map_err(|e| McpError::Start(e.to_string()))?;
    let cancel = running.cancellation_token();
    let stopper = tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutdown requested; closing the MCP session");
        cancel.cancel();
    });
    let reason = running.waiting().await;
    stopper.abort();
    match reason {
        Ok(QuitReason::Closed) => {
            tracing::info!("client closed the MCP session");
            Ok(())
        }
        Ok(QuitReason::Cancelled) => Ok(()),
        Ok(QuitReason::JoinError(e)) | Err(e) => Err(McpError::Session(e.to_string())),
        Ok(other) => Err(McpError::Session(format!("{other:?}"))),
    }
}

/// A bound, not yet serving, streamable HTTP endpoint: binding is separate from serving so the
/// caller can print the real address (port 0 picks a free one) before the first request.
pub struct HttpServer {
    listener: TcpListener,
    addr: SocketAddr,
}

impl HttpServer {
    /// Binds `addr`. Non-loopback addresses work but are logged: the tools expose the kernel tree
    /// to anyone who can reach the port.
    pub async fn bind(addr: SocketAddr) -> Result<Self, McpError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| McpError::Http {
                addr: addr.to_string(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| McpError::Http {
            addr: addr.to_string(),
            source,
        })?;
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "MCP HTTP server bound to a non-loopback address; it has no authentication");
        }
        Ok(Self { listener, addr })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/mcp`, what clients are configured with.
    pub fn url(&self) -> String {
        format!("http://{}{MCP_HTTP_PATH}", self.addr)
    }

    /// Serves until `shutdown` resolves, then ends every session and waits for open connections.
    pub async fn serve(
        self,
        server: RacejudgeMcp,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), McpError> {
        let config = StreamableHttpServerConfig::default()
            .with_allowed_hosts(allowed_hosts(self.addr))
            .with_sse_keep_alive(Some(std::time::Duration::from_secs(15)));
        let sessions_token = config.cancellation_token.clone();
        let service = StreamableHttpService::new(
            move || Ok(server.clone()),
            Arc::new(LocalSessionManager::default()),
            config,
        );
        let app = axum::Router::new().nest_service(MCP_HTTP_PATH, service);
        let addr = self.addr;
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                tracing::info!("shutdown requested; closing MCP HTTP sessions");
                // Open SSE streams would otherwise keep graceful shutdown waiting forever.
                sessions_token.cancel();
            })
            .await
            .map_err(|source| McpError::Http {
                addr: addr.to_string(),
                source,
            })
    }
}

/// Binds `addr` and serves until `shutdown` resolves.
pub async fn serve_http(
    server: RacejudgeMcp,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), McpError> {
    HttpServer::bind(addr).await?.serve(server, shutdown).await
}

/// The `Host` values accepted: the loopback names (rmcp's DNS-rebinding defence) plus the bound
/// IP, so a server deliberately bound to a LAN address can be reached by that address.
fn allowed_hosts(addr: SocketAddr) -> Vec<String> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .into_iter()
        .map(String::from)
        .collect();
    let ip = addr.ip();
    if !ip.is_unspecified() && !hosts.contains(&ip.to_string()) {
        hosts.push(ip.to_string());
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_binds_accept_only_loopback_hosts() {
        let hosts = allowed_hosts("127.0.0.1:8765".parse().unwrap());
        assert_eq!(hosts, ["localhost", "127.0.0.1", "::1"]);
    }

    #[test]
    fn a_lan_bind_also_accepts_its_own_address() {
        let hosts = allowed_hosts("192.168.1.5:8765".parse().unwrap());
        assert!(hosts.contains(&"192.168.1.5".to_string()));
        assert!(!allowed_hosts("0.0.0.0:1".parse().unwrap()).contains(&"0.0.0.0".to_string()));
    }
}
