//! `racejudge tool`: `--list --json`, a real call on a fixture tree, and exit code 2 with a clear
//! message for bad JSON, an unknown tool, a path escape and a missing entity.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::util::racejudge;

const SOCKET_C: &str = "// SPDX-License-Identifier: GPL-2.0\n\
struct socket {\n\tint state;\n};\n\n\
/* No kernel lock held - perfect */\n\
static int sock_poll(struct socket *sock)\n{\n\treturn READ_ONCE(sock->state);\n}\n";

/// A tiny kernel tree and a private cache dir.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tree/net")).unwrap();
        std::fs::write(dir.path().join("tree/net/socket.c"), SOCKET_C).unwrap();
        Tree { dir }
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("tree")
    }
    fn run(&self, args: &[&str]) -> Output {
        racejudge()
            .args(args)
            .arg("--kernel")
            .arg(self.root())
            .env("RACEJUDGE_CACHE_DIR", self.dir.path().join("cache"))
            .output()
            .unwrap()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn list_json_describes_every_tool_without_a_kernel() {
    let out = racejudge()
        .args(["tool", "--list", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let specs: Vec<Value> = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let names: Vec<&str> = specs.iter().map(|s| s["name"].as_str().unwrap()).collect();
    for want in [
        "codesearch-dir-index",
        "read-file",
        "codesearch-file-index",
        "codesearch-definition-source",
        "codesearch-definition-comment",
        "codesearch-find-references",
        "codesearch-struct-layout",
        "grepper",
        "codesearch-function-at-line",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for spec in &specs {
        assert!(
            spec["description"].as_str().is_some_and(|d| d.len() > 20),
            "{spec}"
        );
        assert_eq!(spec["input_schema"]["type"], "object", "{spec}");
        assert_eq!(spec["output_schema"]["type"], "object", "{spec}");
    }
}

#[test]
fn a_tool_call_prints_its_json_result() {
    let tree = Tree::new();
    let out = tree.run(&[
        "tool",
        "codesearch-definition-source",
        "--args",
        r#"{"Name":"sock_poll","ContextFile":"net/socket.c"}"#,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["SourceFile"], "net/socket.c");
    let code = result["SourceCode"].as_str().unwrap();
    assert!(
        code.starts_with(
            "   6:\t/* No kernel lock held - perfect */\n   7:\tstatic int sock_poll("
        ),
        "{code}"
    );
}

fn assert_caller_error(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(out));
    let err = stderr(out);
    assert!(err.starts_with("error: ") && err.contains(needle), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn caller_errors_exit_2_with_a_clear_message() {
    let tree = Tree::new();
    assert_caller_error(
        &tree.run(&["tool", "read-file", "--args", "{not json"]),
        "--args is not valid JSON",
    );
    assert_caller_error(
        &tree.run(&["tool", "no-such-tool"]),
        "unknown tool \"no-such-tool\"",
    );
    assert_caller_error(
        &tree.run(&[
            "tool",
            "read-file",
            "--args",
            r#"{"File":"../../etc/passwd"}"#,
        ]),
        "outside the kernel tree",
    );
    assert_caller_error(
        &tree.run(&["tool", "read-file", "--args", r#"{"File":"/etc/passwd"}"#]),
        "outside the kernel tree",
    );
    assert_caller_error(
        &tree.run(&["tool", "read-file", "--args", r#"{"FirstLine":1}"#]),
        "missing field `File`",
    );
    assert_caller_error(
        &tree.run(&[
            "tool",
            "codesearch-definition-source",
            "--args",
            r#"{"Name":"sock_pol"}"#,
        ]),
        "requested entity does not exist: sock_pol",
    );
}

#[test]
fn json_errors_are_also_printed_on_stdout() {
    let tree = Tree::new();
    let out = tree.run(&[
        "tool",
        "read-file",
        "--json",
        "--args",
        r#"{"File":"../x"}"#,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("outside the kernel tree"),
        "{v}"
    );
}

#[test]
fn a_missing_kernel_tree_is_an_environment_error() {
    let out = racejudge()
        .args([
            "tool",
            "read-file",
            "--args",
            r#"{"File":"x.c"}"#,
            "--kernel",
        ])
        .arg(Path::new("/nonexistent/kernel"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("/nonexistent/kernel"));
}

#[test]
fn vmlinux_dwarf_answers_struct_layout_and_a_missing_file_is_bad_input() {
    let tree = Tree::new();
    // A "built kernel": the fixture's socket.c compiled with debug info (gcc emits DWARF 5).
    let object = tree.dir.path().join("socket.o");
    let gcc = std::process::Command::new("gcc")
        .args(["-g", "-c", "-x", "c", "-D", "READ_ONCE(x)=(x)", "-o"])
        .arg(&object)
        .arg(tree.root().join("net/socket.c"))
        .output()
        .unwrap();
    assert!(gcc.status.success(), "{}", stderr(&gcc));
    let object_arg = object.to_str().unwrap();
    let args = r#"{"Name":"socket"}"#;

    let out = tree.run(&[
        "tool",
        "codesearch-struct-layout",
        "--args",
        args,
        "--vmlinux",
        object_arg,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let layout: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(layout["Source"], "dwarf", "{layout}");

    let out = tree.run(&["tool", "codesearch-struct-layout", "--args", args]);
    let layout: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(layout["Source"], "source", "{layout}");

    let missing = tree.dir.path().join("no-such-vmlinux");
    let out = tree.run(&[
        "tool",
        "codesearch-struct-layout",
        "--args",
        args,
        "--vmlinux",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--vmlinux"), "{}", stderr(&out));
}
