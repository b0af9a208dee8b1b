//! Every tool's real results validate against the `outputSchema` the MCP server advertises for it.
//!
//! MCP clients (the official Python and TypeScript SDKs) validate `structuredContent` against the
//! tool's `outputSchema` and reject the whole result when it does not match; until this test
//! existed, four code tools left out fields their schema marked required. The results come from
//! the tools themselves, run on the tools crate's fixture tree (always) and on the real kernel tree
//! and the KCSAN corpus under ../shared (when present, else a visible skip), and are checked with
//! an independent JSON Schema validator, not with our own reading of the schema.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use codeindex::{Index, IndexOptions, NoProgress};
use mcp::{AssessTool, RacejudgeMcp};
use serde_json::{Value, json};
use tools::{ToolBox, ToolOptions};

/// The MCP declarations of `toolbox`, as clients receive them: name → outputSchema.
fn advertised_output_schemas(toolbox: ToolBox) -> BTreeMap<String, Value> {
    let server = RacejudgeMcp::new(toolbox).expect("servable tool names");
    server
        .tools()
        .iter()
        .map(|tool| {
            let wire = serde_json::to_value(tool).expect("tool declaration serialises");
            let name = wire["name"].as_str().expect("name").to_string();
            let schema = wire
                .get("outputSchema")
                .cloned()
                .unwrap_or_else(|| panic!("{name} advertises no outputSchema: {wire}"));
            (name, schema)
        })
        .collect()
}

