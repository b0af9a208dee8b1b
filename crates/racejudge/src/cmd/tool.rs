//! `racejudge tool`: runs one code tool exactly as the expert would and prints its JSON result,
//! or lists every tool's name, description and schemas (`--list`, no kernel needed).
//!
//! Errors: a caller error (bad JSON, unknown tool, path outside the tree, entity not found)
//! prints `error: ...` and exits 2; with `--json` the error is also printed on stdout as
//! `{"error": "..."}`, the shape the agent loop hands the model.

use std::process::ExitCode;

use serde_json::Value;

use super::index::KernelArgs;
use crate::exit::{self, ResultExt};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Tool name, e.g. codesearch-definition-source (see --list).
    #[arg(required_unless_present = "list")]
    pub name: Option<String>,
    /// The tool's arguments as a JSON object, e.g. '{"Name":"sock_poll","ContextFile":"net/socket.c"}'.
    #[arg(long, default_value = "{}")]
    pub args: String,
    /// List every tool (name, description, input and output schemas) instead of running one.
    #[arg(long)]
    pub list: bool,
    /// Machine-readable output: with --list the specs as JSON; on a tool error `{"error": ...}` on stdout.
    #[arg(long)]
    pub json: bool,
    /// Kernel source tree (required unless --list).
    #[arg(long, env = "RACEJUDGE_KERNEL")]
    pub kernel: Option<std::path::PathBuf>,
    /// Kernel .config deciding #if CONFIG_* in definitions and struct layouts.
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// Architecture whose arch/ code counts as built.
    #[arg(long, default_value = "x86_64")]
    pub arch: String,
    /// A built kernel with debug info (vmlinux, or a `.o`): struct layouts from its DWARF.
    #[arg(long)]
    pub vmlinux: Option<std::path::PathBuf>,
    /// The O= directory of a build of this tree: its generated headers are indexed and readable.
    #[arg(long)]
    pub build_dir: Option<std::path::PathBuf>,
    /// Deadline of the call, in seconds (0: none).
    #[arg(long, env = "RACEJUDGE_TOOL_TIMEOUT", default_value_t = tools::DEFAULT_TOOL_TIMEOUT.as_secs())]
    pub tool_timeout: u64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.list {
        let specs = tools::specs();
        if args.json {
            outln!("{}", serde_json::to_string_pretty(&specs)?)?;
        } else {
            for spec in specs {
                outln!("{}\n    {}\n", spec.name, spec.description)?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let name = args.name.unwrap_or_default();
    if !tools::specs().iter().any(|s| s.name == name) {
        let names: Vec<&str> = tools::specs().iter().map(|s| s.name).collect();
        return fail(
            args.json,
            format!(
                "unknown tool {name:?}; available tools: {}",
                names.join(", ")
            ),
        );
    }
    let tool_args: Value = match serde_json::from_str(&args.args) {
        Ok(v) => v,
        Err(e) => return fail(args.json, format!("--args is not valid JSON: {e}")),
    };
    let Some(kernel) = args.kernel else {
        return Err(exit::bad_input("--kernel DIR is required to run a tool"));
    };
    let kernel = KernelArgs {
        kernel,
        config: args.config,
        arch: args.arch,
        vmlinux: args.vmlinux,
        build_dir: args.build_dir,
        tool_timeout: args.tool_timeout,
    };
    let toolbox = super::index::toolbox(&kernel)?;
    match toolbox.call(&name, &tool_args) {
        Ok(result) => {
            outln!("{}", serde_json::to_string_pretty(&result)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(err) if err.is_caller_error() => fail(args.json, err.to_string()),
        Err(err) => Err(anyhow::Error::new(err).context(format!("tool {name} failed"))),
    }
}

/// A caller error: printed (and echoed as JSON with --json), exit 2.
fn fail(json: bool, message: String) -> anyhow::Result<ExitCode> {
    if json {
        outln!("{}", serde_json::json!({ "error": message }))?;
    }
    Err(exit::bad_input(message)).bad_input()
}
