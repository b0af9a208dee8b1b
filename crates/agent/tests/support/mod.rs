//! Test doubles: a scripted in-process [`ChatModel`] that returns prepared turns and records
//! every request, and small real [`Tool`]s (one that counts its runs, one that only returns once
//! two calls are in flight at the same time).

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use llm::{
    ChatModel, ChatRequest, ChatResponse, Exchange, FinishReason, LlmError, Message, Part, Role,
    ToolCall, Usage,
};
use serde_json::{Value, json};
use tools::{Tool, ToolError, ToolSpec};

pub enum Step {
    Reply(ChatResponse),
    Fail(LlmError),
}

pub struct ScriptedModel {
    pub name: String,
    pub window: u64,
    /// When set: input tokens are counted as request bytes / 4 (so they grow like a real
    /// model's), and tool-less requests (the summariser) get this reply without using the script.
    pub summarise_with: Option<String>,
    steps: Mutex<VecDeque<Step>>,
    pub requests: Mutex<Vec<ChatRequest>>,
}

impl ScriptedModel {
    pub fn new(steps: Vec<Step>) -> Arc<Self> {
        Self::with_window(steps, 1_000_000)
    }

    pub fn with_window(steps: Vec<Step>, window: u64) -> Arc<Self> {
        Arc::new(ScriptedModel {
            name: "scripted:model-1".into(),
            window,
            summarise_with: None,
            steps: Mutex::new(steps.into()),
            requests: Mutex::default(),
        })
    }

    pub fn summarising(steps: Vec<Step>, window: u64, summary: &str) -> Arc<Self> {
        Arc::new(ScriptedModel {
            name: "scripted:model-1".into(),
            window,
            summarise_with: Some(summary.to_string()),
            steps: Mutex::new(steps.into()),
            requests: Mutex::default(),
        })
    }

    pub fn requests(&self) -> Vec<ChatRequest> {
        self.requests.lock().unwrap().clone()
    }

    pub fn leftover(&self) -> usize {
        self.steps.lock().unwrap().len()
    }
}

impl ChatModel for ScriptedModel {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn context_window(&self) -> u64 {
        self.window
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<ChatResponse, LlmError>> + Send + 'a>,
    > {
        Box::pin(async move {
            let n = {
                let mut reqs = self.requests.lock().unwrap();
                reqs.push(request.clone());
                reqs.len()
            };
            if let Some(summary) = &self.summarise_with {
                let size = serde_json::to_vec(request).unwrap().len() as u64 / 4;
                if request.tools.is_empty() {
                    let mut r = response(
                        vec![Part::Text {
                            text: summary.clone(),
                        }],
                        FinishReason::Stop,
                    );
                    r.usage.input_tokens = size;
                    return Ok(r);
                }
                if let Some(Step::Reply(r)) = self.steps.lock().unwrap().front_mut() {
                    r.usage.input_tokens = size;
                }
            }
            match self.steps.lock().unwrap().pop_front() {
                Some(Step::Reply(mut r)) => {
                    for (i, e) in r.exchanges.iter_mut().enumerate() {
                        e.request_body = json!({"request": n, "attempt": i + 1});
                    }
                    Ok(r)
                }
                Some(Step::Fail(e)) => Err(e),
                None => Err(LlmError::Provider {
                    provider: "scripted".into(),
                    message: format!("unscripted request #{n}"),
                }),
            }
        })
    }
}

fn response(parts: Vec<Part>, finish: FinishReason) -> ChatResponse {
    ChatResponse {
        message: Message {
            role: Role::Model,
            parts,
        },
        usage: Usage {
            input_tokens: 100,
            output_tokens: 10,
            thoughts_tokens: 5,
            cached_tokens: 0,
        },
        finish,
        model: "model-1".into(),
        exchanges: vec![Exchange {
            model: "model-1".into(),
            url: "http://127.0.0.1:1/v1/chat".into(),
            request_body: Value::Null,
            status: Some(200),
            response_body: Some(json!({"ok": true})),
            outcome: "ok".into(),
            duration_ms: 0,
        }],
    }
}

/// A turn with tool calls (ids `c1`, `c2`, … within the turn).
pub fn calls(list: &[(&str, Value)]) -> Step {
    let mut parts = vec![Part::Thought {
        text: "Let me look.".into(),
        signature: None,
        redacted: None,
    }];
    for (i, (name, args)) in list.iter().enumerate() {
        parts.push(Part::ToolCall(ToolCall {
            id: format!("c{}", i + 1),
            name: name.to_string(),
            args: args.clone(),
            signature: None,
        }));
    }
    Step::Reply(response(parts, FinishReason::ToolCalls))
}

pub fn text(t: &str) -> Step {
    Step::Reply(response(
        vec![Part::Text { text: t.into() }],
        FinishReason::Stop,
    ))
}

pub fn with_usage(step: Step, input: u64, output: u64) -> Step {
    match step {
        Step::Reply(mut r) => {
            r.usage = Usage {
                input_tokens: input,
                output_tokens: output,
                thoughts_tokens: 0,
                cached_tokens: 0,
            };
            Step::Reply(r)
        }
        other => other,
    }
}

pub fn set_results(benign: bool) -> Step {
    calls(&[("set-results", json!({"Benign": benign}))])
}

pub fn kcsan_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"Benign": {"type": "boolean", "description": "If the data race is benign."}},
        "required": ["Benign"],
        "additionalProperties": false
    })
}

/// `read-file {File}` → `{Contents}`; counts its runs. `File: "big"` returns a long text.
#[derive(Default)]
pub struct ReadFile {
    pub runs: AtomicUsize,
}

impl Tool for ReadFile {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "read-file",
            description: "Reads a file.",
            input_schema: json!({"type": "object", "properties": {"File": {"type": "string"}}, "required": ["File"]}),
            output_schema: json!({"type": "object"}),
        }
    }

    fn execute(&self, args: &Value) -> Result<Value, ToolError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let file =
            args.get("File")
                .and_then(Value::as_str)
                .ok_or_else(|| ToolError::BadArguments {
                    tool: "read-file".into(),
                    message: "missing argument \"File\"".into(),
                })?;
        if file == "big" {
            return Ok(json!({"Contents": "int x; /* padding */\n".repeat(100)}));
        }
        if file == "panic" {
            panic!("tool bug");
        }
        Ok(json!({"Contents": format!("contents of {file}")}))
    }
}

/// `wait-pair` returns only once two of its calls are running at the same time (or fails after
/// a generous safety limit, so a sequential loop fails the test instead of hanging it).
#[derive(Default)]
pub struct WaitPair {
    state: Mutex<(usize, usize)>, // (in flight, max seen)
    cv: Condvar,
}

impl WaitPair {
    pub fn max_in_flight(&self) -> usize {
        self.state.lock().unwrap().1
    }
}

impl Tool for WaitPair {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "wait-pair",
            description: "Waits for a partner call.",
            input_schema: json!({"type": "object", "properties": {"Id": {"type": "integer"}}}),
            output_schema: json!({"type": "object"}),
        }
    }

    fn execute(&self, _args: &Value) -> Result<Value, ToolError> {
        let mut s = self.state.lock().unwrap();
        s.0 += 1;
        s.1 = s.1.max(s.0);
        self.cv.notify_all();
        let (mut s, timeout) = self
            .cv
            .wait_timeout_while(s, Duration::from_secs(60), |s| s.1 < 2)
            .unwrap();
        s.0 -= 1;
        if timeout.timed_out() {
            return Err(ToolError::Failed(
                "partner call never ran concurrently".into(),
            ));
        }
        Ok(json!({"Paired": true}))
    }
}
