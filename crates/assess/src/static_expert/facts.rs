//! Facts about the race, gathered from the report and the located source lines.
//!
//! [`RaceFacts`] is what the rules look at: per access ([`AccessFacts`]) the location, the racing
//! expression, its marking, read-modify-write, diagnostic or control-flow use, pointer use, linked
//! structure operations and the locks held; for the pair, the racing field and what
//! `value changed` says about the values.

use report::{Access, Operation, Report};
use serde::Serialize;

use super::locate::{Anchor, Location, Method, anchor, locate, pair};
use super::text;
use crate::source::SourceTree;

#[derive(Debug, Clone, Serialize)]
pub struct AccessFacts {
    pub operation: &'static str,
    pub size: u64,
    pub marked_in_report: bool,
    pub location: Option<Location>,
    /// The marking primitive seen on the line.
    pub marker: Option<String>,
    pub plain_rmw: bool,
    pub store: bool,
    /// The value read is used in a diagnostic (WARN, BUG, printk, trace, lockdep, debug helper).
    pub diagnostic: Option<String>,
    pub condition: bool,
    pub container_op: Option<String>,
    /// The value read lands in a local that is dereferenced afterwards.
    pub deref_after: Option<String>,
    /// A constant stored (`x = 0`, `x = true`, `x = NULL`).
    pub stores_constant: Option<String>,
    pub locks: Vec<String>,
    /// The field re-read later in the function under a lock taken after the access.
    pub rechecked_under_lock: bool,
    /// A nearby comment documenting an intentional race ("racy", "stale", "approximate"…).
    pub race_comment: Option<String>,
    /// The lock objects held (last identifier of each lock argument, e.g. `i_lock`).
    pub lock_objects: Vec<String>,
    /// The field is tested (NULL/zero check) and then read again a few lines later, so the
    /// second load can see what the check excluded (`if (p->f) p->f(x);`).
    pub reloaded_after_check: Option<String>,
    /// An enumerator-like constant the statement stores or compares the field with
    /// (`x->state = S_IDLE`, `x->mode != M_ON`): the field is a state machine, not a counter.
    pub enum_constant: Option<String>,
    /// A negative sentinel stored (`x->id = -1`): readers must re-check for it.
    pub stores_sentinel: Option<String>,
    /// The marked store writes back a value computed from the same field
    /// (`WRITE_ONCE(x->m, x->m & ~b)`): a marked read-modify-write, not a one-shot annotation.
    pub marked_rmw: bool,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ValueFacts {
    pub old: u64,
    pub new: u64,
    pub bits_changed: u32,
    pub delta: u64,
    pub pointer_like: bool,
    pub to_or_from_zero: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RaceFacts {
    pub accesses: Vec<AccessFacts>,
    /// The racing field or variable name (shared by both lines when both were located).
    pub field: Option<String>,
    pub field_kind: Option<&'static str>,
    pub value: Option<ValueFacts>,
    pub same_function: bool,
    pub kernel_release: Option<String>,
    /// The analysed tree is the report's kernel version (its line numbers can be trusted).
    pub same_version: bool,
    /// The analysed tree is a later version than the report's kernel: differences on the racing
    /// lines may be the race's own fix or annotation.
    pub tree_newer: bool,
    /// The racing field's declared type is a pointer (function pointers included), per its
    /// declaration in the struct the located line dereferences (found through the index).
    pub field_is_pointer: Option<bool>,
}

fn op_name(op: Operation) -> &'static str {
    match op {
        Operation::Read => "read",
        Operation::Write => "write",
        Operation::ReadWrite => "read-write",
    }
}

pub fn gather(tree: &SourceTree, report: &Report) -> RaceFacts {
    let release = report
        .reported_by
        .as_ref()
        .and_then(|r| r.kernel_release.clone());
    // The report's line numbers are exact only on the very kernel it came from.
    let same_version = match (&release, tree.version()) {
        (Some(rel), Some(v)) => {
            rel == &v || rel.starts_with(&format!("{v}.")) || rel.starts_with(&format!("{v}-"))
        }
        _ => false,
    };
    let anchors: Vec<Option<Anchor>> = report
        .accesses
        .iter()
        .map(|a| anchor(tree, a, same_version))
        .collect();
    let globals = report
        .accesses
        .iter()
        .all(|a| super::locate::is_kernel_image_address(&a.address));
    let paired = match anchors.as_slice() {
        [Some(a), Some(b)] if globals => {
            super::locate::pair_global(tree, a, b).or_else(|| pair(tree, a, b))
        }
        [Some(a), Some(b)] => pair(tree, a, b),
        _ => None,
    };
    let (located, field) = match paired {
        Some((member, la, lb)) => (vec![Some(la), Some(lb)], Some(member)),
        None => {
            // No member shared by both sides (or one side missing): locate each side alone.
            let first: Vec<Option<Location>> = report
                .accesses
                .iter()
                .map(|a| locate(tree, a, &[]))
                .collect();
            // Without the report's exact kernel a matching function does not make its line exact.
            let first = first
                .into_iter()
                .map(|l| {
                    l.map(|mut l| {
                        if !same_version && l.method == Method::Exact {
                            l.method = Method::LineAdjusted { reported: l.line };
                        }
                        l
                    })
                })
                .collect::<Vec<_>>();
            let field = common_field(&first, &report.accesses);
            (first, field)
        }
    };
    let accesses: Vec<AccessFacts> = report
        .accesses
        .iter()
        .zip(located)
        .map(|(a, loc)| access_facts(tree, a, loc, field.as_deref()))
        .collect();
    let same_function = accesses.len() == 2
        && accesses[0].location.as_ref().map(|l| &l.frame)
            == accesses[1].location.as_ref().map(|l| &l.frame)
        && accesses[0].location.is_some();
    let field_is_pointer = field
        .as_deref()
        .and_then(|f| declared_pointer(tree, &accesses, f));
    RaceFacts {
        field_is_pointer,
        field_kind: field.as_deref().and_then(text::stats_like),
        field,
        value: report.value_change.as_ref().and_then(value_facts),
        same_function,
        tree_newer: match (
            release.as_deref().and_then(major_minor),
            tree.version().as_deref().and_then(major_minor),
        ) {
            (Some(r), Some(t)) => t > r,
            _ => false,
        },
        same_version,
        kernel_release: release,
        accesses,
    }
}

/// The name both lines touch; else the stored-to member of the writer; else the reader's last member.
fn common_field(locs: &[Option<Location>], accesses: &[Access]) -> Option<String> {
    let sets: Vec<Vec<String>> = locs
        .iter()
        .map(|l| l.as_ref().map(|l| text::names(&l.text)).unwrap_or_default())
        .collect();
    let members: Vec<Vec<String>> = locs
        .iter()
        .map(|l| {
            l.as_ref()
                .map(|l| text::members(&l.text))
                .unwrap_or_default()
        })
        .collect();
    if sets.len() == 2 && !sets[0].is_empty() && !sets[1].is_empty() {
        // Members first: `a->lock` and `b->lock` race on `lock` even though `a` and `b` differ.
        if let Some(m) = members[0].iter().rev().find(|m| members[1].contains(m)) {
            return Some(m.clone());
        }
        if let Some(n) = sets[0]
            .iter()
            .rev()
            .find(|n| sets[1].contains(n) && n.len() > 2)
        {
            return Some(n.clone());
        }
    }
    for (i, loc) in locs.iter().enumerate() {
        let (Some(loc), Some(access)) = (loc, accesses.get(i)) else {
            continue;
        };
        if access.operation != Operation::Read
            && let Some(lhs) = text::assigned_lhs(&loc.text)
        {
            return text::names(&lhs).last().cloned();
        }
    }
    members.iter().find_map(|m| m.last().cloned())
}

fn access_facts(
    tree: &SourceTree,
    access: &Access,
    loc: Option<Location>,
    field: Option<&str>,
) -> AccessFacts {
    let mut facts = AccessFacts {
        operation: op_name(access.operation),
        size: access.size,
        marked_in_report: access.qualifiers.marked || access.qualifiers.atomic,
        location: None,
        marker: None,
        plain_rmw: access.operation == Operation::ReadWrite,
        store: access.operation != Operation::Read,
        diagnostic: None,
        condition: false,
        container_op: None,
        deref_after: None,
        stores_constant: None,
        locks: Vec::new(),
        rechecked_under_lock: false,
        race_comment: None,
        lock_objects: Vec::new(),
        reloaded_after_check: None,
        enum_constant: None,
        stores_sentinel: None,
        marked_rmw: false,
    };
    let Some(loc) = loc else { return facts };
    let line = &loc.text;
    // A statement may span lines: look at the located line plus continuation lines.
    let stmt = statement_at(tree, &loc);
    facts.marker = text::marker(&stmt);
    facts.plain_rmw |= text::plain_rmw(line) && facts.marker.is_none();
    facts.diagnostic = text::diagnostic(&stmt);
    facts.condition = text::condition(&stmt);
    facts.container_op = text::container_op(&stmt);
    if let Some(field) = field {
        facts.enum_constant = text::enum_constant_with(&stmt, field)
            .filter(|c| tree.index().is_none_or(|ix| is_enumerator_or_macro(ix, c)));
        facts.marked_rmw = facts.marker.is_some() && text::marked_rmw(&stmt, field);
    }
    if access.operation != Operation::Read
        && let Some(rhs) = text::assigned_rhs(line)
        && text::is_negative_literal(&rhs)
    {
        facts.stores_sentinel = Some(rhs);
    }
    if access.operation != Operation::Read
        && let Some(rhs) = text::assigned_rhs(line)
    {
        let constant = rhs == "NULL"
            || rhs == "true"
            || rhs == "false"
            || rhs.chars().all(|c| c.is_ascii_digit())
            || rhs
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit());
        if constant {
            facts.stores_constant = Some(rhs);
        }
    }
    if let Some(func) = &loc.function
        && let Some(lines) = tree.lines(&func.file)
    {
        let start = func.start as usize;
        let at = loc.line as usize;
        let end = (func.end as usize).min(lines.len());
        if start >= 1 && at >= start && at <= end {
            facts.locks = text::held_locks(lines[start - 1..at - 1].iter().map(String::as_str));
            facts.lock_objects = facts
                .locks
                .iter()
                .filter_map(|l| {
                    let arg = l.split_once('(')?.1;
                    let arg = arg.split(',').next()?;
                    text::names(arg).last().cloned()
                })
                .collect();
            // Comments just above (or on) the access that document the race as intended.
            let from = at.saturating_sub(8).max(start);
            facts.race_comment = text::race_comment(lines[from - 1..at].iter().map(String::as_str));
            // A local loaded from the racing field and dereferenced later: pointer use.
            // `p = x->f;` or a declaration `struct foo *p = x->f;`: the local is the last name.
            if access.operation == Operation::Read
                && let Some(lhs) = text::assigned_lhs(line)
                && !lhs.contains("->")
                && !lhs.contains('.')
                && let Some(local) = text::names(&lhs).last().cloned()
                && let Some((n, l)) = lines[at..end]
                    .iter()
                    .enumerate()
                    .find(|(_, l)| text::uses_as_pointer_or_index(l, &local))
            {
                facts.deref_after = Some(format!("{}:{}: {}", func.file, at + n + 1, l.trim()));
            }
            if let Some(field) = field
                && access.operation == Operation::Read
            {
                facts.reloaded_after_check =
                    text::reload_after_check(&lines[start - 1..end], at - start, field)
                        .map(|(n, l)| format!("{}:{}: {}", func.file, start + n, l.trim()));
            }
            // Re-checked under a lock taken after the racy read (double-checked pattern).
            if let Some(field) = field
                && access.operation == Operation::Read
            {
                let mut locked = false;
                for l in &lines[at..end] {
                    if !text::held_locks(std::iter::once(l.as_str())).is_empty() {
                        locked = true;
                    } else if locked && text::names(l).iter().any(|n| n == field) {
                        facts.rechecked_under_lock = true;
                        break;
                    }
                }
            }
        }
    }
    facts.location = Some(loc);
    facts
}

