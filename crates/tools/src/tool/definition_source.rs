//! `codesearch-definition-source`: the full source of the best definition of a name, preceded
//! by its comment, with the other candidates listed when the name is ambiguous (static copies in
//! several files, `__weak` defaults, per-arch versions, `#ifdef` alternatives).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Candidate, Ctx, bare_name, config_str, others};
use crate::schema::{parse_args, to_json, tool_spec};
use crate::{Tool, ToolError, ToolSpec};

pub const NAME: &str = "codesearch-definition-source";

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Args {
    /// Name of a function, struct, union, enum, typedef, global variable or macro.
    pub name: String,
    /// Source file that references the entity (e.g. the file of the stack frame); picks that file's copy of a static name.
    #[serde(default, alias = "SourceFile")]
    pub context_file: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    /// File of the definition shown.
    pub source_file: String,
    /// The definition, each line formatted as "%4d:\t<text>", preceded by its comment.
    pub source_code: String,
    /// function, struct, union, enum, typedef, global_variable, macro, prototype.
    pub kind: String,
    /// The name looked up.
    pub name: String,
    /// First line shown (the comment's, when there is one).
    pub start_line: u32,
    /// Last line shown.
    pub end_line: u32,
    /// Declared static.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_static: bool,
    /// Declared __weak.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_weak: bool,
    /// The `#if` condition around the definition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// active, inactive or unknown under the configuration.
    pub config: String,
    /// The macro that generates the definition (e.g. SYSCALL_DEFINE3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_by: Option<String>,
    /// Other definitions of the same name, when it is ambiguous.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_candidates: Vec<Candidate>,
    /// Anything left out, and how to get it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub struct DefinitionSource(pub Ctx);

/// The tool's name, description and schemas (needs no index).
pub fn spec() -> ToolSpec {
    tool_spec::<Args, Output>(
        NAME,
        "Returns the full source of the definition of a function, struct, union, enum, typedef, global variable or macro, with line numbers (\"%4d:\\t<line>\") and the comment just before it. Pass ContextFile (the file that references the name) to pick the right copy of static or duplicated names; other candidates are listed with their file, kind and #if condition.",
    )
}

impl Tool for DefinitionSource {
    fn spec(&self) -> ToolSpec {
        spec()
    }

    fn execute(&self, args: &Value) -> Result<Value, ToolError> {
        let args: Args = parse_args(NAME, args)?;
        if bare_name(&args.name).is_empty() {
            return Err(ToolError::BadArguments {
                tool: NAME.into(),
                message: "Name is empty".into(),
            });
        }
        let found = self.0.lookup(&args.name, args.context_file.as_deref())?;
        let (name, context) = (found.name, &found.context);
        let def = found.best(&self.0, |k| k != codeindex::EntityKind::Field)?;
        let rendered = self.0.render(def)?;
        let (other_candidates, more) = others(&found.defs, def, 8);
        let mut notes: Vec<String> = rendered.note.into_iter().collect();
        if more > 0 {
            notes.push(format!("{more} more definitions of {name} not listed"));
        }
        if let Some(ctx) = context
            && def.file != *ctx
            && !other_candidates.is_empty()
        {
            notes.push(format!(
                "no definition of {name} in {ctx}; showing {}",
                def.file
            ));
        }
        to_json(&Output {
            source_file: def.file.clone(),
            source_code: rendered.code,
            kind: def.kind.as_str().to_string(),
            name: name.to_string(),
            start_line: rendered.first_line,
            end_line: rendered.last_line,
            is_static: def.is_static,
            is_weak: def.is_weak,
            condition: def.condition.clone(),
            config: config_str(def.config_state).to_string(),
            generated_by: def.generated_by.clone(),
            other_candidates,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        })
    }
}
