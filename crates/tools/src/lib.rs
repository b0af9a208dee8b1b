/*!
The code tools: the only way an expert (LLM or static) reads the kernel.

The principal type is [`Tool`]: a named operation with a description, a JSON schema for its
arguments and an `execute` that takes JSON and returns JSON. A [`ToolBox`] holds every tool for one
kernel tree and dispatches calls by name. The same `ToolBox` serves the agent loop (crate
`agent`), the `racejudge tool` CLI and the MCP server, so a tool answers identically wherever it
is called from.

Build one with [`toolbox`] (or [`toolbox_with`] to pass a `.config` and a result budget);
[`specs`] lists every tool without an index. Each tool lives in its own module under [`tool`];
shared rules live in [`path_guard`] (paths never leave the tree), [`text`] (numbered lines,
budgets) and [`schema`] (flat JSON schemas, lenient argument decoding). Struct layouts are
computed from source by [`layout`].

Architecture invariants:
- Tools are read-only and never leave the kernel tree (see [`ToolError::PathEscape`]).
- Tools do no network I/O and know nothing about LLM providers or wire formats.
- A tool never panics on bad arguments: it returns [`ToolError::BadArguments`], which the agent
  loop hands back to the model as a tool error.
*/

pub mod layout;
pub mod path_guard;
pub mod schema;
pub mod text;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// What a tool says about itself: enough to declare it to an LLM provider or an MCP client.
#[derive(Debug, Clone, Serialize)]
pub struct ToolSpec {
    /// The reference's name, e.g. `codesearch-definition-source`. Stable: prompts rely on it.
    pub name: &'static str,
    /// What the tool does and when to use it, written for a model.
    pub description: &'static str,
    /// JSON schema (draft 2020-12 subset, flat: no `$ref`) of the arguments object.
    pub input_schema: Value,
    /// JSON schema of the result object.
    pub output_schema: Value,
}

/// Why a tool call failed. Every variant is meant to be shown to the caller (a model or a user):
/// the message names the problem and, where possible, how to fix the call.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("unknown tool {name:?}; available tools: {available}")]
    UnknownTool { name: String, available: String },
    #[error("bad arguments for {tool}: {message}")]
    BadArguments { tool: String, message: String },
    #[error("path {path:?} is outside the kernel tree: {reason}")]
    PathEscape { path: String, reason: String },
    #[error("{0}")]
    NotFound(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{tool} did not answer within {seconds} s (the per-call tool deadline); narrow the query"
    )]
    TimedOut { tool: String, seconds: u64 },
    #[error("{0}")]
    Failed(String),
}

impl ToolError {
    /// True when the caller's input was wrong (as opposed to the tree or the machine failing).
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            ToolError::UnknownTool { .. }
                | ToolError::BadArguments { .. }
                | ToolError::PathEscape { .. }
                | ToolError::NotFound(_)
        )
    }
}

/// One code tool. Implementations are cheap to call concurrently from several threads.
pub trait Tool: Send + Sync {
    fn spec(&self) -> ToolSpec;
    /// Runs the tool. `args` is the JSON object the caller sent; unknown extra keys are ignored.
    fn execute(&self, args: &Value) -> Result<Value, ToolError>;
}

/// How long one tool call may take by default: the slowest real query (a tree-wide grep of a
/// common word) takes a few seconds; a call past this is stuck, not busy.
pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// All tools for one kernel tree, addressed by name.
#[derive(Clone)]
pub struct ToolBox {
    tools: BTreeMap<&'static str, Arc<dyn Tool>>,
    /// Per-call deadline; `None` runs calls inline with no limit.
    timeout: Option<Duration>,
}

impl Default for ToolBox {
    fn default() -> Self {
        Self {
            tools: BTreeMap::new(),
            timeout: Some(DEFAULT_TOOL_TIMEOUT),
        }
    }
}

impl ToolBox {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tool; a later tool with the same name replaces the earlier one.
    pub fn with(mut self, tool: Arc<dyn Tool>) -> Self {
        self.tools.insert(tool.spec().name, tool);
        self
    }

