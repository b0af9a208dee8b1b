//! The binary under hostile input and faults (issue 13): a closed stdout, endless input, a file
//! that is not a `.config`, a trajectory that cannot be written. Each case failed before its fix.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::util::racejudge;

/// Runs `cmd` with its stdout's reader gone before anything is written; returns (exit code,
/// stderr). The read end is closed by the parent right after the spawn.
fn with_closed_stdout(mut cmd: Command) -> (Option<i32>, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn racejudge");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait racejudge");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_is_not_a_crash() {
    let report = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/reports/smc_switch_to_fallback-sock_poll.txt");
    for _ in 0..5 {
        let mut list = racejudge();
        list.args(["tool", "--list", "--json"]);
        let mut parse = racejudge();
        parse.arg("parse").arg(&report).arg("--json");
        for cmd in [list, parse] {
            let shown = format!("{cmd:?}");
            let (code, stderr) = with_closed_stdout(cmd);
            assert_eq!(code, Some(0), "{shown}: {stderr}");
            assert!(!stderr.contains("panicked"), "{shown}: {stderr}");
        }
    }
}

#[test]
fn endless_input_stops_at_the_input_limit() {
    let out = racejudge()
        .args(["--max-input-mb", "1", "parse", "/dev/zero"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("larger than the input limit of 1 MiB"),
        "{stderr}"
    );
    let out = racejudge()
        .args(["parse", "-"])
        .env("RACEJUDGE_MAX_INPUT_MB", "1")
        .stdin(std::fs::File::open("/dev/zero").unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stdin is larger"));
}

#[test]
fn a_bad_config_is_refused_before_any_index_is_built() {
    let kernel = tempfile::tempdir().unwrap();
    std::fs::write(kernel.path().join("a.c"), "int a;\n").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let prose = kernel.path().join("not-a-config");
    std::fs::write(&prose, "this is a README\n").unwrap();
    for (config, want) in [
        (
            PathBuf::from("/dev/null"),
            "/dev/null is not a regular file",
        ),
        (prose, "line 1 is not a CONFIG_NAME=value line"),
    ] {
        for sub in ["index", "tool"] {
            let mut cmd = racejudge();
            cmd.env("RACEJUDGE_CACHE_DIR", cache.path()).arg(sub);
            if sub == "tool" {
                cmd.args(["read-file", "--args", r#"{"File":"a.c"}"#]);
            }
            let out = cmd
                .arg("--kernel")
                .arg(kernel.path())
                .arg("--config")
                .arg(&config)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{sub}: {stderr}");
            assert!(stderr.contains(want), "{sub}: {stderr}");
        }
    }
    let left: Vec<_> = walk(cache.path());
    assert!(left.is_empty(), "the cache was written: {left:?}");
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn a_trajectory_that_cannot_be_written_fails_the_run_after_the_verdict() {
    let Some(kernel) = testkit::kernel_tree_or_skip("hostile_cli") else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let report = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/reports/smc_switch_to_fallback-sock_poll.txt");
    let out = racejudge()
        .env("RACEJUDGE_CACHE_DIR", cache.path())
        .arg("assess")
        .arg(&report)
        .arg("--kernel")
        .arg(&kernel)
        .args(["--no-index", "--trajectory", "/dev/full"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("Verdict:"),
        "the verdict is still shown: {stdout}"
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("trajectory is incomplete"), "{stderr}");
}
