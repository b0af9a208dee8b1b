//! Finding each access's source line in the tree, honestly.
//!
//! The report's `file:line` is trusted only when the function at that line in *this* tree is the
//! frame's function. Otherwise (another kernel version: line drift; or an unsymbolized report) the
//! function is looked up by name and the access searched for inside it, near the line the report
//! (or the frame's offset within the function's size) points at, preferring lines that mention
//! the field the other access touches. [`Location::method`] says which way was taken.

use report::{Access, Frame, FrameClass, Operation};
use serde::Serialize;

use crate::source::{FnSpan, SourceTree, base_function_name};

use super::text;

/// How a location was found, for the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// The report's file:line, and the function there is the frame's function.
    Exact,
    /// The report's function, but the line moved (searched near the reported line).
    LineAdjusted { reported: u32 },
    /// The reported line lies outside the function in this tree; searched inside the function.
    Drift { reported: u32 },
    /// No file:line in the report: function by name, line estimated from offset/size.
    FromOffset,
    /// Function found by name, but nowhere to start searching: best matching line in the body.
    FunctionOnly,
}

/// Where one access is in the tree.
#[derive(Debug, Clone, Serialize)]
pub struct Location {
    pub frame: String,
    pub file: String,
    pub line: u32,
    pub text: String,
    pub function: Option<FnSpan>,
    pub method: Method,
}

/// The first interesting frame, skipping generic library helpers when a caller is available:
/// `strscpy` or `find_next_bit` tells nothing about which data races.
pub fn primary_frame(access: &Access) -> Option<&Frame> {
    let interesting: Vec<&Frame> = access
        .stack
        .iter()
        .filter(|f| f.class == FrameClass::Interesting)
        .collect();
    interesting.first().copied()
}

/// Locates one access. `hints` are field names the other side touches (may be empty).
pub fn locate(tree: &SourceTree, access: &Access, hints: &[String]) -> Option<Location> {
    let frame = primary_frame(access)?;
    let name = base_function_name(&frame.function).to_string();
    let file = frame.file.as_deref().and_then(|f| tree.resolve(f).ok());
    let want_write = access.operation != Operation::Read;
    if let (Some(file), Some(line)) = (file.as_deref(), frame.line) {
        if let Some(func) = tree.function_at_line(file, line)
            && func.name == name
        {
            let text = tree.line(file, line).unwrap_or_default();
            let fits = text::looks_like_access(&text)
                && (hints.is_empty() || text::mentions_any(&text, hints));
            if fits {
                return Some(Location {
                    frame: frame.function.clone(),
                    file: file.into(),
                    line,
                    text,
                    function: Some(func),
                    method: Method::Exact,
                });
            }
            if let Some((best, text)) = search(tree, &func, line, hints, want_write, 12)
                && best != line
            {
                return Some(Location {
                    frame: frame.function.clone(),
                    file: file.into(),
                    line: best,
                    text,
                    function: Some(func),
                    method: Method::LineAdjusted { reported: line },
                });
            }
            return Some(Location {
                frame: frame.function.clone(),
                file: file.into(),
                line,
                text,
                function: Some(func),
                method: Method::Exact,
            });
        }
        // Drift: find the function by name in the reported file, then search inside it.
        if let Some(func) = tree.function_defs(&name, Some(file)).into_iter().next() {
            let around = line.clamp(func.start, func.end);
            let (best, text) = search(tree, &func, around, hints, want_write, 400)?;
            return Some(Location {
                frame: frame.function.clone(),
                file: func.file.clone(),
                line: best,
                text,
                function: Some(func),
                method: Method::Drift { reported: line },
            });
        }
    }
    let func = tree
        .function_defs(&name, file.as_deref())
        .into_iter()
        .next()?;
    let (around, method) = match (frame.offset, frame.size) {
        (Some(off), Some(size)) if size > 0 => {
            let frac = (off as f64 / size as f64).clamp(0.0, 1.0);
            let span = (func.end - func.start) as f64;
            (
                func.start + (frac * span).round() as u32,
                Method::FromOffset,
            )
        }
        _ => (
            func.start + (func.end - func.start) / 2,
            Method::FunctionOnly,
        ),
    };
    let (best, text) = search(tree, &func, around, hints, want_write, 400)?;
    Some(Location {
        frame: frame.function.clone(),
        file: func.file.clone(),
        line: best,
        text,
        function: Some(func),
        method,
    })
}