/// Runs each call, validates each success against its tool's advertised schema, and returns the
/// names of the tools that produced at least one validated result. Every problem is collected so
/// one run shows all of them.
fn validate_calls(
    toolbox: &ToolBox,
    schemas: &BTreeMap<String, Value>,
    calls: &[(&str, Value)],
) -> BTreeSet<String> {
    let validators: BTreeMap<&str, jsonschema::Validator> = schemas
        .iter()
        .map(|(name, schema)| {
            let validator = jsonschema::draft202012::new(schema)
                .unwrap_or_else(|e| panic!("{name}: outputSchema is not a valid schema: {e}"));
            (name.as_str(), validator)
        })
        .collect();
    let mut problems = Vec::new();
    let mut validated = BTreeSet::new();
    for (tool, args) in calls {
        let value = match toolbox.call(tool, args) {
            Ok(value) => value,
            Err(e) => {
                problems.push(format!("{tool} {args}: call failed: {e}"));
                continue;
            }
        };
        // MCP carries only object results as structuredContent (see convert::success).
        if !value.is_object() {
            problems.push(format!("{tool} {args}: result is not an object"));
            continue;
        }
        let Some(validator) = validators.get(tool) else {
            problems.push(format!("{tool}: not declared"));
            continue;
        };
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            validated.insert(tool.to_string());
        } else {
            problems.push(format!(
                "{tool} {args}: result breaks its outputSchema: {}",
                errors.join("; ")
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    validated
}

fn fixture_tree() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/tests/fixtures/tree")
}

const FIXTURE_REPORT: &str = "\
==================================================================
BUG: KCSAN: data-race in sock_set_file / sock_poll

write to 0xffff888100a0c4c0 of 4 bytes by task 311 on cpu 1:
 sock_set_file+0x12/0x30 net/socket.c:30
 arch_dup+0x9/0x10 kernel/trace.c:11

read to 0xffff888100a0c4c0 of 4 bytes by task 312 on cpu 0:
 sock_poll+0x10/0x20 net/socket.c:16

value changed: 0x00000000 -> 0x00000001

Reported by Kernel Concurrency Sanitizer on:
CPU: 0 PID: 312 Comm: fixture Not tainted 6.12.0 #1
==================================================================
";

/// Calls that reach both sides of every optional field: static and not, `__weak` and not,
/// name-only and exact references, nested (Depth > 0) and top-level members, ambiguous names
/// with candidates, cut results with notes.
#[test]
fn every_tool_result_on_the_fixture_tree_matches_its_output_schema() {
    let tree = fixture_tree();
    let (index, _) = Index::build(&tree, &IndexOptions::default(), &NoProgress).expect("index");
    let index = Arc::new(index);
    let toolbox = || {
        let expert = AssessTool::static_expert(&tree, Some(Arc::clone(&index))).expect("expert");
        mcp::with_report_tools(
            tools::toolbox_with(Arc::clone(&index), ToolOptions::default()),
            Some(expert),
        )
    };
    let schemas = advertised_output_schemas(toolbox());
    let calls: Vec<(&str, Value)> = vec![
        ("codesearch-definition-source", json!({"Name": "sock_poll"})),
        ("codesearch-definition-source", json!({"Name": "arch_dup"})),
        (
            "codesearch-definition-source",
            json!({"Name": "clcsock_user"}),
        ),
        (
            "codesearch-definition-source",
            json!({"Name": "t_show", "ContextFile": "net/socket.c"}),
        ),
        (
            "codesearch-definition-source",
            json!({"Name": "struct file"}),
        ),
        ("codesearch-definition-comment", json!({"Name": "file"})),
        (
            "codesearch-definition-comment",
            json!({"Name": "sock_poll"}),
        ),
        (
            "codesearch-find-references",
            json!({"Name": "file::private_data"}),
        ),
        (
            "codesearch-find-references",
            json!({"Name": "socket::state", "IncludeSnippetLines": 1}),
        ),
        ("codesearch-find-references", json!({"Name": "sock_poll"})),
        ("codesearch-struct-layout", json!({"Name": "struct file"})),
        (
            "codesearch-struct-layout",
            json!({"Name": "file", "FieldOffset": 32}),
        ),
        ("codesearch-struct-layout", json!({"Name": "path"})),
        (
            "codesearch-file-index",
            json!({"SourceFile": "kernel/trace.c"}),
        ),
        (
            "codesearch-file-index",
            json!({"SourceFile": "include/linux/fs.h"}),
        ),
        ("codesearch-dir-index", json!({})),
        ("codesearch-dir-index", json!({"Dir": "kernel"})),
        (
            "codesearch-function-at-line",
            json!({"File": "net/socket.c", "Line": 12}),
        ),
        ("read-file", json!({"File": "net/socket.c"})),
        (
            "read-file",
            json!({"File": "include/linux/fs.h", "FirstLine": 10, "LineCount": 5}),
        ),
        ("grepper", json!({"Expression": "private_data"})),
        (
            "grepper",
            json!({"Expression": "WRITE_ONCE", "PathPrefix": "net"}),
        ),
        ("parse-kcsan-report", json!({"Report": FIXTURE_REPORT})),
        ("assess-kcsan", json!({"Report": FIXTURE_REPORT})),
    ];
    let validated = validate_calls(&toolbox(), &schemas, &calls);
    let declared: BTreeSet<String> = schemas.keys().cloned().collect();
    assert_eq!(validated, declared, "every tool is checked");
}

/// The real kernel tree and the real report corpus: the inputs clients will send.
#[test]
fn every_tool_result_on_the_real_tree_matches_its_output_schema() {
    let Some(tree) = testkit::kernel_tree_or_skip("mcp output_schemas real tree") else {
        return;
    };
    let (index, _) = Index::open(
        &tree,
        &IndexOptions::default(),
        &testkit::cache_root(),
        &NoProgress,
    )
    .expect("index the real tree");
    let index = Arc::new(index);
    let toolbox = || {
        let expert = AssessTool::static_expert(&tree, Some(Arc::clone(&index))).expect("expert");
        mcp::with_report_tools(
            tools::toolbox_with(Arc::clone(&index), ToolOptions::default()),
            Some(expert),
        )
    };
    let schemas = advertised_output_schemas(toolbox());
    let mut calls: Vec<(&str, Value)> = vec![
        ("codesearch-definition-source", json!({"Name": "schedule"})),
        (
            "codesearch-definition-source",
            json!({"Name": "arch_cpu_idle"}),
        ),
        (
            "codesearch-definition-source",
            json!({"Name": "show", "ContextFile": "kernel/params.c"}),
        ),
        (
            "codesearch-definition-source",
            json!({"Name": "struct sk_buff"}),
        ),
        ("codesearch-definition-comment", json!({"Name": "kfree"})),
        (
            "codesearch-find-references",
            json!({"Name": "sk_buff::len", "SourceTreePrefix": "net/core"}),
        ),
        (
            "codesearch-find-references",
            json!({"Name": "jiffies", "SourceTreePrefix": "kernel/time", "IncludeSnippetLines": 2}),
        ),
        (
            "codesearch-struct-layout",
            json!({"Name": "struct sk_buff"}),
        ),
        ("codesearch-struct-layout", json!({"Name": "task_struct"})),
        (
            "codesearch-struct-layout",
            json!({"Name": "page", "FieldOffset": 8}),
        ),
        (
            "codesearch-file-index",
            json!({"SourceFile": "kernel/sched/core.c"}),
        ),
        (
            "codesearch-file-index",
            json!({"SourceFile": "include/linux/skbuff.h"}),
        ),
        ("codesearch-dir-index", json!({"Dir": "kernel"})),
        ("codesearch-dir-index", json!({"Dir": "drivers"})),
        (
            "codesearch-function-at-line",
            json!({"File": "kernel/fork.c", "Line": 2000}),
        ),
        (
            "read-file",
            json!({"File": "kernel/fork.c", "FirstLine": 100}),
        ),
        (
            "grepper",
            json!({"Expression": "WRITE_ONCE\\(.*->on_cpu", "PathPrefix": "kernel/sched"}),
        ),
    ];
    // Every report of the corpus through the parser; a sample through the static expert (it
    // reads the source of both racing functions, so all 226 would cost seconds each).
    let corpus = corpus_reports();
    for (i, report) in corpus.iter().enumerate() {
        calls.push(("parse-kcsan-report", json!({"Report": report})));
        if i % 20 == 0 {
            calls.push(("assess-kcsan", json!({"Report": report})));
        }
    }
    let validated = validate_calls(&toolbox(), &schemas, &calls);
    let mut expected: BTreeSet<String> = schemas.keys().cloned().collect();
    if corpus.is_empty() {
        expected.remove("parse-kcsan-report");
        expected.remove("assess-kcsan");
    }
    assert_eq!(validated, expected, "every tool is checked");
}

/// The numbered reports of ../shared/corpus/kcsan, or none (with a visible skip message, or a
/// failure under `RACEJUDGE_REQUIRE_INPUTS=1`).
fn corpus_reports() -> Vec<String> {
    let Some(dir) = testkit::shared_dir()
        .map(|s| s.join("corpus/kcsan"))
        .filter(|d| d.is_dir())
    else {
        testkit::missing(
            "mcp output_schemas corpus",
            "no ../shared/corpus/kcsan next to the repository",
        );
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read corpus dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|s| s.chars().all(|c| c.is_ascii_digit()))
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("read report"))
        .collect()
}
