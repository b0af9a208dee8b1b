//! `codesearch-function-at-line`: which definition contains a line, e.g. a stack frame's
//! `file:line`, with its source.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Ctx, no_such_line};
use crate::schema::{parse_args, to_json, tool_spec};
use crate::{Tool, ToolError, ToolSpec};

pub const NAME: &str = "codesearch-function-at-line";

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Args {
    /// File path relative to the kernel tree root, e.g. net/socket.c.
    #[serde(alias = "SourceFile")]
    pub file: String,
    /// 1-based line number, e.g. from a stack frame.
    pub line: u32,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    /// Name of the containing definition.
    pub name: String,
    /// function, struct, global_variable, macro, ...
    pub kind: String,
    /// The file.
    pub source_file: String,
    /// First line of the definition (its comment excluded).
    pub start_line: u32,
    /// Last line of the definition.
    pub end_line: u32,
    /// The definition's source, numbered "%4d:\t<text>".
    pub source_code: String,
    /// Set when the source was cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub struct FunctionAtLine(pub Ctx);

/// The tool's name, description and schemas (needs no index).
pub fn spec() -> ToolSpec {
    tool_spec::<Args, Output>(
        NAME,
        "Finds the function (or other definition) containing a given line of a file, e.g. a stack frame's file:line, and returns its name, line range and source.",
    )
}

impl Tool for FunctionAtLine {
    fn spec(&self) -> ToolSpec {
        spec()
    }

    fn execute(&self, args: &Value) -> Result<Value, ToolError> {
        let args: Args = parse_args(NAME, args)?;
        let tp = self.0.existing_file(NAME, &args.file)?;
        let total = self.0.lines(&tp)?.len() as u32;
        if args.line == 0 || args.line > total {
            return Err(no_such_line(&tp.rel, args.line, total));
        }
        let def = self
            .0
            .index
            .definition_at_line(&tp.rel, args.line)
            .ok_or_else(|| {
                ToolError::NotFound(format!(
                    "no function found at line {} in file {}",
                    args.line, tp.rel
                ))
            })?;
        let rendered = self.0.render(&def)?;
        to_json(&Output {
            name: def.name.clone(),
            kind: def.kind.as_str().to_string(),
            source_file: def.file.clone(),
            start_line: def.start_line,
            end_line: def.end_line,
            source_code: rendered.code,
            note: rendered.note,
        })
    }
}
