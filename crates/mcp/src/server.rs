//! [`RacejudgeMcp`], the `rmcp::ServerHandler` over a runtime [`ToolBox`], and [`ToolBoxSender`],
//! which hands it a `ToolBox` that was still being built when the server started.
//!
//! Why deferred: indexing a whole kernel tree takes minutes cold and seconds warm, while MCP
//! clients give a server only a short time to answer `initialize`. So the server can start from
//! the tool *specs* alone ([`RacejudgeMcp::pending`]): `initialize` and `tools/list` answer at
//! once, and a `tools/call` waits until the index (and with it the `ToolBox`) is ready.
//!
//! The tool list is fixed at construction, so `tools/list` is a clone and `get_tool` a scan over a
//! handful of entries. Calls run on tokio's blocking pool: the tools do synchronous file I/O and
//! regex searches that would otherwise stall the transport (and, over HTTP, every other session).

use std::sync::Arc;
use std::time::Instant;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::Value;
use tokio::sync::watch;
use tools::{ToolBox, ToolSpec};

use crate::McpError;
use crate::convert::{check_tool_name, failure, failure_message, mcp_tool, success};

/// What the server tells a client about itself at `initialize`; clients show it to the model.
const INSTRUCTIONS: &str = "Read-only tools over one Linux kernel source tree, for judging \
KCSAN data-race reports. Start with parse-kcsan-report on the report text (assess-kcsan gives a \
quick static verdict), then read the racing functions with the codesearch-* tools. Paths are \
relative to the kernel tree root; paths outside the tree are refused.";

/// Where the `ToolBox` stands: being built, ready, or failed (with the message calls will show).
type Slot = Option<Result<Arc<ToolBox>, Arc<str>>>;

/// The MCP server. Cheap to clone: the streamable HTTP transport makes one per session.
#[derive(Clone)]
pub struct RacejudgeMcp {
    toolbox: watch::Receiver<Slot>,
    tools: Arc<[Tool]>,
    instructions: Arc<str>,
}

/// Completes a server made with [`RacejudgeMcp::pending`]. Dropping it unused fails the pending
/// calls, so a crashed builder never leaves clients waiting forever.
pub struct ToolBoxSender {
    slot: watch::Sender<Slot>,
    declared: Vec<&'static str>,
}

impl ToolBoxSender {
    /// Makes `toolbox` serve every call, including those already waiting.
    ///
    /// Its tools should be the ones declared to [`RacejudgeMcp::pending`]: clients only call
    /// what `tools/list` showed them, so an extra tool would be unreachable and a missing one
    /// answers "unknown tool". A mismatch is logged, not fatal.
    pub fn ready(self, toolbox: ToolBox) {
        let mut have: Vec<&'static str> = toolbox.names().collect();
        have.sort_unstable();
        if have != self.declared {
            tracing::warn!(
                declared = ?self.declared,
                built = ?have,
                "the tool box built differs from the tools declared to clients"
            );
        }
        self.slot.send_replace(Some(Ok(Arc::new(toolbox))));
    }

    /// Makes every call (waiting or later) fail with `message`, e.g. why indexing failed.
    pub fn failed(self, message: impl Into<String>) {
        let message: String = message.into();
        self.slot.send_replace(Some(Err(message.into())));
    }
}

impl Drop for ToolBoxSender {
    fn drop(&mut self) {
        self.slot.send_if_modified(|slot| {
            if slot.is_some() {
                return false;
            }
            *slot = Some(Err(
                "the code tools were never made ready (internal error)".into()
            ));
            true
        });
    }
}

fn declare(specs: &[ToolSpec]) -> Result<Arc<[Tool]>, McpError> {
    for spec in specs {
        check_tool_name(spec.name)?;
    }
    let mut tools: Vec<Tool> = specs.iter().map(mcp_tool).collect();
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tools.into())
}

impl RacejudgeMcp {
    /// A server exposing every tool of `toolbox` under its own name.
    ///
    /// Fails when a tool name would not survive the trip through MCP clients to an LLM API
    /// (see [`check_tool_name`]); serving it anyway would break those clients at their first
    /// `tools/list`, far from the cause.
    pub fn new(toolbox: ToolBox) -> Result<Self, McpError> {
        let tools = declare(&toolbox.specs())?;
        let (_, toolbox) = watch::channel(Some(Ok(Arc::new(toolbox))));
        Ok(Self {
            toolbox,
            tools,
            instructions: INSTRUCTIONS.into(),
        })
    }

    /// A server that declares `specs` now and serves calls once the returned sender is given the
    /// `ToolBox` (calls made before then wait). Same name checks as [`RacejudgeMcp::new`].
    pub fn pending(specs: &[ToolSpec]) -> Result<(Self, ToolBoxSender), McpError> {
        let tools = declare(specs)?;
        let (slot, toolbox) = watch::channel(None);
        let mut declared: Vec<&'static str> = specs.iter().map(|s| s.name).collect();
        declared.sort_unstable();
        let server = Self {
            toolbox,
            tools,
            instructions: INSTRUCTIONS.into(),
        };
        Ok((server, ToolBoxSender { slot, declared }))
    }

