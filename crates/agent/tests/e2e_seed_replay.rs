//! Replays the tool-call sequence of a real job of the reference system (seed
//! `000_ca0fa16c76478bab.txt`, a KCSAN race in `smc_switch_to_fallback` / `sock_poll`) through
//! the whole stack: a fake Gemini server (the `generateContent` wire format, see crate
//! `fakellm`) issues exactly the seed's calls, turn by turn, to the real HTTP client; the agent
//! loop runs them against the REAL tools on Debian's linux-source-6.12 tree. The produced
//! trajectory must have the seed's shape: the same agent/llm/tool spans with the same names and
//! nesting, in the same order, every call answered (successfully wherever the seed's was), and
//! the same final set-results.
//!
//! Nothing of the seed's outcome is written into this file: calls, arguments, the report and the
//! final outputs are all parsed from the seed's "Trajectory:" section at run time. Skips with a
//! visible message when the seed or the kernel tree is absent.

use std::path::PathBuf;
use std::sync::Arc;

use agent::{Agent, MemorySink, RunContext, Span, SpanKind, Trajectory, TranscriptEvent};
use codeindex::{Index, IndexOptions, NoProgress};
use fakellm::{FakeServer, Reply, gemini};
use llm::Provider;
use serde_json::{Map, Value, json};
use testkit::{cache_root, kernel_tree_or_skip};

const SEED: &str = "000_ca0fa16c76478bab.txt";
const MODEL: &str = "gemini-3-flash-preview";

// ------------------------------------------------------------------------- seed parsing

/// One span of a seed's "Trajectory:" section.
#[derive(Debug, Clone)]
struct SeedSpan {
    seq: u64,
    nesting: u32,
    kind: String,
    name: String,
    /// Tool spans: the `Args:` map.
    args: Option<Value>,
    /// The `Error:` text, when the span failed.
    error: Option<String>,
    /// The lines of each section, by section name (`Results`, `Thoughts`, ...).
    sections: Vec<(String, Vec<String>)>,
}

impl SeedSpan {
    fn section(&self, name: &str) -> Option<&[String]> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, lines)| lines.as_slice())
    }
}

/// `12/2 2026/02/04 14:17 llm expert` → (12, 2, "llm", "expert").
fn span_header(line: &str) -> Option<(u64, u32, String, String)> {
    let mut words = line.split_whitespace();
    let (seq, nesting) = words.next()?.split_once('/')?;
    let (seq, nesting) = (seq.parse().ok()?, nesting.parse().ok()?);
    let date = words.next()?;
    let time = words.next()?;
    let date_ok = date.len() == 10 && date.as_bytes()[4] == b'/' && date.as_bytes()[7] == b'/';
    let time_ok = time.len() == 5 && time.as_bytes()[2] == b':';
    if !date_ok || !time_ok {
        return None;
    }
    let kind = words.next()?.to_string();
    let name = words.next()?.to_string();
    words.next().is_none().then_some((seq, nesting, kind, name))
}

/// `Args:` or, for a span's first section, `0m Args:` (the duration column) → `Args`.
fn section_header(line: &str) -> Option<String> {
    let line = line.trim_end();
    let word = match line.split_once(' ') {
        Some((duration, rest))
            if duration.len() > 1
                && duration[..duration.len() - 1]
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                && duration.ends_with(['s', 'm', 'h']) =>
        {
            rest
        }
        Some(_) => return None,
        None => line,
    };
    let name = word.strip_suffix(':')?;
    let mut chars = name.chars();
    (chars.next()?.is_ascii_uppercase() && chars.all(|c| c.is_ascii_alphabetic()))
        .then(|| name.to_string())
}

