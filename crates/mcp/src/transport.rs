//! The two ways a client reaches [`RacejudgeMcp`]:
//!
//! - [`serve_stdio`]: newline-delimited JSON-RPC on stdin/stdout, the way Claude Code and
//!   Gemini CLI launch local servers. stdout carries protocol messages only, so all logging must
//!   go to stderr (the binary's tracing subscriber writes there). Lines are read and checked
//!   here ([`serve_lines`], [`crate::wire`]) and only well-formed ones reach rmcp.
//! - [`serve_http`] / [`HttpServer`]: MCP streamable HTTP at [`MCP_HTTP_PATH`], with rmcp's
//!   session manager (`Mcp-Session-Id`) and SSE-framed responses, hosted on axum behind the
//!   checks of [`crate::http_guard`].
//!
//! Both take a `shutdown` future (ctrl-c / SIGTERM in the binary) and return once the server has
//! stopped; the stdio one also returns when the client closes stdin.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use rmcp::ServiceExt;
use rmcp::service::QuitReason;
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::http_guard;
use crate::wire::{self, IdScanner, MAX_MESSAGE_BYTES};
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
    // The pipe-aware handles keep reads on the reactor when the client spawned us with pipes
    // (the usual case), so a pending stdin read does not pin a blocking thread at shutdown.
    let (input, output) = rmcp::transport::stdio_pipes();
    serve_lines(server, input, output, shutdown).await
}

/// Serves one MCP session as newline-delimited JSON-RPC over `input`/`output` until `input`
/// ends or `shutdown` resolves: [`serve_stdio`] on any byte streams.
///
/// Every line is checked first ([`crate::wire`]): a line over [`MAX_MESSAGE_BYTES`] is skipped
/// without being buffered and answered with an error under its id, a line that is not JSON is
/// answered `-32700`, a malformed `tools/call` `-32602`; the rest goes to rmcp through an
/// in-memory pipe. One writer task owns `output`, so those answers and rmcp's never interleave
/// within a line.
pub async fn serve_lines<R, W>(
    server: RacejudgeMcp,
    input: R,
    output: W,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), McpError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (ours, rmcp_side) = tokio::io::duplex(PIPE_BYTES);
    let (from_rmcp, to_rmcp) = tokio::io::split(ours);
    let (lines_out, lines_in) = mpsc::channel::<Vec<u8>>(64);
    let writer = tokio::spawn(write_lines(output, lines_in));
    let relay = tokio::spawn(relay_lines(from_rmcp, lines_out.clone()));
    let reader = tokio::spawn(async move {
        if let Err(e) = read_input(input, to_rmcp, lines_out).await {
            tracing::warn!(error = %e, "reading MCP messages failed");
        }
    });

    let served = async {
        let (rmcp_read, rmcp_write) = tokio::io::split(rmcp_side);
        // rmcp counts the newline in its line limit; ours does not, so give it room for the
        // longest line we pass on (which would otherwise vanish without an answer).
        let transport = AsyncRwTransport::new_server(rmcp_read, rmcp_write)
            .with_max_line_length(MAX_MESSAGE_BYTES + 2);
        let running = server
            .serve(transport)
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
    .await;
    // rmcp is done: deliver what it wrote last, stop reading (a read of a terminal stdin never
    // ends by itself), then let the writer drain and finish.
    let _ = relay.await;
    reader.abort();
    let _ = reader.await;
    match writer.await {
        Ok(Err(e)) => tracing::warn!(error = %e, "writing MCP messages failed"),
        Err(e) => tracing::warn!(error = %e, "MCP writer task failed"),
        Ok(Ok(())) => {}
    }
    served
}

/// Capacity of the in-memory pipe to rmcp; a larger line just waits for rmcp to read it.
const PIPE_BYTES: usize = 64 * 1024;

/// How one bounded line read ended.
enum Line {
    /// A whole line is in the buffer (the last one may lack its newline).
    Complete,
    /// The line was longer than the limit: skipped, with the id it carried.
    Oversized {
        id: serde_json::Value,
        len: usize,
    },
    Eof,
}