/// The best line of `func` near `around`: it must look like an access; mentioning a hint field
/// weighs most, then matching the access direction, then closeness.
fn search(
    tree: &SourceTree,
    func: &FnSpan,
    around: u32,
    hints: &[String],
    want_write: bool,
    radius: u32,
) -> Option<(u32, String)> {
    let lines = tree.lines(&func.file)?;
    let lo = func.start.max(around.saturating_sub(radius)).max(1);
    let hi = func.end.min(around + radius);
    let mut best: Option<(f64, u32, String)> = None;
    for n in (lo + 1)..=hi {
        let Some(text) = lines.get(n as usize - 1) else {
            break;
        };
        if !text::looks_like_access(text) {
            continue;
        }
        let mut score = -(n.abs_diff(around) as f64) / 10.0;
        if !hints.is_empty() {
            if text::mentions_any(text, hints) {
                score += 10.0;
            } else {
                score -= 5.0;
            }
        }
        if want_write == text::has_store(text) {
            score += 1.5;
        }
        if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
            best = Some((score, n, text.clone()));
        }
    }
    best.map(|(_, n, t)| (n, t))
}

/// Where to look for one access when the report's line cannot be trusted as is.
#[derive(Debug, Clone)]
pub struct Anchor {
    pub frame: String,
    pub func: FnSpan,
    /// Best guess of the line in this tree.
    pub estimate: u32,
    pub method: Method,
    pub store: bool,
    /// The access size KCSAN reported, in bytes.
    pub size: u64,
}

/// The function and estimated line of an access, without choosing a line yet.
pub fn anchor(tree: &SourceTree, access: &Access, same_version: bool) -> Option<Anchor> {
    let frame = primary_frame(access)?;
    let name = base_function_name(&frame.function).to_string();
    let file = frame.file.as_deref().and_then(|f| tree.resolve(f).ok());
    let store = access.operation != Operation::Read;
    let from_offset = |func: &FnSpan| match (frame.offset, frame.size) {
        (Some(off), Some(size)) if size > 0 => {
            let frac = (off as f64 / size as f64).clamp(0.0, 1.0);
            Some(func.start + (frac * (func.end - func.start) as f64).round() as u32)
        }
        _ => None,
    };
    if let (Some(file), Some(line)) = (file.as_deref(), frame.line) {
        if let Some(func) = tree.function_at_line(file, line)
            && func.name == name
        {
            let method = if same_version {
                Method::Exact
            } else {
                Method::LineAdjusted { reported: line }
            };
            return Some(Anchor {
                frame: frame.function.clone(),
                func,
                estimate: line,
                method,
                store,
                size: access.size,
            });
        }
        if let Some(func) = tree.function_defs(&name, Some(file)).into_iter().next() {
            // Whole-function shifts keep the distance from the function start roughly constant
            // only when we know where the function started in the reported kernel; the offset
            // fraction is the better estimate when present.
            let estimate = from_offset(&func).unwrap_or(func.start + (func.end - func.start) / 2);
            return Some(Anchor {
                frame: frame.function.clone(),
                func,
                estimate,
                method: Method::Drift { reported: line },
                store,
                size: access.size,
            });
        }
    }
    let func = tree
        .function_defs(&name, file.as_deref())
        .into_iter()
        .next()?;
    let (estimate, method) = match from_offset(&func) {
        Some(e) => (e, Method::FromOffset),
        None => (
            func.start + (func.end - func.start) / 2,
            Method::FunctionOnly,
        ),
    };
    Some(Anchor {
        frame: frame.function.clone(),
        func,
        estimate,
        method,
        store,
        size: access.size,
    })
}

/// How far from the estimate a candidate line may be.
fn window(a: &Anchor) -> u32 {
    match a.method {
        Method::Exact => 2,
        Method::LineAdjusted { .. } => 25,
        _ => u32::MAX,
    }
}