/// Go's `fmt` rendering of a map with sorted keys, `map[K:V K2:V2]`, where values may contain
/// spaces (`Expression:clcsock =`): a new key starts at a space followed by `Capitalised:`.
fn parse_go_map(text: &str) -> Option<Value> {
    let inner = text.trim().strip_prefix("map[")?.strip_suffix(']')?;
    let is_key_start = |at: usize| {
        let rest = &inner[at..];
        let key_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        key_len > 0
            && rest.as_bytes()[0].is_ascii_uppercase()
            && rest.as_bytes().get(key_len) == Some(&b':')
    };
    let mut starts = vec![0];
    for (i, b) in inner.bytes().enumerate() {
        if b == b' ' && is_key_start(i + 1) {
            starts.push(i + 1);
        }
    }
    let mut map = Map::new();
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map_or(inner.len(), |next| next - 1);
        let (key, value) = inner[start..end].split_once(':')?;
        let value = match value {
            "true" => json!(true),
            "false" => json!(false),
            v => v
                .parse::<i64>()
                .map_or_else(|_| json!(v), |number| json!(number)),
        };
        map.insert(key.to_string(), value);
    }
    Some(Value::Object(map))
}

struct Seed {
    /// The KCSAN report (the "Crash report:" section).
    report: String,
    spans: Vec<SeedSpan>,
}

fn parse_seed(text: &str) -> Seed {
    let lines: Vec<&str> = text.lines().collect();
    let crash = lines
        .iter()
        .position(|l| l.trim() == "Crash report:")
        .expect("seed has a Crash report section");
    let traj = lines
        .iter()
        .position(|l| l.trim() == "Trajectory:")
        .expect("seed has a Trajectory section");
    let report = lines[crash + 1..traj].join("\n").trim().to_string();

    let mut spans: Vec<SeedSpan> = Vec::new();
    let mut section: Option<String> = None;
    for line in &lines[traj + 1..] {
        if line.starts_with("LLM Calls Summary:") {
            break;
        }
        if let Some((seq, nesting, kind, name)) = span_header(line) {
            spans.push(SeedSpan {
                seq,
                nesting,
                kind,
                name,
                args: None,
                error: None,
                sections: Vec::new(),
            });
            section = None;
            continue;
        }
        let Some(span) = spans.last_mut() else {
            continue;
        };
        if let Some(name) = section_header(line) {
            span.sections.push((name.clone(), Vec::new()));
            section = Some(name);
            continue;
        }
        if section.is_some()
            && let Some((_, body)) = span.sections.last_mut()
        {
            body.push(line.to_string());
        }
    }
    for span in &mut spans {
        span.args = span
            .section("Args")
            .and_then(|body| body.iter().find(|l| !l.trim().is_empty()))
            .and_then(|l| parse_go_map(l));
        span.error = span
            .section("Error")
            .map(|body| body.join("\n").trim().to_string());
    }
    Seed { report, spans }
}

