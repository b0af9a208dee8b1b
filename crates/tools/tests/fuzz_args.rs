//! Hostile tool arguments: every tool gets arbitrary JSON shaped by its own input schema (right
//! keys with wrong types, huge and negative numbers, escaping paths, NULs, regex bombs) over the
//! fixture tree, with a symlink out of the tree planted in it. No call may panic, hang past the
//! tool deadline, or return a byte of the file outside the tree.
//!
//! The default run is modest; for a long run:
//! `RACEJUDGE_FUZZ_CASES=20000 cargo test -p tools --release --test fuzz_args -- --nocapture`

use std::path::{Path, PathBuf};
use std::sync::Arc;

use codeindex::{Index, IndexOptions, NoProgress};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value, json};

const SECRET: &str = "OUTSIDE-THE-TREE-7f3a";

fn cases() -> u32 {
    std::env::var("RACEJUDGE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Strings a confused or hostile caller sends for a path, a name or a pattern.
fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("net/socket.c".to_string()),
        Just("escape/secret.c".to_string()),
        Just("escape".to_string()),
        Just("../secret.c".to_string()),
        Just("/etc/passwd".to_string()),
        Just("net/../../x".to_string()),
        Just("net\0/socket.c".to_string()),
        Just("sock_poll".to_string()),
        Just("struct socket".to_string()),
        Just("(a+)+$".to_string()),
        Just("[".to_string()),
        Just("\\".to_string()),
        Just(".*".to_string()),
        "[a-z_/.]{0,24}",
        any::<String>(),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop_oneof![
            Just(0i64),
            Just(-1),
            Just(1),
            Just(i64::MAX),
            Just(i64::MIN)
        ]
        .prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        nasty_string().prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec(("[A-Za-z]{1,8}", inner), 0..3)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Arguments for a tool with these schema keys: each key present or not, with any value; now
/// and then not an object at all.
fn args_for(keys: Vec<String>) -> impl Strategy<Value = Value> {
    let n = keys.len();
    prop_oneof![
        9 => prop::collection::vec(prop::option::of(value()), n).prop_map(move |vals| {
            let mut obj = Map::new();
            for (k, v) in keys.iter().zip(vals) {
                if let Some(v) = v {
                    obj.insert(k.clone(), v);
                }
            }
            Value::Object(obj)
        }),
        1 => value(),
    ]
}

#[test]
fn no_tool_panics_hangs_or_leaks_on_hostile_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let root: PathBuf = dir.path().join("tree");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tree"),
        &root,
    );
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret.c"), format!("int x; /* {SECRET} */\n")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();
    let (index, _) = Index::build(&root, &IndexOptions::default(), &NoProgress).unwrap();
    let toolbox = tools::toolbox(Arc::new(index));
    let started = std::time::Instant::now();
    let calls = std::sync::atomic::AtomicU64::new(0);
    for spec in toolbox.specs() {
        let keys: Vec<String> = spec.input_schema["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let mut runner = TestRunner::new(Config {
            cases: cases(),
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&args_for(keys), |args| {
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match toolbox.call(spec.name, &args) {
                    Ok(out) => {
                        prop_assert!(out.is_object(), "{} {args}: {out}", spec.name);
                        prop_assert!(
                            !out.to_string().contains(SECRET),
                            "{} {args} leaked",
                            spec.name
                        );
                    }
                    Err(err) => {
                        let message = err.to_string();
                        prop_assert!(!message.is_empty());
                        prop_assert!(!message.contains(SECRET), "{} {args} leaked", spec.name);
                        prop_assert!(
                            !matches!(err, tools::ToolError::TimedOut { .. }),
                            "{} {args}: {message}",
                            spec.name
                        );
                    }
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{}: {e}", spec.name));
    }
    eprintln!(
        "fuzz: {} hostile tool calls over {} tools in {:?}",
        calls.into_inner(),
        toolbox.specs().len(),
        started.elapsed()
    );
}
