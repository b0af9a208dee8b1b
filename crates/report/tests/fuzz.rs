//! Property tests: the parser never panics, whatever it is fed, and always explains an empty result.
//!
//! The default run is modest. For a long run:
//! `RACEJUDGE_FUZZ_CASES=1000000 cargo test -p report --release --test fuzz -- --nocapture`
//! (each proptest below gets that many cases). The inputs are arbitrary strings and mutations
//! (byte edits, line deletions/duplications/swaps, truncation, re-prefixing) of real reports.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use report::{WarningKind, parse};

const SEEDS: &[&str] = &[
    include_str!("fixtures/console_two_reports.txt"),
    include_str!("fixtures/inline_frames.txt"),
    include_str!("fixtures/unknown_origin_arm64_bar_quoted.txt"),
    include_str!("fixtures/arm64_old_and_title.txt"),
    include_str!("fixtures/assert_quoted_gap.txt"),
    include_str!("fixtures/module_frames_dmesg_t.txt"),
    include_str!("fixtures/verbose_lockdep_interleaved.txt"),
    include_str!("fixtures/truncated_mid_stack.txt"),
    include_str!("fixtures/reordered.txt"),
];

/// Line fragments that steer mutations into the grammar's corners.
const FRAGMENTS: &[&str] = &[
    "BUG: KCSAN: ",
    "data-race in ",
    "race at unknown origin, with ",
    "read-write (marked, reordered) to 0x",
    " of 8 bytes by task 1 on cpu 0:",
    " by interrupt on cpu ",
    "  |",
    "  +-> reordered to: ",
    "value changed: 0x1 -> ",
    " bits changed: ",
    "Reported by Kernel Concurrency Sanitizer on:",
    "CPU: 1 PID: 2 Comm: x Tainted: G ",
    "==================================================================",
    "[   1.000000][    C1] ",
    "> ",
    "| ",
    "...",
    "(",
    ")",
    " [inline]",
    "f+0x1/0x2 ",
    "#0: ",
    "2 locks held by ",
    "\r",
    "\u{fffd}",
    "é",
    "\t",
];

fn cases() -> u32 {
    std::env::var("RACEJUDGE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn check(text: &str) {
    let out = parse(text);
    if out.reports.is_empty() {
        assert!(out.warnings.iter().any(|w| w.kind == WarningKind::NoReport));
    }
    for r in &out.reports {
        assert!(r.title.starts_with("KCSAN: "));
        assert!(r.span.start <= r.span.end);
        assert!(r.accesses.len() <= 2);
    }
    // The JSON rendering must not fail either.
    serde_json::to_string(&out).expect("serializable");
}

#[derive(Debug, Clone)]
enum Edit {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    InsertFragment(usize, usize),
    Truncate(usize),
    ByteFlip(usize, u8),
    PrefixAll(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::DeleteLine),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::InsertFragment(a, b)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::ByteFlip(a, b)),
        any::<usize>().prop_map(Edit::PrefixAll),
    ]
}

fn mutate(seed: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = seed.lines().map(str::to_string).collect();
    for e in edits {
        let n = lines.len().max(1);
        match *e {
            Edit::DeleteLine(i) if !lines.is_empty() => {
                lines.remove(i % n);
            }
            Edit::DuplicateLine(i) if !lines.is_empty() => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Edit::SwapLines(a, b) if !lines.is_empty() => lines.swap(a % n, b % n),
            Edit::InsertFragment(i, f) if !lines.is_empty() => {
                let line = &mut lines[i % n];
                let mut at = (f / FRAGMENTS.len()) % (line.len() + 1);
                while !line.is_char_boundary(at) {
                    at -= 1;
                }
                line.insert_str(at, FRAGMENTS[f % FRAGMENTS.len()]);
            }
            Edit::Truncate(i) => lines.truncate(i % n),
            Edit::ByteFlip(i, b) if !lines.is_empty() => {
                let line = &mut lines[i % n];
                let mut bytes = std::mem::take(line).into_bytes();
                if !bytes.is_empty() {
                    let k = (b as usize * 7 + i) % bytes.len();
                    bytes[k] = b;
                }
                *line = String::from_utf8_lossy(&bytes).into_owned();
            }
            Edit::PrefixAll(p) => {
                let prefix = FRAGMENTS[p % FRAGMENTS.len()];
                for l in &mut lines {
                    l.insert_str(0, prefix);
                }
            }
            _ => {}
        }
    }
    lines.join("\n")
}

#[test]
fn fuzz_arbitrary_strings_never_panic() {
    let start = std::time::Instant::now();
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&any::<String>(), |s| {
            check(&s);
            Ok(())
        })
        .unwrap();
    eprintln!(
        "fuzz: {} arbitrary strings in {:?}",
        cases(),
        start.elapsed()
    );
}

#[test]
fn fuzz_fragment_soup_never_panics() {
    let start = std::time::Instant::now();
    let soup = proptest::collection::vec(
        (0..FRAGMENTS.len(), "[a-z0-9_ :/.+x]{0,12}", any::<bool>()),
        0..40,
    );
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&soup, |parts| {
            let mut s = String::new();
            for (f, word, newline) in parts {
                s.push_str(FRAGMENTS[f]);
                s.push_str(&word);
                if newline {
                    s.push('\n');
                }
            }
            check(&s);
            Ok(())
        })
        .unwrap();
    eprintln!("fuzz: {} fragment soups in {:?}", cases(), start.elapsed());
}

#[test]
fn fuzz_mutated_real_reports_never_panic() {
    let strategy = (0..SEEDS.len(), proptest::collection::vec(edit(), 1..12));
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let start = std::time::Instant::now();
    runner
        .run(&strategy, |(seed, edits)| {
            check(&mutate(SEEDS[seed], &edits));
            Ok(())
        })
        .unwrap();
    eprintln!("fuzz: {} mutated reports in {:?}", cases(), start.elapsed());
}