/// The agent's final reply in the seed: its span's text after the `Results:` map.
fn seed_reply(agent: &SeedSpan) -> String {
    let body = agent.section("Results").unwrap_or_default();
    body.iter()
        .skip_while(|l| !l.starts_with("map["))
        .skip(1)
        .cloned()
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

// ------------------------------------------------------------------------- environment

fn seed_file() -> Option<PathBuf> {
    let path = testkit::shared_dir()
        .map(|s| s.join("seeds").join(SEED))
        .filter(|p| p.is_file());
    testkit::require(
        path,
        "e2e_seed_replay",
        &format!("no seed ../shared/seeds/{SEED}"),
    )
}

// ------------------------------------------------------------------------- the replay

/// The seed's agent subtree: the `expert` agent span and the llm/tool spans under it.
fn agent_subtree(seed: &Seed) -> Vec<SeedSpan> {
    let start = seed
        .spans
        .iter()
        .position(|s| s.kind == "agent")
        .expect("seed has an agent span");
    let depth = seed.spans[start].nesting;
    let mut out = vec![seed.spans[start].clone()];
    out.extend(
        seed.spans[start + 1..]
            .iter()
            .take_while(|s| s.nesting > depth)
            .cloned(),
    );
    out
}

/// The seed's turns: for each llm span, the tool calls (name, args) that followed it.
fn turns(subtree: &[SeedSpan]) -> Vec<Vec<(String, Value)>> {
    let mut turns: Vec<Vec<(String, Value)>> = Vec::new();
    for span in subtree {
        match span.kind.as_str() {
            "llm" => turns.push(Vec::new()),
            "tool" => {
                let turn = turns.last_mut().expect("a tool span follows an llm span");
                let args = span
                    .args
                    .clone()
                    .unwrap_or_else(|| panic!("tool span {} has no Args", span.seq));
                turn.push((span.name.clone(), args));
            }
            _ => {}
        }
    }
    turns
}

#[test]
fn seed_trajectory_section_parses() {
    let Some(path) = seed_file() else { return };
    let seed = parse_seed(&std::fs::read_to_string(path).unwrap());
    assert!(seed.report.starts_with("=====") && seed.report.contains("BUG: KCSAN"));
    let subtree = agent_subtree(&seed);
    assert_eq!(subtree[0].name, "expert");
    let tools: Vec<&SeedSpan> = subtree.iter().filter(|s| s.kind == "tool").collect();
    assert!(tools.len() > 5, "{tools:?}");
    // Values with spaces survive; booleans are typed.
    assert!(tools.iter().any(|t| {
        t.args
            .as_ref()
            .and_then(|a| a.get("Expression"))
            .and_then(Value::as_str)
            .is_some_and(|e| e.contains(' '))
    }));
    let set_results = tools.iter().find(|t| t.name == "set-results").unwrap();
    assert!(set_results.args.as_ref().unwrap()["Benign"].is_boolean());
    assert_eq!(
        parse_go_map("map[ContextFile:net/socket.c IncludeLines:true Name:sock_poll]"),
        Some(json!({"ContextFile": "net/socket.c", "IncludeLines": true, "Name": "sock_poll"}))
    );
    assert_eq!(
        parse_go_map("map[Expression:private_data =.*clcsock]"),
        Some(json!({"Expression": "private_data =.*clcsock"}))
    );
    assert_eq!(parse_go_map("no map"), None);
}

#[tokio::test]
async fn seed_000_tool_sequence_replays_with_the_same_shape_on_the_real_tools() {
    let Some(seed_path) = seed_file() else { return };
    let Some(tree) = kernel_tree_or_skip("seed_000_tool_sequence_replays") else {
        return;
    };
    let seed = parse_seed(&std::fs::read_to_string(seed_path).unwrap());
    let subtree = agent_subtree(&seed);
    let turns = turns(&subtree);
    let (last, calling) = turns.split_last().expect("the seed has llm turns");
    assert!(last.is_empty(), "the seed's last turn is the final reply");
    let outputs = calling
        .iter()
        .flatten()
        .rev()
        .find(|(name, _)| name == "set-results")
        .map(|(_, args)| args.clone())
        .expect("the seed calls set-results");

    let index = tokio::task::spawn_blocking(move || {
        Index::open(&tree, &IndexOptions::default(), &cache_root(), &NoProgress)
    })
    .await
    .unwrap()
    .expect("index the real tree");
    let toolbox = tools::toolbox(Arc::new(index.0));

    // One Gemini turn per seed llm span: its tool calls, then the final reply.
    let mut script: Vec<Reply> = calling
        .iter()
        .map(|calls| {
            gemini::reply(
                calls
                    .iter()
                    .map(|(name, args)| gemini::call(name, args.clone()))
                    .collect(),
                "STOP",
            )
        })
        .collect();
    let reply = seed_reply(&subtree[0]);
    script.push(gemini::text_reply(if reply.is_empty() {
        "Final reply."
    } else {
        &reply
    }));
    let server = FakeServer::start(script).await;
    let model = llm::connect(server.config(Provider::Gemini, MODEL, Some("AIza-seed-replay-key")))
        .expect("valid config");

    let schema = json!({
        "type": "object",
        "properties": {
            "Benign": {"type": "boolean", "description": "If the data race is benign."},
            "Confident": {"type": "boolean", "description": "If you are confident in the verdict."}
        },
        "required": ["Benign", "Confident"],
        "additionalProperties": false
    });
    let agent = Agent::new(
        "expert",
        "You judge whether KCSAN data races are benign.",
        seed.report.clone(),
        toolbox,
    )
    .with_outputs(schema);
    let sink = Arc::new(MemorySink::default());
    let traj = Trajectory::new(vec![sink.clone()]);
    let ctx = RunContext::new(traj.clone(), None);
    let flow = traj.start_new(SpanKind::Flow, 0, "assessment-kcsan");
    let outcome = agent
        .run(model.as_ref(), &ctx.nested())
        .await
        .expect("the replay completes");
    flow.finish(None);
    assert_eq!(server.unused(), 0, "every seed turn was consumed");
    assert_eq!(
        outcome.outputs,
        Some(outputs),
        "the seed's final set-results"
    );

    // Final state of each span, in start order.
    let mut spans: Vec<Span> = Vec::new();
    for span in sink.spans() {
        match spans.iter_mut().find(|s| s.seq == span.seq) {
            Some(slot) => *slot = span,
            None => spans.push(span),
        }
    }
    spans.sort_by_key(|s| s.seq);
    let ours: Vec<&Span> = spans
        .iter()
        .filter(|s| matches!(s.kind, SpanKind::Agent | SpanKind::Llm | SpanKind::Tool))
        .collect();

    // Same sequence of span types, names and nesting as the seed's agent subtree.
    let shape = |kind: &str, name: &str, nesting: u32| format!("{nesting} {kind} {name}");
    let want: Vec<String> = subtree
        .iter()
        .map(|s| shape(&s.kind, &s.name, s.nesting))
        .collect();
    let got: Vec<String> = ours
        .iter()
        .map(|s| shape(s.kind.as_str(), &s.name, s.nesting))
        .collect();
    assert_eq!(got, want);

    // Every call was answered; successfully wherever the seed's was.
    for (mine, theirs) in ours.iter().zip(&subtree) {
        assert!(mine.finished.is_some(), "span {} never finished", mine.seq);
        if mine.kind != SpanKind::Tool {
            continue;
        }
        assert_eq!(mine.args.as_ref(), theirs.args.as_ref());
        match &theirs.error {
            None => assert!(
                mine.error.is_none() && mine.results.is_some(),
                "{} {:?} failed on 6.12 but not in the seed: {:?}",
                mine.name,
                mine.args,
                mine.error
            ),
            // The seed's failures were lookups of names that don't exist in the source, and
            // they don't in 6.12 either: the model must see the same failure.
            Some(seed_error) => assert!(
                mine.error.is_some(),
                "seed span {} failed ({seed_error}) but succeeded on 6.12: {:?}",
                theirs.seq,
                mine.results
            ),
        }
    }
    let sock_poll = ours
        .iter()
        .find(|s| {
            s.name == "codesearch-definition-source"
                && s.args.as_ref().is_some_and(|a| a["Name"] == "sock_poll")
        })
        .expect("the seed reads sock_poll");
    let code = sock_poll.results.as_ref().unwrap()["SourceCode"]
        .as_str()
        .unwrap_or_default();
    assert!(code.contains("file->private_data"), "{code}");

    // The model received each turn's results, in call order, by the seed's tool names.
    let requests = server.requests();
    for (k, calls) in calling.iter().enumerate() {
        let contents = requests[k + 1].body["contents"].as_array().unwrap();
        let returned: Vec<&str> = contents.last().unwrap()["parts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["functionResponse"]["name"].as_str())
            .collect();
        let called: Vec<&str> = calls.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(returned, called, "results of turn {}", k + 1);
    }
    // Each exchange of the transcript belongs to an llm span.
    let llm_seqs: Vec<u64> = ours
        .iter()
        .filter(|s| s.kind == SpanKind::Llm)
        .map(|s| s.seq)
        .collect();
    let exchanges: Vec<u64> = sink
        .transcript_entries()
        .into_iter()
        .filter(|e| matches!(e.event, TranscriptEvent::Exchange { .. }))
        .map(|e| e.span_seq)
        .collect();
    assert_eq!(exchanges, llm_seqs);
}
