//! `codesearch-definition-comment`: only the comment of the best definition of a name.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::Ctx;
use super::definition_source::Args;
use crate::schema::{parse_args, to_json, tool_spec};
use crate::text::{Budget, numbered_budgeted};
use crate::{Tool, ToolError, ToolSpec};

pub const NAME: &str = "codesearch-definition-comment";

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    /// function, struct, union, enum, typedef, global_variable, macro.
    pub kind: String,
    /// File of the definition.
    pub source_file: String,
    /// The comment, numbered "%4d:\t<text>"; empty when the definition has none.
    pub comment: String,
    /// Set when there is no comment or it was cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub struct DefinitionComment(pub Ctx);

/// The tool's name, description and schemas (needs no index).
pub fn spec() -> ToolSpec {
    tool_spec::<Args, Output>(
        NAME,
        "Returns only the comment (e.g. kernel-doc) just before the definition of a name, numbered. Cheaper than codesearch-definition-source when the documented contract is all you need.",
    )
}

impl Tool for DefinitionComment {
    fn spec(&self) -> ToolSpec {
        spec()
    }

    fn execute(&self, args: &Value) -> Result<Value, ToolError> {
        let args: Args = parse_args(NAME, args)?;
        let found = self.0.lookup(&args.name, args.context_file.as_deref())?;
        let name = found.name;
        let def = found.best(&self.0, |k| k != codeindex::EntityKind::Field)?;
        let (comment, note) = match def.comment {
            None => (
                String::new(),
                Some(format!(
                    "{} {name} is defined in {} and is not commented",
                    def.kind.as_str(),
                    def.file
                )),
            ),
            Some((start, end)) => {
                let lines = self.0.lines_of(&def.file)?;
                let mut budget = Budget::new(self.0.budget);
                let (text, cut) = numbered_budgeted(&lines, start, end, &mut budget);
                (
                    text,
                    cut.map(|at| format!("comment lines {}-{end} left out; use read-file", at + 1)),
                )
            }
        };
        to_json(&Output {
            kind: def.kind.as_str().to_string(),
            source_file: def.file.clone(),
            comment,
            note,
        })
    }
}
