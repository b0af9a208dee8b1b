//! `codesearch-struct-layout`: field offsets and sizes of a struct or union, computed from
//! source by [`crate::layout::Engine`] through the index, and with `FieldOffset` the field that
//! covers a byte offset (KCSAN reports give an address; the expert needs the field).
//! When the toolbox was given a built kernel's DWARF ([`crate::ToolOptions::dwarf`]) and it
//! defines the type, the layout comes from there instead (`Source: "dwarf"`): exact for that
//! build, where the source engine must mark config-dependent members unknown.

use codeindex::{Definition, EntityKind};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Ctx;
use std::sync::Arc;

use crate::layout::dwarf::DwarfLayouts;
use crate::layout::{Engine, FieldLayout, Source, TypeLayout, TypeSource};
use crate::schema::{parse_args, to_json, tool_spec};
use crate::{Tool, ToolError, ToolSpec};

pub const NAME: &str = "codesearch-struct-layout";

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Args {
    /// Struct or union name (a leading "struct " is accepted), or a typedef of one.
    pub name: String,
    /// Source file that references the type; picks among same-named definitions.
    #[serde(default, alias = "SourceFile")]
    pub context_file: Option<String>,
    /// Byte offset into the struct (e.g. from a KCSAN address); returns the field(s) covering it.
    #[serde(default)]
    pub field_offset: Option<u64>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct FieldOut {
    /// Member name; empty for an anonymous struct/union member (its members follow with Depth+1).
    pub name: String,
    /// Offset from the start of the struct in bits; absent when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset_bits: Option<u64>,
    /// Size in bits; absent when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bits: Option<u64>,
    /// Nesting depth inside anonymous members (0 for direct members).
    #[serde(skip_serializing_if = "is_zero")]
    pub depth: u32,
    /// Source line of the declaration.
    pub line: u32,
    /// The declaration.
    pub decl: String,
    /// The #if condition around the member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Why the offset or size is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Covering {
    /// Dotted path of the member covering the offset, e.g. "f_path.dentry".
    pub path: String,
    /// Its offset from the start of the outer struct, in bits.
    pub offset_bits: u64,
    /// Its size in bits.
    pub size_bits: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    /// Where the layout comes from: "dwarf" (the built kernel's debug info) or "source".
    pub source: String,
    /// "struct" or "union".
    pub kind: String,
    /// The type's name.
    pub name: String,
    /// File of the definition.
    pub source_file: String,
    /// First line of the definition.
    pub line: u32,
    /// Total size in bytes, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Alignment in bytes, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub align_bytes: Option<u64>,
    /// Members in declaration order (x86_64 ABI), anonymous members' members nested after them.
    pub fields: Vec<FieldOut>,
    /// With FieldOffset: the members covering that byte, outermost first, descending into nested structs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub covering: Option<Vec<Covering>>,
    /// How the layout was computed, what is unknown and why, what was left out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

pub struct StructLayout(pub Ctx, pub Option<Arc<DwarfLayouts>>);

/// Serves the layout engine from the index.
struct IndexSource<'a> {
    ctx: &'a Ctx,
    context: Option<&'a str>,
}

impl IndexSource<'_> {
    fn text_of(&self, def: &Definition) -> Option<Source> {
        let lines = self.ctx.lines_of(&def.file).ok()?;
        let first = def.start_line.max(1);
        let last = def.end_line.min(lines.len() as u32);
        let text = lines.get((first - 1) as usize..last as usize)?.join("\n");
        Some(Source {
            text,
            first_line: first,
            file: def.file.clone(),
        })
    }

    fn find(&self, name: &str, kind: impl Fn(EntityKind) -> bool) -> Option<Source> {
        let defs = self.ctx.index.lookup(name, self.context);
        let def = self.ctx.pick(&defs, kind)?;
        self.text_of(def)
    }
}

impl IndexSource<'_> {
    /// An enumerator's value as an expression: its own `= expr`, or the last explicit value
    /// before it plus its distance from that one (C's counting rule).
    fn enumerator_value(&self, name: &str) -> Option<String> {
        let defs = self.ctx.index.lookup(name, self.context);
        let def = self.ctx.pick(&defs, |k| k == EntityKind::Enumerator)?;
        let lines = self.ctx.lines_of(&def.file).ok()?;
        // The enum body: from the enumerator's parent definition when known, else a window.
        let parent = def.parent.as_deref().and_then(|p| {
            let defs = self.ctx.index.lookup(p, Some(&def.file));
            self.ctx.pick(&defs, |k| k == EntityKind::Enum).cloned()
        });
        let (first, last) = match &parent {
            Some(p) if p.file == def.file => (p.start_line, p.end_line),
            _ => return None,
        };
        let text = lines
            .get((first.max(1) - 1) as usize..(last as usize).min(lines.len()))?
            .join("\n");
        let cleaned = crate::layout::lex::strip_comments(&text);
        let body = &cleaned[cleaned.find('{')? + 1..cleaned.rfind('}')?];
        let mut base: Option<String> = None;
        let mut since = 0u32;
        for item in split_top_level(body) {
            let item = item.trim();
            if item.is_empty() || item.starts_with('#') {
                continue;
            }
            let (ident, value) = match item.split_once('=') {
                Some((i, v)) => (i.trim(), Some(v.trim().to_string())),
                None => (item, None),
            };
            if let Some(v) = value {
                base = Some(v);
                since = 0;
            } else {
                since += 1;
            }
            if ident == name {
                return Some(match &base {
                    Some(b) if since == 0 => format!("({b})"),
                    Some(b) => format!("({b}) + {since}"),
                    None => (since - 1).to_string(),
                });
            }
        }
        None
    }
}

