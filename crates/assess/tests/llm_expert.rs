//! The LLM expert end to end: the real agent loop and real code tools over a real (tiny) index,
//! talking to a fake OpenAI-compatible server on 127.0.0.1 that speaks the documented wire format.

use std::sync::Arc;

use assess::eval::split_labelled;
use assess::expert::Expert;
use assess::llm_expert::LlmExpert;
use fakellm::{FakeServer, openai};
use serde_json::json;

const LABELLED: &str = "BUG: KCSAN: data-race in bump / peek\n\n\
write to 0xffff888100000000 of 8 bytes by task 1 on cpu 0:\n bump+0x10/0x20 kernel/stats.c:5\n\n\
read to 0xffff888100000000 of 8 bytes by task 2 on cpu 1:\n peek+0x8/0x10 kernel/stats.c:10\n\n\
value changed: 0x0000000000000001 -> 0x0000000000000002\n\
LABEL: harmful\nJUSTIFICATION: SECRET-JUSTIFICATION-TEXT\n";

#[test]
fn llm_expert_runs_the_agent_loop_with_tools_and_set_results() {
    let tree = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tree.path().join("kernel")).unwrap();
    std::fs::write(
        tree.path().join("kernel/stats.c"),
        "struct s { unsigned long hits; };\n\nvoid bump(struct s *p)\n{\n\tp->hits++;\n}\n\nunsigned long peek(struct s *p)\n{\n\treturn p->hits;\n}\n",
    )
    .unwrap();
    let (index, _) = codeindex::Index::build(
        tree.path(),
        &codeindex::IndexOptions::default(),
        &codeindex::NoProgress,
    )
    .unwrap();
    let tools = tools::toolbox(Arc::new(index));

    // The server lives on its own runtime; the expert blocks on its private one from this thread.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(FakeServer::start(vec![
        openai::calls_reply(
            None,
            vec![openai::tool_call(
                "call_1",
                "codesearch-definition-source",
                r#"{"Name":"bump"}"#,
            )],
        ),
        openai::calls_reply(
            None,
            vec![openai::tool_call(
                "call_2",
                "set-results",
                r#"{"Benign":true,"Confident":true}"#,
            )],
        ),
        openai::text_reply(
            "## Race summary\n`hits` is a statistic.\n\n## Final classification: **BENIGN**\n",
        ),
    ]));
    let model =
        llm::connect(server.config(llm::Provider::OpenAi, "gpt-test", Some("test-key"))).unwrap();

    let (text, _label) = split_labelled(LABELLED);
    let report = report::parse(&text).reports.remove(0);
    let expert = LlmExpert {
        model,
        tools,
        context: agent::RunContext::default(),
        tree: None,
    };
    let a = expert.assess(&report).unwrap();

    assert!(a.benign);
    assert!(a.confident);
    assert!(a.explanation.contains("**BENIGN**"));
    assert!(a.tokens > 0, "usage is carried into the assessment");
    assert_eq!(
        a.evidence["outputs"],
        json!({"Benign": true, "Confident": true})
    );
    assert!(a.evidence["tool_calls"].as_u64().unwrap() >= 2);
    assert_eq!(server.unused(), 0);

    let requests = server.requests();
    let first = serde_json::to_string(&requests[0].body).unwrap();
    assert!(
        first.contains("bump+0x10/0x20 kernel/stats.c:5"),
        "the report is the prompt: {first}"
    );
    assert!(first.contains("set-results"), "set-results is declared");
    for r in &requests {
        let body = serde_json::to_string(&r.body).unwrap();
        assert!(
            !body.contains("SECRET-JUSTIFICATION-TEXT") && !body.contains("LABEL:"),
            "metadata leaked"
        );
    }
    // The second request carries the definition-source result read from the tree.
    let second = serde_json::to_string(&requests[1].body).unwrap();
    assert!(
        second.contains("p->hits++"),
        "tool result from the real tree: {second}"
    );
}

#[test]
fn provider_failure_is_reported_as_unavailable() {
    let tree = tempfile::tempdir().unwrap();
    std::fs::write(tree.path().join("a.c"), "int x;\n").unwrap();
    let (index, _) = codeindex::Index::build(
        tree.path(),
        &codeindex::IndexOptions::default(),
        &codeindex::NoProgress,
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(FakeServer::start(vec![openai::daily_quota()]));
    let mut config = server.config(llm::Provider::OpenAi, "gpt-test", Some("test-key"));
    config.retry.max_attempts = 1;
    let model = llm::connect(config).unwrap();
    let (text, _) = split_labelled(LABELLED);
    let report = report::parse(&text).reports.remove(0);
    let expert = LlmExpert {
        model,
        tools: tools::toolbox(Arc::new(index)),
        context: agent::RunContext::default(),
        tree: None,
    };
    let err = expert.assess(&report).unwrap_err();
    assert!(
        matches!(err, assess::expert::ExpertError::Unavailable(_)),
        "{err}"
    );
    assert!(
        !err.to_string().contains("test-key"),
        "secrets never reach errors"
    );
}

/// A tree where the racing member, its record, both functions and a lock can all be found.
const STATS_C: &str = "struct s {\n\tint users;\n\tunsigned long hits;\n\tunsigned int flags;\n\tspinlock_t lock;\n};\n\n\
void bump(struct s *p)\n{\n\tp->hits++;\n}\n\n\
unsigned long peek(struct s *p)\n{\n\tunsigned long v;\n\n\tspin_lock(&p->lock);\n\tv = READ_ONCE(p->hits);\n\tspin_unlock(&p->lock);\n\treturn v;\n}\n";

const STATS_REPORT: &str = "BUG: KCSAN: data-race in bump / peek\n\n\
read-write to 0xffff888100000008 of 8 bytes by task 1 on cpu 0:\n bump+0x10/0x20 kernel/stats.c:10\n\n\
read to 0xffff888100000008 of 8 bytes by task 2 on cpu 1:\n peek+0x8/0x10 kernel/stats.c:18\n\n\
value changed: 0x0000000000000001 -> 0x0000000000000002\n";

fn stats_tree() -> (tempfile::TempDir, Arc<assess::source::SourceTree>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("kernel")).unwrap();
    std::fs::write(dir.path().join("kernel/stats.c"), STATS_C).unwrap();
    let (index, _) = codeindex::Index::build(
        dir.path(),
        &codeindex::IndexOptions::default(),
        &codeindex::NoProgress,
    )
    .unwrap();
    let tree = assess::source::SourceTree::new(dir.path(), Some(Arc::new(index))).unwrap();
    (dir, Arc::new(tree))
}

