//! `codesearch-file-index`: the definitions in one file (kind, name, lines, static, condition).

use codeindex::EntityKind;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Ctx, config_str};
use crate::schema::{parse_args, to_json, tool_spec};
use crate::{Tool, ToolError, ToolSpec};

pub const NAME: &str = "codesearch-file-index";

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Args {
    /// File path relative to the kernel tree root, e.g. mm/shmem.c.
    #[serde(alias = "File", alias = "ContextFile")]
    pub source_file: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Entity {
    /// function, prototype, struct, union, enum, typedef, global_variable or macro.
    pub kind: String,
    /// The entity's name.
    pub name: String,
    /// First line (including specifiers).
    pub start_line: u32,
    /// Last line.
    pub end_line: u32,
    /// Declared static.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_static: bool,
    /// The `#if` condition around it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// active, inactive or unknown under the configuration (only when conditional).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    /// The file listed.
    pub source_file: String,
    /// Definitions in line order (struct fields and enumerators are not listed).
    pub entities: Vec<Entity>,
    /// What was left out to stay within the size budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub struct FileIndex(pub Ctx);

/// The tool's name, description and schemas (needs no index).
pub fn spec() -> ToolSpec {
    tool_spec::<Args, Output>(
        NAME,
        "Lists the definitions in a source file: functions, structs, unions, enums, typedefs, global variables and macros, with their line ranges, whether they are static and the #if condition around them.",
    )
}

impl Tool for FileIndex {
    fn spec(&self) -> ToolSpec {
        spec()
    }

    fn execute(&self, args: &Value) -> Result<Value, ToolError> {
        let args: Args = parse_args(NAME, args)?;
        let tp = self.0.existing_file(NAME, &args.source_file)?;
        let defs = self.0.index.definitions_in_file(&tp.rel);
        let defs: Vec<_> = defs
            .into_iter()
            .filter(|d| !matches!(d.kind, EntityKind::Field | EntityKind::Enumerator))
            .collect();
        let all = defs.iter().map(|d| Entity {
            kind: d.kind.as_str().to_string(),
            name: d.name.clone(),
            start_line: d.start_line,
            end_line: d.end_line,
            is_static: d.is_static,
            condition: d.condition.clone(),
            config: d
                .condition
                .as_ref()
                .map(|_| config_str(d.config_state).to_string()),
        });
        let entities = crate::text::Budget::new(self.0.budget).take_fitting(all, |e| {
            60 + e.name.len() + e.condition.as_ref().map_or(0, String::len)
        });
        // The first definition left out, when the budget cut the list.
        let note = defs.get(entities.len()).map(|d| {
            format!(
                "{} more definitions after line {} left out; use read-file or grepper with PathPrefix={} to see them",
                defs.len() - entities.len(),
                d.start_line,
                tp.rel
            )
        });
        to_json(&Output {
            source_file: tp.rel,
            entities,
            note,
        })
    }
}