/// Splits an enum body at commas outside parentheses.
fn split_top_level(body: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in body.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&body[start..]);
    out
}

impl TypeSource for IndexSource<'_> {
    fn record(&self, is_union: bool, name: &str) -> Option<Source> {
        let want = if is_union {
            EntityKind::Union
        } else {
            EntityKind::Struct
        };
        self.find(name, |k| k == want)
    }

    fn typedef(&self, name: &str) -> Option<Source> {
        self.find(name, |k| k == EntityKind::Typedef)
    }

    fn macro_text(&self, name: &str) -> Option<String> {
        let Some(source) = self.find(name, |k| k == EntityKind::Macro) else {
            return self.enumerator_value(name);
        };
        let joined = source.text.replace("\\\n", " ");
        let rest = joined
            .trim_start()
            .strip_prefix('#')?
            .trim_start()
            .strip_prefix("define")?
            .trim_start();
        let rest = rest.strip_prefix(name)?;
        // A function-like macro has no value on its own, but it is defined: "" evaluates to
        // unknown while `defined(NAME)` sees it.
        if rest.starts_with('(') {
            return Some(String::new());
        }
        Some(crate::layout::lex::strip_comments(rest).trim().to_string())
    }

    fn kconfig(&self) -> Option<&codeindex::kconfig::KConfig> {
        self.ctx.config.as_deref()
    }
}

fn flatten(fields: &[FieldLayout], depth: u32, out: &mut Vec<FieldOut>) {
    for f in fields {
        out.push(FieldOut {
            name: f.name.clone(),
            offset_bits: f.offset_bits,
            size_bits: f.size_bits,
            depth,
            line: f.line,
            decl: f.type_text.clone(),
            condition: f.condition.clone(),
            unknown: f.unknown.clone(),
        });
        flatten(&f.children, depth + 1, out);
    }
}

/// The members covering bit `bit` (relative to `layout`, whose own offset is `base`).
fn covering(
    layout: &TypeLayout,
    bit: u64,
    base: u64,
    prefix: &str,
    out: &mut Vec<Covering>,
    depth: usize,
) {
    fn walk(
        fields: &[FieldLayout],
        bit: u64,
        base: u64,
        prefix: &str,
        out: &mut Vec<Covering>,
        depth: usize,
    ) {
        for f in fields {
            let (Some(off), Some(size)) = (f.offset_bits, f.size_bits) else {
                continue;
            };
            let hit = if size == 0 {
                off == bit
            } else {
                off <= bit && bit < off + size
            };
            if !hit {
                continue;
            }
            let path = match (prefix.is_empty(), f.name.is_empty()) {
                (_, true) => prefix.to_string(),
                (true, false) => f.name.clone(),
                (false, false) => format!("{prefix}.{}", f.name),
            };
            if !f.name.is_empty() {
                out.push(Covering {
                    path: path.clone(),
                    offset_bits: base + off,
                    size_bits: size,
                });
            }
            walk(&f.children, bit, base, &path, out, depth);
            if let Some(inner) = &f.inner
                && depth < 8
                && size > 0
            {
                covering(inner, bit - off, base + off, &path, out, depth + 1);
            }
        }
    }
    walk(&layout.fields, bit, base, prefix, out, depth);
}

/// The tool's name, description and schemas (needs no index).
pub fn spec() -> ToolSpec {
    tool_spec::<Args, Output>(
        NAME,
        "Computes the layout of a struct or union from source for x86_64: each member's offset and size in bits, resolving typedefs, nested structs, arrays, bitfields, __packed/__aligned and #if CONFIG_ members under the configuration. Members whose size cannot be known from source (and offsets after them) are marked unknown, never guessed. Pass FieldOffset (bytes, e.g. a KCSAN address minus the object start) to get the member covering that byte. When the analysis built the kernel, the layout is read from its DWARF instead (Source \"dwarf\"): exact for that build.",
    )
}

impl Tool for StructLayout {
    fn spec(&self) -> ToolSpec {
        spec()
    }

