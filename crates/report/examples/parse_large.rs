//! Measures parsing of a large console log (the performance sanity check: a 10k-line log should
//! parse in well under 100 ms). Run: `cargo run -p report --release --example parse_large [LINES]`.
//!
//! The log interleaves real reports (the test fixtures) with unrelated console lines, so every
//! code path (prefix stripping, report grammar, noise skipping) is exercised.

use std::time::Instant;

const REPORTS: &[&str] = &[
    include_str!("../tests/fixtures/console_two_reports.txt"),
    include_str!("../tests/fixtures/inline_frames.txt"),
    include_str!("../tests/fixtures/verbose_lockdep_interleaved.txt"),
    include_str!("../tests/fixtures/reordered.txt"),
];

fn main() {
    let target: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let mut log = String::new();
    let mut lines = 0;
    let mut i = 0;
    while lines < target {
        for k in 0..50 {
            log.push_str(&format!(
                "[{:>5}.{:06}][  T{}] eth0: link state change {k} [{i}]\n",
                i,
                k,
                100 + k
            ));
        }
        let r = REPORTS[i % REPORTS.len()];
        log.push_str(r);
        lines += 50 + r.lines().count();
        i += 1;
    }
    let runs = 20;
    let mut best = f64::MAX;
    let mut found = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let out = report::parse(&log);
        best = best.min(start.elapsed().as_secs_f64());
        found = out.reports.len();
    }
    println!(
        "{} lines, {} bytes: {} reports, best of {runs}: {:.2} ms",
        log.lines().count(),
        log.len(),
        found,
        best * 1e3
    );
}
