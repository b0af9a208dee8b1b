//! Shared fixture helpers: a fixture is a string with `//- path` lines starting each file.
#![allow(dead_code)]

use std::path::Path;

use codeindex::{Definition, Index, IndexOptions, NoProgress};
use tempfile::TempDir;

/// Writes a multi-file fixture into a fresh temp tree. Text before the first `//- path` line
/// goes to `a.c`.
pub fn write_tree(fixture: &str) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write_into(dir.path(), fixture);
    dir
}

pub fn write_into(root: &Path, fixture: &str) {
    let mut path = "a.c".to_string();
    let mut buf = String::new();
    let flush = |path: &str, buf: &str| {
        if buf.trim().is_empty() {
            return;
        }
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, buf).expect("write");
    };
    for line in fixture.lines() {
        if let Some(p) = line.strip_prefix("//- ") {
            flush(&path, &buf);
            path = p.trim().to_string();
            buf.clear();
        } else {
            buf.push_str(line);
            buf.push('\n');
        }
    }
    flush(&path, &buf);
}

pub fn index_with(fixture: &str, opts: &IndexOptions) -> (TempDir, Index) {
    let dir = write_tree(fixture);
    let (idx, _) = Index::build(dir.path(), opts, &NoProgress).expect("build");
    (dir, idx)
}

pub fn index(fixture: &str) -> (TempDir, Index) {
    index_with(fixture, &IndexOptions::default())
}

/// One line per definition: `kind name start-end [static] [inline] [weak] [extern] [if COND] [by GEN] [comment a-b]`.
pub fn render(d: &Definition) -> String {
    let mut s = format!(
        "{} {} {}-{}",
        d.kind.as_str(),
        d.name,
        d.start_line,
        d.end_line
    );
    if d.is_static {
        s.push_str(" static");
    }
    if d.is_inline {
        s.push_str(" inline");
    }
    if d.is_weak {
        s.push_str(" weak");
    }
    if d.is_extern {
        s.push_str(" extern");
    }
    if let Some(c) = &d.condition {
        s.push_str(&format!(" [if {c}]"));
    }
    if let Some(g) = &d.generated_by {
        s.push_str(&format!(" by {g}"));
    }
    if let Some((a, b)) = d.comment {
        s.push_str(&format!(" comment {a}-{b}"));
    }
    s
}

/// Checks the rendered definitions of `a.c` (all kinds except fields) against `expected`
/// (one per line, leading whitespace ignored).
pub fn check(fixture: &str, expected: &str) {
    check_file(fixture, "a.c", expected);
}

pub fn check_file(fixture: &str, file: &str, expected: &str) {
    let (_d, idx) = index(fixture);
    let got: Vec<String> = idx
        .definitions_in_file(file)
        .iter()
        .filter(|d| d.kind != codeindex::EntityKind::Field)
        .map(render)
        .collect();
    let want: Vec<String> = expected
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    assert_eq!(got, want, "\n got:\n{}\n", got.join("\n"));
}