    /// Sets the per-call deadline (`None`: no deadline, calls run on the caller's thread).
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.values().map(|t| t.spec()).collect()
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.tools.keys().copied()
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name)
    }

    /// Runs one tool by name within the per-call deadline. A call past it is answered with
    /// [`ToolError::TimedOut`]; its thread is left to finish on its own (tools are read-only, so
    /// an abandoned call changes nothing), and the caller is never blocked longer than the
    /// deadline.
    pub fn call(&self, name: &str, args: &Value) -> Result<Value, ToolError> {
        let Some(tool) = self.tools.get(name) else {
            return Err(ToolError::UnknownTool {
                name: name.to_string(),
                available: self.names().collect::<Vec<_>>().join(", "),
            });
        };
        let Some(limit) = self.timeout else {
            return tool.execute(args);
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let worker = Arc::clone(tool);
        let owned_args = args.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("tool {name}"))
            .spawn(move || {
                // The receiver may have given up already; nothing to do then.
                let _ = tx.send(worker.execute(&owned_args));
            });
        if spawned.is_err() {
            // No thread to be had (resource limits): run inline rather than fail the call.
            return tool.execute(args);
        }
        match rx.recv_timeout(limit) {
            Ok(result) => result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(ToolError::TimedOut {
                tool: name.to_string(),
                seconds: limit.as_secs().max(1),
            }),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(ToolError::Failed(
                format!("{name} failed internally (it panicked); this is a racejudge bug"),
            )),
        }
    }
}

pub mod tool;

pub use codeindex::kconfig::{ConfigError, KConfig};

/// How a [`ToolBox`] is set up beyond its index.
#[derive(Debug, Clone)]
pub struct ToolOptions {
    /// Parsed `.config` (see [`ToolOptions::with_config_file`]); `None` leaves CONFIG_ conditions unknown.
    pub config: Option<codeindex::kconfig::KConfig>,
    /// Result text budget in bytes (default [`text::DEFAULT_BUDGET`]).
    pub budget: usize,
    /// A built kernel's ELF with DWARF (`<obj>/vmlinux`, or a `.o`): struct layouts come from it
    /// when it defines the type (exact, compiler-made), from source otherwise. Read lazily on the
    /// first layout query and shared by every clone of the toolbox.
    pub dwarf: Option<Arc<layout::dwarf::DwarfLayouts>>,
    /// Deadline of one tool call (default [`DEFAULT_TOOL_TIMEOUT`]; `None`: no limit).
    pub timeout: Option<Duration>,
}

impl Default for ToolOptions {
    fn default() -> Self {
        Self {
            config: None,
            budget: text::DEFAULT_BUDGET,
            dwarf: None,
            timeout: Some(DEFAULT_TOOL_TIMEOUT),
        }
    }
}

impl ToolOptions {
    /// Reads a kernel `.config` so struct layouts can decide `#if CONFIG_*` members.
    pub fn with_config_file(mut self, path: &std::path::Path) -> Result<Self, ConfigError> {
        self.config = Some(KConfig::read_checked(path)?);
        Ok(self)
    }

    /// Takes struct layouts from the DWARF of `path` (vmlinux or an object file) when it has
    /// them. Nothing is read here: a missing or DWARF-less file surfaces as a note on the first
    /// layout query, which then falls back to the source layout.
    pub fn with_dwarf_file(mut self, path: &std::path::Path) -> Self {
        self.dwarf = Some(Arc::new(layout::dwarf::DwarfLayouts::new(path)));
        self
    }
}

/// Every tool over one index, with default options (no `.config`, default budget).
pub fn toolbox(index: Arc<codeindex::Index>) -> ToolBox {
    toolbox_with(index, ToolOptions::default())
}

/// Every tool over one index.
pub fn toolbox_with(index: Arc<codeindex::Index>, options: ToolOptions) -> ToolBox {
    let ctx = tool::Ctx {
        index,
        config: options.config.map(Arc::new),
        budget: options.budget,
    };
    let dwarf = options.dwarf;
    ToolBox::new()
        .with_timeout(options.timeout)
        .with(Arc::new(tool::dir_index::DirIndex(ctx.clone())))
        .with(Arc::new(tool::read_file::ReadFile(ctx.clone())))
        .with(Arc::new(tool::file_index::FileIndex(ctx.clone())))
        .with(Arc::new(tool::definition_source::DefinitionSource(
            ctx.clone(),
        )))
        .with(Arc::new(tool::definition_comment::DefinitionComment(
            ctx.clone(),
        )))
        .with(Arc::new(tool::find_references::FindReferences(ctx.clone())))
        .with(Arc::new(tool::struct_layout::StructLayout(
            ctx.clone(),
            dwarf,
        )))
        .with(Arc::new(tool::grepper::Grepper(ctx.clone())))
        .with(Arc::new(tool::function_at_line::FunctionAtLine(ctx)))
}

/// Every tool's spec, without an index (for `racejudge tool --list` and provider declarations).
pub fn specs() -> Vec<ToolSpec> {
    let mut specs = vec![
        tool::dir_index::spec(),
        tool::read_file::spec(),
        tool::file_index::spec(),
        tool::definition_source::spec(),
        tool::definition_comment::spec(),
        tool::find_references::spec(),
        tool::struct_layout::spec(),
        tool::grepper::spec(),
        tool::function_at_line::spec(),
    ];
    specs.sort_by_key(|s| s.name);
    specs
}