/// Chooses one line per side so that both lines touch the same member, close to the estimates.
/// Returns the member and the two locations.
pub fn pair(tree: &SourceTree, a: &Anchor, b: &Anchor) -> Option<(String, Location, Location)> {
    let ca = candidates(tree, a);
    let cb = candidates(tree, b);
    let mut fit = SizeFit::new(tree);
    let mut best: Option<(f64, String, Picked, Picked)> = None;
    for (la, ta, ma, sa) in &ca {
        for m in ma {
            for (lb, tb, mb, sb) in &cb {
                if !mb.contains(m) || (std::ptr::eq(a, b) && la == lb) {
                    continue;
                }
                let mut score = line_score(a, *la, *sa)
                    + line_score(b, *lb, *sb)
                    + marker_bonus(a, ta)
                    + marker_bonus(b, tb)
                    + comment_bonus(tree, a, *la)
                    + comment_bonus(tree, b, *lb);
                // The field both lines end their access chain on is the racing one; an
                // intermediate pointer (`a->file->private_data`: `file`) is a different address.
                if text::chain_ends(ta).contains(m) && text::chain_ends(tb).contains(m) {
                    score += 1.0;
                }
                score += fit.score(a, *la, ta, m) + fit.score(b, *lb, tb, m);
                // Rare members identify a race better than `flags` or `lock`.
                if is_generic_member(m) {
                    score -= 1.0;
                }
                if best.as_ref().is_none_or(|(s, ..)| score > *s) {
                    best = Some((score, m.clone(), (*la, ta.clone()), (*lb, tb.clone())));
                }
            }
        }
    }
    let (_, member, (la, ta), (lb, tb)) = best?;
    let mk = |an: &Anchor, line: u32, text: String| Location {
        frame: an.frame.clone(),
        file: an.func.file.clone(),
        line,
        text,
        function: Some(an.func.clone()),
        method: if line == an.estimate {
            an.method.clone()
        } else {
            adjust(&an.method, an.estimate)
        },
    };
    Some((member, mk(a, la, ta), mk(b, lb, tb)))
}

/// Both accesses hit a kernel-image address (`0xffffffff8…`: a global or static variable, not
/// heap memory): pick a variable both function bodies name that the index knows as a global
/// variable whose declared size matches the access, and the line in each body nearest its
/// estimate that names it. `None` without an index or without such a variable.
pub fn pair_global(
    tree: &SourceTree,
    a: &Anchor,
    b: &Anchor,
) -> Option<(String, Location, Location)> {
    let index = tree.index()?;
    let body = |an: &Anchor| -> Option<Vec<(u32, String)>> {
        let lines = tree.lines(&an.func.file)?;
        let from = an.func.start as usize;
        let to = (an.func.end as usize).min(lines.len());
        Some(
            (from..=to)
                .filter_map(|n| lines.get(n - 1).map(|l| (n as u32, l.clone())))
                .filter(|(_, l)| text::looks_like_access(l) && !text::is_declaration_only(l))
                .collect(),
        )
    };
    let (ba, bb) = (body(a)?, body(b)?);
    let names_b: std::collections::HashSet<String> =
        bb.iter().flat_map(|(_, l)| text::names(l)).collect();
    let mut shared: Vec<String> = ba
        .iter()
        .flat_map(|(_, l)| text::names(l))
        .filter(|n| names_b.contains(n) && n.len() > 2)
        .collect();
    shared.sort();
    shared.dedup();
    tracing::debug!(?shared, "names both bodies share (global candidates)");
    let global = shared.into_iter().find(|n| {
        index.lookup(n, Some(&a.func.file)).iter().any(|d| {
            d.kind == codeindex::EntityKind::GlobalVariable
                && tree
                    .line(&d.file, d.start_line)
                    .and_then(|l| text::member_size(&l, n))
                    .is_none_or(|size| size == a.size || size == b.size)
        })
    })?;
    let nearest = |an: &Anchor, body: &[(u32, String)]| -> Option<Location> {
        let (line, t) = body
            .iter()
            .filter(|(_, l)| text::names(l).contains(&global))
            // A store side prefers a line that writes the variable.
            .min_by_key(|(n, l)| {
                let writes = text::has_store(l) || text::plain_rmw(l);
                (u32::from(an.store != writes), n.abs_diff(an.estimate))
            })?;
        Some(Location {
            frame: an.frame.clone(),
            file: an.func.file.clone(),
            line: *line,
            text: t.clone(),
            function: Some(an.func.clone()),
            method: adjust(&an.method, an.estimate),
        })
    };
    Some((global.clone(), nearest(a, &ba)?, nearest(b, &bb)?))
}

/// A kernel-image address (globals and statics live there, heap objects do not).
pub fn is_kernel_image_address(address: &str) -> bool {
    let hex = address.trim().trim_start_matches("0x");
    u64::from_str_radix(hex, 16).is_ok_and(|v| v >= 0xffff_ffff_8000_0000)
}

