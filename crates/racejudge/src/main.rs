//! The `racejudge` binary: argument parsing, logging set-up and exit codes. Every subcommand
//! lives in `cmd/`; the work itself lives in the library crates (see ARCHITECTURE.md).

#[macro_use]
mod out;
mod cmd;
mod exit;
mod input;
mod paths;
mod shutdown;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tells whether a KCSAN data-race report is benign or harmful, grounded in the kernel source.
#[derive(Debug, Parser)]
#[command(name = "racejudge", version, about, propagate_version = true)]
struct Cli {
    /// Log verbosity for diagnostics on stderr (also RUST_LOG, e.g. RUST_LOG=racejudge=debug).
    #[arg(long, global = true, default_value = "warn", env = "RACEJUDGE_LOG")]
    log: String,

    /// Largest input (report, console log) one command reads, in MiB.
    #[arg(long, global = true, env = "RACEJUDGE_MAX_INPUT_MB", default_value_t = input::DEFAULT_MAX_INPUT_MB)]
    max_input_mb: u64,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Judge one KCSAN report: benign or harmful, with an explanation grounded in the source.
    Assess(cmd::assess::Args),
    /// Run an expert over labelled reports and print accuracy, precision/recall and verdicts.
    Eval(cmd::eval::Args),
    /// Parse KCSAN reports out of a report, console log or email and print them.
    Parse(cmd::parse::Args),
    /// Build or refresh the code index of a kernel tree.
    Index(cmd::index::Args),
    /// Run one code tool exactly as the expert would, or list the tools.
    Tool(cmd::tool::Args),
    /// Work with recorded trajectories.
    Trajectory(cmd::trajectory::Args),
    /// Serve the code tools of a kernel tree to a coding agent over MCP (stdio or HTTP).
    Mcp(cmd::mcp::Args),
    /// Run the service: job store, web dashboard and REST API, and in-process workers.
    Serve(cmd::serve::Args),
    /// Benchmarks (run from a release build): `bench index` times indexing and the code tools.
    Bench(cmd::bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log);
    input::set_max_input_mb(cli.max_input_mb);
    let outcome = match cli.command {
        Command::Assess(args) => cmd::assess::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Parse(args) => cmd::parse::run(args),
        Command::Index(args) => cmd::index::run(args),
        Command::Tool(args) => cmd::tool::run(args),
        Command::Trajectory(args) => cmd::trajectory::run(args),
        Command::Mcp(args) => cmd::mcp::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Bench(args) => cmd::bench::run(args),
    };
    match outcome {
        Ok(code) => code,
        // The reader of stdout went away (`| head`): it has what it wanted.
        Err(err) if out::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let failure = exit::classify(&err);
            eprintln!("error: {}", exit::one_line(&err));
            failure.exit_code()
        }
    }
}

fn init_logging(default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default_filter))
        .unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a CI log or a file gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
