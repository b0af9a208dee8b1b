//! Parses every real report in ../shared/corpus/kcsan (and the seeds) and checks titles, warnings
//! and stack frames against independent extractions. Skips with a message when ../shared is absent.

use std::collections::HashMap;
use std::path::PathBuf;

use regex::Regex;
use report::{WarningKind, parse};

fn shared() -> Option<PathBuf> {
    testkit::shared_dir_or_skip("report corpus")
}

struct IndexRow {
    title: String,
    features: Vec<String>,
}

fn index(dir: &std::path::Path) -> HashMap<String, IndexRow> {
    let text = std::fs::read_to_string(dir.join("index.tsv")).expect("index.tsv");
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.trim_end_matches('\r').split('\t').collect();
            (cols.len() >= 8).then(|| {
                (
                    cols[0].to_string(),
                    IndexRow {
                        title: cols[5].to_string(),
                        features: cols[7].split(',').map(str::to_string).collect(),
                    },
                )
            })
        })
        .collect()
}

/// An independent, deliberately simple extraction of stack frames: strip quoting and console
/// prefixes with regexes, then take frame-looking lines after each access header.
fn simple_frames(text: &str) -> Vec<Vec<String>> {
    let prefix = Regex::new(r"^(?:\s*[>|])*\s*(?:\[[^\]]{1,40}\])*\s*").unwrap();
    let header = Regex::new(r"(?:read|write|read-write|assert no \w+)(?: \([a-z, ]+\))? to (?:0x[0-9a-f]+|\.\.\.)(?:\s|$)").unwrap();
    let frame = Regex::new(r"^(?:\? )?(?:([a-z_][a-z0-9_.]*)$|(0x[0-9a-f]+)$|([A-Za-z_][A-Za-z0-9_.$]*)(?:\s+\[inline\]|\+0x[0-9a-f]+(?:/0x[0-9a-f]+)?(?:\s|$)|\s+\S+\.[a-zA-Z]+:-?\d+|\s+\())").unwrap();
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut in_stack = false;
    for raw in text.lines() {
        let line = prefix.replace(raw.trim_end_matches('\r'), "");
        let line = line.trim();
        if header.is_match(line) {
            out.push(Vec::new());
            in_stack = true;
            continue;
        }
        if line.contains("BUG: KCSAN")
            || line.starts_with("value changed")
            || line.starts_with("Reported by")
            || line.contains("locks held by")
            || line.starts_with("irq event stamp")
        {
            in_stack = false;
            continue;
        }
        if in_stack {
            let keyword = |f: &str| matches!(f, "if" | "for" | "while" | "switch" | "return");
            if let Some(c) = frame.captures(line) {
                let name = (1..=3).find_map(|i| c.get(i)).unwrap().as_str();
                if !keyword(name) {
                    out.last_mut().unwrap().push(name.to_string());
                }
            }
        }
    }
    out
}