/// Reads one line into `line` without ever holding more than `max` bytes of it: past that, the
/// rest is only scanned for the request id and dropped.
async fn read_bounded_line<R: AsyncBufRead + Unpin>(
    input: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    let mut scanner: Option<IdScanner> = None;
    let mut len = 0usize;
    loop {
        let chunk = input.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(match scanner {
                Some(scanner) => Line::Oversized {
                    id: scanner.id(),
                    len,
                },
                None if line.is_empty() => Line::Eof,
                None => Line::Complete,
            });
        }
        let newline = chunk.iter().position(|&b| b == b'\n');
        let piece = &chunk[..newline.unwrap_or(chunk.len())];
        len = len.saturating_add(piece.len());
        if let Some(scanner) = scanner.as_mut() {
            scanner.feed(piece);
        } else if line.len() + piece.len() > max {
            let mut fresh = IdScanner::default();
            fresh.feed(line);
            fresh.feed(piece);
            *line = Vec::new();
            scanner = Some(fresh);
        } else {
            line.extend_from_slice(piece);
        }
        let used = piece.len() + usize::from(newline.is_some());
        input.consume(used);
        if newline.is_some() {
            return Ok(match scanner {
                Some(scanner) => Line::Oversized {
                    id: scanner.id(),
                    len,
                },
                None => Line::Complete,
            });
        }
    }
}

/// The client's side: checks each line, answers what it must, passes the rest to rmcp.
async fn read_input<R, W>(
    input: R,
    mut to_rmcp: W,
    replies: mpsc::Sender<Vec<u8>>,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut input = BufReader::with_capacity(PIPE_BYTES, input);
    let mut line = Vec::new();
    loop {
        // One byte over the limit is read so that a trailing '\r' does not count against it.
        let reply = match read_bounded_line(&mut input, &mut line, MAX_MESSAGE_BYTES + 1).await? {
            Line::Eof => break,
            Line::Oversized { id, len } => {
                tracing::warn!(
                    len,
                    limit = MAX_MESSAGE_BYTES,
                    "MCP message over the size limit refused"
                );
                Some(wire::too_large_reply(id, len))
            }
            Line::Complete => {
                let text = line.strip_suffix(b"\r").unwrap_or(&line);
                if text.len() > MAX_MESSAGE_BYTES {
                    let mut scanner = IdScanner::default();
                    scanner.feed(text);
                    Some(wire::too_large_reply(scanner.id(), text.len()))
                } else if text.iter().all(u8::is_ascii_whitespace) {
                    None
                } else if let Some(reply) = wire::check_message(text) {
                    tracing::info!(reply = %reply, "MCP message refused");
                    Some(reply)
                } else {
                    to_rmcp.write_all(text).await?;
                    to_rmcp.write_all(b"\n").await?;
                    to_rmcp.flush().await?;
                    None
                }
            }
        };
        if let Some(reply) = reply
            && replies.send(reply.to_string().into_bytes()).await.is_err()
        {
            break;
        }
        line.clear();
        // Don't keep a 16 MiB buffer alive for the next ping.
        if line.capacity() > PIPE_BYTES * 16 {
            line = Vec::new();
        }
    }
    // End of input: rmcp sees the client close, as it would on stdin.
    to_rmcp.shutdown().await
}

/// rmcp's side: its output, line by line, to the writer.
async fn relay_lines<R: AsyncRead + Unpin>(from_rmcp: R, lines: mpsc::Sender<Vec<u8>>) {
    let mut from_rmcp = BufReader::new(from_rmcp);
    loop {
        let mut line = Vec::new();
        match from_rmcp.read_until(b'\n', &mut line).await {
            Ok(0) => break,
            Ok(_) => {
                if lines.send(line).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading rmcp's output failed");
                break;
            }
        }
    }
}

