//! `racejudge trajectory show`: tree and totals from a JSONL trajectory, `--json`, bad files.

use std::path::Path;

use serde_json::Value;

use crate::util::racejudge;

/// Start and finish events as a run writes them (start events lack `Finished`).
const TRAJECTORY: &str = r#"{"Seq":0,"Nesting":0,"Type":"flow","Name":"assessment-kcsan","Started":"2026-01-16T01:23:00.000Z"}
{"Seq":1,"Nesting":1,"Type":"agent","Name":"expert","Model":"gemini:flash","Started":"2026-01-16T01:23:00.100Z","Instruction":"judge","Prompt":"report"}
{"Seq":2,"Nesting":2,"Type":"llm","Name":"expert","Model":"gemini:flash","Started":"2026-01-16T01:23:00.200Z"}
{"Seq":2,"Nesting":2,"Type":"llm","Name":"expert","Model":"gemini-3-flash","Started":"2026-01-16T01:23:00.200Z","Finished":"2026-01-16T01:23:02.200Z","InputTokens":4140,"OutputTokens":85,"OutputThoughtsTokens":223}
{"Seq":3,"Nesting":2,"Type":"tool","Name":"codesearch-definition-source","Started":"2026-01-16T01:23:02.300Z","Args":{"ContextFile":"net/socket.c","Name":"sock_poll"}}
{"Seq":4,"Nesting":2,"Type":"tool","Name":"grepper","Started":"2026-01-16T01:23:02.300Z","Args":{"Expression":"clcsock ="}}
{"Seq":3,"Nesting":2,"Type":"tool","Name":"codesearch-definition-source","Started":"2026-01-16T01:23:02.300Z","Finished":"2026-01-16T01:23:02.350Z","Args":{"ContextFile":"net/socket.c","Name":"sock_poll"},"Results":{"SourceCode":"..."}}
{"Seq":4,"Nesting":2,"Type":"tool","Name":"grepper","Started":"2026-01-16T01:23:02.300Z","Finished":"2026-01-16T01:23:02.400Z","Error":"bad expression: unmatched (","Args":{"Expression":"clcsock ="}}
{"Seq":5,"Nesting":2,"Type":"llm","Name":"expert","Model":"gemini-3-flash","Started":"2026-01-16T01:23:02.500Z","Finished":"2026-01-16T01:23:03.500Z","InputTokens":5000,"OutputTokens":100,"CacheHit":true}
{"Seq":1,"Nesting":1,"Type":"agent","Name":"expert","Model":"gemini:flash","Started":"2026-01-16T01:23:00.100Z","Finished":"2026-01-16T01:23:03.600Z","Results":{"Benign":false}}
{"Seq":0,"Nesting":0,"Type":"flow","Name":"assessment-kcsan","Started":"2026-01-16T01:23:00.000Z","Finished":"2026-01-16T01:23:04.000Z"}
"#;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn show_renders_an_indented_tree_with_totals() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "run.jsonl", TRAJECTORY);
    let out = racejudge()
        .args(["trajectory", "show", &file])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains('\x1b'),
        "no colour when not a terminal:\n{text}"
    );
    let lines: Vec<&str> = text.lines().skip(2).collect();
    assert!(
        text.starts_with("Trajectory: 6 spans, started 2026-01-16T01:23:00.000Z\n"),
        "{text}"
    );
    assert!(
        lines[0].starts_with("  0 flow assessment-kcsan [4.000s]"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("    1 agent expert [3.500s] model=gemini:flash"),
        "{text}"
    );
    assert!(lines[1].contains(r#"results: {"Benign":false}"#), "{text}");
    assert_eq!(
        lines[2],
        "      2 llm expert [2.000s] model=gemini-3-flash tokens in=4140 out=85 thoughts=223",
        "{text}"
    );
    assert_eq!(
        lines[3],
        "      3 tool codesearch-definition-source [0.050s]  ContextFile=net/socket.c Name=sock_poll"
    );
    assert!(
        lines[4].contains("grepper [0.100s]  Expression=clcsock =  ERROR: bad expression"),
        "{text}"
    );
    assert!(lines[5].ends_with("(cache hit)"), "{text}");
    assert!(
        text.contains("LLM calls: 2 (1 from cache), 3.000s; tokens in 9140 / out 185 / thoughts 223 / cached 0"),
        "{text}"
    );
    assert!(text.contains("Tool calls: 2 (1 errors), 0.150s"), "{text}");
    assert!(text.contains("Wall time: 4.000s"), "{text}");
}

#[test]
fn show_json_prints_the_span_tree() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "run.jsonl", TRAJECTORY);
    let out = racejudge()
        .args(["trajectory", "show", "--json", &file])
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = &doc["spans"][0];
    assert_eq!(root["Type"], "flow");
    assert_eq!(root["DurationMs"], 4000);
    let agent = &root["Children"][0];
    assert_eq!(agent["Name"], "expert");
    let kids: Vec<u64> = agent["Children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Seq"].as_u64().unwrap())
        .collect();
    assert_eq!(kids, vec![2, 3, 4, 5]);
    assert_eq!(doc["totals"]["llm_calls"], 2);
    assert_eq!(doc["totals"]["input_tokens"], 9140);
}