/// The located line plus up to 3 continuation lines when the statement does not end on it, and
/// the opening line(s) when the located line continues a statement (e.g. inside `WARN_ON(`).
fn statement_at(tree: &SourceTree, loc: &Location) -> String {
    let Some(lines) = tree.lines(&loc.file) else {
        return loc.text.clone();
    };
    let idx = loc.line as usize - 1;
    let mut start = idx;
    while start > 0 && idx - start < 3 {
        let prev = text::code_part(&lines[start - 1]);
        let p = prev.trim_end();
        if p.ends_with(';')
            || p.ends_with('{')
            || p.ends_with('}')
            || p.is_empty()
            || p.trim_start().starts_with('#')
        {
            break;
        }
        start -= 1;
    }
    let mut end = idx;
    while end + 1 < lines.len() && end - idx < 3 {
        let cur = text::code_part(&lines[end]);
        let c = cur.trim_end();
        if c.ends_with(';') || c.ends_with('{') || c.ends_with('}') {
            break;
        }
        end += 1;
    }
    lines[start..=end].join("\n")
}

fn is_enumerator_or_macro(index: &codeindex::Index, name: &str) -> bool {
    index.lookup(name, None).iter().any(|d| {
        matches!(
            d.kind,
            codeindex::EntityKind::Enumerator | codeindex::EntityKind::Macro
        )
    })
}

