//! The agent loop end to end through the real provider HTTP clients (`llm::connect`) against
//! scripted fake servers on 127.0.0.1 (crate `fakellm`), one scenario per provider:
//! multi-turn tool use with parallel calls, thoughts and signatures echoed, a 429 with a
//! server-requested delay, a 500, a malformed function call, input overflow (summarise and
//! continue), daily-quota fallback, and a turn where every model fails.
//!
//! The fake servers speak each provider's documented wire format, from: the Gemini API
//! reference for `models.generateContent` plus its function-calling, thinking /
//! thought-signature and error (`google.rpc.Status`, `RetryInfo`, `QuotaFailure`) guides; the
//! OpenAI API reference "Create chat completion" plus its error-codes and rate-limit guides; the
//! Anthropic API reference "Messages" plus its tool-use, extended-thinking and errors guides.
//!
//! Every run writes its trajectory and transcript through `JsonlSink`; both are compared with
//! goldens under `tests/golden/e2e/` after normalising times, durations and the server's port
//! (`UPDATE_GOLDEN=1` rewrites them). Independently of the goldens, every run is checked for the
//! transcript's completeness: each HTTP request the server received appears as an exchange with
//! that exact body and the exact scripted response, linked to an `llm` span, and no API key
//! appears in either file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agent::{
    Agent, AgentError, AgentOutcome, Corrective, JsonlSink, MemorySink, RunContext, Span, SpanKind,
    SpanSink, Trajectory, TranscriptEntry, TranscriptEvent, bool_verdict_check, transcript_path,
};
use fakellm::{FakeServer, Recorded, Reply, anthropic, gemini, openai};
use llm::{ChatModel, LlmError, Provider, RetryPolicy, ThinkingLevel};
use serde_json::{Value, json};
use tools::{Tool, ToolBox, ToolError, ToolSpec};

const REPORT: &str = "BUG: KCSAN: data-race in smc_switch_to_fallback / sock_poll\n\n\
write to 0xffff88811c1a3f18 of 8 bytes by task 1 on cpu 0:\n smc_switch_to_fallback+0x4ea/0x7e0 net/smc/af_smc.c:933\n\n\
read to 0xffff88811c1a3f18 of 8 bytes by task 2 on cpu 1:\n sock_poll+0x2b/0x1d0 net/socket.c:1427";

const HARMFUL_REPLY: &str = "smc_switch_to_fallback() rewrites file->private_data while sock_poll() \
reads it without synchronisation, so poll can call the SMC ops on the TCP socket.\n\n\
Final Classification: **HARMFUL**";

// ------------------------------------------------------------------------- in-test tools

/// A two-file source tree the tools read from: enough for the conversation to be about code.
const FILES: &[(&str, &str)] = &[
    (
        "net/socket.c",
        "static __poll_t sock_poll(struct file *file, poll_table *wait)\n{\n\tstruct socket *sock = file->private_data;\n\treturn sock->ops->poll(file, sock, wait);\n}\n",
    ),
    (
        "net/smc/af_smc.c",
        "static int smc_switch_to_fallback(struct smc_sock *smc, int reason_code)\n{\n\tsmc->use_fallback = true;\n\tsmc->clcsock->file->private_data = smc->clcsock;\n\treturn 0;\n}\n",
    ),
];

fn string_arg<'a>(tool: &str, args: &'a Value, key: &str) -> Result<&'a str, ToolError> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| ToolError::BadArguments {
            tool: tool.into(),
            message: format!("missing string argument {key:?}"),
        })
}

/// `read-file {File}` → `{Contents}`.
struct ReadFile;

impl Tool for ReadFile {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "read-file",
            description: "Reads a source file of the kernel tree.",
            input_schema: json!({"type": "object", "properties": {"File": {"type": "string"}}, "required": ["File"]}),
            output_schema: json!({"type": "object", "properties": {"Contents": {"type": "string"}}}),
        }
    }

    fn execute(&self, args: &Value) -> Result<Value, ToolError> {
        let file = string_arg("read-file", args, "File")?;
        FILES
            .iter()
            .find(|(path, _)| *path == file)
            .map(|(_, text)| json!({"Contents": text}))
            .ok_or_else(|| ToolError::NotFound(format!("no file {file:?} in the tree")))
    }
}

/// `grepper {Expression}` → `{Output}`: `file:line: text` for lines containing the expression.
struct Grepper;

impl Tool for Grepper {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "grepper",
            description: "Finds lines containing a string in the kernel tree.",
            input_schema: json!({"type": "object", "properties": {"Expression": {"type": "string"}}, "required": ["Expression"]}),
            output_schema: json!({"type": "object", "properties": {"Output": {"type": "string"}}}),
        }
    }

    fn execute(&self, args: &Value) -> Result<Value, ToolError> {
        let needle = string_arg("grepper", args, "Expression")?;
        let mut out = String::new();
        for (path, text) in FILES {
            for (i, line) in text.lines().enumerate() {
                if line.contains(needle) {
                    out.push_str(&format!("{path}:{}: {}\n", i + 1, line.trim()));
                }
            }
        }
        Ok(json!({"Output": out}))
    }
}

fn expert() -> Agent {
    expert_with_prompt(REPORT)
}

