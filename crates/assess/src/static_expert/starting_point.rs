//! The static expert's evidence as the LLM expert's starting point.
//!
//! Locating both accesses, reading the locks taken before them and the racing member's
//! declaration and layout costs a model several tool calls per report; the static expert has
//! done it already, deterministically. [`render`] writes those facts as a compact Markdown
//! section for the LLM expert's first message, so the model spends its calls on the open
//! questions. It carries facts only, never the static verdict or rule weights: the point of a
//! second expert is a second opinion, and a verdict in the prompt would anchor it.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::facts::{self, AccessFacts, FieldDecl, RaceFacts};
use super::locate::Method;
use crate::source::SourceTree;

/// The section's heading; tests and the instruction refer to it.
pub const HEADING: &str = "## Starting point (racejudge's static analysis of this tree)";

/// Gathers the static facts for `report` and renders them; `tools` (when given) supplies the
/// racing record's layout through `codesearch-struct-layout`, from DWARF when the kernel was
/// built and from source otherwise.
pub fn render(
    tree: &SourceTree,
    report: &report::Report,
    tools: Option<&tools::ToolBox>,
) -> String {
    let f = facts::gather(tree, report);
    let decl = f
        .field
        .as_deref()
        .and_then(|field| facts::field_declaration(tree, &f.accesses, field));
    let layout = match (&decl, tools) {
        (Some(d), Some(tools)) => tools
            .call(
                tools::tool::struct_layout::NAME,
                &json!({"Name": d.record, "ContextFile": d.file}),
            )
            .ok(),
        _ => None,
    };
    render_facts(&f, decl.as_ref(), layout.as_ref())
}

/// The section from gathered facts (split out so that it can be tested without a tree).
pub fn render_facts(f: &RaceFacts, decl: Option<&FieldDecl>, layout: Option<&Value>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{HEADING}\n");
    out.push_str(
        "Facts found by reading the tree without a model. They are leads, not conclusions: check \
         what your verdict depends on, and spend tool calls on what they leave open.\n\n",
    );
    let mut open = Vec::new();
    match (&f.field, decl) {
        (Some(field), Some(d)) => {
            let _ = writeln!(
                out,
                "- Racing member: `{field}` of `struct {}`, declared at {}:{}: `{}`",
                d.record, d.file, d.line, d.decl
            );
        }
        (Some(field), None) => {
            let _ = writeln!(out, "- Racing member: `{field}`");
            open.push(format!("the declaration (type) of `{field}` was not found"));
        }
        (None, _) => open.push("the racing variable could not be named".to_string()),
    }
    if let (Some(field), Some(layout)) = (&f.field, layout) {
        layout_line(&mut out, field, layout);
    }
    if let Some(v) = &f.value {
        let _ = writeln!(
            out,
            "- Value change: `{:#x}` -> `{:#x}` ({} bit(s) differ{})",
            v.old,
            v.new,
            v.bits_changed,
            if v.pointer_like {
                ", pointer-like values"
            } else {
                ""
            }
        );
    }
    for (i, a) in f.accesses.iter().enumerate() {
        access_lines(&mut out, i, a);
        if a.location.is_none() {
            open.push(format!("access {} was not located in this tree", i + 1));
        }
    }
    if !open.is_empty() {
        let _ = writeln!(out, "- Not established: {}.", open.join("; "));
    }
    out
}

