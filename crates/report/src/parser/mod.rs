//! The report grammar: finds every `BUG: KCSAN:` line and walks the lines after it with a small
//! state machine ([`ReportParser`]) until the closing `=====`, the next report, the end of the
//! email quote, or text that is clearly no longer part of the report.
//!
//! Each line is looked at a bounded number of times (the parser only looks one line ahead), so
//! parsing is linear in the input size.

mod frame;
mod header;
mod lines;

use crate::model::*;
use lines::Line;

pub(crate) use frame::classify;

const BUG: &str = "BUG: KCSAN:";
const FOOTER: &str = "Reported by Kernel Concurrency Sanitizer on:";
/// Unrecognised lines tolerated in a row inside an incomplete report before giving up on it.
const MAX_UNPARSED_RUN: usize = 8;

pub(crate) fn parse(text: &str) -> ParseOutput {
    let lines = lines::split(text);
    let mut reports: Vec<Report> = Vec::new();
    // Warnings about a dropped duplicate title, carried to the report it belongs to.
    let mut carried: Vec<Warning> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        match lines[i].content.find(BUG) {
            Some(pos) => {
                let (mut report, next) = ReportParser::new(&lines, i, pos).run();
                report.warnings.splice(0..0, carried.drain(..));
                // A poster who pastes two title lines for one race (the inline frame's and the
                // caller's) makes an empty "report" right before the real one: fold it in.
                if report.accesses.is_empty()
                    && lines[i + 1..next.min(lines.len())]
                        .iter()
                        .all(|l| l.text().is_empty())
                    && lines.get(next).is_some_and(|l| l.content.contains(BUG))
                {
                    carried.push(warning(
                        WarningKind::MalformedField,
                        format!(
                            "line {} is a second BUG title line for the same report; the later one is used",
                            lines[i].no
                        ),
                        Some(lines[i].no),
                    ));
                } else {
                    reports.push(report);
                }
                i = next.max(i + 1);
            }
            None => i += 1,
        }
    }
    if reports.is_empty()
        && let Some(start) = lines
            .iter()
            .position(|l| header::parse_header(l.text()).is_some())
    {
        // Quoted without its title line (a commit message citing only the two stacks): the
        // accesses are still there to analyse; the title is rebuilt from their frames.
        reports.push(ReportParser::untitled(&lines, start).run().0);
    }
    let mut warnings = Vec::new();
    if reports.is_empty() {
        warnings.push(Warning {
            kind: WarningKind::NoReport,
            message: "no KCSAN report found: no line contains \"BUG: KCSAN:\"".to_string(),
            line: None,
        });
    }
    ParseOutput { reports, warnings }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// After the BUG line, before the first access header.
    Title,
    /// Reading frames of the last access.
    Stack,
    /// A blank line ended a stack.
    AfterStack,
    /// Reading a CONFIG_KCSAN_VERBOSE block.
    Verbose,
    /// After `value changed:`.
    Value,
    /// After `Reported by Kernel Concurrency Sanitizer on:`.
    Footer,
}

/// Why a report ended; decides which incompleteness warnings apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Separator,
    NextReport,
    Eof,
    QuoteEnded,
    Unrelated,
}

struct ReportParser<'l, 'a> {
    lines: &'l [Line<'a>],
    start: usize,
    quote: u8,
    title: header::Title,
    accesses: Vec<Access>,
    value_change: Option<ValueChange>,
    reported_by: Option<ReportedBy>,
    warnings: Vec<Warning>,
    state: State,
    /// Index of the last line that belongs to the report.
    last: usize,
    /// Index of the first line `run` looks at.
    first: usize,
    /// No BUG line: the title is built from the accesses' frames at the end.
    untitled: bool,
}