#[test]
fn first_request_carries_the_static_evidence_as_a_starting_point() {
    let (_dir, tree) = stats_tree();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(FakeServer::start(vec![
        openai::calls_reply(
            None,
            vec![openai::tool_call(
                "call_1",
                "set-results",
                r#"{"Benign":true,"Confident":true}"#,
            )],
        ),
        openai::text_reply("## Final classification: **BENIGN**\n"),
    ]));
    let model =
        llm::connect(server.config(llm::Provider::OpenAi, "gpt-test", Some("test-key"))).unwrap();
    let report = report::parse(STATS_REPORT).reports.remove(0);
    let expert = LlmExpert {
        model,
        tools: tree.toolbox().unwrap(),
        context: agent::RunContext::default(),
        tree: Some(tree.clone()),
    };
    let a = expert.assess(&report).unwrap();
    assert!(a.benign);
    assert_eq!(a.failure_detectable_by, None, "benign: no detector");

    let requests = server.requests();
    let first = &requests[0].body;
    // The user message as the model reads it (not JSON-escaped).
    let user = first["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str().map(str::to_string))
        .unwrap_or_else(|| first["messages"].to_string());
    let report_at = user.find("bump+0x10/0x20").expect("the report comes first");
    let start_at = user
        .find(assess::static_expert::starting_point::HEADING)
        .unwrap_or_else(|| panic!("no starting point in:\n{user}"));
    assert!(report_at < start_at, "the report, then the evidence");
    for needle in [
        // Located accesses: file:line and the quoted line.
        "in `bump` at kernel/stats.c:10",
        "`p->hits++;`",
        "in `peek` at kernel/stats.c:18",
        "`v = READ_ONCE(p->hits);`",
        // Locks held and marking.
        "locks held: spin_lock(&p->lock)",
        "locks held: none taken earlier in the function",
        "marked with `READ_ONCE` on the line",
        "read-write of 8 bytes, plain",
        // The member's declaration and its layout (from the struct-layout tool).
        "`hits` of `struct s`, declared at kernel/stats.c:3: `unsigned long hits;`",
        "`hits` at offset 8 bytes, 8 bytes",
        "Value change: `0x1` -> `0x2`",
    ] {
        assert!(user.contains(needle), "missing {needle:?} in:\n{user}");
    }
    // Facts only: the static verdict would anchor the second opinion.
    for absent in ["BENIGN", "HARMFUL", "weight", "lossy-read-modify-write"] {
        assert!(
            !user[start_at..].contains(absent),
            "{absent:?} in the starting point:\n{user}"
        );
    }
    // Later requests keep the first message as it was.
    assert!(
        serde_json::to_string(&requests[1].body)
            .unwrap()
            .contains("p->hits++")
    );
}

#[test]
fn harmful_verdict_carries_the_detector_and_consequence_from_set_results() {
    let (_dir, tree) = stats_tree();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(FakeServer::start(vec![
        // A harmful verdict without a detector goes back to the model as a tool error.
        openai::calls_reply(
            None,
            vec![openai::tool_call(
                "call_1",
                "set-results",
                r#"{"Benign":false,"Confident":true}"#,
            )],
        ),
        openai::calls_reply(
            None,
            vec![openai::tool_call(
                "call_2",
                "set-results",
                r#"{"Benign":false,"Confident":true,"FailureDetectableBy":"user","Consequence":"Lost update: concurrent increments of hits overwrite each other."}"#,
            )],
        ),
        openai::text_reply("## Final classification: **HARMFUL**\n"),
    ]));
    let model =
        llm::connect(server.config(llm::Provider::OpenAi, "gpt-test", Some("test-key"))).unwrap();
    let report = report::parse(STATS_REPORT).reports.remove(0);
    let expert = LlmExpert {
        model,
        tools: tree.toolbox().unwrap(),
        context: agent::RunContext::default(),
        tree: Some(tree),
    };
    let a = expert.assess(&report).unwrap();
    assert!(!a.benign);
    assert_eq!(
        a.failure_detectable_by,
        Some(assess::expert::FailureDetectableBy::User)
    );
    assert_eq!(
        a.consequence.as_deref(),
        Some("Lost update: concurrent increments of hits overwrite each other.")
    );
    let second = serde_json::to_string(&server.requests()[1].body).unwrap();
    assert!(
        second.contains("FailureDetectableBy is required when Benign is false"),
        "the model is told what is missing: {second}"
    );
    let v = serde_json::to_value(&a).unwrap();
    assert_eq!(v["FailureDetectableBy"], "user");
}
