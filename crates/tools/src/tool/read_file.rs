//! `read-file`: numbered lines of any file in the tree, at most 100 per call.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Ctx, no_such_line};
use crate::schema::{parse_args, to_json, tool_spec};
use crate::text::{Budget, numbered_budgeted};
use crate::{Tool, ToolError, ToolSpec};

pub const NAME: &str = "read-file";
const MAX_LINES: u32 = 100;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Args {
    /// File path relative to the kernel tree root, e.g. net/socket.c.
    pub file: String,
    /// First line to show, 1-based (default 1).
    #[serde(default)]
    pub first_line: Option<i64>,
    /// Number of lines to show, capped at 100 (default 100).
    #[serde(default)]
    pub line_count: Option<i64>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    /// The lines, each formatted as "%4d:\t<text>".
    pub contents: String,
    /// The file read.
    pub file: String,
    /// First line shown.
    pub first_line: u32,
    /// Last line shown.
    pub last_line: u32,
    /// Number of lines in the file.
    pub total_lines: u32,
    /// Set when fewer lines than asked were shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub struct ReadFile(pub Ctx);

/// The tool's name, description and schemas (needs no index).
pub fn spec() -> ToolSpec {
    tool_spec::<Args, Output>(
        NAME,
        "Reads lines of a file of the kernel tree, numbered as \"%4d:\\t<line>\". At most 100 lines per call; page with FirstLine.",
    )
}

impl Tool for ReadFile {
    fn spec(&self) -> ToolSpec {
        spec()
    }

    fn execute(&self, args: &Value) -> Result<Value, ToolError> {
        let args: Args = parse_args(NAME, args)?;
        let tp = self.0.existing_file(NAME, &args.file)?;
        let lines = self.0.lines(&tp)?;
        let total = lines.len() as u32;
        let bad = |message: String| ToolError::BadArguments {
            tool: NAME.to_string(),
            message,
        };
        let asked_first = args.first_line.unwrap_or(1);
        if asked_first < 1 {
            return Err(bad(format!(
                "FirstLine is 1-based; {asked_first} is not a line number"
            )));
        }
        if let Some(count) = args.line_count
            && count < 1
        {
            return Err(bad(format!(
                "LineCount must be at least 1 (and at most {MAX_LINES}); got {count}"
            )));
        }
        // Named as asked, not as clamped: the caller must recognise its own number.
        if asked_first > i64::from(total) {
            return Err(no_such_line(&tp.rel, asked_first, total));
        }
        let first = asked_first as u32;
        let count = args
            .line_count
            .unwrap_or(i64::from(MAX_LINES))
            .min(i64::from(MAX_LINES)) as u32;
        let last = (first + count - 1).min(total);
        let mut budget = Budget::new(self.0.budget);
        let (contents, cut) = numbered_budgeted(&lines, first, last, &mut budget);
        let shown_last = cut.unwrap_or(last);
        let mut note = None;
        if let Some(at) = cut {
            note = Some(format!(
                "lines {}-{last} left out (size budget); continue with FirstLine={}",
                at + 1,
                at + 1
            ));
        } else if args.line_count.is_some_and(|c| c > i64::from(MAX_LINES)) {
            note = Some(format!(
                "at most {MAX_LINES} lines per call; continue with FirstLine={}",
                last + 1
            ));
        }
        to_json(&Output {
            contents,
            file: tp.rel,
            first_line: first,
            last_line: shown_last,
            total_lines: total,
            note,
        })
    }
}