fn access_lines(out: &mut String, i: usize, a: &AccessFacts) {
    let marking = match (&a.marker, a.marked_in_report) {
        (Some(m), _) => format!("marked with `{m}` on the line"),
        (None, true) => "marked (per the report)".to_string(),
        (None, false) => "plain".to_string(),
    };
    let _ = write!(
        out,
        "- Access {}: {} of {} bytes, {marking}",
        i + 1,
        a.operation,
        a.size
    );
    let Some(l) = &a.location else {
        out.push_str("; not located.\n");
        return;
    };
    let _ = write!(out, ", in `{}` at {}:{}", l.frame, l.file, l.line);
    if !matches!(l.method, Method::Exact) {
        out.push_str(" (line inferred: the report's line did not match this tree exactly)");
    }
    let _ = writeln!(out, ": `{}`", l.text.trim());
    let locks = if a.locks.is_empty() {
        "none taken earlier in the function".to_string()
    } else {
        a.locks.join(", ")
    };
    let _ = writeln!(out, "  - locks held: {locks}");
    let mut uses = Vec::new();
    if a.plain_rmw {
        uses.push("plain read-modify-write".to_string());
    }
    if let Some(c) = &a.stores_constant {
        uses.push(format!("stores the constant `{c}`"));
    }
    if a.condition {
        uses.push("the value decides a condition".to_string());
    }
    if let Some(d) = &a.diagnostic {
        uses.push(format!("feeds `{d}`"));
    }
    if let Some(c) = &a.container_op {
        uses.push(format!("uses `{c}`"));
    }
    if let Some(d) = &a.deref_after {
        uses.push(format!("the loaded value is dereferenced at {d}"));
    }
    if let Some(r) = &a.reloaded_after_check {
        uses.push(format!("checked, then loaded again at {r}"));
    }
    if a.rechecked_under_lock {
        uses.push("re-read under a lock taken later".to_string());
    }
    if let Some(c) = &a.race_comment {
        uses.push(format!("comment nearby: `{c}`"));
    }
    if !uses.is_empty() {
        let _ = writeln!(out, "  - {}", uses.join("; "));
    }
}

