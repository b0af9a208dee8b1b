//! `racejudge trajectory show FILE [--json]`: renders a recorded JSONL trajectory.
//!
//! The text view is an indented span tree with per-span duration, model, tokens and short tool
//! arguments, then LLM/tool totals (see `agent::view`); colour only on a terminal. `--json`
//! prints the reconstructed tree as one JSON document for scripts. A missing, empty or garbled
//! file is bad input (exit 2) with a message naming the file and line.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use agent::view::{self, Style, Totals};
use anyhow::Context;
use serde_json::json;

use crate::exit::{self, ResultExt};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Show a trajectory (JSONL span events, as written by a run) as a tree with totals.
    Show {
        /// The trajectory file (`*.jsonl`).
        file: PathBuf,
        /// Print the reconstructed span tree and totals as one JSON document.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Show { file, json } => show(&file, json),
    }
}

fn show(file: &PathBuf, as_json: bool) -> anyhow::Result<ExitCode> {
    let text = std::fs::read(file)
        .with_context(|| format!("cannot read trajectory {}", file.display()))
        .bad_input()?;
    let text = String::from_utf8(text)
        .map_err(|_| exit::bad_input(format!("{}: not a UTF-8 text file", file.display())))?;
    let spans = view::parse_jsonl(&text)
        .with_context(|| format!("{} is not a trajectory", file.display()))
        .bad_input()?;
    let totals = Totals::of(&spans);
    let tree = view::build_tree(spans);
    let mut out = std::io::stdout().lock();
    if as_json {
        let doc = json!({ "spans": tree, "totals": totals });
        serde_json::to_writer_pretty(&mut out, &doc).context("writing JSON")?;
        writeln!(out)?;
    } else {
        let style = Style {
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        };
        out.write_all(view::render_text(&tree, &totals, style).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}