/// Whether `field` is declared as a pointer, per its declaration ([`field_declaration`]).
fn declared_pointer(tree: &SourceTree, accesses: &[AccessFacts], field: &str) -> Option<bool> {
    field_declaration(tree, accesses, field).map(|d| text::declares_pointer(&d.decl, field))
}

/// Where the racing member is declared: the record it belongs to and its declaration text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldDecl {
    /// The struct or union (without the `struct` keyword).
    pub record: String,
    pub file: String,
    pub line: u32,
    /// The declaration, joined onto one line when it spans several.
    pub decl: String,
}

/// The declaration of `field`: the base variable before `->field` on a located line is declared
/// `struct R *base` in its function, and `R::field` is looked up in the index.
pub fn field_declaration(
    tree: &SourceTree,
    accesses: &[AccessFacts],
    field: &str,
) -> Option<FieldDecl> {
    let index = tree.index()?;
    for a in accesses {
        let Some(loc) = &a.location else { continue };
        let Some(func) = &loc.function else { continue };
        let Some(base) = text::base_of_member(&loc.text, field) else {
            continue;
        };
        let Some(lines) = tree.lines(&func.file) else {
            continue;
        };
        let from = (func.start as usize).saturating_sub(1);
        let to = (loc.line as usize).min(lines.len());
        let Some(record) = lines[from..to]
            .iter()
            .find_map(|l| text::declared_struct_of(l, &base))
        else {
            continue;
        };
        let defs = index.lookup(&format!("{record}::{field}"), Some(&func.file));
        let Some(def) = defs.iter().find(|d| d.kind == codeindex::EntityKind::Field) else {
            continue;
        };
        let decl: String = (def.start_line..=def.end_line)
            .filter_map(|n| tree.line(&def.file, n))
            .map(|l| l.trim().to_string())
            .collect::<Vec<_>>()
            .join(" ");
        return Some(FieldDecl {
            record,
            file: def.file.clone(),
            line: def.start_line,
            decl,
        });
    }
    None
}