/// Scores a candidate member by whether its declared size (looked up in the index through the
/// struct its base variable is declared with) fits the access size KCSAN reported: a 1-byte
/// access is not to a pointer, an 8-byte access not to a `bool`. Unknown sizes score 0.
struct SizeFit<'a> {
    tree: &'a SourceTree,
    memo: std::collections::HashMap<(String, u32, String), f64>,
}

impl<'a> SizeFit<'a> {
    fn new(tree: &'a SourceTree) -> Self {
        SizeFit {
            tree,
            memo: std::collections::HashMap::new(),
        }
    }

    fn score(&mut self, an: &Anchor, line: u32, text: &str, member: &str) -> f64 {
        let key = (an.func.file.clone(), line, member.to_string());
        if let Some(v) = self.memo.get(&key) {
            return *v;
        }
        let v = match self.declared_size(an, line, text, member) {
            Some(size) if size == an.size => 0.5,
            // A smaller access can touch part of a wider field (a byte of a flags word).
            Some(size) if size > an.size && an.size < 8 && !text.contains("->") => 0.0,
            Some(_) => -2.0,
            None => 0.0,
        };
        self.memo.insert(key, v);
        v
    }

    fn declared_size(&self, an: &Anchor, line: u32, text: &str, member: &str) -> Option<u64> {
        let index = self.tree.index()?;
        let base = text::base_of_member(text, member)?;
        let lines = self.tree.lines(&an.func.file)?;
        let from = (an.func.start as usize).saturating_sub(1);
        let to = (line as usize).min(lines.len());
        let record = lines
            .get(from..to)?
            .iter()
            .find_map(|l| text::declared_struct_of(l, &base))?;
        let def = index
            .lookup(&format!("{record}::{member}"), Some(&an.func.file))
            .into_iter()
            .find(|d| d.kind == codeindex::EntityKind::Field)?;
        let decl: String = (def.start_line..=def.end_line)
            .filter_map(|n| self.tree.line(&def.file, n))
            .collect::<Vec<_>>()
            .join(" ");
        text::member_size(&decl, member)
    }
}

fn adjust(m: &Method, estimate: u32) -> Method {
    match m {
        Method::Exact => Method::LineAdjusted { reported: estimate },
        other => other.clone(),
    }
}

fn is_generic_member(m: &str) -> bool {
    matches!(
        m,
        "flags"
            | "lock"
            | "list"
            | "next"
            | "prev"
            | "data"
            | "state"
            | "count"
            | "dev"
            | "sk"
            | "priv"
    )
}

fn line_score(a: &Anchor, line: u32, store: bool) -> f64 {
    let dist = line.abs_diff(a.estimate) as f64;
    let scale = match a.method {
        Method::Exact => 1.0,
        // Between kernel versions lines move by tens, so distance weighs less than direction.
        Method::LineAdjusted { .. } => 8.0,
        _ => 15.0,
    };
    let mut s = -dist / scale;
    if store == a.store {
        s += 2.0;
    }
    s
}

/// In a tree newer than the report, an annotation on a candidate line often marks the very race
/// that was reported (annotated after the report), so such lines are preferred.
fn marker_bonus(a: &Anchor, text: &str) -> f64 {
    if matches!(a.method, Method::Exact) || text::marker(text).is_none() {
        0.0
    } else {
        1.5
    }
}

/// A comment right above a line that documents a race points at the racing line.
fn comment_bonus(tree: &SourceTree, a: &Anchor, line: u32) -> f64 {
    if matches!(a.method, Method::Exact) {
        return 0.0;
    }
    let Some(lines) = tree.lines(&a.func.file) else {
        return 0.0;
    };
    let end = (line as usize).min(lines.len());
    let start = end.saturating_sub(6).max(a.func.start as usize);
    if start < end && text::race_comment(lines[start..end].iter().map(String::as_str)).is_some() {
        1.5
    } else {
        0.0
    }
}

type Candidate = (u32, String, Vec<String>, bool);
/// A chosen line and its text.
type Picked = (u32, String);

