//! `grepper`: regular-expression search over the tree's C sources and headers, with ripgrep's
//! engine (`grep-regex` + `grep-searcher`) in-process and in parallel, not a subprocess.
//! Matches are grouped by file and labelled with the enclosing definition; the output is
//! budgeted and says how many matches were left out.

use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use grep_regex::RegexMatcherBuilder;
use grep_searcher::{SearcherBuilder, sinks::Lossy};
use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Ctx;
use crate::path_guard::{self, Access};
use crate::schema::{parse_args, to_json, tool_spec};
use crate::{Tool, ToolError, ToolSpec};

pub const NAME: &str = "grepper";
/// Matches kept in memory; beyond this they are only counted.
const KEEP: usize = 2000;
const MAX_LINE: usize = 200;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Args {
    /// Extended regular expression (ERE / Rust regex syntax), e.g. "clcsock =" or "\\bsk_wq\\b".
    pub expression: String,
    /// Only search files whose path starts with this, e.g. "net/smc/".
    #[serde(default)]
    pub path_prefix: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    /// Matches as "file:line:text", grouped by file, each group of lines headed by "file=line=kind name" of the enclosing definition.
    pub output: String,
    /// Number of matching lines in total.
    pub matches: usize,
    /// Number of files with a match.
    pub files: usize,
    /// True when not every match is shown.
    pub truncated: bool,
    /// What was left out and how to narrow the search.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub struct Grepper(pub Ctx);

/// A matched line as shown: without its line ending, clipped.
fn clip(line: &str) -> String {
    crate::text::clip(line.trim_end_matches(['\n', '\r']), MAX_LINE)
}

/// The tool's name, description and schemas (needs no index).
pub fn spec() -> ToolSpec {
    tool_spec::<Args, Output>(
        NAME,
        "Searches the kernel's .c and .h files for a regular expression and returns matching lines as file:line:text, grouped by file and labelled with the enclosing function. Use it for macros, generated names and anything the codesearch tools do not find; narrow with PathPrefix.",
    )
}

impl Tool for Grepper {
    fn spec(&self) -> ToolSpec {
        spec()
    }

    fn execute(&self, args: &Value) -> Result<Value, ToolError> {
        let args: Args = parse_args(NAME, args)?;
        if args.expression.is_empty() {
            return Err(ToolError::BadArguments {
                tool: NAME.into(),
                message: "Expression is empty".into(),
            });
        }
        let matcher = RegexMatcherBuilder::new()
            .build(&args.expression)
            .map_err(|e| ToolError::BadArguments {
                tool: NAME.into(),
                message: format!("bad expression: {e}"),
            })?;
        let prefix =
            path_guard::normalise_optional(args.path_prefix.as_deref())?.unwrap_or_default();
        let files: Vec<&str> = self
            .0
            .index
            .files()
            .filter(|f| f.starts_with(&prefix) && (f.ends_with(".c") || f.ends_with(".h")))
            .collect();
        if files.is_empty() {
            return Err(ToolError::NotFound(format!(
                "no .c or .h files under {prefix:?}"
            )));
        }
        let kept = AtomicUsize::new(0);
        let total = AtomicUsize::new(0);
        let ctx = &self.0;
        let files_with = AtomicUsize::new(0);
        let per_file: Vec<(&str, Vec<(u64, String)>)> = files
            .par_iter()
            .map_init(
                || SearcherBuilder::new().line_number(true).build(),
                |searcher, file| {
                    let mut hits = Vec::new();
                    let mut any = false;
                    // Opened through the guard, and the handle is what is searched.
                    let Ok((opened, _)) =
                        ctx.resolve(file).and_then(|tp| tp.open(Access::ReadFile))
                    else {
                        return (*file, hits);
                    };
                    let result = searcher.search_file(
                        &matcher,
                        &opened,
                        Lossy(|lnum, line| {
                            total.fetch_add(1, Ordering::Relaxed);
                            any = true;
                            if kept.fetch_add(1, Ordering::Relaxed) < KEEP {
                                hits.push((lnum, clip(line)));
                            }
                            Ok(true)
                        }),
                    );
                    if any {
                        files_with.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Err(e) = result {
                        tracing::debug!(file, error = %e, "grepper: unreadable file skipped");
                    }
                    (*file, hits)
                },
            )
            .filter(|(_, hits)| !hits.is_empty())
            .collect();
        let total = total.load(Ordering::Relaxed);
        let files_with = files_with.load(Ordering::Relaxed);
        let mut output = String::new();
        let mut shown = 0usize;
        let mut cut = false;
        'files: for (file, hits) in &per_file {
            let mut current: Option<(u32, String)> = None;
            for (lnum, text) in hits {
                let line = u32::try_from(*lnum).unwrap_or(u32::MAX);
                let mut chunk = String::new();
                let enclosing = self
                    .0
                    .index
                    .definition_at_line(file, line)
                    .map(|d| (d.start_line, format!("{} {}", d.kind.as_str(), d.name)));
                if enclosing.is_some() && enclosing != current {
                    if let Some((start, label)) = &enclosing {
                        let _ = writeln!(chunk, "{file}={start}={label}");
                    }
                    current = enclosing;
                }
                let _ = writeln!(chunk, "{file}:{line}:{text}");
                if output.len() + chunk.len() > self.0.budget {
                    cut = true;
                    break 'files;
                }
                output.push_str(&chunk);
                shown += 1;
            }
            output.push_str("--\n");
        }
        let truncated = shown < total;
        let note = if total == 0 {
            Some(format!(
                "no matches for {:?}{}",
                args.expression,
                if prefix.is_empty() {
                    String::new()
                } else {
                    format!(" under {prefix}")
                }
            ))
        } else if truncated || cut {
            Some(format!(
                "showing {shown} of {total} matching lines in {files_with} files; use a more precise expression{}",
                if prefix.is_empty() {
                    " or pass PathPrefix"
                } else {
                    " or a narrower PathPrefix"
                }
            ))
        } else {
            None
        };
        to_json(&Output {
            output,
            matches: total,
            files: files_with,
            truncated,
            note,
        })
    }
}
