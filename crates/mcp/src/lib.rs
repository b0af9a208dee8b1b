/*!
The racejudge MCP server: the code tools of a [`tools::ToolBox`], served to any coding agent
(Claude Code, Gemini CLI, …) over the Model Context Protocol.

Principal types:
- [`RacejudgeMcp`]: the `rmcp::ServerHandler`, written by hand over the *runtime* tool list of a
  `ToolBox` (rmcp's `#[tool]` macros need the tools at compile time). It maps every
  [`tools::ToolSpec`] to an MCP tool with the same name, description and schemas, and runs calls
  on the blocking pool because the tools read files and grep the tree synchronously.
  [`RacejudgeMcp::pending`] + [`ToolBoxSender`] start it from the tool specs alone, so a client
  gets `initialize`/`tools/list` at once while the kernel index is still being built.
- [`ParseReportTool`] (`parse-kcsan-report`) and [`AssessTool`] (`assess-kcsan`): extra tools over
  the `report` and `assess` crates, so an agent can turn a pasted KCSAN report into the structured
  model, and get the static expert's verdict, before reading code itself.
- [`serve_stdio`] and [`serve_http`]: the two transports (newline-delimited JSON-RPC on
  stdin/stdout; streamable HTTP at `/mcp`), both stopping cleanly on a shutdown future.
- [`wire`]: the checks every incoming message passes before rmcp sees it, so that every request
  is answered with the right JSON-RPC error (size limit, parse errors, malformed `tools/call`);
  over HTTP also `Origin` and the number of sessions ([`MAX_SESSIONS`], [`SESSION_IDLE`]).

Why a separate crate: the MCP SDK and its HTTP stack are large; keeping them here means the
library crates below never see them, and the binary only adds a thin `racejudge mcp` command.

The server is read-only by construction: it exposes nothing but the `ToolBox`, whose tools are
read-only and refuse paths outside the kernel tree (`tools::ToolError::PathEscape`); that refusal
reaches the client as an `isError: true` result.
*/

mod convert;
mod extra;
mod http_guard;
mod server;
mod transport;
pub mod wire;

pub use convert::check_tool_name;
pub use extra::{AssessTool, ParseReportTool};
pub use http_guard::{MAX_SESSIONS, SESSION_IDLE};
pub use server::{RacejudgeMcp, ToolBoxSender};
pub use transport::{HttpServer, MCP_HTTP_PATH, serve_http, serve_lines, serve_stdio};

use std::sync::Arc;

/// The specs of the tools [`with_report_tools`] adds, for [`RacejudgeMcp::pending`].
pub fn report_tool_specs() -> Vec<tools::ToolSpec> {
    use tools::Tool as _;
    vec![ParseReportTool.spec(), AssessTool::declaration()]
}

/// `toolbox` plus the report tools the MCP server adds to the code tools: [`ParseReportTool`]
/// and, when an expert is given, [`AssessTool`].
pub fn with_report_tools(toolbox: tools::ToolBox, assess: Option<AssessTool>) -> tools::ToolBox {
    let toolbox = toolbox.with(Arc::new(ParseReportTool));
    match assess {
        Some(tool) => toolbox.with(Arc::new(tool)),
        None => toolbox,
    }
}

/// Why the MCP server could not be built or could not keep serving.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// A tool's name is not usable by MCP clients and LLM APIs (see [`check_tool_name`]).
    #[error("tool name {name:?} cannot be served over MCP: {reason}")]
    InvalidToolName { name: String, reason: String },
    /// The MCP session could not start (e.g. the client hung up during `initialize`).
    #[error("MCP session failed to start: {0}")]
    Start(String),
    /// The session's task ended abnormally.
    #[error("MCP session ended abnormally: {0}")]
    Session(String),
    /// Binding or serving the HTTP listener failed.
    #[error("MCP HTTP server on {addr}: {source}")]
    Http {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}
