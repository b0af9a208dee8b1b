//! Input normalisation: splits text into [`Line`]s with email quoting and console prefixes
//! (`[  44.37][    C4]`, `[T1234]`, `[Thu May 28 03:52:10 2020]`, `<3>`) peeled off, so the report
//! grammar in the sibling modules only ever sees what the kernel printed.

use std::borrow::Cow;

/// One input line after normalisation.
#[derive(Debug, Clone)]
pub(crate) struct Line<'a> {
    /// 1-based line number in the input.
    pub no: usize,
    /// The kernel's text: quoting and console prefix removed, trailing whitespace and `\r` removed,
    /// leading whitespace kept (frames are indented, headers are not).
    pub content: Cow<'a, str>,
    /// Email quote depth (`>`, `> >`, `|`).
    pub quote: u8,
    /// Whether a console prefix (timestamp, caller id) was removed.
    pub prefixed: bool,
    /// Line number of a mailer-wrapped continuation that was joined onto this line.
    pub joined: Option<usize>,
    /// The line is a lone `|` after any `>` quoting: either an empty `|`-quoted line or the
    /// kernel's `  |` reordered marker. Its quote depth is therefore ambiguous.
    pub bar_only: bool,
}

impl Line<'_> {
    pub fn text(&self) -> &str {
        self.content.trim()
    }
}

/// Splits `text` into normalised lines. Handles `\n`, `\r\n` and lone `\r` line ends.
pub(crate) fn split(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut no = 0;
    for raw in text.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        // A lone `\r` (old Mac files, some terminal captures) also ends a line.
        for piece in raw.split('\r') {
            no += 1;
            // A mailer that wraps C's `->` between `-` and `>` makes the continuation look like
            // an email quote: after a console line ending in `-`, a leading `>` is text.
            let (quote, rest) = match out.last() {
                Some(prev) if splits_arrow(prev, piece) => (prev.quote, piece),
                _ => strip_quote(piece),
            };
            let bar_only = rest.trim() == "|";
            let (prefixed, rest) = strip_console_prefix(rest);
            let line = Line {
                no,
                content: Cow::Borrowed(rest.trim_end()),
                quote,
                prefixed,
                joined: None,
                bar_only,
            };
            if is_wrapped_continuation(out.last(), &line)
                && let Some(prev) = out.last_mut()
            {
                let glue = if prev.content.ends_with('-') { "" } else { " " };
                let joined = format!("{}{glue}{}", prev.content, line.content.trim());
                prev.content = Cow::Owned(joined);
                prev.joined = Some(no);
                continue;
            }
            out.push(line);
        }
    }
    out
}

/// `piece` continues a `->` that a mailer cut after the `-` of a console line.
fn splits_arrow(prev: &Line<'_>, piece: &str) -> bool {
    prev.prefixed && prev.joined.is_none() && prev.content.ends_with('-') && piece.starts_with('>')
}

/// A mailer wrapped a long console line: the previous line has a console prefix, this one does
/// not and is not blank, and it does not start a report of its own. Only one continuation per line
/// is joined, which is all that 72-column wrapping produces for kernel lines.
fn is_wrapped_continuation(prev: Option<&Line<'_>>, line: &Line<'_>) -> bool {
    let Some(prev) = prev else { return false };
    let t = line.content.trim();
    prev.prefixed
        && prev.joined.is_none()
        && !prev.content.trim().is_empty()
        && !line.prefixed
        && prev.quote == line.quote
        && !t.is_empty()
        && !t.starts_with("==========")
        && !t.contains("BUG: KCSAN:")
        // Hand-pasted addr2line output under a frame is its own line, not a wrap.
        && super::frame::parse_addr2line(t).is_none()
}

/// Removes email quoting: `>` (repeated, optionally space-separated) or a single leading `| `,
/// possibly indented.
fn strip_quote(s: &str) -> (u8, &str) {
    let mut depth: u8 = 0;
    let indented = s.trim_start();
    let mut rest = if indented.starts_with('>') || indented.starts_with("| ") {
        indented
    } else {
        s
    };
    loop {
        if let Some(r) = rest.strip_prefix('>') {
            depth = depth.saturating_add(1);
            if r.starts_with('>') {
                rest = r;
                continue;
            }
            if r.starts_with(" >") {
                rest = &r[1..];
                continue;
            }
            rest = r.strip_prefix(' ').unwrap_or(r);
        }
        break;
    }
    // `| ` (possibly indented, possibly inside `>` quoting) is a quoting style some mailers and
    // lore digests use. The kernel's own `  |` reordered marker never has text after it.
    if let Some(r) = rest.trim_start().strip_prefix("| ") {
        return (depth.saturating_add(1), r);
    }
    if depth == 0 && rest == "|" {
        return (1, "");
    }
    (depth, rest)
}

