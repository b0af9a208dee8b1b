//! `codesearch-find-references`: where a function, variable, type, macro or struct field is
//! used, with the kind of access (call/read/write/...), its marking (READ_ONCE, atomic, ...) and
//! the enclosing function: what a race expert needs to see every access to a racy field.

use std::collections::HashMap;

use codeindex::{EntityKind, Marking, RefKind, RefQuery, Resolution};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Ctx;
use crate::schema::{parse_args, to_json, tool_spec};
use crate::text::{Budget, clip, numbered};
use crate::{Tool, ToolError, ToolSpec, path_guard};

pub const NAME: &str = "codesearch-find-references";
/// How many references are fetched from the index before the budget decides how many to show.
const FETCH_LIMIT: usize = 2000;
const MAX_SNIPPET_LINES: u32 = 10;
const MAX_LINE_TEXT: usize = 160;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Args {
    /// Name to find: a function, global variable, macro, type, or a field as "struct_name::field_name" (e.g. "file::private_data").
    pub name: String,
    /// Source file that references the entity. When the name is a `static` function or variable defined in this .c file, only this file's references are returned (same-named statics elsewhere are other entities); otherwise references are found tree-wide.
    #[serde(default, alias = "SourceFile")]
    pub context_file: Option<String>,
    /// Only references in files whose path starts with this, e.g. "net/smc/".
    #[serde(default)]
    pub source_tree_prefix: Option<String>,
    /// Lines of context to show around each reference (0-10, default 0).
    #[serde(default)]
    pub include_snippet_lines: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Ref {
    /// The function containing the reference (empty at file scope).
    pub referencing_entity_name: String,
    /// call, address_taken, read, write, read_write, address_of, type_use or use.
    pub reference_kind: String,
    /// plain, read_once, write_once, data_race, load_acquire, store_release, atomic or rcu.
    pub marking: String,
    /// File of the reference.
    pub source_file: String,
    /// Line of the reference.
    pub source_line: u32,
    /// The source line itself.
    pub text: String,
    /// True when only the field name matched (the base expression's type was not resolved): may be another struct's field of the same name.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub name_only: bool,
    /// Numbered lines around the reference, when IncludeSnippetLines > 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_snippet: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    /// References shown: exact matches first, then name-only matches; each group by file and line.
    pub references: Vec<Ref>,
    /// Number of references found in total.
    pub total: usize,
    /// True when not every reference is shown.
    pub truncated_output: bool,
    /// What was left out and how to narrow the query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub struct FindReferences(pub Ctx);

fn kind_str(kind: RefKind) -> &'static str {
    match kind {
        RefKind::Call => "call",
        RefKind::AddressTaken => "address_taken",
        RefKind::Read => "read",
        RefKind::Write => "write",
        RefKind::ReadWrite => "read_write",
        RefKind::AddressOf => "address_of",
        RefKind::TypeUse => "type_use",
        RefKind::Use => "use",
    }
}

fn marking_str(marking: Marking) -> &'static str {
    match marking {
        Marking::Plain => "plain",
        Marking::ReadOnce => "read_once",
        Marking::WriteOnce => "write_once",
        Marking::DataRace => "data_race",
        Marking::LoadAcquire => "load_acquire",
        Marking::StoreRelease => "store_release",
        Marking::Atomic => "atomic",
        Marking::Rcu => "rcu",
    }
}

/// The tool's name, description and schemas (needs no index).
pub fn spec() -> ToolSpec {
    tool_spec::<Args, Output>(
        NAME,
        "Finds references to a function, global variable, macro, type or struct field (\"struct_name::field_name\", e.g. \"file::private_data\"). Each reference has its kind (call, read, write, read_write, address_of, ...), marking (plain, read_once, write_once, data_race, atomic, rcu, ...), enclosing function and file:line. Narrow large results with SourceTreePrefix.",
    )
}

impl Tool for FindReferences {
    fn spec(&self) -> ToolSpec {
        spec()
    }

