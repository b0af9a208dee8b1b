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