/// Removes a console prefix: optional `<N>` log level, then one or more bracketed timestamp or
/// caller-id fields, then one separating space.
fn strip_console_prefix(s: &str) -> (bool, &str) {
    let mut rest = s.trim_start();
    if let Some(r) = rest.strip_prefix('<')
        && let Some(end) = r.find('>')
        && end > 0
        && end <= 2
        && r[..end].bytes().all(|b| b.is_ascii_digit())
    {
        rest = &r[end + 1..];
    }
    let mut any = false;
    while let Some(r) = rest.strip_prefix('[') {
        // Bound the search: prefixes are short, and this keeps the scan linear on long lines.
        // `]` is ASCII, so its byte position is always a char boundary.
        let Some(end) = r.bytes().take(40).position(|b| b == b']') else {
            break;
        };
        if !is_prefix_field(r[..end].trim()) {
            break;
        }
        any = true;
        rest = &r[end + 1..];
    }
    if !any {
        return (false, s);
    }
    (true, rest.strip_prefix(' ').unwrap_or(rest))
}

/// `12.345678`, `C4`, `T1234`, or a `dmesg -T` date such as `Thu May 28 03:52:10 2020`.
fn is_prefix_field(f: &str) -> bool {
    if f.is_empty() {
        return false;
    }
    let b = f.as_bytes();
    if let Some((secs, frac)) = f.split_once('.') {
        return !secs.is_empty()
            && !frac.is_empty()
            && secs.bytes().all(|c| c.is_ascii_digit())
            && frac.bytes().all(|c| c.is_ascii_digit());
    }
    if (b[0] == b'C' || b[0] == b'T') && b.len() > 1 && b[1..].iter().all(u8::is_ascii_digit) {
        return true;
    }
    // dmesg -T: "Www Mmm dd hh:mm:ss yyyy".
    let parts: Vec<&str> = f.split_whitespace().collect();
    parts.len() == 5
        && parts[0].len() == 3
        && parts[1].len() == 3
        && parts[3].bytes().filter(|&c| c == b':').count() == 2
        && parts[4].len() == 4
        && parts[4].bytes().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_mailer_wrapped_console_lines() {
        let lines = split("[ 1.0] read to 0x1 of 8 bytes by task\n93 on cpu 0:\n[ 1.1]  f+0x1/0x2");
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0].content,
            "read to 0x1 of 8 bytes by task 93 on cpu 0:"
        );
        assert_eq!(lines[0].joined, Some(2));
    }

    #[test]
    fn strips_console_prefixes() {
        assert_eq!(
            strip_console_prefix("[   44.377931][    C4]  find_next_bit+0x57/0xe0"),
            (true, " find_next_bit+0x57/0xe0")
        );
        assert_eq!(strip_console_prefix("[T1234] BUG: x"), (true, "BUG: x"));
        assert_eq!(
            strip_console_prefix("[Thu May 28 03:52:10 2020] Workqueue: kblockd f"),
            (true, "Workqueue: kblockd f")
        );
        assert_eq!(strip_console_prefix("<3>[ 1.5] x"), (true, "x"));
        assert_eq!(strip_console_prefix("[inline]"), (false, "[inline]"));
    }

    #[test]
    fn strips_quotes() {
        assert_eq!(strip_quote(">  frame"), (1, " frame"));
        assert_eq!(strip_quote(">> [ 1.0] x"), (2, "[ 1.0] x"));
        assert_eq!(strip_quote("> > x"), (2, "x"));
        assert_eq!(strip_quote(">"), (1, ""));
        assert_eq!(strip_quote("| read to"), (1, "read to"));
        assert_eq!(strip_quote("  |"), (0, "  |"));
    }

    #[test]
    fn crlf_and_lone_cr() {
        let lines = split("a\r\nb\r\n\r\nc\rd");
        let texts: Vec<_> = lines.iter().map(|l| l.content.as_ref()).collect();
        assert_eq!(texts, ["a", "b", "", "c", "d"]);
        assert_eq!(
            lines.iter().map(|l| l.no).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
    }
}