#[test]
fn unfinished_spans_are_shown_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let first_three: String = TRAJECTORY
        .lines()
        .take(3)
        .map(|l| format!("{l}\n"))
        .collect();
    let file = write(dir.path(), "crashed.jsonl", &first_three);
    let out = racejudge()
        .args(["trajectory", "show", &file])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("2 llm expert [unfinished]"), "{text}");
    assert!(text.contains("(3 spans unfinished)"), "{text}");
}

#[test]
fn missing_or_garbled_files_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.jsonl");
    let out = racejudge()
        .args(["trajectory", "show", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read trajectory") && err.contains("nope.jsonl"),
        "{err}"
    );

    let garbled = write(
        dir.path(),
        "bad.jsonl",
        &format!(
            "{}\n{{\"Seq\": \"x\"}}\n",
            TRAJECTORY.lines().next().unwrap()
        ),
    );
    let out = racejudge()
        .args(["trajectory", "show", &garbled])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.jsonl is not a trajectory: line 2:"),
        "{err}"
    );

    let empty = write(dir.path(), "empty.jsonl", "\n");
    let out = racejudge()
        .args(["trajectory", "show", &empty])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no span events"));
}

#[test]
fn show_reads_what_the_jsonl_sink_writes() {
    use agent::{JsonlSink, Span, SpanKind, Trajectory};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.jsonl");
    let traj = Trajectory::new(vec![Arc::new(JsonlSink::create(&path).unwrap())]);
    let flow = traj.start_new(SpanKind::Flow, 0, "assessment-kcsan");
    let agent = traj.start_new(SpanKind::Agent, 1, "expert");
    let mut llm = traj.start(Span::new(SpanKind::Llm, 2, "expert"));
    llm.span_mut().input_tokens = 1200;
    llm.span_mut().output_tokens = 30;
    llm.finish(None);
    let mut tool = traj.start(Span::new(SpanKind::Tool, 2, "read-file"));
    tool.span_mut().args = Some(serde_json::json!({"File": "mm/shmem.c"}));
    tool.finish(Some("the file does not exist".into()));
    agent.finish(None);
    flow.finish(None);
    assert!(agent::transcript_path(&path).exists());

    let out = racejudge()
        .args(["trajectory", "show", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Trajectory: 4 spans"), "{text}");
    assert!(text.contains("\n      2 llm expert ["), "{text}");
    assert!(text.contains("tokens in=1200 out=30 thoughts=0"), "{text}");
    assert!(
        text.contains("3 tool read-file [")
            && text.contains("File=mm/shmem.c  ERROR: the file does not exist")
    );
    assert!(text.contains("Tool calls: 1 (1 errors)"), "{text}");
}