/// `6.12` / `5.16.0-syzkaller` → (6, 12).
fn major_minor(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn parse_hex(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s.strip_prefix("0x").unwrap_or(s);
    u64::from_str_radix(s, 16).ok()
}

fn value_facts(change: &report::ValueChange) -> Option<ValueFacts> {
    let old = parse_hex(&change.old)?;
    let new = parse_hex(&change.new)?;
    let is_ptr = |v: u64| v >= 0xffff_0000_0000_0000;
    Some(ValueFacts {
        old,
        new,
        bits_changed: (old ^ new).count_ones(),
        delta: old.abs_diff(new),
        pointer_like: is_ptr(old) || is_ptr(new),
        to_or_from_zero: (old == 0) != (new == 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_facts_classify_changes() {
        let v = value_facts(&report::ValueChange {
            old: "0xffff8881223d0000".into(),
            new: "0x0000000000000000".into(),
            bits_changed: None,
            mask: None,
        })
        .unwrap();
        assert!(v.pointer_like && v.to_or_from_zero);
        let v = value_facts(&report::ValueChange {
            old: "0x184d".into(),
            new: "0x184e".into(),
            bits_changed: None,
            mask: None,
        })
        .unwrap();
        assert_eq!(v.delta, 1);
        assert!(!v.pointer_like);
    }
}
