//! `racejudge mcp`: serves the code tools of one kernel tree to a coding agent over MCP
//! (stdio by default, streamable HTTP with `--http`). The server itself lives in crate `mcp`;
//! this module builds the index (through `cmd::index`, like every command that reads the kernel),
//! assembles the `ToolBox` and owns the runtime and signals.
//!
//! stdout belongs to the protocol in stdio mode, so everything here reports on stderr.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::index::{Bar, KernelArgs};
use crate::exit::{self, ResultExt as _};
use anyhow::Context as _;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    kernel: KernelArgs,
    /// Serve MCP streamable HTTP at http://ADDR/mcp instead of stdio (e.g. 127.0.0.1:8765).
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let kernel = check_tree(&args.kernel)?;
    // Reads the .config now, so a bad one fails the command rather than every later call.
    let options = args.kernel.tool_options()?;
    // Declare the tools now and build the index behind the running server: a cold index takes
    // minutes, and MCP clients give up on a server that does not answer `initialize` quickly.
    let specs: Vec<tools::ToolSpec> = tools::specs()
        .into_iter()
        .chain(mcp::report_tool_specs())
        .collect();
    let (server, sender) = mcp::RacejudgeMcp::pending(&specs).context("declaring the MCP tools")?;
    let server = server.with_instructions(format!(
        "Read-only tools over the Linux kernel source tree at {root} (arch {arch}), for judging \
KCSAN data-race reports. Start with parse-kcsan-report on the report text (assess-kcsan gives a \
quick static verdict), then read the racing functions with the codesearch-* tools. Paths are \
relative to the tree root; paths outside it are refused.",
        root = kernel.display(),
        arch = args.kernel.arch
    ));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("racejudge-mcp")
        .build()
        .context("starting the async runtime")?;
    let outcome = runtime.block_on(async {
        let shutdown = crate::shutdown::signal().context("installing signal handlers")?;
        let kernel_args = args.kernel.clone();
        // Not awaited: the server runs meanwhile, and calls wait for `sender` to be completed.
        drop(tokio::task::spawn_blocking(move || {
            match build_toolbox(&kernel_args, options) {
                Ok(toolbox) => sender.ready(toolbox),
                Err(err) => {
                    let message = exit::one_line(&err);
                    eprintln!("error: {message}");
                    sender.failed(message);
                }
            }
        }));
        match args.http {
            Some(addr) => {
                let http = mcp::HttpServer::bind(addr).await.environment()?;
                // Clients (and the integration test, with port 0) read the URL from here.
                eprintln!("racejudge MCP server listening on {}", http.url());
                http.serve(server, shutdown).await.environment()
            }
            None => {
                eprintln!("racejudge MCP server on stdio (tree {})", kernel.display());
                mcp::serve_stdio(server, shutdown)
                    .await
                    .map_err(anyhow::Error::from)
            }
        }
    });
    // Neither a read on a terminal stdin nor an index build still running can be cancelled;
    // don't let them hold the process open.
    runtime.shutdown_timeout(Duration::from_secs(1));
    outcome?;
    eprintln!("racejudge MCP server stopped");
    Ok(ExitCode::SUCCESS)
}

/// The kernel tree, canonical. Checked before serving so a wrong path fails the command with the
/// environment exit code instead of failing every tool call later.
fn check_tree(args: &KernelArgs) -> anyhow::Result<PathBuf> {
    if !args.kernel.is_dir() {
        return Err(exit::environment(format!(
            "kernel tree {} is not a directory (scripts/fetch-kernel-source.sh installs one)",
            args.kernel.display()
        )));
    }
    args.kernel
        .canonicalize()
        .with_context(|| format!("resolving kernel tree {}", args.kernel.display()))
        .environment()
}

/// Indexes the tree (or loads the cached index) and assembles every tool over it.
fn build_toolbox(args: &KernelArgs, options: tools::ToolOptions) -> anyhow::Result<tools::ToolBox> {
    eprintln!("indexing {}", args.kernel.display());
    let started = Instant::now();
    let bar = Bar::new();
    let (index, stats) = super::index::open(args, &bar)?;
    bar.finish();
    eprintln!(
        "index ready: {} files, {} definitions ({}) in {:.1}s",
        stats.files_total,
        stats.definitions,
        if stats.loaded_from_cache {
            "from cache"
        } else {
            "built"
        },
        started.elapsed().as_secs_f64()
    );
    let expert = mcp::AssessTool::static_expert(&args.kernel, Some(Arc::clone(&index)))
        .context("setting up the static expert")?;
    Ok(mcp::with_report_tools(
        tools::toolbox_with(index, options),
        Some(expert),
    ))
}