/// Lines of the anchor's function within its window that touch memory: (line, text, names, stores).
fn candidates(tree: &SourceTree, a: &Anchor) -> Vec<Candidate> {
    let Some(lines) = tree.lines(&a.func.file) else {
        return Vec::new();
    };
    let w = window(a);
    let lo = a.func.start.max(a.estimate.saturating_sub(w)).max(1);
    let hi = a.func.end.min(a.estimate.saturating_add(w));
    // The header may continue over several lines (parameters, `__acquires(...)`): skip to the body.
    let body = (a.func.start..=a.func.end)
        .find(|n| {
            lines
                .get(*n as usize - 1)
                .is_some_and(|l| text::code_part(l).contains('{'))
        })
        .unwrap_or(a.func.start);
    let mut out = Vec::new();
    for n in lo..=hi {
        let Some(t) = lines.get(n as usize - 1) else {
            break;
        };
        if n <= body
            || !text::looks_like_access(t)
            || text::is_declaration_only(t)
            || text::is_lock_call(t)
        {
            continue;
        }
        let mut names = text::members(t);
        names.extend(
            text::names(t)
                .into_iter()
                .filter(|x| x.len() > 3 && !x.chars().all(|c| c.is_ascii_uppercase() || c == '_')),
        );
        if names.is_empty() {
            continue;
        }
        out.push((n, t.clone(), names, text::stores_to_memory(t)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same two functions as in some older kernel, but shifted down by 40 lines.
    fn tree() -> (tempfile::TempDir, SourceTree) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("net")).unwrap();
        let mut text = String::from("struct q { int qlen; int flags; };\n");
        text.push_str(&"/* filler */\n".repeat(40));
        text.push_str(
            "void q_add(struct q *q)\n{\n\tint n = 1;\n\n\tq->flags = 0;\n\tq->qlen += n;\n}\n\n",
        );
        text.push_str(
            "int q_peek(struct q *q)\n{\n\tif (q->qlen > 10)\n\t\treturn 1;\n\treturn 0;\n}\n",
        );
        std::fs::write(dir.path().join("net/q.c"), text).unwrap();
        let t = SourceTree::new(dir.path(), None).unwrap();
        (dir, t)
    }

    fn report(write_line: u32, read_line: u32) -> report::Report {
        let text = format!(
            "BUG: KCSAN: data-race in q_add / q_peek\n\n\
write to 0xffff888100000000 of 4 bytes by task 1 on cpu 0:\n q_add+0x30/0x40 net/q.c:{write_line}\n\n\
read to 0xffff888100000000 of 4 bytes by task 2 on cpu 1:\n q_peek+0x8/0x30 net/q.c:{read_line}\n"
        );
        report::parse(&text).reports.remove(0)
    }

    #[test]
    fn exact_line_when_the_function_matches() {
        let (_d, t) = tree();
        let r = report(47, 52);
        let loc = locate(&t, &r.accesses[0], &[]).unwrap();
        assert_eq!(loc.line, 47);
        assert_eq!(loc.method, Method::Exact);
        assert!(loc.text.contains("q->qlen += n"));
    }

    #[test]
    fn drifted_lines_are_found_by_function_and_shared_member() {
        let (_d, t) = tree();
        // The report's lines (7 and 12) come from a kernel without the 40 filler lines.
        let r = report(7, 12);
        let a = anchor(&t, &r.accesses[0], false).unwrap();
        let b = anchor(&t, &r.accesses[1], false).unwrap();
        assert!(matches!(a.method, Method::Drift { reported: 7 }));
        let (member, la, lb) = pair(&t, &a, &b).unwrap();
        assert_eq!(member, "qlen");
        assert_eq!(la.line, 47, "{la:?}");
        assert_eq!(lb.line, 52, "{lb:?}");
    }

    #[test]
    fn unsymbolized_frames_use_offset_within_the_function() {
        let (_d, t) = tree();
        let text = "BUG: KCSAN: data-race in q_add / q_peek\n\n\
write to 0xffff888100000000 of 4 bytes by task 1 on cpu 0:\n q_add+0x30/0x40\n\n\
read to 0xffff888100000000 of 4 bytes by task 2 on cpu 1:\n q_peek+0x8/0x30\n";
        let r = report::parse(text).reports.remove(0);
        // Without an index, a frame without a file cannot be found: say so rather than guess.
        assert!(anchor(&t, &r.accesses[0], false).is_none());
    }

    #[test]
    fn kernel_image_addresses_are_globals() {
        assert!(is_kernel_image_address("0xffffffff86e243a0"));
        assert!(!is_kernel_image_address("0xffff88814b3278b8"));
        assert!(!is_kernel_image_address("garbage"));
    }
}
