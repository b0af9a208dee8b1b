//! The agent loop driven by a scripted model and small real tools: tool use, concurrency,
//! every corrective path, summarisation, budgets, reconcile, voting, caching and recording.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use agent::{
    Agent, AgentError, CachingModel, Corrective, JsonlSink, Limits, MemorySink, RunContext,
    SinkError, Span, SpanKind, SpanSink, Trajectory, TranscriptEvent, bool_verdict_check,
    outputs_key, transcript_path,
};
use llm::{ChatModel, LlmError, Part, Role};
use serde_json::{Value, json};
use support::*;
use tools::ToolBox;

const REPORT: &str = "BUG: KCSAN: data-race in foo / bar";

fn toolbox() -> (ToolBox, Arc<ReadFile>, Arc<WaitPair>) {
    let read = Arc::new(ReadFile::default());
    let pair = Arc::new(WaitPair::default());
    (
        ToolBox::new().with(read.clone()).with(pair.clone()),
        read,
        pair,
    )
}

fn expert(tools: ToolBox) -> Agent {
    Agent::new("expert", "You judge KCSAN data races.", REPORT, tools)
        .with_outputs(kcsan_schema())
        .with_consistency_check(bool_verdict_check("Benign", "benign", "harmful"))
}

fn memory_ctx(budget: Option<u64>) -> (RunContext, Arc<MemorySink>) {
    let sink = Arc::new(MemorySink::default());
    (
        RunContext::new(Trajectory::new(vec![sink.clone()]), budget).nested(),
        sink,
    )
}

fn correctives(sink: &MemorySink) -> Vec<Corrective> {
    sink.transcript_entries()
        .into_iter()
        .filter_map(|e| match e.event {
            TranscriptEvent::Corrective { reason, .. } => Some(reason),
            _ => None,
        })
        .collect()
}

fn finished(sink: &MemorySink) -> Vec<Span> {
    sink.spans()
        .into_iter()
        .filter(|s| s.finished.is_some())
        .collect()
}

/// Tool results the model received in request `n`'s last message, in order.
fn last_results(model: &ScriptedModel, n: usize) -> Vec<(String, Value, bool)> {
    let req = &model.requests()[n];
    req.messages
        .last()
        .unwrap()
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolResult(r) => Some((r.id.clone(), r.content.clone(), r.is_error)),
            _ => None,
        })
        .collect()
}

fn last_text(model: &ScriptedModel, n: usize) -> String {
    model.requests()[n].messages.last().unwrap().text()
}

// ---------------------------------------------------------------- golden trajectory

fn normalise(line: &str) -> String {
    let mut v: Value = serde_json::from_str(line).unwrap();
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, val) in map.iter_mut() {
                    match k.as_str() {
                        "Started" | "Finished" => *val = json!("<time>"),
                        "duration_ms" => *val = json!(0),
                        _ => walk(val),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    serde_json::to_string(&v).unwrap()
}

fn check_golden(actual_file: &Path, golden_name: &str) {
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(golden_name);
    let actual: String = std::fs::read_to_string(actual_file)
        .unwrap()
        .lines()
        .map(|l| normalise(l) + "\n")
        .collect();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            golden.display()
        )
    });
    for (i, (a, e)) in actual.lines().zip(expected.lines()).enumerate() {
        assert_eq!(
            a,
            e,
            "{golden_name} line {} differs (UPDATE_GOLDEN=1 rewrites)",
            i + 1
        );
    }
    assert_eq!(
        actual.lines().count(),
        expected.lines().count(),
        "{golden_name}: line count differs"
    );
}

