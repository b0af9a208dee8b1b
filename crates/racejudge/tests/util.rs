//! Shared helpers for driving the real `racejudge` binary.

#![allow(dead_code)]

use std::process::{Command, Output};

/// The freshly built binary under test.
pub fn racejudge() -> Command {
    Command::new(env!("CARGO_BIN_EXE_racejudge"))
}

/// Asserts that a run succeeded (showing its stderr when not) and parses its stdout as the one
/// JSON document `--json` promises.
pub fn json_ok(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs the binary with `args` and stdin, returning its output.
pub fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = racejudge()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn racejudge");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait racejudge")
}