fn expert_with_prompt(prompt: &str) -> Agent {
    let tools = ToolBox::new()
        .with(Arc::new(ReadFile))
        .with(Arc::new(Grepper));
    Agent::new(
        "expert",
        "You judge whether KCSAN data races are benign.",
        prompt,
        tools,
    )
    .with_outputs(json!({
        "type": "object",
        "properties": {
            "Benign": {"type": "boolean", "description": "If the data race is benign."},
            "Confident": {"type": "boolean", "description": "If you are confident in the verdict."}
        },
        "required": ["Benign", "Confident"],
        "additionalProperties": false
    }))
    .with_consistency_check(bool_verdict_check("Benign", "benign", "harmful"))
    .with_sampling(Some(0.3), ThinkingLevel::High)
}

// ------------------------------------------------------------------------- providers

/// What differs between providers in these scenarios: key, reply shapes, how a request names
/// its model.
#[derive(Clone, Copy)]
struct Kit(Provider);

const KITS: [Kit; 3] = [
    Kit(Provider::Gemini),
    Kit(Provider::OpenAi),
    Kit(Provider::Anthropic),
];

impl Kit {
    fn name(self) -> &'static str {
        self.0.as_str()
    }

    fn key(self) -> &'static str {
        match self.0 {
            Provider::Gemini => "AIza-e2e-test-key-0123456789",
            Provider::OpenAi => "sk-e2e-test-key-0123456789",
            Provider::Anthropic => "sk-ant-e2e-test-key-0123456789",
        }
    }

    /// A tool-calling turn; call ids are unique per `turn`.
    fn calls(self, turn: usize, calls: &[(&str, Value)]) -> Reply {
        match self.0 {
            Provider::Gemini => gemini::reply(
                calls
                    .iter()
                    .map(|(n, a)| gemini::call(n, a.clone()))
                    .collect(),
                "STOP",
            ),
            Provider::OpenAi => openai::calls_reply(
                None,
                calls
                    .iter()
                    .enumerate()
                    .map(|(i, (n, a))| {
                        openai::tool_call(&format!("call_{turn}_{i}"), n, &a.to_string())
                    })
                    .collect(),
            ),
            Provider::Anthropic => anthropic::reply(
                calls
                    .iter()
                    .enumerate()
                    .map(|(i, (n, a))| {
                        anthropic::tool_use(&format!("toolu_{turn}_{i}"), n, a.clone())
                    })
                    .collect(),
                "tool_use",
            ),
        }
    }

    fn text(self, t: &str) -> Reply {
        match self.0 {
            Provider::Gemini => gemini::text_reply(t),
            Provider::OpenAi => openai::text_reply(t),
            Provider::Anthropic => anthropic::text_reply(t),
        }
    }

    fn server_error(self) -> Reply {
        match self.0 {
            Provider::Gemini => gemini::server_error(),
            Provider::OpenAi => openai::server_error(),
            Provider::Anthropic => anthropic::server_error(),
        }
    }

    fn overflow(self) -> Reply {
        match self.0 {
            Provider::Gemini => gemini::overflow(),
            Provider::OpenAi => openai::overflow(),
            Provider::Anthropic => anthropic::overflow(),
        }
    }

    fn daily_quota(self) -> Reply {
        match self.0 {
            Provider::Gemini => gemini::daily_quota(),
            Provider::OpenAi => openai::daily_quota(),
            Provider::Anthropic => anthropic::daily_quota(),
        }
    }

    /// The model a request was addressed to (Gemini: in the path; others: in the body).
    fn model_of(self, r: &Recorded) -> String {
        match self.0 {
            Provider::Gemini => r
                .path
                .trim_start_matches("/v1beta/models/")
                .trim_end_matches(":generateContent")
                .to_string(),
            Provider::OpenAi | Provider::Anthropic => {
                r.body["model"].as_str().unwrap_or_default().to_string()
            }
        }
    }

    /// The header carrying the key, as the server must receive it.
    fn auth_header(self) -> (&'static str, String) {
        match self.0 {
            Provider::Gemini => ("x-goog-api-key", self.key().to_string()),
            Provider::OpenAi => ("authorization", format!("Bearer {}", self.key())),
            Provider::Anthropic => ("x-api-key", self.key().to_string()),
        }
    }

    /// The real HTTP client for this provider, aimed at `server`, with a retry policy whose own
    /// backoff is zero: only a server-requested delay makes the client wait, and the recorded
    /// outcomes ("retry after 0.000s") are deterministic for the goldens.
    fn connect(self, server: &FakeServer, models: &str) -> Arc<dyn ChatModel> {
        let mut cfg = server.config(self.0, models, Some(self.key()));
        cfg.retry = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::ZERO,
            max_backoff: Duration::ZERO,
            max_server_delay: Duration::from_secs(5),
        };
        llm::connect(cfg).expect("valid test config")
    }
}

// ------------------------------------------------------------------------- running and checking