impl<'l, 'a> ReportParser<'l, 'a> {
    fn new(lines: &'l [Line<'a>], start: usize, pos: usize) -> Self {
        let line = &lines[start];
        let mut warnings = Vec::new();
        let mut last = start;
        let mut text = line.content[pos + BUG.len()..].trim().to_string();
        if let Some(cont) = line.joined {
            warnings.push(warning(
                WarningKind::WrappedLine,
                format!("the BUG line was wrapped; rejoined it with line {cont}"),
                Some(line.no),
            ));
        }
        // A mailer may wrap the BUG line after "in" or "/", or push a `[module]` onto the next line.
        // Re-wrapping mailers sometimes put the continuation at a different quote depth.
        if let Some(next) = lines
            .get(start + 1)
            .filter(|l| l.quote > 0 || l.quote == line.quote)
        {
            let cont = next.text();
            let tokens = cont.split_whitespace().count();
            let dangling = text.ends_with(" in") || text.ends_with(" /") || text.ends_with("in");
            let module = cont.starts_with('[') && cont.ends_with(']') && tokens == 1;
            if (dangling && (1..=2).contains(&tokens) || module)
                && !cont.contains(BUG)
                && header::parse_header(cont).is_none()
            {
                text = format!("{text} {cont}");
                last = start + 1;
                warnings.push(warning(
                    WarningKind::WrappedLine,
                    format!(
                        "the BUG line was wrapped; rejoined it with line {}",
                        next.no
                    ),
                    Some(line.no),
                ));
            }
        }
        let title = header::parse_title(&text);
        if title.functions.is_empty() {
            warnings.push(warning(
                WarningKind::MalformedField,
                format!("BUG line names no function: \"{}\"", line.content.trim()),
                Some(line.no),
            ));
        }
        ReportParser {
            lines,
            start,
            quote: line.quote,
            title,
            accesses: Vec::new(),
            value_change: None,
            reported_by: None,
            warnings,
            state: State::Title,
            last,
            first: last + 1,
            untitled: false,
        }
    }

    /// A report with no `BUG: KCSAN:` line, starting at the access header on line `start`.
    fn untitled(lines: &'l [Line<'a>], start: usize) -> Self {
        let line = &lines[start];
        ReportParser {
            lines,
            start,
            quote: line.quote,
            title: header::parse_title(""),
            accesses: Vec::new(),
            value_change: None,
            reported_by: None,
            warnings: vec![warning(
                WarningKind::MalformedField,
                "no \"BUG: KCSAN:\" title line; the title is rebuilt from the accesses' first interesting frames".to_string(),
                Some(line.no),
            )],
            state: State::Title,
            last: start,
            first: start,
            untitled: true,
        }
    }

    fn expected_accesses(&self) -> usize {
        if self.title.kind.is_unknown_origin() {
            1
        } else {
            2
        }
    }

    fn accesses_complete(&self) -> bool {
        self.accesses.len() >= self.expected_accesses()
    }

    fn run(mut self) -> (Report, usize) {
        let mut j = self.first;
        let mut unparsed_run = 0;
        let end = loop {
            let Some(line) = self.lines.get(j) else {
                break End::Eof;
            };
            if line.quote != self.quote && !line.bar_only {
                if self.wrapped_module(line) {
                    self.last = j;
                    j += 1;
                    continue;
                }
                break End::QuoteEnded;
            }
            if let Some(cont) = line.joined {
                self.warnings.push(warning(
                    WarningKind::WrappedLine,
                    format!(
                        "line {} was wrapped by a mailer; rejoined it with line {cont}",
                        line.no
                    ),
                    Some(line.no),
                ));
            }
            let t = line.text();
            match self.step(j, t) {
                Step::Consumed(n) => {
                    self.last = j + n - 1;
                    j += n;
                    unparsed_run = 0;
                }
                Step::Blank => j += 1,
                Step::End(end, consumed) => {
                    if consumed {
                        self.last = j;
                        j += 1;
                    }
                    break end;
                }
                Step::Unknown => {
                    if self.continues_report(j + 1) {
                        let (kind, what) = if line.prefixed && !line.content.starts_with(' ') {
                            (
                                WarningKind::InterleavedLine,
                                "skipped interleaved console line",
                            )
                        } else {
                            (WarningKind::UnparsedLine, "unparsed line")
                        };
                        self.warnings.push(warning(
                            kind,
                            format!("{what} \"{}\"", clip(t)),
                            Some(line.no),
                        ));
                        self.last = j;
                        j += 1;
                        continue;
                    }
                    // Text after a finished section (prose, the next log message) ends the
                    // report; only between the BUG line and the first header is noise tolerated.
                    if self.state != State::Title {
                        break End::Unrelated;
                    }
                    unparsed_run += 1;
                    if unparsed_run > MAX_UNPARSED_RUN {
                        break End::Unrelated;
                    }
                    self.warnings.push(warning(
                        WarningKind::UnparsedLine,
                        format!("unparsed line \"{}\"", clip(t)),
                        Some(line.no),
                    ));
                    j += 1;
                }
            }
        };
        // Trailing unparsed lines of an abandoned report are not part of it.
        let last_no = self.lines[self.last].no;
        self.warnings
            .retain(|w| w.kind != WarningKind::UnparsedLine || w.line.is_none_or(|l| l <= last_no));
        let next = if end == End::Unrelated || end == End::QuoteEnded || end == End::NextReport {
            self.last + 1
        } else {
            j
        };
        (self.finish(end), next)
    }

    /// A re-wrapping mailer pushed a frame's `[module]` onto its own line, at another quote depth.
    fn wrapped_module(&mut self, line: &Line<'_>) -> bool {
        let t = line.text();
        let Some(module) = t.strip_prefix('[').and_then(|m| m.strip_suffix(']')) else {
            return false;
        };
        let valid = !module.is_empty()
            && module
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        let Some(frame) = self.accesses.last_mut().and_then(|a| a.stack.last_mut()) else {
            return false;
        };
        if !valid || self.state != State::Stack || frame.module.is_some() {
            return false;
        }
        frame.module = Some(module.to_string());
        self.warnings.push(warning(
            WarningKind::WrappedLine,
            format!(
                "module \"[{module}]\" was wrapped onto line {}; rejoined it",
                line.no
            ),
            Some(line.no),
        ));
        true
    }

    /// Whether line `j` (the one after an unrecognised line) carries on with report grammar.
    fn continues_report(&self, j: usize) -> bool {
        let Some(line) = self.lines.get(j) else {
            return false;
        };
        if line.quote != self.quote {
            return false;
        }
        let t = line.text();
        match self.state {
            State::Stack | State::Title => {
                frame::parse_frame(t).is_some()
                    || frame::needs_continuation(t)
                    || header::parse_header(t).is_some()
            }
            State::Verbose => is_verbose_line(t) || frame::parse_frame(t).is_some(),
            _ => false,
        }
    }

    fn step(&mut self, j: usize, t: &str) -> Step {
        if t.is_empty() {
            if self.state == State::Stack {
                self.state = State::AfterStack;
            }
            return Step::Blank;
        }
        if t.contains(BUG) {
            return Step::End(End::NextReport, false);
        }
        if t.len() >= 10 && t.bytes().all(|b| b == b'=') {
            return Step::End(End::Separator, true);
        }
        if self.state == State::Footer {
            return self.footer_line(t);
        }
        // Some pastes cut the footer line short ("... Sanitizer").
        if t.starts_with(FOOTER.trim_end_matches(" on:")) {
            self.state = State::Footer;
            self.reported_by = Some(ReportedBy::default());
            return Step::Consumed(1);
        }
        if let Some(h) = header::parse_header(t) {
            return self.new_access(h);
        }
        if header::looks_like_partial_header(t)
            && let Some(next) = self.lines.get(j + 1)
        {
            let joined = format!("{t} {}", next.text());
            if let Some(h) = header::parse_header(&joined) {
                self.warnings.push(warning(
                    WarningKind::WrappedLine,
                    format!(
                        "access header was wrapped; rejoined it with line {}",
                        next.no
                    ),
                    Some(self.lines[j].no),
                ));
                return match self.new_access(h) {
                    Step::Consumed(_) => Step::Consumed(2),
                    other => other,
                };
            }
        }
        if let Some(v) = header::parse_value_change(t) {
            self.value_change = Some(v);
            self.state = State::Value;
            return Step::Consumed(1);
        }
        if let Some((bits, mask)) = header::parse_bits_changed(t) {
            if let Some(v) = self.value_change.as_mut() {
                v.bits_changed = Some(bits);
                v.mask = Some(mask);
                return Step::Consumed(1);
            }
            return Step::Unknown;
        }
        if is_gap(t) {
            let which = match self.accesses.len() {
                0 => "before the first access".to_string(),
                n => format!("in the stack of access {n}"),
            };
            self.warnings.push(warning(
                WarningKind::Gap,
                format!("lines were elided (\"{t}\") {which}: the stack is incomplete"),
                Some(self.lines[j].no),
            ));
            return Step::Consumed(1);
        }
        if matches!(
            self.state,
            State::Stack | State::AfterStack | State::Verbose
        ) && let Some(step) = self.stack_or_verbose_line(j, t)
        {
            return step;
        }
        Step::Unknown
    }

    fn new_access(&mut self, h: header::Header) -> Step {
        if self.accesses_complete() {
            // A third header: a report whose BUG line we did not see. Leave it alone.
            return Step::End(End::Unrelated, false);
        }
        if h.unknown_origin {
            self.title.kind = match self.title.kind {
                ReportKind::AssertRace | ReportKind::AssertRaceUnknownOrigin => {
                    ReportKind::AssertRaceUnknownOrigin
                }
                _ => ReportKind::DataRaceUnknownOrigin,
            };
        }
        self.accesses.push(Access {
            access_type: h.access_type,
            operation: h.operation,
            qualifiers: h.qualifiers,
            address: h.address,
            size: h.size,
            context: h.context,
            who: h.who,
            cpu: h.cpu,
            stack: Vec::new(),
            reordered_to: None,
            verbose: None,
        });
        self.state = State::Stack;
        Step::Consumed(1)
    }

    fn stack_or_verbose_line(&mut self, j: usize, t: &str) -> Option<Step> {
        let in_verbose = self.state == State::Verbose;
        let access = self.accesses.last_mut()?;
        if t == "|" {
            return Some(Step::Consumed(1));
        }
        if let Some(rest) = t.strip_prefix("+-> reordered to:") {
            access.reordered_to = frame::parse_frame(rest.trim());
            return access.reordered_to.as_ref().map(|_| Step::Consumed(1));
        }
        // A mailer wrapped a held-lock line ("#1: ... (&sb->s_type-" / "->i_mutex_key#15){+.+.}, at:"
        // / "vfs_write+0x21c/0x260"): the rest belongs to that line, not to a stack.
        if in_verbose
            && !is_verbose_line(t)
            && let Some(verbose) = access.verbose.as_mut()
            && verbose.irq_trace.is_empty()
            && let Some(lock) = verbose.locks.last_mut()
            && lock_line_unfinished(lock)
        {
            if !lock.ends_with('-') {
                lock.push(' ');
            }
            lock.push_str(t);
            return Some(Step::Consumed(1));
        }
        if is_verbose_line(t) {
            let verbose = access.verbose.get_or_insert_with(VerboseInfo::default);
            if let Some(n) = locks_held(t) {
                verbose.locks_held = Some(n);
            } else if t.starts_with('#') {
                verbose.locks.push(t.to_string());
            } else {
                verbose.irq_trace.push(t.to_string());
            }
            self.state = State::Verbose;
            return Some(Step::Consumed(1));
        }
        if self.state == State::Stack
            && let Some((_, location)) = frame::parse_addr2line(t)
        {
            // The last location in an addr2line chain is the frame's own line.
            let last = self.accesses.last_mut()?.stack.last_mut()?;
            return frame::apply_location(last, location).then_some(Step::Consumed(1));
        }
        let (f, consumed) = if frame::needs_continuation(t) {
            self.multi_line_frame(j, t)?
        } else if self.state == State::Stack {
            // Right after other frames a bare symbol is a frame too (some arm64 and hand-edited
            // stacks drop offsets); elsewhere it is too ambiguous.
            (
                frame::parse_frame(t).or_else(|| frame::parse_bare_symbol(t))?,
                1,
            )
        } else {
            (frame::parse_frame(t)?, 1)
        };
        let access = self.accesses.last_mut()?;
        if in_verbose {
            // print_irqtrace_events' `%pS` may land on its own line after `[<addr>]`.
            let verbose = access.verbose.as_mut()?;
            let last = verbose.irq_trace.last_mut()?;
            last.push(' ');
            last.push_str(t);
            return Some(Step::Consumed(1));
        }
        // A stray blank line inside a stack (console interleaving) does not end it.
        access.stack.push(f);
        self.state = State::Stack;
        Some(Step::Consumed(consumed))
    }

    /// decode_stacktrace.sh splits a long `(a.h:1 b.c:2 ...)` group over several lines.
    fn multi_line_frame(&self, start: usize, first: &str) -> Option<(Frame, usize)> {
        let mut joined = first.to_string();
        for n in 1..=8 {
            let next = self.lines.get(start + n)?;
            joined.push(' ');
            joined.push_str(next.text());
            if !frame::needs_continuation(&joined) {
                return frame::parse_frame(&joined).map(|f| (f, n + 1));
            }
        }
        None
    }

    fn footer_line(&mut self, t: &str) -> Step {
        let Some(by) = self.reported_by.as_mut() else {
            return Step::Unknown;
        };
        if header::parse_cpu_line(t, by) {
            return Step::Consumed(1);
        }
        if let Some(hw) = t.strip_prefix("Hardware name:") {
            by.hardware = Some(hw.trim().to_string());
        } else if let Some(wq) = t.strip_prefix("Workqueue:") {
            by.workqueue = Some(wq.trim().to_string());
        } else if t.starts_with("Tainted:") || t.starts_with("Sched_ext:") {
            by.extra.push(t.to_string());
        } else if t.starts_with("CPU: ") {
            by.cpu_line = Some(t.to_string());
            self.warnings.push(warning(
                WarningKind::MalformedField,
                format!("footer CPU line not understood: \"{}\"", clip(t)),
                None,
            ));
        } else {
            return Step::End(End::Unrelated, false);
        }
        Step::Consumed(1)
    }

    fn finish(mut self, end: End) -> Report {
        let expected = self.expected_accesses();
        let got = self.accesses.len();
        let end_no = self.lines[self.last].no;
        if end == End::QuoteEnded && (got < expected || self.reported_by.is_none()) {
            self.warnings.push(warning(
                WarningKind::QuotingCut,
                format!("email quoting ends after line {end_no}, before the report is complete"),
                Some(end_no),
            ));
        }
        if got < expected {
            let what = if got == 0 {
                "no access header (\"... to 0x... of N bytes by ...\") found".to_string()
            } else {
                format!(
                    "only {got} of {expected} accesses present: the other thread's access and stack are missing"
                )
            };
            self.warnings
                .push(warning(WarningKind::MissingAccess, what, Some(end_no)));
        }
        for (n, a) in self.accesses.iter().enumerate() {
            // "N locks held" is a count the report states: keeping fewer (or more) lock lines
            // than that means lines were lost or split, and the reader must be told.
            if let Some(verbose) = &a.verbose
                && let Some(held) = verbose.locks_held
                && held as usize != verbose.locks.len()
            {
                self.warnings.push(warning(
                    WarningKind::MalformedField,
                    format!(
                        "access {} says {held} locks held but {} lock lines were read",
                        n + 1,
                        verbose.locks.len()
                    ),
                    None,
                ));
            }
            if a.stack.is_empty() {
                self.warnings.push(warning(
                    WarningKind::TruncatedStack,
                    format!(
                        "access {} (\"{}\") has no stack frames",
                        n + 1,
                        a.access_type
                    ),
                    None,
                ));
            }
        }
        // Blank lines before the end of input say nothing: a paste cut mid-stack often ends
        // with a newline or two.
        let trailing_blank_only = end == End::Eof
            && self.lines[self.last + 1..]
                .iter()
                .all(|l| l.text().is_empty());
        let in_stack = self.state == State::Stack
            || (end == End::Eof && trailing_blank_only && self.state == State::AfterStack);
        let cut_mid_stack = matches!(end, End::Eof | End::QuoteEnded | End::Unrelated)
            && in_stack
            && self.reported_by.is_none();
        if cut_mid_stack
            && let Some(last) = self.accesses.last().and_then(|a| a.stack.last())
            && last.class != FrameClass::Entry
        {
            self.warnings.push(warning(
                WarningKind::TruncatedStack,
                format!(
                    "stack of access {} is cut off after \"{}\" (input ends mid-stack)",
                    self.accesses.len(),
                    last.function
                ),
                Some(end_no),
            ));
        }
        if self.reported_by.is_none() {
            self.warnings.push(warning(
                WarningKind::NoFooter,
                "no \"Reported by Kernel Concurrency Sanitizer on:\" footer: CPU, PID, task and kernel release unknown".to_string(),
                None,
            ));
        }
        let mut start = self.start;
        // Include the opening `=====` line (possibly with a blank line in between) in the span.
        for back in 1..=2 {
            let Some(k) = self.start.checked_sub(back) else {
                break;
            };
            let t = self.lines[k].text();
            if t.len() >= 10 && t.bytes().all(|b| b == b'=') {
                start = k;
                break;
            }
            if !t.is_empty() {
                break;
            }
        }
        if self.untitled {
            let functions: Vec<String> = self
                .accesses
                .iter()
                .filter_map(|a| {
                    a.stack
                        .iter()
                        .find(|f| f.class == FrameClass::Interesting)
                        .map(|f| f.function.clone())
                })
                .collect();
            let rebuilt = format!("data-race in {}", functions.join(" / "));
            self.title = header::parse_title(&rebuilt);
        }
        Report {
            title: self.title.title,
            bug_line: self.title.bug_line,
            title_counter: self.title.counter,
            kind: self.title.kind,
            title_functions: self.title.functions,
            accesses: self.accesses,
            value_change: self.value_change,
            reported_by: self.reported_by,
            span: LineSpan {
                start: self.lines[start].no,
                end: end_no,
            },
            warnings: self.warnings,
        }
    }
}