#[tokio::test]
async fn multi_turn_tool_use_matches_the_golden_trajectory_and_transcript() {
    let (tb, read, _) = toolbox();
    let agent = expert(tb);
    let model = ScriptedModel::new(vec![
        calls(&[
            ("read-file", json!({"File": "mm/shmem.c"})),
            ("read-file", json!({"File": "mm/filemap.c"})),
        ]),
        calls(&[("read-file", json!({"File": "lib/iov_iter.c"}))]),
        set_results(true),
        text(
            "The race is on file data copied without the inode lock.\n\nFinal Classification: **BENIGN**",
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.jsonl");
    let sink = Arc::new(JsonlSink::create(&path).unwrap());
    let traj = Trajectory::new(vec![sink]);
    let ctx = RunContext::new(traj.clone(), None);
    let flow = traj.start_new(SpanKind::Flow, 0, "assessment-kcsan");
    let outcome = agent.run(model.as_ref(), &ctx.nested()).await.unwrap();
    flow.finish(None);

    assert_eq!(outcome.outputs, Some(json!({"Benign": true})));
    assert!(outcome.reply.ends_with("**BENIGN**"));
    assert_eq!(
        (outcome.llm_calls, outcome.tool_calls, outcome.iterations),
        (4, 4, 4)
    );
    assert_eq!(outcome.usage.input_tokens, 400);
    assert_eq!(read.runs.load(Ordering::SeqCst), 3);
    assert_eq!(model.leftover(), 0);
    // Results come back in call order, matched by id.
    let results = last_results(&model, 1);
    assert_eq!(results[0].0, "c1");
    assert_eq!(results[0].1, json!({"Contents": "contents of mm/shmem.c"}));
    assert_eq!(
        results[1].1,
        json!({"Contents": "contents of mm/filemap.c"})
    );
    // Standing rules were added to the system prompt, set-results was declared.
    let first = &model.requests()[0];
    assert!(first.system.contains("set-results"));
    assert!(first.tools.iter().any(|t| t.name == "set-results"));

    check_golden(&path, "multi_turn.trajectory.jsonl");
    check_golden(&transcript_path(&path), "multi_turn.transcript.jsonl");
}

#[tokio::test]
async fn corrective_paths_match_the_golden_trajectory_and_transcript() {
    let (tb, read, _) = toolbox();
    let agent = expert(tb).with_limits(Limits {
        max_calls_per_turn: 3,
        ..Limits::default()
    });
    let model = ScriptedModel::new(vec![
        calls(&[
            ("read-file", json!({"File": "a.c"})),
            ("read-file", json!({"File": "a.c"})),
            ("no-such-tool", json!({"X": 1})),
            ("read-file", json!({"File": "b.c"})),
        ]),
        calls(&[("set-results", json!({"Benign": "yes"}))]),
        text("benign"),
        set_results(true),
        text("Torn pointer.\n\nFinal Classification: **HARMFUL**"),
        set_results(false),
        text("Torn pointer.\n\nFinal Classification: **HARMFUL**"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("correctives.jsonl");
    let ctx = RunContext::new(
        Trajectory::new(vec![Arc::new(JsonlSink::create(&path).unwrap())]),
        None,
    );
    let outcome = agent.run(model.as_ref(), &ctx.nested()).await.unwrap();
    assert_eq!(outcome.outputs, Some(json!({"Benign": false})));
    assert_eq!(outcome.disagreement.map(|d| d.resolved), Some(true));
    assert_eq!(
        read.runs.load(Ordering::SeqCst),
        1,
        "a.c once; its same-turn twin shares the result"
    );
    assert_eq!(model.leftover(), 0);
    check_golden(&path, "correctives.trajectory.jsonl");
    check_golden(&transcript_path(&path), "correctives.transcript.jsonl");
}

// ---------------------------------------------------------------- tool calls

#[tokio::test]
async fn calls_of_one_turn_run_concurrently_and_return_in_call_order() {
    let (tb, _, pair) = toolbox();
    let agent = expert(tb).with_limits(Limits {
        concurrency: 2,
        ..Limits::default()
    });
    let model = ScriptedModel::new(vec![
        calls(&[
            ("wait-pair", json!({"Id": 1})),
            ("wait-pair", json!({"Id": 2})),
        ]),
        set_results(false),
        text("Final Classification: HARMFUL"),
    ]);
    let (ctx, sink) = memory_ctx(None);
    agent.run(model.as_ref(), &ctx).await.unwrap();
    assert_eq!(pair.max_in_flight(), 2);
    let results = last_results(&model, 1);
    assert_eq!(
        results
            .iter()
            .map(|r| (r.0.as_str(), r.2))
            .collect::<Vec<_>>(),
        vec![("c1", false), ("c2", false)],
        "both calls paired (a sequential loop would fail them): {results:?}"
    );
    let tool_seqs: Vec<u64> = finished(&sink)
        .iter()
        .filter(|s| s.name == "wait-pair")
        .map(|s| s.seq)
        .collect();
    assert_eq!(tool_seqs.len(), 2);
    assert!(tool_seqs[0] < tool_seqs[1]);
}

#[tokio::test]
async fn too_many_calls_run_the_first_n_and_name_the_skipped() {
    let (tb, read, _) = toolbox();
    let agent = expert(tb).with_limits(Limits {
        max_calls_per_turn: 2,
        ..Limits::default()
    });
    let model = ScriptedModel::new(vec![
        calls(&[
            ("read-file", json!({"File": "a.c"})),
            ("read-file", json!({"File": "b.c"})),
            ("read-file", json!({"File": "c.c"})),
        ]),
        set_results(true),
        text("benign"),
    ]);
    let (ctx, sink) = memory_ctx(None);
    agent.run(model.as_ref(), &ctx).await.unwrap();
    assert_eq!(read.runs.load(Ordering::SeqCst), 2);
    let results = last_results(&model, 1);
    assert_eq!(results.len(), 3, "every call gets a result");
    assert!(!results[1].2);
    assert!(results[2].2);
    assert!(results[2].1["error"].as_str().unwrap().contains("skipped"));
    let warning = last_text(&model, 1);
    assert!(
        warning.contains("3 tool calls") && warning.contains("at most 2"),
        "{warning}"
    );
    assert_eq!(correctives(&sink), vec![Corrective::TooManyCalls]);
}

#[tokio::test]
async fn unknown_tools_bad_arguments_and_panics_become_tool_errors() {
    let (tb, _, _) = toolbox();
    let agent = expert(tb).allow_tools(["read-file"]);
    let model = ScriptedModel::new(vec![
        calls(&[
            ("no-such-tool", json!({})),
            ("wait-pair", json!({})),
            ("read-file", json!({})),
            ("read-file", json!("mm/shmem.c")),
            ("read-file", json!({"File": "panic"})),
            (
                "read-file",
                llm::malformed_args("{\"File\": \"mm/", "EOF while parsing a string"),
            ),
        ]),
        set_results(true),
        text("benign"),
    ]);
    let (ctx, sink) = memory_ctx(None);
    let outcome = agent.run(model.as_ref(), &ctx).await.unwrap();
    assert_eq!(outcome.outputs, Some(json!({"Benign": true})));
    let results = last_results(&model, 1);
    assert!(results.iter().all(|r| r.2), "{results:?}");
    let msg = |i: usize| results[i].1["error"].as_str().unwrap().to_string();
    assert!(
        msg(0).contains("\"no-such-tool\" does not exist")
            && msg(0).contains("read-file, set-results")
    );
    assert!(
        msg(1).contains("\"wait-pair\" does not exist"),
        "disallowed tools are hidden: {}",
        msg(1)
    );
    assert!(msg(2).contains("missing argument \"File\""), "{}", msg(2));
    assert!(msg(3).contains("must be a JSON object"), "{}", msg(3));
    assert!(msg(4).contains("panicked"), "{}", msg(4));
    assert!(
        msg(5).contains("not valid JSON (EOF while parsing a string)"),
        "{}",
        msg(5)
    );
    // Only allowed tools are declared.
    let names: Vec<String> = model.requests()[0]
        .tools
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert_eq!(names, vec!["read-file", "set-results"]);
    let errors = finished(&sink)
        .iter()
        .filter(|s| s.kind == SpanKind::Tool && s.error.is_some())
        .count();
    assert_eq!(errors, 6);
}

#[tokio::test]
async fn repeated_identical_calls_get_the_cached_answer_and_a_warning() {
    let (tb, read, _) = toolbox();
    let agent = expert(tb);
    let same = json!({"File": "mm/shmem.c"});
    let model = ScriptedModel::new(vec![
        calls(&[("read-file", same.clone()), ("read-file", same.clone())]),
        calls(&[("read-file", same.clone())]),
        calls(&[("read-file", same.clone())]),
        set_results(true),
        text("benign"),
    ]);
    let (ctx, sink) = memory_ctx(None);
    agent.run(model.as_ref(), &ctx).await.unwrap();
    assert_eq!(read.runs.load(Ordering::SeqCst), 1);
    for n in 1..=3 {
        let results = last_results(&model, n);
        assert!(
            results
                .iter()
                .all(|r| r.1 == json!({"Contents": "contents of mm/shmem.c"})),
            "{results:?}"
        );
        assert!(
            last_text(&model, n).contains("SYSTEM WARNING"),
            "request {n}"
        );
    }
    assert_eq!(correctives(&sink), vec![Corrective::DuplicateCall; 3]);
    let hits = finished(&sink)
        .iter()
        .filter(|s| s.kind == SpanKind::Tool && s.cache_hit)
        .count();
    assert_eq!(
        hits, 3,
        "the same-turn twin and both later turns replay the first result"
    );
}

// ---------------------------------------------------------------- final-reply rules

#[tokio::test]
async fn max_iterations_leads_to_one_answer_now_phase_with_set_results() {
    let (tb, read, _) = toolbox();
    let agent = expert(tb).with_limits(Limits {
        max_iterations: 2,
        ..Limits::default()
    });
    let model = ScriptedModel::new(vec![
        calls(&[("read-file", json!({"File": "a.c"}))]),
        calls(&[("read-file", json!({"File": "b.c"}))]),
        calls(&[
            ("read-file", json!({"File": "c.c"})),
            ("set-results", json!({"Benign": false})),
        ]),
        text("Final verdict: harmful"),
    ]);
    let (ctx, sink) = memory_ctx(None);
    let outcome = agent.run(model.as_ref(), &ctx).await.unwrap();
    assert_eq!(outcome.outputs, Some(json!({"Benign": false})));
    let reqs = model.requests();
    assert_eq!(
        reqs[2]
            .tools
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        vec!["set-results"]
    );
    assert!(last_text(&model, 2).contains("limit on tool-calling turns"));
    let forced: Vec<Option<String>> = reqs.iter().map(|r| r.force_tool.clone()).collect();
    assert_eq!(
        forced,
        [None, None, Some("set-results".to_string()), None],
        "answer-now forces set-results until it is called"
    );
    let results = last_results(&model, 3);
    assert!(results[0].2 && results[0].1["error"].as_str().unwrap().contains("disabled"));
    assert!(!results[1].2);
    assert_eq!(read.runs.load(Ordering::SeqCst), 2);
    assert_eq!(correctives(&sink), vec![Corrective::AnswerNow]);

    // A model that keeps calling tools after the limit ends the run with a clear error.
    let (tb, _, _) = toolbox();
    let agent = expert(tb).with_limits(Limits {
        max_iterations: 1,
        ..Limits::default()
    });
    let steps = (0..5)
        .map(|i| calls(&[("read-file", json!({"File": i.to_string()}))]))
        .collect();
    let model = ScriptedModel::new(steps);
    let (ctx, _) = memory_ctx(None);
    let err = agent.run(model.as_ref(), &ctx).await.unwrap_err();
    assert!(
        matches!(err, AgentError::MaxIterations { limit: 1, .. }),
        "{err}"
    );
    assert_eq!(
        model.requests().len(),
        4,
        "one normal turn and three answer-now turns"
    );
}

#[tokio::test]
async fn forcing_set_results_stops_after_two_invalid_calls() {
    let (tb, _, _) = toolbox();
    let model = ScriptedModel::new(vec![
        text("benign"),
        calls(&[("set-results", json!({"Benign": "yes"}))]),
        calls(&[("set-results", json!({"Benign": "yes"}))]),
        text("I cannot."),
    ]);
    let (ctx, _) = memory_ctx(None);
    let err = expert(tb).run(model.as_ref(), &ctx).await.unwrap_err();
    assert!(matches!(err, AgentError::MissingResults { .. }), "{err}");
    let forced: Vec<bool> = model
        .requests()
        .iter()
        .map(|r| r.force_tool.is_some())
        .collect();
    assert_eq!(
        forced,
        [false, true, true, false],
        "two forced turns, then the model may end the run"
    );
}

#[tokio::test]
async fn missing_set_results_gets_one_reminder() {
    let (tb, _, _) = toolbox();
    let model = ScriptedModel::new(vec![
        text("benign"),
        set_results(true),
        text("Final: benign"),
    ]);
    let (ctx, sink) = memory_ctx(None);
    let outcome = expert(tb).run(model.as_ref(), &ctx).await.unwrap();
    assert_eq!(outcome.reply, "Final: benign");
    assert!(last_text(&model, 1).contains("did not call the set-results tool"));
    assert_eq!(correctives(&sink), vec![Corrective::MissingResults]);
    // The reminder turn names set-results as the tool to call; once called, the choice is free.
    let forced: Vec<Option<String>> = model.requests().into_iter().map(|r| r.force_tool).collect();
    assert_eq!(forced, [None, Some("set-results".to_string()), None]);

    let (tb, _, _) = toolbox();
    let model = ScriptedModel::new(vec![text("benign"), text("still benign")]);
    let (ctx, sink) = memory_ctx(None);
    let err = expert(tb).run(model.as_ref(), &ctx).await.unwrap_err();
    assert!(matches!(err, AgentError::MissingResults { .. }), "{err}");
    let agent_span = finished(&sink)
        .into_iter()
        .find(|s| s.kind == SpanKind::Agent)
        .unwrap();
    assert!(
        agent_span
            .error
            .unwrap()
            .contains("without calling set-results")
    );
}

#[tokio::test]
async fn empty_final_reply_gets_one_reminder() {
    let (tb, _, _) = toolbox();
    let model = ScriptedModel::new(vec![set_results(true), text("  "), text("It is benign.")]);
    let (ctx, sink) = memory_ctx(None);
    let outcome = expert(tb).run(model.as_ref(), &ctx).await.unwrap();
    assert_eq!(outcome.reply, "It is benign.");
    assert_eq!(correctives(&sink), vec![Corrective::EmptyReply]);
    // Roles alternate: the reminder is its own user turn after the empty model turn.
    let roles: Vec<Role> = model.requests()[2]
        .messages
        .iter()
        .map(|m| m.role)
        .collect();
    assert_eq!(
        roles,
        vec![Role::User, Role::Model, Role::User, Role::Model, Role::User]
    );
}

#[tokio::test]
async fn schema_invalid_set_results_goes_back_as_a_tool_error() {
    let (tb, _, _) = toolbox();
    let model = ScriptedModel::new(vec![
        calls(&[("set-results", json!({"Benign": "yes", "Confident": true}))]),
        set_results(true),
        text("benign"),
    ]);
    let (ctx, _) = memory_ctx(None);
    let outcome = expert(tb).run(model.as_ref(), &ctx).await.unwrap();
    let results = last_results(&model, 1);
    let err = results[0].1["error"].as_str().unwrap();
    assert!(results[0].2);
    assert!(
        err.contains("\"Benign\": expected boolean, got string"),
        "{err}"
    );
    assert!(err.contains("unexpected argument \"Confident\""), "{err}");
    assert_eq!(outcome.outputs, Some(json!({"Benign": true})));
}

#[tokio::test]
async fn output_validator_rejects_with_a_tool_error_and_its_rewrite_is_kept() {
    // A harmful verdict needs a detector; a benign one drops it (what a flat schema cannot say).
    let validator: agent::OutputValidator = Arc::new(|mut v: Value| {
        if v["Benign"] == json!(true) {
            v.as_object_mut().unwrap().remove("Detector");
            return Ok(v);
        }
        if v.get("Detector").is_none() {
            return Err("Detector is required when Benign is false".into());
        }
        Ok(v)
    });
    let schema = json!({
        "type": "object",
        "properties": {"Benign": {"type": "boolean"}, "Detector": {"type": "string"}},
        "required": ["Benign"],
        "additionalProperties": false
    });
    let agent = |tb| {
        Agent::new("expert", "You judge KCSAN data races.", REPORT, tb)
            .with_outputs(schema.clone())
            .with_output_validator(validator.clone())
    };

    let (tb, _, _) = toolbox();
    let model = ScriptedModel::new(vec![
        calls(&[("set-results", json!({"Benign": false}))]),
        calls(&[("set-results", json!({"Benign": false, "Detector": "kasan"}))]),
        text("harmful"),
    ]);
    let (ctx, _) = memory_ctx(None);
    let outcome = agent(tb).run(model.as_ref(), &ctx).await.unwrap();
    let results = last_results(&model, 1);
    assert!(results[0].2, "the rejected call is a tool error");
    let err = results[0].1["error"].as_str().unwrap();
    assert!(err.contains("Detector is required"), "{err}");
    assert_eq!(
        outcome.outputs,
        Some(json!({"Benign": false, "Detector": "kasan"}))
    );

    let (tb, _, _) = toolbox();
    let model = ScriptedModel::new(vec![
        calls(&[("set-results", json!({"Benign": true, "Detector": "kasan"}))]),
        text("benign"),
    ]);
    let (ctx, _) = memory_ctx(None);
    let outcome = agent(tb).run(model.as_ref(), &ctx).await.unwrap();
    assert_eq!(outcome.outputs, Some(json!({"Benign": true})), "rewritten");
    let results = last_results(&model, 1);
    assert_eq!(
        results[0].1,
        json!({"Benign": true}),
        "the model sees the kept values"
    );
}

#[tokio::test]
async fn disagreement_between_verdict_and_text_is_reconciled_once_and_recorded() {
    let (tb, _, _) = toolbox();
    let model = ScriptedModel::new(vec![
        set_results(true),
        text("A torn pointer load.\n\nFinal Classification: **HARMFUL**"),
        set_results(false),
        text("Final Classification: **HARMFUL**"),
    ]);
    let (ctx, sink) = memory_ctx(None);
    let outcome = expert(tb).run(model.as_ref(), &ctx).await.unwrap();
    assert_eq!(outcome.outputs, Some(json!({"Benign": false})));
    let d = outcome.disagreement.expect("recorded");
    assert!(d.resolved);
    assert!(d.detail.contains("Benign=true"), "{}", d.detail);
    assert!(last_text(&model, 2).contains("disagree"));
    assert_eq!(correctives(&sink), vec![Corrective::Reconcile]);
    let recorded = sink
        .transcript_entries()
        .iter()
        .filter(|e| matches!(e.event, TranscriptEvent::Disagreement { .. }))
        .count();
    assert_eq!(recorded, 1);

    // A model that sticks to the contradiction is accepted once, flagged unresolved.
    let (tb, _, _) = toolbox();
    let model = ScriptedModel::new(vec![set_results(true), text("harmful"), text("harmful")]);
    let (ctx, _) = memory_ctx(None);
    let outcome = expert(tb).run(model.as_ref(), &ctx).await.unwrap();
    assert!(!outcome.disagreement.unwrap().resolved);
}

// ---------------------------------------------------------------- context and budget

fn assert_calls_paired(req: &llm::ChatRequest) {
    let mut open: Vec<String> = Vec::new();
    for m in &req.messages {
        for p in &m.parts {
            match p {
                Part::ToolCall(c) => open.push(c.id.clone()),
                Part::ToolResult(r) => {
                    let at = open.iter().position(|id| *id == r.id).unwrap_or_else(|| {
                        panic!("result {} without its call in {:#?}", r.id, req.messages)
                    });
                    open.remove(at);
                }
                _ => {}
            }
        }
    }
}

#[tokio::test]
async fn older_turns_are_summarised_when_the_window_is_tiny() {
    let (tb, _, _) = toolbox();
    let mut script: Vec<Step> = (0..6)
        .map(|i| calls(&[("read-file", json!({"File": "big", "N": i}))]))
        .collect();
    script.push(set_results(true));
    script.push(text("benign"));
    let model =
        ScriptedModel::summarising(script, 2_000, "SUMMARY: read-file big, nothing conclusive.");
    let (ctx, sink) = memory_ctx(None);
    let outcome = expert(tb).run(model.as_ref(), &ctx).await.unwrap();
    assert!(outcome.summaries >= 1, "{outcome:?}");
    assert_eq!(model.leftover(), 0);
    let reqs = model.requests();
    let at = reqs
        .iter()
        .position(|r| r.tools.is_empty())
        .expect("a summariser request");
    assert!(reqs[at].system.contains("summary"));
    assert!(reqs[at].messages[0].text().contains("-> call read-file"));
    let after = &reqs[at + 1];
    assert_eq!(after.messages[0].role, Role::User);
    assert!(
        after.messages[0].text().contains(REPORT),
        "the first prompt is kept"
    );
    assert!(after.messages[0].text().contains("SUMMARY: read-file big"));
    assert!(
        after.messages.len() < reqs[at - 1].messages.len(),
        "history shrank"
    );
    assert_eq!(after.messages[1].role, Role::Model, "split at a model turn");
    for r in &reqs {
        assert_calls_paired(r);
        let roles: Vec<Role> = r.messages.iter().map(|m| m.role).collect();
        assert!(
            roles.windows(2).all(|w| w[0] != w[1]),
            "roles alternate: {roles:?}"
        );
        // Every request stays under the window, which is the point of summarising.
        assert!(serde_json::to_vec(r).unwrap().len() / 4 < 2_000);
    }
    let spans = finished(&sink);
    assert!(
        spans
            .iter()
            .any(|s| s.name == "expert-summariser" && s.reply.is_some())
    );
    assert!(correctives(&sink).contains(&Corrective::Summary));
}

#[tokio::test]
async fn input_too_long_triggers_one_summary_then_fails() {
    let too_long = || {
        Step::Fail(LlmError::InputTooLong {
            model: "model-1".into(),
            message: "too many tokens".into(),
        })
    };
    let (tb, _, _) = toolbox();
    let model = ScriptedModel::new(vec![
        calls(&[("read-file", json!({"File": "a.c"}))]),
        calls(&[("read-file", json!({"File": "b.c"}))]),
        too_long(),
        text("SUMMARY: a.c and b.c read."),
        set_results(true),
        text("benign"),
    ]);
    let (ctx, sink) = memory_ctx(None);
    let outcome = expert(tb).run(model.as_ref(), &ctx).await.unwrap();
    assert_eq!(outcome.summaries, 1);
    let reqs = model.requests();
    assert!(
        reqs[4].messages[0]
            .text()
            .contains("SUMMARY: a.c and b.c read.")
    );
    let failed = finished(&sink)
        .into_iter()
        .filter(|s| s.kind == SpanKind::Llm && s.error.is_some())
        .count();
    assert_eq!(failed, 1);

    let (tb, _, _) = toolbox();
    let model = ScriptedModel::new(vec![
        calls(&[("read-file", json!({"File": "a.c"}))]),
        calls(&[("read-file", json!({"File": "b.c"}))]),
        too_long(),
        text("SUMMARY"),
        too_long(),
    ]);
    let (ctx, _) = memory_ctx(None);
    let err = expert(tb).run(model.as_ref(), &ctx).await.unwrap_err();
    assert!(
        matches!(err, AgentError::Llm(LlmError::InputTooLong { .. })),
        "{err}"
    );
    assert_eq!(model.leftover(), 0);
}

#[tokio::test]
async fn token_budget_ends_the_run_with_a_clear_error() {
    let (tb, _, _) = toolbox();
    let model = ScriptedModel::new(vec![
        calls(&[("read-file", json!({"File": "a.c"}))]),
        calls(&[("read-file", json!({"File": "b.c"}))]),
        calls(&[("read-file", json!({"File": "c.c"}))]),
    ]);
    // 115 tokens per turn (100 in, 10 out, 5 thoughts): the second turn crosses 200.
    let (ctx, sink) = memory_ctx(Some(200));
    let err = expert(tb).run(model.as_ref(), &ctx).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "token budget exhausted: 230 tokens used, budget is 200"
    );
    assert_eq!(model.requests().len(), 2);
    let agent_span = finished(&sink)
        .into_iter()
        .find(|s| s.kind == SpanKind::Agent)
        .unwrap();
    assert!(agent_span.error.unwrap().contains("token budget"));

    let (tb, _, _) = toolbox();
    let model = ScriptedModel::new(vec![calls(&[("read-file", json!({"File": "a.c"}))])]);
    let agent = expert(tb).with_limits(Limits {
        token_budget: Some(100),
        ..Limits::default()
    });
    let (ctx, _) = memory_ctx(None);
    let err = agent.run(model.as_ref(), &ctx).await.unwrap_err();
    assert!(
        matches!(
            err,
            AgentError::TokenBudget {
                used: 115,
                limit: 100
            }
        ),
        "{err}"
    );
}

// ---------------------------------------------------------------- candidates, cache, sinks

#[tokio::test]
async fn candidates_vote_and_agreement_is_the_confidence() {
    let (tb, _, _) = toolbox();
    let agent = expert(tb);
    let verdict = |b: bool| {
        ScriptedModel::new(vec![
            set_results(b),
            text(if b { "benign" } else { "harmful" }),
        ]) as Arc<dyn ChatModel>
    };
    let broken: Arc<dyn ChatModel> = ScriptedModel::new(vec![]);
    let models = vec![verdict(false), verdict(true), verdict(true), broken];
    let (ctx, sink) = memory_ctx(None);
    let vote = agent
        .run_candidates(&models, &ctx, &outputs_key)
        .await
        .unwrap();
    assert_eq!(vote.winner.outputs, Some(json!({"Benign": true})));
    assert_eq!(vote.tally.values().copied().collect::<Vec<_>>(), vec![1, 2]);
    assert!((vote.confidence - 0.5).abs() < 1e-9, "{}", vote.confidence);
    assert_eq!(vote.failures.len(), 1);
    let spans = finished(&sink);
    let umbrella = spans
        .iter()
        .find(|s| s.kind == SpanKind::AgentCandidates)
        .unwrap();
    assert_eq!(umbrella.results.as_ref().unwrap()["Confidence"], json!(0.5));
    assert!(
        spans
            .iter()
            .filter(|s| s.kind == SpanKind::Agent)
            .all(|s| s.nesting == umbrella.nesting + 1)
    );
}

#[tokio::test]
async fn cached_rerun_replays_without_calling_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let script = || {
        vec![
            calls(&[("read-file", json!({"File": "a.c"}))]),
            set_results(true),
            text("Final Classification: BENIGN"),
        ]
    };
    let (tb, _, _) = toolbox();
    // Sampling settings are part of the key; an f32 temperature must survive the JSON round trip.
    let agent = expert(tb).with_sampling(Some(0.3), llm::ThinkingLevel::High);
    let first_model = ScriptedModel::new(script());
    let cached = CachingModel::new(first_model.clone(), dir.path());
    let (ctx, _) = memory_ctx(None);
    let first = agent.run(&cached, &ctx).await.unwrap();
    assert_eq!(first_model.requests().len(), 3);

    let empty = ScriptedModel::new(vec![]);
    let cached = CachingModel::new(empty.clone(), dir.path());
    let (ctx, sink) = memory_ctx(None);
    let second = agent.run(&cached, &ctx).await.unwrap();
    assert_eq!(empty.requests().len(), 0, "the rerun made no model calls");
    assert_eq!(second.reply, first.reply);
    assert_eq!(second.outputs, first.outputs);
    let llm: Vec<Span> = finished(&sink)
        .into_iter()
        .filter(|s| s.kind == SpanKind::Llm)
        .collect();
    assert_eq!(llm.len(), 3);
    assert!(llm.iter().all(|s| s.cache_hit));

    // A different candidate salt does not replay another candidate's replies.
    let salted = CachingModel::new(empty.clone(), dir.path()).with_salt("candidate-1");
    let (ctx, _) = memory_ctx(None);
    assert!(agent.run(&salted, &ctx).await.is_err());
    assert_eq!(empty.requests().len(), 1);
    let files: Vec<_> = walk(dir.path());
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(
        files
            .iter()
            .all(|f| f.starts_with(dir.path().join("llm/scripted_model-1")))
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}

struct BrokenSink;

impl SpanSink for BrokenSink {
    fn span(&self, _: &Span) -> Result<(), SinkError> {
        Err(SinkError::Other("dashboard unreachable".into()))
    }
    fn transcript(&self, _: &agent::TranscriptEntry) -> Result<(), SinkError> {
        Err(SinkError::Other("dashboard unreachable".into()))
    }
}

#[tokio::test]
async fn a_failing_sink_does_not_fail_the_run() {
    let (tb, _, _) = toolbox();
    let memory = Arc::new(MemorySink::default());
    let traj = Trajectory::new(vec![Arc::new(BrokenSink), memory.clone()]);
    let model = ScriptedModel::new(vec![set_results(true), text("benign")]);
    let outcome = expert(tb)
        .run(model.as_ref(), &RunContext::new(traj, None))
        .await
        .unwrap();
    assert_eq!(outcome.outputs, Some(json!({"Benign": true})));
    assert_eq!(
        memory.spans().len(),
        8,
        "agent, 2 llm, 1 tool: start and finish each"
    );
}

#[tokio::test]
async fn miswired_agents_are_rejected_before_any_model_call() {
    let (tb, _, _) = toolbox();
    let model = ScriptedModel::new(vec![]);
    let (ctx, _) = memory_ctx(None);
    let err = expert(tb.clone())
        .allow_tools(["grepper"])
        .run(model.as_ref(), &ctx)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("\"grepper\" is not in the tool box"),
        "{err}"
    );
    let err = expert(tb)
        .with_outputs(json!({"type": "array"}))
        .run(model.as_ref(), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::Definition { .. }), "{err}");
    assert!(model.requests().is_empty());
}

#[tokio::test]
async fn unreadable_cache_entries_are_ignored_and_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let (tb, _, _) = toolbox();
    let agent = expert(tb);
    let model = ScriptedModel::new(vec![set_results(true), text("benign")]);
    let cached = CachingModel::new(model.clone(), dir.path());
    let (ctx, _) = memory_ctx(None);
    agent.run(&cached, &ctx).await.unwrap();
    let first_request = model.requests()[0].clone();
    let entry = cached.entry_path(&first_request);
    std::fs::write(&entry, b"{ truncated").unwrap();

    let model = ScriptedModel::new(vec![set_results(true)]);
    let cached = CachingModel::new(model.clone(), dir.path());
    let (ctx, sink) = memory_ctx(None);
    agent.run(&cached, &ctx).await.unwrap();
    assert_eq!(
        model.requests().len(),
        1,
        "only the corrupted turn was asked again"
    );
    let hits: Vec<bool> = finished(&sink)
        .iter()
        .filter(|s| s.kind == SpanKind::Llm)
        .map(|s| s.cache_hit)
        .collect();
    assert_eq!(hits, vec![false, true]);
    let stored: Value = serde_json::from_slice(&std::fs::read(&entry).unwrap()).unwrap();
    assert_eq!(stored["version"], 1, "the entry was rewritten whole");
}

#[tokio::test]
async fn a_failed_summary_is_not_fatal_when_not_forced() {
    let (tb, _, _) = toolbox();
    // Window so small that a summary is wanted before every turn once there is a turn to
    // summarise (from the third request on). The summariser fails, the run completes, and the
    // loop backs off for two turns instead of paying for a summary attempt on every turn.
    let model = ScriptedModel::with_window(
        vec![
            calls(&[("read-file", json!({"File": "big"}))]),
            calls(&[("read-file", json!({"File": "a.c"}))]),
            Step::Fail(LlmError::Provider {
                provider: "scripted".into(),
                message: "503".into(),
            }),
            set_results(true),
            text("benign"),
        ],
        100,
    );
    let (ctx, sink) = memory_ctx(None);
    let outcome = expert(tb).run(model.as_ref(), &ctx).await.unwrap();
    assert_eq!(outcome.summaries, 0);
    let failed: Vec<String> = finished(&sink)
        .into_iter()
        .filter(|s| s.name == "expert-summariser")
        .filter_map(|s| s.error)
        .collect();
    assert_eq!(
        failed.len(),
        1,
        "one failure, then no attempt for two turns: {failed:?}"
    );
    assert_eq!(model.leftover(), 0);
}

#[tokio::test]
async fn oversized_tool_results_are_cut_for_the_model_but_kept_in_the_span() {
    let (tb, _, _) = toolbox();
    let agent = expert(tb).with_limits(Limits {
        compress_at: 100.0,
        ..Limits::default()
    });
    let model = ScriptedModel::with_window(
        vec![
            calls(&[("read-file", json!({"File": "big"}))]),
            set_results(true),
            text("benign"),
        ],
        1_000,
    );
    let (ctx, sink) = memory_ctx(None);
    agent.run(model.as_ref(), &ctx).await.unwrap();
    let result = &last_results(&model, 1)[0];
    assert!(!result.2);
    let cut = result.1["truncated_result"].as_str().unwrap();
    assert_eq!(cut.len(), 1024, "a fifth of the window, at least 1 KiB");
    assert!(
        result.1["note"]
            .as_str()
            .unwrap()
            .contains("narrow the call")
    );
    let span = finished(&sink)
        .into_iter()
        .find(|s| s.name == "read-file")
        .unwrap();
    assert!(span.results.unwrap()["Contents"].as_str().unwrap().len() > 2_000);
}

#[test]
fn run_futures_are_send_so_callers_can_spawn_them() {
    fn assert_send<T: Send>(_: &T) {}
    let (tb, _, _) = toolbox();
    let agent = expert(tb);
    let model = ScriptedModel::new(vec![]);
    let ctx = RunContext::default();
    let run = agent.run(model.as_ref(), &ctx);
    assert_send(&run);
    let models: Vec<Arc<dyn ChatModel>> = vec![model.clone()];
    let vote = agent.run_candidates(&models, &ctx, &outputs_key);
    assert_send(&vote);
}