struct Recording {
    outcome: Result<AgentOutcome, AgentError>,
    /// Final state of every span, by seq.
    spans: Vec<Span>,
    transcript: Vec<TranscriptEntry>,
    trajectory_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Recording {
    fn llm_spans(&self) -> Vec<&Span> {
        self.spans
            .iter()
            .filter(|s| s.kind == SpanKind::Llm)
            .collect()
    }

    fn tool_spans(&self) -> Vec<&Span> {
        self.spans
            .iter()
            .filter(|s| s.kind == SpanKind::Tool)
            .collect()
    }

    fn exchanges(&self) -> Vec<(u64, llm::Exchange)> {
        self.transcript
            .iter()
            .filter_map(|e| match &e.event {
                TranscriptEvent::Exchange { exchange } => Some((e.span_seq, exchange.clone())),
                _ => None,
            })
            .collect()
    }

    fn correctives(&self) -> Vec<Corrective> {
        self.transcript
            .iter()
            .filter_map(|e| match &e.event {
                TranscriptEvent::Corrective { reason, .. } => Some(*reason),
                _ => None,
            })
            .collect()
    }
}

/// Runs `agent` under a flow span, recording to a JSONL sink and a memory sink.
async fn record(agent: &Agent, model: &dyn ChatModel) -> Recording {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.jsonl");
    let jsonl: Arc<dyn SpanSink> = Arc::new(JsonlSink::create(&path).unwrap());
    let memory = Arc::new(MemorySink::default());
    let traj = Trajectory::new(vec![jsonl, memory.clone()]);
    let ctx = RunContext::new(traj.clone(), None);
    let flow = traj.start_new(SpanKind::Flow, 0, "assessment-kcsan");
    let outcome = agent.run(model, &ctx.nested()).await;
    flow.finish(outcome.as_ref().err().map(|e| e.to_string()));
    let mut spans: Vec<Span> = Vec::new();
    for span in memory.spans() {
        match spans.iter_mut().find(|s| s.seq == span.seq) {
            Some(slot) => *slot = span,
            None => spans.push(span),
        }
    }
    spans.sort_by_key(|s| s.seq);
    Recording {
        outcome,
        spans,
        transcript: memory.transcript_entries(),
        trajectory_file: path,
        _dir: dir,
    }
}

/// The transcript is complete and linked: every request the server received is recorded, in
/// order, with the exact body sent and the exact scripted answer; every entry belongs to an
/// `llm` span; the key never appears in either file while the server did receive it.
fn check_transcript(kit: Kit, rec: &Recording, server: &FakeServer, script: &[Reply]) {
    let llm_seqs: Vec<u64> = rec.llm_spans().iter().map(|s| s.seq).collect();
    for entry in &rec.transcript {
        assert!(
            llm_seqs.contains(&entry.span_seq),
            "transcript entry not linked to an llm span: {entry:?}"
        );
    }
    let exchanges = rec.exchanges();
    let received = server.requests();
    assert_eq!(
        exchanges.len(),
        received.len(),
        "every HTTP attempt must reach the transcript"
    );
    for (i, ((_, exchange), request)) in exchanges.iter().zip(&received).enumerate() {
        assert_eq!(exchange.request_body, request.body, "request body {i}");
        assert_eq!(
            exchange.response_body.as_ref(),
            Some(&script[i].body),
            "response body {i}"
        );
        assert_eq!(exchange.status, Some(script[i].status), "status {i}");
        assert_eq!(
            exchange.model,
            kit.model_of(request),
            "model of attempt {i}"
        );
        let (header, value) = kit.auth_header();
        assert_eq!(request.header(header), Some(value.as_str()));
    }
    for file in [
        rec.trajectory_file.clone(),
        transcript_path(&rec.trajectory_file),
    ] {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains(kit.key()),
            "{} leaks the key",
            file.display()
        );
    }
    assert_eq!(server.unused(), 0, "the scenario stopped early");
}

