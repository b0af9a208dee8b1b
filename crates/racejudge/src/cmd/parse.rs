//! `racejudge parse [FILE|-] [--json]`: finds the KCSAN reports in a report, console log or email
//! and prints them, as a human summary or as one JSON document (`report::ParseOutput`:
//! `{"reports": [...], "warnings": [...]}`, schema in docs/report.schema.json).
//!
//! Input that contains no KCSAN report (including binary garbage) is the user's to fix: exit 2
//! with a one-line `error:`. Unreadable files are reported with their path, also exit 2.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use report::{Access, AccessContext, Frame, FrameClass, ParseOutput, Report, Warning};

use crate::exit;

/// How many frames of each stack the human summary shows.
const SUMMARY_FRAMES: usize = 6;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The report, console log or email to read; `-` or absent reads stdin.
    pub file: Option<PathBuf>,
    /// Print one JSON document `{"reports": [...], "warnings": [...]}` (see docs/report-format.md).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (source, bytes) = crate::input::read(args.file.as_deref())?;
    // Pasted logs are sometimes not valid UTF-8 (console garbage); parse what is readable.
    let text = String::from_utf8_lossy(&bytes);
    let out = report::parse(&text);
    tracing::debug!(reports = out.reports.len(), "parsed {source}");
    if out.reports.is_empty() {
        let why = if bytes.contains(&0) {
            " (the input looks binary)"
        } else {
            ""
        };
        return Err(exit::bad_input(format!(
            "no KCSAN report found in {source}{why}: no line contains \"BUG: KCSAN:\""
        )));
    }
    // The input is no longer needed: free it before the output is built.
    drop(text);
    drop(bytes);
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        // Streamed: a log of tens of thousands of reports never sits in memory twice.
        serde_json::to_writer_pretty(&mut stdout, &out).context("writing JSON to stdout")?;
        stdout.write_all(b"\n").context("writing to stdout")?;
    } else {
        stdout
            .write_all(summary(&out).as_bytes())
            .context("writing to stdout")?;
    }
    // `racejudge parse log | head` closing the pipe early is not an error (see crate::out).
    stdout.flush().context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// The human summary: per report its title, each access with its first interesting frame and a
/// few frames, the value change, the footer and every warning.
fn summary(out: &ParseOutput) -> String {
    let mut s = String::new();
    let many = out.reports.len() > 1;
    for (i, r) in out.reports.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        if many {
            let _ = writeln!(s, "# report {} of {}", i + 1, out.reports.len());
        }
        report_summary(&mut s, r);
    }
    for w in &out.warnings {
        warning_line(&mut s, w);
    }
    s
}

fn report_summary(s: &mut String, r: &Report) {
    let _ = writeln!(s, "{}", r.full_title());
    let _ = writeln!(
        s,
        "  kind: {}    input lines {}-{}",
        kind_name(r),
        r.span.start,
        r.span.end
    );
    for (n, a) in r.accesses.iter().enumerate() {
        access_summary(s, n + 1, a);
    }
    if let Some(v) = &r.value_change {
        let _ = write!(s, "  value changed: {} -> {}", v.old, v.new);
        if let (Some(bits), Some(mask)) = (&v.bits_changed, &v.mask) {
            let _ = write!(s, " (bits {bits}, mask {mask})");
        }
        s.push('\n');
    }
    if let Some(by) = &r.reported_by {
        let mut parts = Vec::new();
        if let Some(cpu) = by.cpu {
            parts.push(format!("cpu {cpu}"));
        }
        if let Some(pid) = by.pid {
            parts.push(format!("pid {pid}"));
        }
        if let Some(comm) = &by.comm {
            parts.push(format!("comm {comm}"));
        }
        if let Some(release) = &by.kernel_release {
            parts.push(format!("kernel {release}"));
        }
        parts.push(match &by.taint {
            Some(t) => format!("tainted {t}"),
            None => "not tainted".to_string(),
        });
        let _ = writeln!(s, "  reported on: {}", parts.join(", "));
        if let Some(hw) = &by.hardware {
            let _ = writeln!(s, "  hardware: {hw}");
        }
    }
    for w in &r.warnings {
        warning_line(s, w);
    }
}

fn kind_name(r: &Report) -> String {
    serde_json::to_value(r.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{:?}", r.kind))
}

fn access_summary(s: &mut String, n: usize, a: &Access) {
    let who = match a.context {
        AccessContext::Task { pid } => format!("task {pid}"),
        AccessContext::Interrupt => "interrupt".to_string(),
        AccessContext::Unknown => a.who.clone(),
    };
    let cpu = a.cpu.map(|c| format!(" on cpu {c}")).unwrap_or_default();
    let _ = writeln!(
        s,
        "  access {n}: {} of {} bytes at {} by {who}{cpu}",
        a.access_type, a.size, a.address
    );
    match a.first_interesting_frame() {
        Some(f) => {
            let _ = writeln!(s, "    first interesting frame: {}", frame_text(f));
        }
        None => {
            let _ = writeln!(s, "    first interesting frame: none");
        }
    }
    for f in a.stack.iter().take(SUMMARY_FRAMES) {
        let marker = if f.class == FrameClass::Interesting {
            ' '
        } else {
            '~'
        };
        let _ = writeln!(s, "     {marker} {}", frame_text(f));
    }
    if a.stack.len() > SUMMARY_FRAMES {
        let _ = writeln!(
            s,
            "       ... {} more frames",
            a.stack.len() - SUMMARY_FRAMES
        );
    }
    if let Some(to) = &a.reordered_to {
        let _ = writeln!(s, "       reordered to: {}", frame_text(to));
    }
    if let Some(n) = a.verbose.as_ref().and_then(|v| v.locks_held) {
        let _ = writeln!(s, "    locks held: {n}");
    }
}

fn frame_text(f: &Frame) -> String {
    let mut t = f.function.clone();
    if let (Some(off), Some(size)) = (f.offset, f.size) {
        let _ = write!(t, "+{off:#x}/{size:#x}");
    }
    if let Some(m) = &f.module {
        let _ = write!(t, " [{m}]");
    }
    if let Some(file) = &f.file {
        let _ = write!(t, " {file}");
        if let Some(line) = f.line {
            let _ = write!(t, ":{line}");
        }
    }
    if f.inline {
        t.push_str(" [inline]");
    }
    t
}

fn warning_line(s: &mut String, w: &Warning) {
    let kind = serde_json::to_value(w.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    match w.line {
        Some(line) => {
            let _ = writeln!(s, "  warning [{kind}] line {line}: {}", w.message);
        }
        None => {
            let _ = writeln!(s, "  warning [{kind}]: {}", w.message);
        }
    }
}
