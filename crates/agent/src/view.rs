//! Reading a recorded trajectory back: [`parse_jsonl`] (upserts start/finish events by `seq`),
//! [`build_tree`] (nesting → [`SpanNode`] tree), [`Totals`] and [`render_text`], the terminal
//! view used by `racejudge trajectory show`.
//!
//! The text view mirrors the seeds' summaries: per span its seq, type, name, duration, model,
//! tokens and a short form of tool arguments, then totals for LLM and tool calls. Colour is an
//! option so the output stays plain when piped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::span::{Span, SpanKind};

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("line {line}: not a trajectory span event: {message}")]
    Garbled { line: usize, message: String },
    #[error("no span events found")]
    Empty,
}

/// Parses a JSONL trajectory; later events with the same `seq` replace earlier ones. Blank
/// lines are skipped; anything else that is not a span is an error naming the line.
pub fn parse_jsonl(text: &str) -> Result<Vec<Span>, ViewError> {
    let mut by_seq: BTreeMap<u64, Span> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let span: Span = serde_json::from_str(line).map_err(|e| ViewError::Garbled {
            line: i + 1,
            message: e.to_string(),
        })?;
        by_seq.insert(span.seq, span);
    }
    if by_seq.is_empty() {
        return Err(ViewError::Empty);
    }
    Ok(by_seq.into_values().collect())
}

/// A span with its children, as `--json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct SpanNode {
    #[serde(flatten)]
    pub span: Span,
    #[serde(rename = "DurationMs", skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(rename = "Children", skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<SpanNode>,
}

/// Nests spans (sorted by seq) by their `nesting`: a span's parent is the latest earlier span
/// one level up. Spans whose parent is missing become roots rather than being lost.
pub fn build_tree(spans: Vec<Span>) -> Vec<SpanNode> {
    let mut roots: Vec<SpanNode> = Vec::new();
    // Path of open ancestors: indices into the children vectors from the roots down.
    let mut path: Vec<(u32, usize)> = Vec::new();
    for span in spans {
        while path
            .last()
            .is_some_and(|(nesting, _)| *nesting >= span.nesting)
        {
            path.pop();
        }
        let node = SpanNode {
            duration_ms: span.duration_ms(),
            span,
            children: Vec::new(),
        };
        let nesting = node.span.nesting;
        let siblings = path_children(&mut roots, &path);
        siblings.push(node);
        let idx = siblings.len() - 1;
        path.push((nesting, idx));
    }
    roots
}

fn path_children<'a>(roots: &'a mut Vec<SpanNode>, path: &[(u32, usize)]) -> &'a mut Vec<SpanNode> {
    let mut current = roots;
    for &(_, idx) in path {
        current = &mut current[idx].children;
    }
    current
}

/// Totals over a trajectory. Tokens are summed over `llm` spans only (agent spans repeat them).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub spans: usize,
    pub llm_calls: usize,
    pub llm_cache_hits: usize,
    pub llm_ms: u64,
    pub tool_calls: usize,
    pub tool_errors: usize,
    pub tool_ms: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub thoughts_tokens: u64,
    pub cached_tokens: u64,
    /// First start to last finish.
    pub wall_ms: u64,
    /// Per tool name: (calls, total ms).
    pub per_tool: BTreeMap<String, (usize, u64)>,
    pub unfinished: usize,
}

impl Totals {
    pub fn of(spans: &[Span]) -> Totals {
        let mut t = Totals {
            spans: spans.len(),
            ..Totals::default()
        };
        let start = spans.iter().map(|s| s.started).min();
        let end = spans.iter().filter_map(|s| s.finished).max();
        if let (Some(start), Some(end)) = (start, end) {
            t.wall_ms = end.0.saturating_sub(start.0);
        }
        for s in spans {
            let ms = s.duration_ms().unwrap_or(0);
            if s.finished.is_none() {
                t.unfinished += 1;
            }
            match s.kind {
                SpanKind::Llm => {
                    t.llm_calls += 1;
                    t.llm_ms += ms;
                    t.llm_cache_hits += usize::from(s.cache_hit);
                    t.input_tokens += s.input_tokens;
                    t.output_tokens += s.output_tokens;
                    t.thoughts_tokens += s.thoughts_tokens;
                    t.cached_tokens += s.cached_tokens;
                }
                SpanKind::Tool => {
                    t.tool_calls += 1;
                    t.tool_ms += ms;
                    t.tool_errors += usize::from(s.error.is_some());
                    let e = t.per_tool.entry(s.name.clone()).or_default();
                    e.0 += 1;
                    e.1 += ms;
                }
                _ => {}
            }
        }
        t
    }
}