    fn execute(&self, args: &Value) -> Result<Value, ToolError> {
        let args: Args = parse_args(NAME, args)?;
        let name = super::bare_name(&args.name).replace(' ', "");
        if name.is_empty() || name.starts_with("::") || name.ends_with("::") {
            return Err(ToolError::BadArguments {
                tool: NAME.into(),
                message: format!(
                    "Name {:?} is not a name or a struct_name::field_name",
                    args.name
                ),
            });
        }
        let prefix = path_guard::normalise_optional(args.source_tree_prefix.as_deref())?;
        let context = path_guard::normalise_optional(args.context_file.as_deref())?;
        let file_scope = self.file_scope(&name, context.as_deref());
        let query = RefQuery {
            name: name.clone(),
            path_prefix: match &file_scope {
                Some(file) if prefix.as_deref().is_none_or(|p| file.starts_with(p)) => {
                    Some(file.clone())
                }
                _ => prefix.clone(),
            },
            limit: FETCH_LIMIT,
        };
        let results =
            self.0
                .index
                .find_references(&query)
                .map_err(|e| ToolError::BadArguments {
                    tool: NAME.into(),
                    message: e.to_string(),
                })?;
        if results.total == 0 {
            self.check_exists(&name)?;
        }
        let mut refs = results.references;
        let mut total = results.total;
        if let Some(file) = &file_scope {
            // The query's prefix may also match longer paths; keep exactly the one file.
            let fetched = refs.len();
            refs.retain(|r| &r.file == file);
            total -= fetched - refs.len();
        }
        // Stable: keeps the index's file/line order within each group.
        refs.sort_by_key(|r| r.resolution != Resolution::Exact);
        let snippet_lines = args
            .include_snippet_lines
            .unwrap_or(0)
            .min(MAX_SNIPPET_LINES);
        let mut files: HashMap<String, Vec<String>> = HashMap::new();
        let all = refs.iter().map(|r| {
            let source_snippet = if snippet_lines > 0 {
                if !files.contains_key(&r.file) {
                    let lines = self.0.lines_of(&r.file).unwrap_or_default();
                    files.insert(r.file.clone(), lines);
                }
                files.get(&r.file).map(|lines| {
                    numbered(
                        lines,
                        r.line.saturating_sub(snippet_lines).max(1),
                        r.line + snippet_lines,
                    )
                })
            } else {
                None
            };
            Ref {
                referencing_entity_name: r.enclosing.clone().unwrap_or_default(),
                reference_kind: kind_str(r.kind).to_string(),
                marking: marking_str(r.marking).to_string(),
                source_file: r.file.clone(),
                source_line: r.line,
                text: clip(r.line_text.trim(), MAX_LINE_TEXT),
                name_only: r.resolution == Resolution::NameOnly,
                source_snippet,
            }
        });
        let shown = Budget::new(self.0.budget).take_fitting(all, |item| {
            120 + item.text.len()
                + item.source_file.len()
                + item.referencing_entity_name.len()
                + item.source_snippet.as_ref().map_or(0, String::len)
        });
        let truncated = shown.len() < total;
        let scope_note = file_scope.as_ref().map(|file| {
            format!(
                "{name} is static in {file}: only that file's references are shown (a {name} elsewhere is another entity); omit ContextFile to search the whole tree"
            )
        });
        let truncation_note = truncated.then(|| {
            let mut hint = format!("{} more references not shown", total - shown.len());
            if prefix.is_none() {
                hint.push_str("; pass SourceTreePrefix (e.g. the directory of the racing functions) to narrow");
            } else if snippet_lines > 0 {
                hint.push_str("; lower IncludeSnippetLines or narrow SourceTreePrefix");
            } else {
                hint.push_str("; narrow SourceTreePrefix");
            }
            hint
        });
        let note = match (scope_note, truncation_note) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        };
        to_json(&Output {
            references: shown,
            total,
            truncated_output: truncated,
            note,
        })
    }
}

impl FindReferences {
    /// The file a name's references are confined to: the context file, when the definition the
    /// index picks for it there is a `static` function or variable of that very `.c` file (a
    /// `static` in a header is shared by every includer, so it is not confined).
    fn file_scope(&self, name: &str, context: Option<&str>) -> Option<String> {
        let context = context?;
        if name.contains("::") || !context.ends_with(".c") {
            return None;
        }
        let defs = self.0.index.lookup(name, Some(context));
        let best = defs.first()?;
        let confinable = matches!(best.kind, EntityKind::Function | EntityKind::GlobalVariable);
        (confinable && best.is_static && best.file == context).then(|| best.file.clone())
    }

    /// Zero references: say so plainly when the entity exists, "does not exist" when it does not.
    fn check_exists(&self, name: &str) -> Result<(), ToolError> {
        let (target, kinds): (&str, &[EntityKind]) = match name.split_once("::") {
            Some((record, _)) => (
                record,
                &[EntityKind::Struct, EntityKind::Union, EntityKind::Typedef],
            ),
            None => (name, &[]),
        };
        let defs = self.0.index.lookup(target, None);
        if defs
            .iter()
            .any(|d| kinds.is_empty() || kinds.contains(&d.kind))
        {
            Ok(())
        } else {
            Err(self.0.not_found(target))
        }
    }
}