/// Times, durations and the server's ephemeral port vary between runs; nothing else may.
fn normalise(line: &str, base: &str) -> String {
    let line = line.replace(base, "http://fake-llm");
    let mut v: Value = serde_json::from_str(&line).unwrap();
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

fn check_golden(actual_file: &Path, base: &str, golden_name: &str) {
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/e2e")
        .join(golden_name);
    let actual: String = std::fs::read_to_string(actual_file)
        .unwrap()
        .lines()
        .map(|l| normalise(l, base) + "\n")
        .collect();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
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

fn check_goldens(rec: &Recording, server: &FakeServer, name: &str) {
    check_golden(
        &rec.trajectory_file,
        &server.base,
        &format!("{name}.trajectory.jsonl"),
    );
    check_golden(
        &transcript_path(&rec.trajectory_file),
        &server.base,
        &format!("{name}.transcript.jsonl"),
    );
}

/// Starts a server on `script` and runs the expert against `models` on it.
async fn scenario(kit: Kit, models: &str, script: &[Reply]) -> (Recording, FakeServer) {
    let server = FakeServer::start(script.to_vec()).await;
    let model = kit.connect(&server, models);
    let rec = record(&expert(), model.as_ref()).await;
    check_transcript(kit, &rec, &server, script);
    (rec, server)
}

fn harmful_outputs() -> Value {
    json!({"Benign": false, "Confident": true})
}

/// Shape shared by every successful conversation: one flow, one agent, then llm/tool spans.
fn assert_conversation_shape(rec: &Recording, expected: &[(SpanKind, &str)]) {
    let shape: Vec<(SpanKind, String, u32)> = rec
        .spans
        .iter()
        .map(|s| (s.kind, s.name.clone(), s.nesting))
        .collect();
    let mut want = vec![
        (SpanKind::Flow, "assessment-kcsan".to_string(), 0),
        (SpanKind::Agent, "expert".to_string(), 1),
    ];
    want.extend(expected.iter().map(|(k, n)| (*k, n.to_string(), 2)));
    assert_eq!(shape, want);
}

// ------------------------------------------------------------------------- conversations

/// 429 with `RetryInfo` → a turn with a thought and three parallel calls (first one signed) →
/// 500 → a signed call → `MALFORMED_FUNCTION_CALL` (retried by the adapter) → set-results →
/// final reply with a signed text part.
#[tokio::test]
async fn gemini_conversation() {
    let kit = Kit(Provider::Gemini);
    let script = vec![
        gemini::rate_limited("0.050s"),
        gemini::reply(
            vec![
                gemini::thought("Both sides touch file->private_data; read them."),
                gemini::signed(
                    gemini::call("read-file", json!({"File": "net/socket.c"})),
                    "c2lnLTE=",
                ),
                gemini::call("read-file", json!({"File": "net/smc/af_smc.c"})),
                gemini::call("grepper", json!({"Expression": "private_data ="})),
            ],
            "STOP",
        ),
        gemini::server_error(),
        gemini::reply(
            vec![gemini::signed(
                gemini::call("grepper", json!({"Expression": "sock->ops"})),
                "c2lnLTI=",
            )],
            "STOP",
        ),
        gemini::malformed_function_call(),
        gemini::reply(vec![gemini::call("set-results", harmful_outputs())], "STOP"),
        gemini::reply(
            vec![gemini::signed(gemini::text(HARMFUL_REPLY), "c2lnLTM=")],
            "STOP",
        ),
    ];
    let (rec, server) = scenario(kit, "gemini-e2e", &script).await;
    let outcome = rec.outcome.as_ref().expect("the run succeeds");
    assert_eq!(outcome.outputs, Some(harmful_outputs()));
    assert_eq!(outcome.reply, HARMFUL_REPLY);
    assert_eq!((outcome.llm_calls, outcome.tool_calls), (4, 5));

    let reqs = server.requests();
    assert_eq!(reqs.len(), 7);
    assert!(
        fakellm::gap(&reqs, 0) >= Duration::from_millis(50),
        "the server's retryDelay must be honoured: {:?}",
        fakellm::gap(&reqs, 0)
    );
    // Retries resend the same body.
    assert_eq!(reqs[0].body, reqs[1].body);
    assert_eq!(reqs[2].body, reqs[3].body);
    assert_eq!(reqs[4].body, reqs[5].body);
    // The thought and the signature come back on the same parts; the three parallel results
    // come back in call order, in one user turn.
    let contents = &reqs[2].body["contents"];
    assert_eq!(
        contents[1]["parts"][0],
        json!({"text": "Both sides touch file->private_data; read them.", "thought": true})
    );
    assert_eq!(contents[1]["parts"][1]["thoughtSignature"], "c2lnLTE=");
    assert!(contents[1]["parts"][2].get("thoughtSignature").is_none());
    let responses = contents[2]["parts"].as_array().unwrap();
    let names: Vec<&str> = responses
        .iter()
        .map(|p| p["functionResponse"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["read-file", "read-file", "grepper"]);
    assert!(
        responses[0]["functionResponse"]["response"]["Contents"]
            .as_str()
            .unwrap()
            .contains("file->private_data")
    );
    assert!(
        responses[2]["functionResponse"]["response"]["Output"]
            .as_str()
            .unwrap()
            .contains("net/smc/af_smc.c:4:")
    );
    assert_eq!(
        reqs[4].body["contents"][3]["parts"][0]["thoughtSignature"],
        "c2lnLTI="
    );
    // The malformed turn was retried by the adapter, so the loop never saw it.
    let outcomes: Vec<String> = rec
        .exchanges()
        .into_iter()
        .map(|(_, e)| e.outcome)
        .collect();
    assert!(
        outcomes[0].starts_with("retry after 0.050s"),
        "{outcomes:?}"
    );
    assert!(outcomes[2].starts_with("retry after"), "{outcomes:?}");
    assert!(
        outcomes[4].contains("MALFORMED_FUNCTION_CALL"),
        "{outcomes:?}"
    );
    assert!(rec.correctives().is_empty());
    assert_conversation_shape(
        &rec,
        &[
            (SpanKind::Llm, "expert"),
            (SpanKind::Tool, "read-file"),
            (SpanKind::Tool, "read-file"),
            (SpanKind::Tool, "grepper"),
            (SpanKind::Llm, "expert"),
            (SpanKind::Tool, "grepper"),
            (SpanKind::Llm, "expert"),
            (SpanKind::Tool, "set-results"),
            (SpanKind::Llm, "expert"),
        ],
    );
    assert_eq!(
        rec.llm_spans()[0].thoughts.as_deref(),
        Some("Both sides touch file->private_data; read them.")
    );
    check_goldens(&rec, &server, "gemini_conversation");
}

/// 429 with `retry-after` → reasoning plus three parallel calls → 500 → one call → a call
/// whose arguments are not valid JSON (the loop answers it with a tool error) → set-results →
/// final reply.
#[tokio::test]
async fn openai_conversation() {
    let kit = Kit(Provider::OpenAi);
    let script = vec![
        openai::rate_limited("0.05"),
        openai::calls_reply(
            Some("Both sides touch file->private_data; read them."),
            vec![
                openai::tool_call("call_1", "read-file", r#"{"File":"net/socket.c"}"#),
                openai::tool_call("call_2", "read-file", r#"{"File":"net/smc/af_smc.c"}"#),
                openai::tool_call("call_3", "grepper", r#"{"Expression":"private_data ="}"#),
            ],
        ),
        openai::server_error(),
        openai::calls_reply(
            None,
            vec![openai::tool_call(
                "call_4",
                "grepper",
                r#"{"Expression":"sock->ops"}"#,
            )],
        ),
        openai::calls_reply(
            None,
            vec![openai::tool_call(
                "call_5",
                "read-file",
                r#"{"File": "net/socket.c""#,
            )],
        ),
        openai::calls_reply(
            None,
            vec![openai::tool_call(
                "call_6",
                "set-results",
                r#"{"Benign":false,"Confident":true}"#,
            )],
        ),
        openai::text_reply(HARMFUL_REPLY),
    ];
    let (rec, server) = scenario(kit, "gpt-e2e", &script).await;
    let outcome = rec.outcome.as_ref().expect("the run succeeds");
    assert_eq!(outcome.outputs, Some(harmful_outputs()));
    assert_eq!((outcome.llm_calls, outcome.tool_calls), (5, 6));

    let reqs = server.requests();
    assert_eq!(reqs.len(), 7);
    assert!(fakellm::gap(&reqs, 0) >= Duration::from_millis(50));
    assert_eq!(reqs[2].body, reqs[3].body);
    let messages = reqs[2].body["messages"].as_array().unwrap();
    // system, user, assistant (reasoning echoed, three calls), three tool messages in order.
    assert_eq!(
        messages[2]["reasoning_content"],
        "Both sides touch file->private_data; read them."
    );
    assert_eq!(messages[2]["tool_calls"].as_array().unwrap().len(), 3);
    let ids: Vec<&str> = messages[3..6]
        .iter()
        .map(|m| m["tool_call_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["call_1", "call_2", "call_3"]);
    assert!(
        messages[3]["content"]
            .as_str()
            .unwrap()
            .contains("file->private_data")
    );
    // The malformed call goes back verbatim, answered by a tool error the model can act on.
    let messages = reqs[5].body["messages"].as_array().unwrap();
    let n = messages.len();
    assert_eq!(
        messages[n - 2]["tool_calls"][0]["function"]["arguments"],
        r#"{"File": "net/socket.c""#
    );
    assert_eq!(messages[n - 1]["tool_call_id"], "call_5");
    assert!(
        messages[n - 1]["content"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{}",
        messages[n - 1]
    );
    let read_errors: Vec<&Span> = rec
        .tool_spans()
        .into_iter()
        .filter(|s| s.error.is_some())
        .collect();
    assert_eq!(read_errors.len(), 1);
    assert_eq!(read_errors[0].name, "read-file");
    assert_conversation_shape(
        &rec,
        &[
            (SpanKind::Llm, "expert"),
            (SpanKind::Tool, "read-file"),
            (SpanKind::Tool, "read-file"),
            (SpanKind::Tool, "grepper"),
            (SpanKind::Llm, "expert"),
            (SpanKind::Tool, "grepper"),
            (SpanKind::Llm, "expert"),
            (SpanKind::Tool, "read-file"),
            (SpanKind::Llm, "expert"),
            (SpanKind::Tool, "set-results"),
            (SpanKind::Llm, "expert"),
        ],
    );
    check_goldens(&rec, &server, "openai_conversation");
}

/// 429 with `retry-after` → thinking (signed) + redacted thinking + three parallel `tool_use`
/// blocks → 500 → signed thinking + one call → a `tool_use` whose input is not an object →
/// set-results → final reply.
#[tokio::test]
async fn anthropic_conversation() {
    let kit = Kit(Provider::Anthropic);
    let script = vec![
        anthropic::rate_limited("0.05"),
        anthropic::reply(
            vec![
                anthropic::thinking(
                    "Both sides touch file->private_data; read them.",
                    "EqQBCkYIARgCKkA=",
                ),
                anthropic::redacted_thinking("EmwKAhgBEgy3va3pzix="),
                anthropic::tool_use("toolu_01", "read-file", json!({"File": "net/socket.c"})),
                anthropic::tool_use("toolu_02", "read-file", json!({"File": "net/smc/af_smc.c"})),
                anthropic::tool_use(
                    "toolu_03",
                    "grepper",
                    json!({"Expression": "private_data ="}),
                ),
            ],
            "tool_use",
        ),
        anthropic::server_error(),
        anthropic::reply(
            vec![
                anthropic::thinking("Now the reader's ops.", "ErUBCkYIAhgCKkB="),
                anthropic::tool_use("toolu_04", "grepper", json!({"Expression": "sock->ops"})),
            ],
            "tool_use",
        ),
        anthropic::reply(
            vec![anthropic::tool_use(
                "toolu_05",
                "read-file",
                json!("net/socket.c"),
            )],
            "tool_use",
        ),
        anthropic::reply(
            vec![anthropic::tool_use(
                "toolu_06",
                "set-results",
                harmful_outputs(),
            )],
            "tool_use",
        ),
        anthropic::text_reply(HARMFUL_REPLY),
    ];
    let (rec, server) = scenario(kit, "claude-e2e", &script).await;
    let outcome = rec.outcome.as_ref().expect("the run succeeds");
    assert_eq!(outcome.outputs, Some(harmful_outputs()));
    assert_eq!((outcome.llm_calls, outcome.tool_calls), (5, 6));

    let reqs = server.requests();
    assert_eq!(reqs.len(), 7);
    assert!(fakellm::gap(&reqs, 0) >= Duration::from_millis(50));
    assert_eq!(reqs[2].body, reqs[3].body);
    let messages = &reqs[2].body["messages"];
    let blocks = messages[1]["content"].as_array().unwrap();
    assert_eq!(
        blocks[0],
        json!({"type": "thinking", "thinking": "Both sides touch file->private_data; read them.",
               "signature": "EqQBCkYIARgCKkA="})
    );
    assert_eq!(
        blocks[1],
        json!({"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix="})
    );
    let results = messages[2]["content"].as_array().unwrap();
    let ids: Vec<&str> = results
        .iter()
        .filter(|b| b["type"] == "tool_result")
        .map(|b| b["tool_use_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["toolu_01", "toolu_02", "toolu_03"]);
    let later = &reqs[4].body["messages"][3]["content"][0];
    assert_eq!(later["signature"], "ErUBCkYIAhgCKkB=");
    // The non-object input became a tool error for that call.
    let messages = reqs[5].body["messages"].as_array().unwrap();
    let last = &messages[messages.len() - 1]["content"][0];
    assert_eq!(last["tool_use_id"], "toolu_05");
    assert_eq!(last["is_error"], true);
    assert_conversation_shape(
        &rec,
        &[
            (SpanKind::Llm, "expert"),
            (SpanKind::Tool, "read-file"),
            (SpanKind::Tool, "read-file"),
            (SpanKind::Tool, "grepper"),
            (SpanKind::Llm, "expert"),
            (SpanKind::Tool, "grepper"),
            (SpanKind::Llm, "expert"),
            (SpanKind::Tool, "read-file"),
            (SpanKind::Llm, "expert"),
            (SpanKind::Tool, "set-results"),
            (SpanKind::Llm, "expert"),
        ],
    );
    check_goldens(&rec, &server, "anthropic_conversation");
}

// ------------------------------------------------------------------------- overflow

/// Two tool turns, then the provider refuses the input as too long: the loop summarises the
/// older turns with the same model (a tool-less request) and repeats the turn on the shorter
/// history, which then finishes.
async fn overflow_summarises_and_continues(kit: Kit) {
    let summary = "The agent read net/socket.c: sock_poll reads file->private_data.";
    let script = vec![
        kit.calls(1, &[("read-file", json!({"File": "net/socket.c"}))]),
        kit.calls(2, &[("grepper", json!({"Expression": "private_data ="}))]),
        kit.overflow(),
        kit.text(summary),
        kit.calls(3, &[("set-results", harmful_outputs())]),
        kit.text(HARMFUL_REPLY),
    ];
    let (rec, server) = scenario(kit, "e2e-model", &script).await;
    let outcome = rec.outcome.as_ref().expect("the run recovers");
    assert_eq!(outcome.summaries, 1);
    assert_eq!(outcome.outputs, Some(harmful_outputs()));

    let reqs = server.requests();
    let summariser = serde_json::to_string(&reqs[3].body).unwrap();
    assert!(
        summariser.contains("-> call read-file") && !summariser.contains("\"grepper\""),
        "the summariser sees the removed turns as text and gets no tools: {summariser}"
    );
    // The retried turn carries the summary and is shorter than the refused one.
    let retried = serde_json::to_string(&reqs[4].body).unwrap();
    assert!(retried.contains(summary));
    assert!(retried.len() < serde_json::to_string(&reqs[2].body).unwrap().len());
    let errors: Vec<bool> = rec
        .transcript
        .iter()
        .filter_map(|e| match &e.event {
            TranscriptEvent::LlmError { will_retry, .. } => Some(*will_retry),
            _ => None,
        })
        .collect();
    assert_eq!(errors, [true]);
    assert_eq!(rec.correctives(), [Corrective::Summary]);
    assert_conversation_shape(
        &rec,
        &[
            (SpanKind::Llm, "expert"),
            (SpanKind::Tool, "read-file"),
            (SpanKind::Llm, "expert"),
            (SpanKind::Tool, "grepper"),
            (SpanKind::Llm, "expert"),
            (SpanKind::Llm, "expert-summariser"),
            (SpanKind::Llm, "expert"),
            (SpanKind::Tool, "set-results"),
            (SpanKind::Llm, "expert"),
        ],
    );
    let refused = rec.llm_spans()[2];
    assert!(
        refused
            .error
            .as_deref()
            .unwrap_or("")
            .contains("input too long"),
        "{refused:?}"
    );
    check_goldens(&rec, &server, &format!("{}_overflow", kit.name()));
}

#[tokio::test]
async fn gemini_overflow_summarises_and_continues() {
    overflow_summarises_and_continues(Kit(Provider::Gemini)).await;
}

#[tokio::test]
async fn openai_overflow_summarises_and_continues() {
    overflow_summarises_and_continues(Kit(Provider::OpenAi)).await;
}

#[tokio::test]
async fn anthropic_overflow_summarises_and_continues() {
    overflow_summarises_and_continues(Kit(Provider::Anthropic)).await;
}

// ------------------------------------------------------------------------- fallback

/// The first model of the chain is over its daily quota on every turn: each turn falls back to
/// the second model, and the spans name the model that answered.
async fn daily_quota_falls_back(kit: Kit) {
    let script = vec![
        kit.daily_quota(),
        kit.calls(1, &[("read-file", json!({"File": "net/smc/af_smc.c"}))]),
        kit.daily_quota(),
        kit.calls(2, &[("set-results", harmful_outputs())]),
        kit.daily_quota(),
        kit.text(HARMFUL_REPLY),
    ];
    let (rec, server) = scenario(kit, "model-pro,model-flash", &script).await;
    assert!(rec.outcome.is_ok(), "{:?}", rec.outcome.as_ref().err());
    let models: Vec<String> = server.requests().iter().map(|r| kit.model_of(r)).collect();
    assert_eq!(
        models,
        [
            "model-pro",
            "model-flash",
            "model-pro",
            "model-flash",
            "model-pro",
            "model-flash"
        ]
    );
    for span in rec.llm_spans() {
        assert_eq!(span.model, "model-flash", "the answering model is recorded");
    }
    let outcomes: Vec<String> = rec
        .exchanges()
        .into_iter()
        .map(|(_, e)| e.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            "fallback to next model",
            "ok",
            "fallback to next model",
            "ok",
            "fallback to next model",
            "ok"
        ]
    );
    check_goldens(&rec, &server, &format!("{}_fallback", kit.name()));
}

#[tokio::test]
async fn gemini_daily_quota_falls_back_to_the_second_model() {
    daily_quota_falls_back(Kit(Provider::Gemini)).await;
}

#[tokio::test]
async fn openai_daily_quota_falls_back_to_the_second_model() {
    daily_quota_falls_back(Kit(Provider::OpenAi)).await;
}

#[tokio::test]
async fn anthropic_daily_quota_falls_back_to_the_second_model() {
    daily_quota_falls_back(Kit(Provider::Anthropic)).await;
}

// ------------------------------------------------------------------------- all models fail

/// Both models of the chain keep failing: the run fails, and the transcript still holds all
/// six attempts, linked to the one failed llm span, followed by the error.
async fn all_models_fail(kit: Kit) {
    let script = vec![kit.server_error(); 6];
    let (rec, server) = scenario(kit, "model-pro,model-flash", &script).await;
    let err = rec.outcome.as_ref().expect_err("every model failed");
    assert!(
        matches!(err, AgentError::Llm(LlmError::Provider { message, .. }) if message.contains("model-flash") && message.contains("3 attempts")),
        "{err}"
    );
    let llm = rec.llm_spans();
    assert_eq!(llm.len(), 1);
    assert!(llm[0].error.is_some());
    let exchanges = rec.exchanges();
    assert_eq!(exchanges.len(), 6);
    assert!(exchanges.iter().all(|(seq, _)| *seq == llm[0].seq));
    let outcomes: Vec<&str> = exchanges
        .iter()
        .map(|(_, e)| e.outcome.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(
        outcomes,
        [
            "retry after 0.000s",
            "retry after 0.000s",
            "fallback to next model",
            "retry after 0.000s",
            "retry after 0.000s",
            "fail"
        ]
    );
    let last = rec.transcript.last().unwrap();
    assert!(
        matches!(
            &last.event,
            TranscriptEvent::LlmError {
                will_retry: false,
                ..
            }
        ),
        "{last:?}"
    );
    check_goldens(&rec, &server, &format!("{}_all_fail", kit.name()));
}

#[tokio::test]
async fn gemini_failed_turn_keeps_every_attempt_in_the_transcript() {
    all_models_fail(Kit(Provider::Gemini)).await;
}

#[tokio::test]
async fn openai_failed_turn_keeps_every_attempt_in_the_transcript() {
    all_models_fail(Kit(Provider::OpenAi)).await;
}

#[tokio::test]
async fn anthropic_failed_turn_keeps_every_attempt_in_the_transcript() {
    all_models_fail(Kit(Provider::Anthropic)).await;
}

/// The kits cover every provider the crate supports, so a new provider can't skip these tests.
#[test]
fn every_provider_has_a_kit() {
    let covered: Vec<Provider> = KITS.iter().map(|k| k.0).collect();
    assert_eq!(covered, Provider::ALL);
}

// ------------------------------------------------------------------------- redaction

/// A provider that echoes the key in an error body (as Gemini does for an invalid key): the
/// recorded exchange keeps the body, with the key redacted, and neither file holds the key.
async fn echoed_key_is_redacted(kit: Kit) {
    let echo = format!(
        "API key not valid: {}. Please pass a valid API key.",
        kit.key()
    );
    let mut error = kit.server_error();
    error.body = match kit.0 {
        Provider::Gemini => gemini::status_error(500, "INTERNAL", &echo, json!([])),
        Provider::OpenAi => openai::error(&echo, "server_error", Value::Null),
        Provider::Anthropic => anthropic::error("api_error", &echo),
    };
    let script = vec![
        error,
        kit.calls(1, &[("set-results", harmful_outputs())]),
        kit.text(HARMFUL_REPLY),
    ];
    let server = FakeServer::start(script).await;
    let model = kit.connect(&server, "e2e-model");
    let rec = record(&expert(), model.as_ref()).await;
    assert!(rec.outcome.is_ok(), "{:?}", rec.outcome.as_ref().err());
    let transcript = std::fs::read_to_string(transcript_path(&rec.trajectory_file)).unwrap();
    let leaks: Vec<String> = transcript
        .lines()
        .filter(|l| l.contains(kit.key()))
        .map(|l| l.chars().take(200).collect())
        .collect();
    assert!(
        leaks.is_empty(),
        "{}: the transcript leaks the key: {leaks:#?}",
        kit.name()
    );
    let trajectory = std::fs::read_to_string(&rec.trajectory_file).unwrap();
    assert!(!trajectory.contains(kit.key()));
    let exchanges = rec.exchanges();
    assert_eq!(exchanges.len(), 3);
    let first = exchanges[0].1.response_body.as_ref().unwrap().to_string();
    assert!(first.contains("API key not valid: [REDACTED]"), "{first}");
    assert!(exchanges[0].1.outcome.contains("[REDACTED]"));
}

/// A key the user pasted into the report and the model then repeats — in a tool call's
/// arguments and in its answer — is scrubbed from every span and transcript entry, whichever
/// sink records them.
async fn pasted_and_repeated_key_is_redacted(kit: Kit) {
    let prompt = format!("{REPORT}\n(my config: GEMINI_API_KEY={})\n", kit.key());
    let script = vec![
        kit.calls(1, &[("grepper", json!({"Expression": kit.key()}))]),
        kit.calls(2, &[("set-results", harmful_outputs())]),
        kit.text(&format!(
            "{HARMFUL_REPLY}\n\nAlso, your key {} is exposed.",
            kit.key()
        )),
    ];
    let server = FakeServer::start(script).await;
    let model = kit.connect(&server, "e2e-model");
    let rec = record(&expert_with_prompt(&prompt), model.as_ref()).await;
    assert!(rec.outcome.is_ok(), "{:?}", rec.outcome.as_ref().err());
    let trajectory = std::fs::read_to_string(&rec.trajectory_file).unwrap();
    let transcript = std::fs::read_to_string(transcript_path(&rec.trajectory_file)).unwrap();
    for (what, text) in [("trajectory", &trajectory), ("transcript", &transcript)] {
        assert!(
            !text.contains(kit.key()),
            "{}: the {what} leaks the key",
            kit.name()
        );
    }
    // What was scrubbed is marked, in the tool call's arguments and in the final reply.
    let tool = rec
        .spans
        .iter()
        .find(|s| s.kind == SpanKind::Tool && s.name == "grepper")
        .expect("grepper span");
    let args = tool.args.as_ref().expect("recorded arguments").to_string();
    assert!(args.contains("[REDACTED]"), "{args}");
    assert!(
        trajectory.contains("your key [REDACTED] is exposed"),
        "{}",
        kit.name()
    );
}

#[tokio::test]
async fn keys_pasted_into_a_report_or_repeated_by_a_model_are_redacted() {
    for kit in KITS {
        pasted_and_repeated_key_is_redacted(kit).await;
    }
}

#[tokio::test]
async fn keys_echoed_by_any_provider_are_redacted_in_the_transcript() {
    for kit in KITS {
        echoed_key_is_redacted(kit).await;
    }
}

// ------------------------------------------------------------------------- local servers

/// A small model ends with empty text and no set-results: the reminder turn names set-results
/// as the tool to call, in the provider's own words, and the run completes.
async fn reminder_forces_set_results(kit: Kit) {
    let script = vec![
        kit.text(""),
        kit.calls(1, &[("set-results", harmful_outputs())]),
        kit.text(HARMFUL_REPLY),
    ];
    let (rec, server) = scenario(kit, "e2e-model", &script).await;
    let outcome = rec.outcome.as_ref().expect("the reminder gets set-results");
    assert_eq!(outcome.outputs, Some(harmful_outputs()));
    assert_eq!(rec.correctives(), [Corrective::MissingResults]);
    let bodies = server.bodies();
    let forced = |b: &Value| match kit.0 {
        Provider::OpenAi => b.get("tool_choice").cloned(),
        Provider::Anthropic => b.get("tool_choice").cloned(),
        Provider::Gemini => b.get("toolConfig").cloned(),
    };
    let want = match kit.0 {
        Provider::OpenAi => json!({"type": "function", "function": {"name": "set-results"}}),
        Provider::Anthropic => json!({"type": "tool", "name": "set-results"}),
        Provider::Gemini => {
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["set-results"]}})
        }
    };
    assert_eq!(
        forced(&bodies[0]),
        None,
        "the first turn leaves the choice free"
    );
    assert_eq!(
        forced(&bodies[1]),
        Some(want),
        "the reminder names set-results"
    );
    assert_eq!(
        forced(&bodies[2]),
        None,
        "the final reply is free text again"
    );
}

#[tokio::test]
async fn gemini_reminder_forces_set_results() {
    reminder_forces_set_results(Kit(Provider::Gemini)).await;
}

#[tokio::test]
async fn openai_reminder_forces_set_results() {
    reminder_forces_set_results(Kit(Provider::OpenAi)).await;
}

#[tokio::test]
async fn anthropic_reminder_forces_set_results() {
    reminder_forces_set_results(Kit(Provider::Anthropic)).await;
}

/// llama.cpp reports an overflow as HTTP 500 with no error code: the loop still summarises and
/// repeats the turn instead of failing (or retrying the same request).
#[tokio::test]
async fn llama_cpp_overflow_as_500_summarises_and_continues() {
    let kit = Kit(Provider::OpenAi);
    let summary = "The agent read net/socket.c: sock_poll reads file->private_data.";
    let script = vec![
        kit.calls(1, &[("read-file", json!({"File": "net/socket.c"}))]),
        kit.calls(2, &[("grepper", json!({"Expression": "private_data ="}))]),
        openai::llama_overflow(500),
        kit.text(summary),
        kit.calls(3, &[("set-results", harmful_outputs())]),
        kit.text(HARMFUL_REPLY),
    ];
    let (rec, server) = scenario(kit, "gemma-3-270m", &script).await;
    let outcome = rec.outcome.as_ref().expect("the run recovers");
    assert_eq!(outcome.summaries, 1);
    assert_eq!(outcome.outputs, Some(harmful_outputs()));
    assert_eq!(server.requests().len(), 6, "the refused turn was sent once");
    assert_eq!(server.unused(), 0);
}