/// The only writer of `output`: one whole line at a time, flushed (the client waits on it).
async fn write_lines<W: AsyncWrite + Unpin>(
    mut output: W,
    mut lines: mpsc::Receiver<Vec<u8>>,
) -> std::io::Result<()> {
    while let Some(mut line) = lines.recv().await {
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        output.write_all(&line).await?;
        output.flush().await?;
    }
    Ok(())
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
            .with_max_request_body_bytes(MAX_MESSAGE_BYTES)
            .with_sse_keep_alive(Some(std::time::Duration::from_secs(15)));
        let sessions_token = config.cancellation_token.clone();
        let sessions = http_guard::session_manager();
        let service =
            StreamableHttpService::new(move || Ok(server.clone()), Arc::clone(&sessions), config);
        // Origin, malformed messages and the session count are checked before rmcp's service
        // (see http_guard); Host is checked by rmcp (allowed_hosts).
        let guard = http_guard::HttpGuard::new(self.addr, sessions);
        let app = axum::Router::new()
            .nest_service(MCP_HTTP_PATH, service)
            .layer(axum::middleware::from_fn_with_state(
                guard,
                http_guard::check,
            ));
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
    use serde_json::{Value, json};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    use tools::{Tool, ToolBox, ToolError, ToolSpec};

    use super::*;

    struct Echo;

    impl Tool for Echo {
        fn spec(&self) -> ToolSpec {
            ToolSpec {
                name: "echo",
                description: "Echoes its arguments.",
                input_schema: json!({"type": "object"}),
                output_schema: json!({"type": "object"}),
            }
        }
        fn execute(&self, args: &Value) -> Result<Value, ToolError> {
            Ok(json!({ "Echo": args }))
        }
    }

    /// A client of [`serve_lines`] over in-memory pipes.
    struct Client {
        writer: tokio::io::DuplexStream,
        lines: tokio::io::Lines<BufReader<tokio::io::DuplexStream>>,
        served: tokio::task::JoinHandle<Result<(), McpError>>,
    }

    impl Client {
        async fn start() -> Self {
            let server = RacejudgeMcp::new(ToolBox::new().with(std::sync::Arc::new(Echo))).unwrap();
            let (writer, server_in) = tokio::io::duplex(1 << 16);
            let (server_out, reader) = tokio::io::duplex(1 << 16);
            let served = tokio::spawn(serve_lines(
                server,
                server_in,
                server_out,
                std::future::pending(),
            ));
            let mut client = Self {
                writer,
                lines: BufReader::new(reader).lines(),
                served,
            };
            client
                .send(
                    &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "test", "version": "0"}}})
                    .to_string(),
                )
                .await;
            assert_eq!(client.reply().await["id"], 0);
            client
                .send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
                .await;
            client
        }

        async fn send(&mut self, line: &str) {
            self.writer.write_all(line.as_bytes()).await.unwrap();
            self.writer.write_all(b"\n").await.unwrap();
        }

        async fn reply(&mut self) -> Value {
            let line =
                tokio::time::timeout(std::time::Duration::from_secs(30), self.lines.next_line())
                    .await
                    .expect("an answer, not silence")
                    .unwrap()
                    .expect("server hung up");
            serde_json::from_str(&line).unwrap()
        }

        /// Checks the session still works: a ping with `id` is answered.
        async fn still_serves(&mut self, id: u64) {
            self.send(&json!({"jsonrpc": "2.0", "id": id, "method": "ping"}).to_string())
                .await;
            let reply = self.reply().await;
            assert_eq!(reply["id"], id, "{reply}");
            assert!(reply.get("result").is_some(), "{reply}");
        }
    }

    #[tokio::test]
    async fn stdio_answers_a_line_that_is_not_json_with_a_parse_error() {
        let mut client = Client::start().await;
        client.send("{this is not json").await;
        let reply = client.reply().await;
        assert_eq!(reply["error"]["code"], -32700, "{reply}");
        assert_eq!(reply["id"], Value::Null, "{reply}");
        client.still_serves(2).await;
    }

    #[tokio::test]
    async fn stdio_answers_malformed_tool_calls_with_invalid_params() {
        let mut client = Client::start().await;
        let cases = [
            json!({"name": "echo", "arguments": [1, 2]}),
            json!({"arguments": {}}),
            json!({"name": "echo", "arguments": "x"}),
        ];
        for (i, params) in cases.into_iter().enumerate() {
            let id = 10 + i as u64;
            client
                .send(
                    &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
                        .to_string(),
                )
                .await;
            let reply = client.reply().await;
            assert_eq!(reply["id"], id, "{reply}");
            assert_eq!(reply["error"]["code"], -32602, "{params}: {reply}");
        }
        client
            .send(r#"{"jsonrpc":"2.0","id":20,"method":"tools/call","params":{"name":"echo","arguments":{"x":1}}}"#)
            .await;
        let reply = client.reply().await;
        assert_eq!(
            reply["result"]["structuredContent"],
            json!({"Echo": {"x": 1}}),
            "{reply}"
        );
    }

    #[tokio::test]
    async fn stdio_answers_an_oversized_message_under_its_id_and_goes_on() {
        let mut client = Client::start().await;
        let padding = "x".repeat(MAX_MESSAGE_BYTES);
        let huge = format!(
            r#"{{"jsonrpc":"2.0","id":77,"method":"tools/call","params":{{"name":"echo","arguments":{{"Pad":"{padding}"}}}}}}"#
        );
        // Written concurrently: the server reads it while the test waits for the answer.
        let (mut writer, mut lines) = (client.writer, client.lines);
        let send = tokio::spawn(async move {
            writer.write_all(huge.as_bytes()).await.unwrap();
            writer.write_all(b"\n").await.unwrap();
            writer
        });
        let line = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
            .await
            .expect("an answer, not silence")
            .unwrap()
            .expect("an answer");
        let reply: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(reply["id"], 77, "{reply}");
        assert_eq!(reply["error"]["code"], -32600, "{reply}");
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap()
                .contains("limit"),
            "{reply}"
        );
        client.writer = send.await.unwrap();
        client.lines = lines;
        client.still_serves(78).await;
    }

    /// The limit is on the message: one of exactly the limit is served, one byte more is not.
    #[tokio::test]
    async fn stdio_serves_a_message_of_exactly_the_limit() {
        let mut client = Client::start().await;
        let ping = |id: u64, len: usize| {
            let head = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping""#);
            let pad = " ".repeat(len - head.len() - 1);
            format!("{head}{pad}}}")
        };
        let (mut writer, mut lines) = (client.writer, client.lines);
        for (id, len, served) in [
            (30, MAX_MESSAGE_BYTES, true),
            (31, MAX_MESSAGE_BYTES + 1, false),
        ] {
            let line = ping(id, len);
            assert_eq!(line.len(), len);
            let send = tokio::spawn(async move {
                writer.write_all(line.as_bytes()).await.unwrap();
                writer.write_all(b"\r\n").await.unwrap();
                writer
            });
            let reply = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
                .await
                .expect("an answer, not silence")
                .unwrap()
                .expect("an answer");
            let reply: Value = serde_json::from_str(&reply).unwrap();
            assert_eq!(reply["id"], id, "{reply}");
            assert_eq!(
                reply.get("result").is_some(),
                served,
                "{len} bytes: {reply}"
            );
            writer = send.await.unwrap();
        }
        client.writer = writer;
        client.lines = lines;
        client.still_serves(32).await;
    }

    #[tokio::test]
    async fn stdio_session_ends_when_input_ends() {
        let mut client = Client::start().await;
        client.still_serves(1).await;
        client.writer.shutdown().await.unwrap();
        drop(client.writer);
        let served = tokio::time::timeout(std::time::Duration::from_secs(30), client.served)
            .await
            .expect("the session ends at end of input");
        served.unwrap().unwrap();
    }

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