    /// Replaces the `initialize` instructions, e.g. to name the kernel tree being served.
    pub fn with_instructions(mut self, instructions: impl Into<String>) -> Self {
        self.instructions = instructions.into().into();
        self
    }

    /// The MCP declarations served by `tools/list`, in name order.
    pub fn tools(&self) -> &[Tool] {
        &self.tools
    }

    /// The `ToolBox`, once built; waits while it is being built.
    async fn toolbox(&self) -> Result<Arc<ToolBox>, Arc<str>> {
        let mut slot = self.toolbox.clone();
        if slot.borrow().is_none() {
            tracing::info!("tool call waiting for the code index");
        }
        let ready = slot.wait_for(Option::is_some).await;
        match ready.as_deref() {
            Ok(Some(result)) => result.clone(),
            // The sender fills the slot before it goes away (see its Drop), so this is only
            // reachable if that invariant breaks; answer with an error rather than hang.
            _ => Err("the code tools are unavailable".into()),
        }
    }

    /// Runs one call to completion off the async threads and frames its outcome for MCP.
    async fn run_tool(&self, name: String, args: Value) -> CallToolResponse {
        let toolbox = match self.toolbox().await {
            Ok(toolbox) => toolbox,
            Err(why) => {
                return failure_message(format!("{name} is unavailable: {why}")).into();
            }
        };
        let started = Instant::now();
        let tool_name = name.clone();
        let outcome = tokio::task::spawn_blocking(move || toolbox.call(&tool_name, &args)).await;
        let elapsed_ms = started.elapsed().as_millis();
        let result = match outcome {
            Ok(Ok(value)) => {
                tracing::info!(tool = %name, elapsed_ms, "tool call succeeded");
                success(value)
            }
            Ok(Err(err)) => {
                if err.is_caller_error() {
                    tracing::info!(tool = %name, elapsed_ms, error = %err, "tool call refused");
                } else {
                    tracing::warn!(tool = %name, elapsed_ms, error = %err, "tool call failed");
                }
                failure(&err)
            }
            Err(join) => {
                // A panicking tool is a bug, but one bad call must not take the session down.
                tracing::error!(tool = %name, error = %join, "tool panicked");
                failure_message(format!("internal error in tool {name}; see the server log"))
            }
        };
        result.into()
    }
}

