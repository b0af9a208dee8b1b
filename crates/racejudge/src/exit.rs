//! Exit codes and the error classification that picks them.
//!
//! Commands return `anyhow::Result`. An error that is the user's to fix (a malformed report, bad
//! JSON arguments, a path outside the kernel tree) is tagged with [`Failure::BadInput`] through
//! [`ResultExt::bad_input`]; an unavailable dependency (kernel tree missing, provider unreachable)
//! with [`Failure::Environment`]. Anything untagged is an internal failure. The README's
//! "Exit codes" table documents the numbers; keep the two in sync.

use std::fmt;
use std::process::ExitCode;

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 1: something failed that the user could not have prevented (I/O error, bug).
    Internal = 1,
    /// 2: bad input: unusable report, bad arguments, path outside the tree. Same code clap uses.
    BadInput = 2,
    /// 3: an external dependency is unavailable: kernel tree, git, an LLM provider.
    Environment = 3,
}

impl Failure {
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }
}

/// Marker attached to an error chain; `main` looks for it to choose the exit code.
#[derive(Debug)]
struct Tagged(Failure);

impl fmt::Display for Tagged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never printed on its own: `main` prints the wrapped error's message.
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for Tagged {}

/// Classifies an error chain: the first tag found wins, otherwise it is internal.
pub fn classify(err: &anyhow::Error) -> Failure {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<Tagged>().map(|t| t.0))
        .unwrap_or(Failure::Internal)
}

/// Renders an error chain on one line, skipping the classification tags. Control characters
/// (a NUL from a hostile report, raw bytes a provider sent back, a newline) are escaped, so the
/// line stays one line and the terminal shows what it got instead of obeying it.
pub fn one_line(err: &anyhow::Error) -> String {
    let joined = err
        .chain()
        .filter(|cause| cause.downcast_ref::<Tagged>().is_none())
        .map(|cause| cause.to_string())
        .collect::<Vec<_>>()
        .join(": ");
    printable(&joined)
}

/// `text` with every control character written as an escape (`\0`, `\n`, `\u{1b}`).
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

pub trait ResultExt<T> {
    fn bad_input(self) -> anyhow::Result<T>;
    fn environment(self) -> anyhow::Result<T>;
}

impl<T, E> ResultExt<T> for Result<T, E>
where
    E: Into<anyhow::Error>,
{
    fn bad_input(self) -> anyhow::Result<T> {
        self.map_err(|e| tag(e.into(), Failure::BadInput))
    }

    fn environment(self) -> anyhow::Result<T> {
        self.map_err(|e| tag(e.into(), Failure::Environment))
    }
}

/// Tags an error. The tag is inserted *below* the error's own message in the chain so that
/// `one_line` still reads naturally.
pub fn tag(err: anyhow::Error, failure: Failure) -> anyhow::Error {
    let message = one_line(&err);
    anyhow::Error::new(Tagged(failure)).context(message)
}

/// A bad-input error from a message.
pub fn bad_input(message: impl fmt::Display) -> anyhow::Error {
    anyhow::Error::new(Tagged(Failure::BadInput)).context(message.to_string())
}

/// An environment error from a message.
pub fn environment(message: impl fmt::Display) -> anyhow::Error {
    anyhow::Error::new(Tagged(Failure::Environment)).context(message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_escape_control_characters() {
        let err = anyhow::anyhow!("bad\0byte\x1b[31mred\nsecond line");
        assert_eq!(one_line(&err), "bad\\0byte\\u{1b}[31mred\\nsecond line");
    }

    #[test]
    fn untagged_errors_are_internal() {
        let err = anyhow::anyhow!("disk on fire");
        assert_eq!(classify(&err), Failure::Internal);
    }

    #[test]
    fn tags_survive_added_context_and_are_hidden_from_the_message() {
        let err: Result<(), std::io::Error> = Err(std::io::Error::other("no KCSAN report found"));
        let err = err.bad_input().unwrap_err().context("reading report.txt");
        assert_eq!(classify(&err), Failure::BadInput);
        assert_eq!(one_line(&err), "reading report.txt: no KCSAN report found");
    }

    #[test]
    fn environment_tag_from_message() {
        let err = environment("kernel tree /nope not found");
        assert_eq!(classify(&err), Failure::Environment);
        assert_eq!(one_line(&err), "kernel tree /nope not found");
    }
}
