//! Source text as tools show it: numbered lines and size budgets.
//!
//! [`numbered`] renders lines exactly like the reference (`%4d:\t` then the line) so that prompts
//! and seeds written against it keep working. [`Budget`] caps every result (a model drowns in a
//! 500-line dump); when it cuts, the tool says what was left out and how to narrow the query.

use std::fs::File;
use std::io::Read;

use crate::ToolError;

/// Default result budget: about 4k tokens.
pub const DEFAULT_BUDGET: usize = 16 * 1024;

/// The largest file a tool reads (the kernel's largest sources, generated register headers, are
/// about 20 MiB): a bigger one is refused rather than read whole into memory.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Reads an opened file as lines, split on `\n` (a `\r` is kept, as the reference does). A
/// trailing newline does not make an extra empty line. `len` is the size from its metadata.
pub fn read_lines(file: File, len: u64, rel: &str) -> Result<Vec<String>, ToolError> {
    if len > MAX_FILE_BYTES {
        return Err(ToolError::Failed(format!(
            "{rel} is {len} bytes, over the {MAX_FILE_BYTES}-byte limit for one file"
        )));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // `take` keeps a file that grows while it is read within the limit too.
    file.take(MAX_FILE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|source| ToolError::Io {
            path: rel.to_string(),
            source,
        })?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    if lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    Ok(lines)
}

/// One numbered line, `%4d:\t<text>\n`.
pub fn numbered_line(out: &mut String, number: u32, text: &str) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = writeln!(out, "{number:4}:\t{text}");
}

/// Lines `first..=last` (1-based, clamped to the file) rendered numbered.
pub fn numbered(lines: &[String], first: u32, last: u32) -> String {
    let mut out = String::new();
    let last = last.min(lines.len() as u32);
    for n in first.max(1)..=last {
        numbered_line(&mut out, n, &lines[(n - 1) as usize]);
    }
    out
}

/// A byte budget for one result's text.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: usize,
}

impl Budget {
    pub fn new(limit: usize) -> Self {
        Self { limit, used: 0 }
    }

    /// Takes `n` bytes if they fit; false (and nothing taken) otherwise.
    pub fn take(&mut self, n: usize) -> bool {
        if self.used + n > self.limit {
            return false;
        }
        self.used += n;
        true
    }

    pub fn remaining(&self) -> usize {
        self.limit.saturating_sub(self.used)
    }

    /// The leading `items` whose `cost`s fit, stopping at the first that does not (a result
    /// keeps its order: a later small item never jumps a cut). `items` is consumed lazily, so
    /// nothing after the cut is built.
    pub fn take_fitting<T>(
        &mut self,
        items: impl IntoIterator<Item = T>,
        cost: impl Fn(&T) -> usize,
    ) -> Vec<T> {
        let mut shown = Vec::new();
        for item in items {
            if !self.take(cost(&item)) {
                break;
            }
            shown.push(item);
        }
        shown
    }
}

/// `text` cut to at most `max` bytes at a character boundary, with "..." when cut: one source
/// line in a listing must not eat the budget.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// Numbered lines `first..=last`, cut to `budget` bytes. Returns the text and, when cut, the last
/// line shown (so the caller can say "lines N-M left out; use read-file").
pub fn numbered_budgeted(
    lines: &[String],
    first: u32,
    last: u32,
    budget: &mut Budget,
) -> (String, Option<u32>) {
    let mut out = String::new();
    let last = last.min(lines.len() as u32);
    for n in first.max(1)..=last {
        let before = out.len();
        numbered_line(&mut out, n, &lines[(n - 1) as usize]);
        if !budget.take(out.len() - before) {
            out.truncate(before);
            return (out, Some(n.saturating_sub(1)));
        }
    }
    (out, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_matches_reference_format() {
        let lines: Vec<String> = ["a", "\tb", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(numbered(&lines, 2, 9), "   2:\t\tb\n   3:\tc\n");
        let mut line = String::new();
        numbered_line(&mut line, 12345, "x");
        assert_eq!(line, "12345:\tx\n");
    }

    #[test]
    fn take_fitting_stops_at_the_first_misfit() {
        let mut budget = Budget::new(10);
        let shown = budget.take_fitting([4, 5, 3, 1], |n| *n);
        assert_eq!(shown, vec![4, 5]);
        assert_eq!(budget.remaining(), 1);
    }

    #[test]
    fn clip_cuts_at_a_char_boundary() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("abcdef", 3), "abc...");
        // 'é' is two bytes; a cut inside it backs off to the boundary before it.
        assert_eq!(clip("aé", 2), "a...");
    }

    #[test]
    fn budget_cuts_whole_lines() {
        let lines: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
        let mut budget = Budget::new(50);
        let (text, cut) = numbered_budgeted(&lines, 1, 100, &mut budget);
        assert!(text.len() <= 50);
        assert!(text.ends_with('\n'));
        let shown = text.lines().count() as u32;
        assert_eq!(cut, Some(shown));
    }
}
