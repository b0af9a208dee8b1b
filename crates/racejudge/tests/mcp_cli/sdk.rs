//! `racejudge mcp` driven by the official MCP Python SDK (PyPI `mcp`, pinned in
//! scripts/mcp-sdk-venv.sh), over stdio and streamable HTTP: a real third-party client, not our
//! reading of the spec. The SDK validates every structured result against the tool's
//! `outputSchema` and raises when it does not match, so "accepted" below is its verdict.
//!
//! The SDK lives in a virtual environment made by scripts/mcp-sdk-venv.sh (`.ci/run` runs it);
//! `RACEJUDGE_MCP_SDK_PYTHON` names another interpreter. Without one the tests skip with a
//! message, or fail when `RACEJUDGE_REQUIRE_INPUTS=1` (as in CI).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{HANG_GUARD, SECRET, fixture, interrupt, sample_call, spawn_http, wait_exit};

/// The pinned SDK version (scripts/mcp-sdk-venv.sh installs it).
const SDK_VERSION: &str = "2.3.0";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's python, or `None` after the skip message (or a panic under REQUIRE_INPUTS).
fn sdk_python(test: &str) -> Option<PathBuf> {
    let python = std::env::var_os("RACEJUDGE_MCP_SDK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/mcp-sdk-venv/bin/python"));
    if python.is_file() {
        return Some(python);
    }
    testkit::missing(
        test,
        &format!(
            "no MCP Python SDK at {} (run scripts/mcp-sdk-venv.sh, or set RACEJUDGE_MCP_SDK_PYTHON)",
            python.display()
        ),
    );
    None
}

/// The calls every transport makes: each tool's sample call, then path escapes (the Inspector's
/// test makes them too).
pub(super) fn calls() -> Vec<Value> {
    let tools = [
        "codesearch-dir-index",
        "read-file",
        "codesearch-file-index",
        "codesearch-definition-source",
        "codesearch-definition-comment",
        "codesearch-find-references",
        "codesearch-struct-layout",
        "grepper",
        "codesearch-function-at-line",
        "assess-kcsan",
        "parse-kcsan-report",
    ];
    let mut calls: Vec<Value> = tools
        .iter()
        .map(|tool| {
            let (arguments, _) = sample_call(tool).expect("sample call");
            json!({"tool": tool, "arguments": arguments})
        })
        .collect();
    // Variants whose results leave optional fields out (false, zero, absent), the shapes the
    // SDK rejected before issue 14: a static and a non-static definition, nested members.
    calls.push(
        json!({"tool": "codesearch-definition-source", "arguments": {"Name": "fixture_counter"}}),
    );
    calls.push(json!({"tool": "codesearch-find-references", "arguments": {"Name": "fixture_counter::hits"}}));
    calls.push(json!({"tool": "codesearch-file-index", "arguments": {"SourceFile": "include/linux/fixture.h"}}));
    for escape in [
        json!({"tool": "read-file", "arguments": {"File": "../secret.txt"}}),
        json!({"tool": "read-file", "arguments": {"File": "kernel/escape.c"}}),
        json!({"tool": "read-file", "arguments": {"File": "/etc/passwd"}}),
        json!({"tool": "codesearch-file-index", "arguments": {"SourceFile": "../secret.txt"}}),
    ] {
        calls.push(escape);
    }
    calls
}

/// Runs the driver script and returns its report.
fn drive(python: &Path, args: &[&str], envs: &[(&str, &Path)]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_cli/sdk_client.py");
    let calls = Value::Array(calls()).to_string();
    let mut command = Command::new(python);
    command
        .arg(&script)
        .args(args)
        .arg(&calls)
        .env("RACEJUDGE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("spawn the SDK driver");
    let deadline = Instant::now() + HANG_GUARD;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the SDK driver did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("driver output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "SDK driver failed ({}):\n{stderr}",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("driver report is not JSON ({e}):\n{stdout}\n{stderr}"))
}

/// What both transports must show: the SDK accepts every result, successes are successes,
/// escapes are refused without revealing the file outside the tree.
fn check(report: &Value) {
    assert_eq!(report["sdk_version"], SDK_VERSION, "{report}");
    assert_eq!(report["server"], "racejudge", "{report}");
    let tools = report["tools"].as_array().expect("tools");
    assert_eq!(tools.len(), 11, "{report}");
    for tool in tools {
        assert_eq!(tool["has_output_schema"], true, "{tool}");
    }
    let calls = report["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), calls_len(), "{report}");
    let mut escapes = 0;
    for call in calls {
        assert_eq!(
            call["accepted"], true,
            "the SDK rejected {} {}: {}",
            call["tool"], call["arguments"], call["exception"]
        );
        let text = call["text"].as_str().unwrap_or("");
        assert!(!text.contains(SECRET), "leaked: {call}");
        let escape = call["arguments"].as_object().is_some_and(|a| {
            a.values().any(|v| {
                v.as_str()
                    .is_some_and(|s| s.contains("..") || s.starts_with('/') || s.contains("escape"))
            })
        });
        if escape {
            escapes += 1;
            assert_eq!(call["is_error"], true, "escape not refused: {call}");
        } else {
            assert_eq!(call["is_error"], false, "{call}");
            assert!(
                call["structured"].is_object(),
                "no structured content: {call}"
            );
            let tool = call["tool"].as_str().expect("tool");
            if let Some((args, needle)) = sample_call(tool)
                && args == call["arguments"]
            {
                assert!(text.contains(needle), "{tool}: {needle:?} not in {text}");
            }
        }
    }
    assert_eq!(escapes, 4, "{report}");
}

fn calls_len() -> usize {
    calls().len()
}

#[test]
fn the_official_python_sdk_accepts_every_result_over_stdio() {
    let Some(python) = sdk_python("mcp_cli sdk stdio") else {
        return;
    };
    let fx = fixture();
    let binary = env!("CARGO_BIN_EXE_racejudge");
    let tree = fx.tree.to_str().expect("utf-8 path");
    let report = drive(
        &python,
        &["stdio", binary, tree],
        &[("RACEJUDGE_CACHE_DIR", &fx.cache)],
    );
    check(&report);
}

#[test]
fn the_official_python_sdk_accepts_every_result_over_http() {
    let Some(python) = sdk_python("mcp_cli sdk http") else {
        return;
    };
    let fx = fixture();
    let (mut child, addr, stderr) = spawn_http(&fx);
    let url = format!("http://{addr}/mcp");
    let report = drive(&python, &["http", &url], &[]);
    check(&report);
    interrupt(&child);
    let status = wait_exit(&mut child);
    let log: Vec<String> = stderr.try_iter().collect();
    assert!(
        status.success(),
        "exit {status}; stderr:\n{}",
        log.join("\n")
    );
}