    fn execute(&self, args: &Value) -> Result<Value, ToolError> {
        let args: Args = parse_args(NAME, args)?;
        let mut notes = Vec::new();
        if let Some(dwarf) = &self.1 {
            match dwarf.layout(&args.name) {
                Ok(Some(found)) => {
                    let bare = args.name.trim();
                    let bare = bare
                        .strip_prefix("struct ")
                        .or_else(|| bare.strip_prefix("union "))
                        .unwrap_or(bare)
                        .trim();
                    notes.push(format!(
                        "layout from the DWARF of {} (exact for that build)",
                        dwarf.path().display()
                    ));
                    let file = found.layout.file.clone();
                    return self.render(
                        &args,
                        Arc::new(found.layout),
                        Rendered {
                            source: "dwarf",
                            name: bare,
                            file,
                            line: found.line,
                        },
                        notes,
                    );
                }
                Ok(None) => notes.push(format!(
                    "{} is not defined in the DWARF of {}; layout computed from source",
                    args.name,
                    dwarf.path().display()
                )),
                Err(err @ crate::layout::dwarf::DwarfError::Ambiguous { .. }) => {
                    notes.push(format!("{err}; layout computed from source"));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "DWARF layouts unavailable");
                    notes.push(format!(
                        "DWARF unavailable ({err}); layout computed from source"
                    ));
                }
            }
        }
        let found = self.0.lookup(&args.name, args.context_file.as_deref())?;
        let (name, context, defs) = (found.name, &found.context, &found.defs);
        let def = self
            .0
            .pick(defs, |k| {
                matches!(k, EntityKind::Struct | EntityKind::Union)
            })
            .or_else(|| self.0.pick(defs, |k| k == EntityKind::Typedef))
            .ok_or_else(|| match defs.first() {
                Some(d) => ToolError::NotFound(format!(
                    "requested entity {name} is not a struct/union (is {} in {})",
                    d.kind.as_str(),
                    d.file
                )),
                None => self.0.not_found(name),
            })?
            .clone();
        let source = IndexSource {
            ctx: &self.0,
            context: context.as_deref(),
        };
        let engine = Engine::new(&source);
        let text = source
            .text_of(&def)
            .ok_or_else(|| ToolError::Failed(format!("cannot read {}", def.file)))?;
        let layout = engine.layout_source(&text, name).map_err(|reason| {
            ToolError::NotFound(format!(
                "requested entity {name} is not a struct/union: {reason}"
            ))
        })?;
        if self.0.config.is_none() {
            notes.push("no .config given: members under #if CONFIG_* (and types such as spinlock_t whose size depends on debug options) are unknown; index with --config for exact offsets".to_string());
        }
        let file = def.file.clone();
        self.render(
            &args,
            layout,
            Rendered {
                source: "source",
                name,
                file,
                line: def.start_line,
            },
            notes,
        )
    }
}

/// What identifies a layout in the output besides its members.
struct Rendered<'a> {
    source: &'static str,
    name: &'a str,
    file: String,
    line: u32,
}

impl StructLayout {
    /// The common output: members flattened under the budget, FieldOffset's covering members.
    fn render(
        &self,
        args: &Args,
        layout: Arc<TypeLayout>,
        what: Rendered<'_>,
        mut notes: Vec<String>,
    ) -> Result<Value, ToolError> {
        let name = what.name;
        if let Some(reason) = &layout.unknown {
            notes.push(format!("layout incomplete from {reason}"));
        }
        let mut fields = Vec::new();
        flatten(&layout.fields, 0, &mut fields);
        let covering_fields = args.field_offset.map(|byte| {
            let mut out = Vec::new();
            covering(&layout, byte * 8, 0, "", &mut out, 0);
            if out.is_empty() {
                notes.push(match layout.size {
                    Some(size) if byte >= size => format!("offset {byte} is beyond the end of {name} ({size} bytes)"),
                    _ => format!("no member with a known offset covers byte {byte} (padding, or after a member of unknown size)"),
                });
            }
            out
        });
        let total = fields.len();
        let shown = crate::text::Budget::new(self.0.budget).take_fitting(fields, |f| {
            80 + f.decl.len()
                + f.unknown.as_ref().map_or(0, String::len)
                + f.condition.as_ref().map_or(0, String::len)
        });
        if shown.len() < total {
            notes.push(format!("{} more members left out (size budget); pass FieldOffset to find the member at an offset", total - shown.len()));
        }
        to_json(&Output {
            source: what.source.to_string(),
            kind: if layout.is_union { "union" } else { "struct" }.to_string(),
            name: name.to_string(),
            source_file: what.file,
            line: what.line,
            size_bytes: layout.size,
            align_bytes: layout.align,
            fields: shown,
            covering: covering_fields,
            notes,
        })
    }
}