enum Step {
    /// The line (and `n - 1` following ones) belong to the report.
    Consumed(usize),
    Blank,
    /// The report ends here; `true` when the current line is part of it.
    End(End, bool),
    Unknown,
}

fn warning(kind: WarningKind, message: String, line: Option<usize>) -> Warning {
    Warning {
        kind,
        message,
        line,
    }
}

/// `...`, `....`, `[...]`, `[snip]`, `<snip>`, `…`: an elision mark.
fn is_gap(t: &str) -> bool {
    let inner = t
        .strip_prefix(['[', '<'])
        .and_then(|r| r.strip_suffix([']', '>']))
        .unwrap_or(t)
        .trim();
    inner == "snip" || inner == "…" || (inner.len() >= 2 && inner.bytes().all(|b| b == b'.'))
}

fn is_verbose_line(t: &str) -> bool {
    locks_held(t).is_some()
        || t.starts_with("irq event stamp:")
        || t.starts_with("hardirqs last")
        || t.starts_with("softirqs last")
        || is_lock_line(t)
}

/// ` #0: ffff8e91ddef90d0 (&host->eh_mutex){+.+.}, at: ata_eh_acquire+0x32/0x80`.
/// A held-lock line (`#N: addr (name){state}, at: site`) cut before its acquisition site.
fn lock_line_unfinished(line: &str) -> bool {
    let opens = line.matches('(').count();
    let closes = line.matches(')').count();
    opens > closes || line.trim_end().ends_with("at:") || line.ends_with('-')
}

fn is_lock_line(t: &str) -> bool {
    let Some(rest) = t.strip_prefix('#') else {
        return false;
    };
    match rest.split_once(':') {
        Some((n, _)) => !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// `2 locks held by scsi_eh_3/156:` → 2, `no locks held by x/1.` → 0.
fn locks_held(t: &str) -> Option<u32> {
    let (n, rest) = t.split_once(' ')?;
    if !(rest.starts_with("locks held by ") || rest.starts_with("lock held by ")) {
        return None;
    }
    if n == "no" { Some(0) } else { n.parse().ok() }
}

/// Shortens a line for a warning message (on a char boundary).
fn clip(t: &str) -> String {
    const MAX: usize = 120;
    if t.len() <= MAX {
        return t.to_string();
    }
    let mut end = MAX;
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &t[..end])
}