impl ServerHandler for RacejudgeMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("racejudge", env!("CARGO_PKG_VERSION"))
                    .with_title("racejudge kernel code tools"),
            )
            .with_instructions(self.instructions.to_string())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult {
            tools: self.tools.to_vec(),
            ..Default::default()
        })
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        if self.get_tool(&name).is_none() {
            // The MCP spec answers an unknown tool with a protocol error (-32602), not a result.
            let available = self
                .tools
                .iter()
                .map(|t| t.name.as_ref())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ErrorData::invalid_params(
                format!("unknown tool {name:?}; available tools: {available}"),
                None,
            ));
        }
        let args = Value::Object(request.arguments.unwrap_or_default());
        tracing::debug!(tool = %name, %args, "tool call");
        tokio::select! {
            response = self.run_tool(name.clone(), args) => Ok(response),
            () = context.ct.cancelled() => {
                // The blocking call cannot be interrupted; it finishes in the background and its
                // result is dropped. The client asked to stop waiting, which is what we do.
                tracing::info!(tool = %name, "tool call cancelled by the client");
                Ok(failure_message(format!("call to {name} was cancelled")).into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tools::{Tool as CodeTool, ToolError, ToolSpec};

    use super::*;

    struct Named(&'static str);

    impl CodeTool for Named {
        fn spec(&self) -> ToolSpec {
            ToolSpec {
                name: self.0,
                description: "test",
                input_schema: json!({"type": "object"}),
                output_schema: json!({"type": "object"}),
            }
        }
        fn execute(&self, _args: &Value) -> Result<Value, ToolError> {
            Ok(json!({}))
        }
    }

    #[test]
    fn tools_are_declared_in_name_order_under_their_own_names() {
        let toolbox = ToolBox::new()
            .with(Arc::new(Named("read-file")))
            .with(Arc::new(Named("codesearch-dir-index")));
        let server = RacejudgeMcp::new(toolbox).unwrap();
        let names: Vec<_> = server.tools().iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, ["codesearch-dir-index", "read-file"]);
        assert!(server.get_tool("read-file").is_some());
        assert!(server.get_tool("write-file").is_none());
    }

    #[test]
    fn a_toolbox_with_an_unservable_name_is_refused() {
        let toolbox = ToolBox::new().with(Arc::new(Named("read.file")));
        let err = RacejudgeMcp::new(toolbox).err().unwrap();
        assert!(err.to_string().contains("read.file"), "{err}");
    }

    #[test]
    fn info_advertises_tools_and_names_the_server() {
        let server = RacejudgeMcp::new(ToolBox::new()).unwrap();
        let info = server.get_info();
        assert!(info.capabilities.tools.is_some());
        assert_eq!(info.server_info.name, "racejudge");
        let info = server.with_instructions("tree: /k").get_info();
        assert_eq!(info.instructions.as_deref(), Some("tree: /k"));
    }

    /// Echoes its arguments: enough to see a call reach the tool box and come back.
    struct Echo;

    impl CodeTool for Echo {
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

    /// A client speaking newline-delimited JSON-RPC to a server over an in-memory pipe.
    struct Session {
        writer: tokio::io::WriteHalf<tokio::io::DuplexStream>,
        lines: tokio::io::Lines<tokio::io::BufReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>>,
    }

    impl Session {
        async fn start(server: RacejudgeMcp) -> Self {
            use rmcp::ServiceExt;
            let (client_io, server_io) = tokio::io::duplex(1 << 16);
            tokio::spawn(async move {
                if let Ok(running) = server.serve(server_io).await {
                    let _ = running.waiting().await;
                }
            });
            let (reader, writer) = tokio::io::split(client_io);
            let lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(reader));
            let mut session = Self { writer, lines };
            let init = session
                .request(
                    1,
                    "initialize",
                    json!({"protocolVersion": "2025-06-18", "capabilities": {},
                           "clientInfo": {"name": "test", "version": "0"}}),
                )
                .await;
            assert_eq!(init["result"]["serverInfo"]["name"], "racejudge");
            session
                .send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
                .await;
            session
        }

        async fn send(&mut self, message: Value) {
            use tokio::io::AsyncWriteExt;
            let line = format!("{message}\n");
            self.writer.write_all(line.as_bytes()).await.unwrap();
        }

        async fn send_request(&mut self, id: u64, method: &str, params: Value) {
            self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
                .await;
        }

        async fn reply(&mut self, id: u64) -> Value {
            loop {
                let line = self
                    .lines
                    .next_line()
                    .await
                    .unwrap()
                    .expect("server hung up");
                let message: Value = serde_json::from_str(&line).unwrap();
                if message["id"] == id {
                    return message;
                }
            }
        }

        async fn request(&mut self, id: u64, method: &str, params: Value) -> Value {
            self.send_request(id, method, params).await;
            self.reply(id).await
        }
    }

    #[tokio::test]
    async fn a_pending_server_lists_tools_at_once_and_runs_calls_once_ready() {
        let (server, sender) = RacejudgeMcp::pending(&[Echo.spec()]).unwrap();
        let mut session = Session::start(server).await;
        // Answered while the tool box does not exist yet.
        let list = session.request(2, "tools/list", json!({})).await;
        assert_eq!(list["result"]["tools"][0]["name"], "echo");

        session
            .send_request(
                3,
                "tools/call",
                json!({"name": "echo", "arguments": {"x": 1}}),
            )
            .await;
        sender.ready(ToolBox::new().with(Arc::new(Echo)));
        let call = session.reply(3).await;
        assert_eq!(
            call["result"]["structuredContent"],
            json!({"Echo": {"x": 1}}),
            "{call}"
        );
    }

    #[tokio::test]
    async fn a_failed_build_is_reported_by_every_call() {
        let (server, sender) = RacejudgeMcp::pending(&[Echo.spec()]).unwrap();
        let mut session = Session::start(server).await;
        session
            .send_request(2, "tools/call", json!({"name": "echo", "arguments": {}}))
            .await;
        sender.failed("indexing /k failed: disk on fire");
        for id in [2, 3] {
            let call = if id == 2 {
                session.reply(id).await
            } else {
                session
                    .request(id, "tools/call", json!({"name": "echo", "arguments": {}}))
                    .await
            };
            assert_eq!(call["result"]["isError"], true, "{call}");
            let text = call["result"]["content"][0]["text"].as_str().unwrap();
            assert!(text.contains("disk on fire"), "{text}");
        }
    }

    #[tokio::test]
    async fn a_dropped_sender_fails_calls_instead_of_hanging_them() {
        let (server, sender) = RacejudgeMcp::pending(&[Echo.spec()]).unwrap();
        let mut session = Session::start(server).await;
        drop(sender);
        let call = session
            .request(2, "tools/call", json!({"name": "echo", "arguments": {}}))
            .await;
        assert_eq!(call["result"]["isError"], true, "{call}");
    }

    #[tokio::test]
    async fn unknown_tools_are_invalid_params_errors_even_while_pending() {
        let (server, _sender) = RacejudgeMcp::pending(&[Echo.spec()]).unwrap();
        let mut session = Session::start(server).await;
        let call = session
            .request(2, "tools/call", json!({"name": "nope", "arguments": {}}))
            .await;
        assert_eq!(call["error"]["code"], -32602, "{call}");
        assert!(call["error"]["message"].as_str().unwrap().contains("echo"));
    }
}