#[test]
fn every_corpus_report_parses_with_exact_titles_frames_and_honest_warnings() {
    let Some(shared) = shared() else { return };
    let dir = shared.join("corpus/kcsan");
    let index = index(&dir);
    let mut failures = Vec::new();
    let mut files = 0;
    let mut frames_checked = 0;
    let mut noise_warnings = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".txt") {
            continue;
        }
        files += 1;
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).to_string();
        let out = parse(&text);
        if out.reports.is_empty() {
            failures.push(format!("{name}: no report"));
            continue;
        }
        // Titles.
        if let Some(row) = index.get(&name) {
            let want = row.title.clone();
            let got = &out.reports[0].bug_line;
            // 0227's index title was cut by a wrapped BUG line; we rejoin it (WrappedLine warning).
            let wrapped = out.reports[0]
                .warnings
                .iter()
                .any(|w| w.kind == WarningKind::WrappedLine);
            if got != &want && !(wrapped && got.starts_with(&want)) {
                failures.push(format!("{name}: title {got:?} != index {want:?}"));
            }
            // Incompleteness warnings only where the index or the text says the report is incomplete.
            let gap = text.lines().any(|l| {
                let t = l.trim_start_matches(['>', '|', ' ', '\t']).trim();
                matches!(t, "..." | "...." | "[...]" | "[snip]" | "<snip>")
            });
            let allowed = |k: WarningKind| match k {
                WarningKind::NoFooter => row
                    .features
                    .iter()
                    .any(|f| f == "no-footer" || f == "quoted"),
                WarningKind::Gap => gap,
                _ => row
                    .features
                    .iter()
                    .any(|f| f == "quoted" || f == "no-footer"),
            };
            for r in &out.reports {
                for w in &r.warnings {
                    if w.kind.is_incompleteness() && !allowed(w.kind) {
                        failures.push(format!(
                            "{name}: unexpected warning {:?}: {}",
                            w.kind, w.message
                        ));
                    }
                }
            }
            // A no-footer report must say so.
            if row.features.iter().any(|f| f == "no-footer")
                && !out
                    .reports
                    .iter()
                    .any(|r| r.warnings.iter().any(|w| w.kind == WarningKind::NoFooter))
            {
                failures.push(format!("{name}: no-footer but no NoFooter warning"));
            }
        } else if let Some(title) = text.lines().find_map(|l| l.strip_prefix("TITLE: ")) {
            let got = out.reports[0].full_title();
            if got != title.trim() {
                failures.push(format!("{name}: title {got:?} != TITLE {title:?}"));
            }
        }
        for r in &out.reports {
            for w in &r.warnings {
                match w.kind {
                    WarningKind::MalformedField => {
                        failures.push(format!("{name}: {:?}: {}", w.kind, w.message))
                    }
                    WarningKind::UnparsedLine | WarningKind::InterleavedLine => {
                        eprintln!("{name}: {:?}: {}", w.kind, w.message);
                        noise_warnings += 1;
                    }
                    _ => {}
                }
            }
        }
        // Source locations are tree-relative, whatever machine built the kernel.
        for r in &out.reports {
            for f in r.accesses.iter().flat_map(|a| &a.stack) {
                if let Some(file) = f
                    .file
                    .as_deref()
                    .filter(|p| p.starts_with('/') || p.starts_with("./"))
                {
                    failures.push(format!(
                        "{name}: frame {} has a non-tree-relative file {file}",
                        f.function
                    ));
                }
            }
        }
        // Frames. A few real emails defeat any line grammar; each exception says why.
        const FRAME_EXCEPTIONS: &[(&str, &str)] = &[
            (
                "0119.txt",
                "objdump output pasted between two frames of the first stack",
            ),
            (
                "0120.txt",
                "objdump output pasted between two frames of the first stack",
            ),
            (
                "0228.txt",
                "reply text inserted into the quoted report before the first access",
            ),
            (
                "0209.txt",
                "hand-edited: the first access header is pasted twice",
            ),
            (
                "0076.txt",
                "console corruption merges two frames and other output on one line",
            ),
            (
                "0060.txt",
                "console corruption merges two frames on one line",
            ),
        ];
        if let Some((_, why)) = FRAME_EXCEPTIONS.iter().find(|(f, _)| *f == name) {
            eprintln!("{name}: frame comparison skipped: {why}");
            continue;
        }
        let want = simple_frames(&text);
        let got: Vec<Vec<String>> = out
            .reports
            .iter()
            .flat_map(|r| {
                r.accesses
                    .iter()
                    .map(|a| a.stack.iter().map(|f| f.function.clone()).collect())
            })
            .collect();
        frames_checked += got.iter().map(Vec::len).sum::<usize>();
        if want != got {
            failures.push(format!(
                "{name}: frames differ\n  want {want:?}\n  got  {got:?}"
            ));
        }
    }
    eprintln!(
        "corpus: {files} files, {frames_checked} frames checked, {noise_warnings} skipped-line warnings"
    );
    // Garbled console lines exist in a handful of files; many more means the grammar regressed.
    assert!(
        noise_warnings <= 15,
        "{noise_warnings} unparsed/interleaved-line warnings"
    );
    assert!(
        files >= 200,
        "expected the full corpus, found {files} files"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The seeds are job pages of the reference system: the job title line carries syzbot's title
/// (with its ` (N)` counter) and the page embeds the report twice.
#[test]
fn seed_job_pages_parse_to_their_syzbot_titles() {
    let Some(shared) = shared() else { return };
    let mut seen = 0;
    for entry in std::fs::read_dir(shared.join("seeds")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let out = parse(&text);
        assert!(!out.reports.is_empty(), "{}: no report", path.display());
        let job_line = text
            .lines()
            .find(|l| l.contains("assessment-kcsan"))
            .expect("job line");
        for r in &out.reports {
            // The job title is syzbot's full title; the embedded report has no counter.
            let counted = format!("{} (", r.title);
            assert!(
                job_line.contains(&format!("{} 20", r.title)) || job_line.contains(&counted),
                "{}: {:?} not in {job_line:?}",
                path.display(),
                r.title
            );
            assert_eq!(r.accesses.len(), 2, "{}", path.display());
            assert!(r.accesses.iter().all(|a| !a.stack.is_empty()));
        }
        // The page also holds tool output that quotes stack lines; compare within each report.
        let all: Vec<&str> = text.lines().collect();
        for r in &out.reports {
            let region = all[r.span.start - 1..r.span.end].join("\n");
            let got: Vec<Vec<String>> = r
                .accesses
                .iter()
                .map(|a| a.stack.iter().map(|f| f.function.clone()).collect())
                .collect();
            assert_eq!(simple_frames(&region), got, "{}", path.display());
        }
        seen += 1;
    }
    assert_eq!(seen, 3);
}

/// The labelled dev set: every report parses completely (two accesses or one at unknown origin,
/// stacks present) and its frames match the independent extraction.
#[test]
fn dev_eval_reports_parse_completely() {
    let Some(shared) = shared() else { return };
    let mut seen = 0;
    for entry in std::fs::read_dir(shared.join("eval/dev")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "txt") {
            continue;
        }
        let whole = std::fs::read_to_string(&path).unwrap();
        // The metadata from `LABEL:` on is not part of the report (eval cuts it off the same way);
        // one note even quotes a "BUG: KCSAN:" line in prose.
        let text = match whole.find("\nLABEL:") {
            Some(at) => &whole[..=at],
            None => whole.as_str(),
        };
        let trimmed = whole
            .lines()
            .any(|l| l.starts_with("REPORT-NOTE:") && l.contains("trimmed the stack"));
        let out = parse(text);
        assert_eq!(out.reports.len(), 1, "{}", path.display());
        let r = &out.reports[0];
        let expected = if r.kind.is_unknown_origin() { 1 } else { 2 };
        let printed = simple_frames(text).len();
        assert_eq!(
            r.accesses.len(),
            printed.min(expected),
            "{}",
            path.display()
        );
        if printed < expected {
            // One dev report really lacks its second access: the parser must say so.
            assert!(
                r.warnings
                    .iter()
                    .any(|w| w.kind == WarningKind::MissingAccess),
                "{}",
                path.display()
            );
        }
        // A stackless access (one poster kept only the access lines) must be said, not hidden.
        assert!(
            r.accesses.iter().all(|a| !a.stack.is_empty())
                || r.warnings
                    .iter()
                    .any(|w| w.kind == WarningKind::TruncatedStack),
            "{}",
            path.display()
        );
        let stackless = simple_frames(text).iter().any(Vec::is_empty);
        let gap = text
            .lines()
            .any(|l| matches!(l.trim(), "..." | "<snip>" | "[...]"));
        let incomplete: Vec<_> = r
            .warnings
            .iter()
            .filter(|w| w.kind.is_incompleteness() && w.kind != WarningKind::NoFooter)
            .filter(|w| !(gap && matches!(w.kind, WarningKind::Gap | WarningKind::TruncatedStack)))
            // The labeller's note says when the poster trimmed the stack; a report quoted
            // without its footer was cut by its poster too, so its last stack may end early.
            .filter(|w| {
                !((trimmed || r.reported_by.is_none() || stackless)
                    && w.kind == WarningKind::TruncatedStack)
            })
            .filter(|w| !(printed < expected && w.kind == WarningKind::MissingAccess))
            .collect();
        assert!(incomplete.is_empty(), "{}: {incomplete:?}", path.display());
        let got: Vec<Vec<String>> = r
            .accesses
            .iter()
            .map(|a| a.stack.iter().map(|f| f.function.clone()).collect())
            .collect();
        assert_eq!(simple_frames(text), got, "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 40, "expected the dev set, found {seen} reports");
}