/// `1.234s`, `12.3s`, `4m05s`, `1h02m`.
pub fn format_duration(ms: u64) -> String {
    if ms < 10_000 {
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    } else if ms < 60_000 {
        format!("{}.{}s", ms / 1000, (ms % 1000) / 100)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

/// Tool arguments on one line: `Name=foo ContextFile=net/socket.c`, long values cut.
pub fn short_args(args: &Value) -> String {
    let Some(map) = args.as_object() else {
        return truncate(&args.to_string(), 80);
    };
    map.iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{k}={}", truncate(&v.replace('\n', "\\n"), 60))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// Text rendering options.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// ANSI colours (only for terminals).
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// The indented tree plus totals.
pub fn render_text(roots: &[SpanNode], totals: &Totals, style: Style) -> String {
    let mut out = String::new();
    if let Some(first) = roots.first() {
        let _ = writeln!(
            out,
            "Trajectory: {} spans, started {}",
            totals.spans,
            first.span.started.to_rfc3339()
        );
        let _ = writeln!(out, "seq type name [duration] model tokens args");
    }
    for node in roots {
        render_node(&mut out, node, 0, style);
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "LLM calls: {} ({} from cache), {}; tokens in {} / out {} / thoughts {} / cached {}",
        totals.llm_calls,
        totals.llm_cache_hits,
        format_duration(totals.llm_ms),
        totals.input_tokens,
        totals.output_tokens,
        totals.thoughts_tokens,
        totals.cached_tokens
    );
    let _ = writeln!(
        out,
        "Tool calls: {} ({} errors), {}",
        totals.tool_calls,
        totals.tool_errors,
        format_duration(totals.tool_ms)
    );
    for (name, (count, ms)) in &totals.per_tool {
        let avg = ms / (*count as u64).max(1);
        let _ = writeln!(
            out,
            "  {name:<32} {count:>4} calls  {:>9} total  {:>9} avg",
            format_duration(*ms),
            format_duration(avg)
        );
    }
    let _ = write!(out, "Wall time: {}", format_duration(totals.wall_ms));
    if totals.unfinished > 0 {
        let _ = write!(out, " ({} spans unfinished)", totals.unfinished);
    }
    out.push('\n');
    out
}

fn render_node(out: &mut String, node: &SpanNode, depth: usize, style: Style) {
    let s = &node.span;
    let indent = "  ".repeat(depth);
    let kind = match s.kind {
        SpanKind::Llm => style.paint("36", s.kind.as_str()),
        SpanKind::Tool => style.paint("33", s.kind.as_str()),
        _ => style.paint("1", s.kind.as_str()),
    };
    let duration = match node.duration_ms {
        Some(ms) => format_duration(ms),
        None => "unfinished".to_string(),
    };
    let _ = write!(out, "{indent}{:>3} {kind} {} [{duration}]", s.seq, s.name);
    if !s.model.is_empty() && s.kind != SpanKind::Tool {
        let _ = write!(out, " model={}", s.model);
    }
    if s.input_tokens + s.output_tokens + s.thoughts_tokens > 0 && s.kind == SpanKind::Llm {
        let _ = write!(
            out,
            " tokens in={} out={} thoughts={}",
            s.input_tokens, s.output_tokens, s.thoughts_tokens
        );
        if s.cached_tokens > 0 {
            let _ = write!(out, " cached={}", s.cached_tokens);
        }
    }
    if s.cache_hit {
        let _ = write!(out, " {}", style.paint("2", "(cache hit)"));
    }
    if s.kind == SpanKind::Tool
        && let Some(args) = &s.args
    {
        let _ = write!(out, "  {}", short_args(args));
    }
    if s.kind == SpanKind::Agent
        && let Some(results) = &s.results
    {
        let _ = write!(out, "  results: {}", truncate(&results.to_string(), 100));
    }
    if let Some(err) = &s.error {
        let first = err.lines().next().unwrap_or("");
        let _ = write!(
            out,
            "  {}",
            style.paint("31", &format!("ERROR: {}", truncate(first, 120)))
        );
    }
    out.push('\n');
    for child in &node.children {
        render_node(out, child, depth + 1, style);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Timestamp;

    fn span(seq: u64, nesting: u32, kind: SpanKind, name: &str, ms: Option<u64>) -> Span {
        let mut s = Span::new(kind, nesting, name);
        s.seq = seq;
        s.started = Timestamp(1_000_000);
        s.finished = ms.map(|ms| Timestamp(1_000_000 + ms));
        s
    }

    #[test]
    fn tree_follows_nesting_and_orphans_become_roots() {
        let spans = vec![
            span(0, 0, SpanKind::Flow, "f", Some(10)),
            span(1, 1, SpanKind::Agent, "a", Some(9)),
            span(2, 2, SpanKind::Llm, "a", Some(1)),
            span(3, 2, SpanKind::Tool, "t", Some(2)),
            span(4, 1, SpanKind::Action, "b", Some(1)),
            span(5, 3, SpanKind::Tool, "deep", None),
        ];
        let roots = build_tree(spans);
        assert_eq!(roots.len(), 1);
        let f = &roots[0];
        assert_eq!(f.children.len(), 2);
        assert_eq!(
            f.children[0]
                .children
                .iter()
                .map(|c| c.span.seq)
                .collect::<Vec<_>>(),
            vec![2, 3]
        );
        // seq 5 claims nesting 3 under an action at 1: attached to the nearest shallower span.
        assert_eq!(f.children[1].children[0].span.seq, 5);
    }

    #[test]
    fn later_events_replace_earlier_ones_and_garbage_names_its_line() {
        let a = serde_json::to_string(&span(0, 0, SpanKind::Flow, "f", None)).unwrap();
        let b = serde_json::to_string(&span(0, 0, SpanKind::Flow, "f", Some(5))).unwrap();
        let spans = parse_jsonl(&format!("{a}\n\n{b}\n")).unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].duration_ms(), Some(5));
        match parse_jsonl(&format!("{a}\nnot json\n")) {
            Err(ViewError::Garbled { line: 2, .. }) => {}
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_jsonl("\n"), Err(ViewError::Empty)));
    }

    #[test]
    fn truncated_or_mangled_input_is_an_error_never_a_panic() {
        let mut s = span(7, 2, SpanKind::Tool, "read-file", Some(3));
        s.args = Some(serde_json::json!({"File": "é/ü.c"}));
        let line = serde_json::to_string(&s).unwrap();
        for end in (0..line.len()).filter(|&i| line.is_char_boundary(i)) {
            let _ = parse_jsonl(&line[..end]);
            let mut mangled = line.clone();
            mangled.replace_range(end..end, "\"");
            let _ = parse_jsonl(&mangled);
        }
        for end in 0..24 {
            let _ = Timestamp::parse_rfc3339(&"2026-01-16T01:23:00.123Z"[..end]);
        }
        assert_eq!(parse_jsonl(&line).unwrap()[0], s);
    }

    #[test]
    fn durations_and_args_are_short() {
        assert_eq!(format_duration(1_234), "1.234s");
        assert_eq!(format_duration(12_345), "12.3s");
        assert_eq!(format_duration(245_000), "4m05s");
        assert_eq!(format_duration(3_720_000), "1h02m");
        let args = serde_json::json!({"Name": "x", "Lines": 3, "Long": "a".repeat(100)});
        let s = short_args(&args);
        assert!(s.starts_with("Lines=3 Long=aaa"), "{s}");
        assert!(s.ends_with("… Name=x"), "{s}");
    }
}