/// The member's offset and size, the record's size, and the members sharing its 8-byte word
/// (a store to any of them can clobber the others when they are bit-fields).
fn layout_line(out: &mut String, field: &str, layout: &Value) {
    let Some(fields) = layout["Fields"].as_array() else {
        return;
    };
    let Some(me) = fields.iter().find(|m| m["Name"] == field) else {
        return;
    };
    let source = layout["Source"].as_str().unwrap_or("source");
    let (Some(off), Some(size)) = (me["OffsetBits"].as_u64(), me["SizeBits"].as_u64()) else {
        // A config-dependent member before it hides the offset; the size alone still tells a
        // torn access from a whole one.
        let size = match me["SizeBits"].as_u64() {
            Some(bits) if bits % 8 == 0 => format!("{} bytes", bits / 8),
            Some(bits) => format!("{bits} bits"),
            None => "size unknown".to_string(),
        };
        let why = me["Unknown"]
            .as_str()
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "- Layout ({source}): `{field}` {size}, offset unknown{why}"
        );
        return;
    };
    let word = off / 64;
    let neighbours: Vec<String> = fields
        .iter()
        .filter(|m| m["Name"] != field && !m["Name"].as_str().unwrap_or("").is_empty())
        .filter(|m| {
            let (Some(o), Some(s)) = (m["OffsetBits"].as_u64(), m["SizeBits"].as_u64()) else {
                return false;
            };
            s > 0 && o / 64 <= word && (o + s - 1) / 64 >= word
        })
        .map(|m| format!("`{}`", m["Name"].as_str().unwrap_or("")))
        .collect();
    let place = if off % 8 == 0 && size % 8 == 0 {
        format!("offset {} bytes, {} bytes", off / 8, size / 8)
    } else {
        format!("bit-field: offset {off} bits, {size} bits")
    };
    let _ = write!(out, "- Layout ({source}): `{field}` at {place}");
    if let Some(total) = layout["SizeBytes"].as_u64() {
        let _ = write!(out, " of {total}");
    }
    if neighbours.is_empty() {
        out.push_str("; alone in its 8-byte word\n");
    } else {
        let _ = writeln!(
            out,
            "; shares its 8-byte word with {}",
            neighbours.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::facts::ValueFacts;
    use super::super::locate::Location;
    use super::*;
    use crate::source::FnSpan;

    fn access(text: &str, store: bool) -> AccessFacts {
        AccessFacts {
            operation: if store { "write" } else { "read" },
            size: 4,
            marked_in_report: false,
            location: Some(Location {
                frame: if store { "set_flag" } else { "get_flag" }.into(),
                file: "k/a.c".into(),
                line: if store { 10 } else { 20 },
                text: text.into(),
                function: Some(FnSpan {
                    name: "f".into(),
                    file: "k/a.c".into(),
                    start: 1,
                    end: 30,
                }),
                method: Method::Exact,
            }),
            marker: None,
            plain_rmw: false,
            store,
            diagnostic: None,
            condition: false,
            container_op: None,
            deref_after: None,
            stores_constant: None,
            locks: vec![],
            rechecked_under_lock: false,
            race_comment: None,
            lock_objects: vec![],
            reloaded_after_check: None,
            enum_constant: None,
            stores_sentinel: None,
            marked_rmw: false,
        }
    }

    fn race() -> RaceFacts {
        let mut w = access("\tp->flags |= 1;", true);
        w.plain_rmw = true;
        let mut r = access("\tif (READ_ONCE(p->flags) & 1)", false);
        r.marker = Some("READ_ONCE".into());
        r.condition = true;
        r.locks = vec!["spin_lock(&p->lock)".into()];
        RaceFacts {
            accesses: vec![w, r],
            field: Some("flags".into()),
            field_kind: None,
            value: Some(ValueFacts {
                old: 0,
                new: 1,
                bits_changed: 1,
                delta: 1,
                pointer_like: false,
                to_or_from_zero: true,
            }),
            same_function: false,
            kernel_release: None,
            same_version: false,
            tree_newer: false,
            field_is_pointer: Some(false),
        }
    }

    #[test]
    fn section_carries_locations_locks_marking_declaration_and_layout() {
        let decl = FieldDecl {
            record: "foo".into(),
            file: "k/a.h".into(),
            line: 3,
            decl: "unsigned int flags:4;".into(),
        };
        let layout = json!({
            "Source": "source", "SizeBytes": 16,
            "Fields": [
                {"Name": "flags", "OffsetBits": 0, "SizeBits": 4, "Line": 3, "Decl": "unsigned int flags:4;"},
                {"Name": "mode", "OffsetBits": 4, "SizeBits": 4, "Line": 4, "Decl": "unsigned int mode:4;"},
                {"Name": "next", "OffsetBits": 64, "SizeBits": 64, "Line": 5, "Decl": "struct foo *next;"}
            ]
        });
        let s = render_facts(&race(), Some(&decl), Some(&layout));
        assert!(s.starts_with(HEADING), "{s}");
        for needle in [
            "`flags` of `struct foo`, declared at k/a.h:3: `unsigned int flags:4;`",
            "bit-field: offset 0 bits, 4 bits of 16; shares its 8-byte word with `mode`",
            "Access 1: write of 4 bytes, plain, in `set_flag` at k/a.c:10: `p->flags |= 1;`",
            "plain read-modify-write",
            "Access 2: read of 4 bytes, marked with `READ_ONCE` on the line, in `get_flag` at k/a.c:20",
            "locks held: spin_lock(&p->lock)",
            "locks held: none taken earlier in the function",
            "the value decides a condition",
            "`0x0` -> `0x1` (1 bit(s) differ)",
        ] {
            assert!(s.contains(needle), "missing {needle:?} in:\n{s}");
        }
        assert!(!s.contains("Not established"), "{s}");
        assert!(!s.contains("`next`"), "a member of another word: {s}");
    }

    #[test]
    fn what_was_not_found_is_named_as_open() {
        let mut f = race();
        // An access that was not located has no line to read a marking from.
        f.accesses[1].location = None;
        f.accesses[1].marker = None;
        let s = render_facts(&f, None, None);
        assert!(
            s.contains("Access 2: read of 4 bytes, plain; not located."),
            "{s}"
        );
        assert!(
            s.contains(
                "Not established: the declaration (type) of `flags` was not found; access 2 was not located in this tree."
            ),
            "{s}"
        );
        f.field = None;
        let s = render_facts(&f, None, None);
        assert!(s.contains("the racing variable could not be named"), "{s}");
    }

    #[test]
    fn a_whole_member_gets_bytes() {
        let layout = json!({"Source": "dwarf", "Fields": [
            {"Name": "a", "OffsetBits": 0, "SizeBits": 32},
            {"Name": "flags", "OffsetBits": 32, "SizeBits": 32}
        ]});
        let mut s = String::new();
        layout_line(&mut s, "flags", &layout);
        assert_eq!(
            s,
            "- Layout (dwarf): `flags` at offset 4 bytes, 4 bytes; shares its 8-byte word with `a`\n"
        );
    }

    #[test]
    fn an_unknown_offset_still_gives_the_size_and_the_reason() {
        let layout = json!({"Source": "source", "Fields": [
            {"Name": "flags", "SizeBits": 64, "Unknown": "a member before it depends on CONFIG_X"}
        ]});
        let mut s = String::new();
        layout_line(&mut s, "flags", &layout);
        assert_eq!(
            s,
            "- Layout (source): `flags` 8 bytes, offset unknown (a member before it depends on CONFIG_X)\n"
        );
    }
}
