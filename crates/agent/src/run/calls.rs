//! Executing one turn's tool calls.
//!
//! Calls run concurrently on the blocking pool (tools do file I/O), at most
//! `Limits::concurrency` at once under a semaphore; spans are started in call order and finished
//! in call order with their real finish times, and results go back in call order, so the
//! trajectory and the conversation are deterministic whatever the scheduling. Nothing a model
//! sends here is fatal: calls beyond `max_calls_per_turn`, unknown or disallowed tools, bad
//! arguments, tool failures and panics all become tool errors the model can react to, and a
//! repeated identical call gets its earlier answer plus a warning.

use std::collections::HashMap;
use std::sync::Arc;

use llm::{Part, ToolCall, ToolResult};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::definition::SET_RESULTS;
use crate::span::{Span, SpanKind, Timestamp};
use crate::trajectory::OpenSpan;
use crate::transcript::Corrective;

use super::Run;

type ToolOutcome = (Result<Value, String>, Timestamp);

enum Slot {
    Done(Result<Value, String>),
    Running(Box<OpenSpan>, JoinHandle<ToolOutcome>),
    /// Same (name, args) as an earlier call of this turn.
    SameAs(usize, Box<OpenSpan>),
}

fn call_key(call: &ToolCall) -> String {
    // serde_json maps are ordered, so equal arguments give equal keys.
    format!("{}\u{0}{}", call.name, call.args)
}

impl Run<'_> {
    pub(super) async fn run_calls(&mut self, calls: Vec<ToolCall>, answer_now: bool) {
        let limit = self.agent.limits.max_calls_per_turn;
        let semaphore = Arc::new(Semaphore::new(self.agent.limits.concurrency));
        let mut slots: Vec<Slot> = Vec::with_capacity(calls.len());
        let mut first_in_turn: HashMap<String, usize> = HashMap::new();
        let mut duplicates: Vec<String> = Vec::new();
        for (i, call) in calls.iter().enumerate() {
            if i >= limit {
                let err = format!(
                    "skipped: at most {limit} tool calls run per turn; repeat this call in a later turn if you still need it"
                );
                self.instant_span(call, Err(err.clone()), false);
                slots.push(Slot::Done(Err(err)));
                continue;
            }
            self.tool_calls += 1;
            if let Some(err) = call.argument_error() {
                self.instant_span(call, Err(err.clone()), false);
                slots.push(Slot::Done(Err(err)));
                continue;
            }
            if call.name == SET_RESULTS
                && let Some(spec) = &self.agent.outputs
            {
                let checked = crate::schema::validate(&spec.schema, &call.args).and_then(|()| {
                    match &spec.validator {
                        Some(validate) => validate(call.args.clone()),
                        None => Ok(call.args.clone()),
                    }
                });
                let result = match checked {
                    Ok(outputs) => {
                        self.outputs = Some(outputs.clone());
                        Ok(outputs)
                    }
                    Err(e) => Err(format!("bad arguments for {SET_RESULTS}: {e}")),
                };
                self.instant_span(call, result.clone(), false);
                slots.push(Slot::Done(result));
                continue;
            }
            if answer_now {
                let err = format!(
                    "tool calls are disabled now (iteration limit reached){}",
                    if self.agent.outputs.is_some() {
                        "; only set-results is available"
                    } else {
                        ""
                    }
                );
                self.instant_span(call, Err(err.clone()), false);
                slots.push(Slot::Done(Err(err)));
                continue;
            }
            let tool = match self.agent.tools.get(&call.name) {
                Some(tool) if self.agent.tool_allowed(&call.name) => tool.clone(),
                _ => {
                    let mut names: Vec<&str> = self.agent.allowed_tool_names().collect();
                    if self.agent.outputs.is_some() {
                        names.push(SET_RESULTS);
                    }
                    let err = format!(
                        "tool {:?} does not exist; available tools: {}",
                        call.name,
                        names.join(", ")
                    );
                    self.instant_span(call, Err(err.clone()), false);
                    slots.push(Slot::Done(Err(err)));
                    continue;
                }
            };
            if !call.args.is_object() {
                let err = format!(
                    "bad arguments for {}: arguments must be a JSON object",
                    call.name
                );
                self.instant_span(call, Err(err.clone()), false);
                slots.push(Slot::Done(Err(err)));
                continue;
            }
            let key = call_key(call);
            if let Some(cached) = self.seen_calls.get(&key).cloned() {
                duplicates.push(call.name.clone());
                self.instant_span(call, Ok(cached.clone()), true);
                slots.push(Slot::Done(Ok(cached)));
                continue;
            }
            if let Some(&j) = first_in_turn.get(&key) {
                duplicates.push(call.name.clone());
                let mut span = Span::new(SpanKind::Tool, self.child_nesting, &call.name);
                span.args = Some(call.args.clone());
                span.cache_hit = true;
                slots.push(Slot::SameAs(j, Box::new(self.ctx.trajectory.start(span))));
                continue;
            }
            first_in_turn.insert(key, i);
            let mut span = Span::new(SpanKind::Tool, self.child_nesting, &call.name);
            span.args = Some(call.args.clone());
            let open = self.ctx.trajectory.start(span);
            let semaphore = semaphore.clone();
            let args = call.args.clone();
            let name = call.name.clone();
            let handle = tokio::spawn(async move {
                // The semaphore is never closed, so acquiring can only fail if that changes;
                // running unbounded is then the harmless fallback.
                let _permit = semaphore.acquire_owned().await.ok();
                let joined = tokio::task::spawn_blocking(move || tool.execute(&args)).await;
                let result = match joined {
                    Ok(Ok(value)) => Ok(value),
                    Ok(Err(err)) => {
                        if !err.is_caller_error() {
                            tracing::warn!(tool = %name, %err, "tool failed");
                        }
                        Err(err.to_string())
                    }
                    Err(join) => {
                        tracing::warn!(tool = %name, %join, "tool panicked");
                        Err(format!(
                            "tool {name} failed internally (panicked); try a different call"
                        ))
                    }
                };
                (result, Timestamp::now())
            });
            slots.push(Slot::Running(Box::new(open), handle));
        }

        // Join in call order; results are final after this loop.
        let mut results: Vec<Result<Value, String>> = Vec::with_capacity(slots.len());
        for (i, slot) in slots.into_iter().enumerate() {
            let result = match slot {
                Slot::Done(r) => r,
                Slot::SameAs(j, mut open) => {
                    let result: Result<Value, String> = results[j].clone();
                    match &result {
                        Ok(value) => {
                            open.span_mut().results = Some(value.clone());
                            open.finish(None);
                        }
                        Err(e) => {
                            open.finish(Some(e.clone()));
                        }
                    }
                    result
                }
                Slot::Running(mut open, handle) => {
                    let (result, at) = handle.await.unwrap_or_else(|join| {
                        (Err(format!("tool task failed: {join}")), Timestamp::now())
                    });
                    match &result {
                        Ok(value) => {
                            open.span_mut().results = Some(value.clone());
                            self.seen_calls.insert(call_key(&calls[i]), value.clone());
                            open.finish_at(at, None);
                        }
                        Err(e) => {
                            open.finish_at(at, Some(e.clone()));
                        }
                    }
                    result
                }
            };
            results.push(result);
        }
        let cap = self.result_cap();
        for (call, result) in calls.iter().zip(results) {
            let (content, is_error) = match result {
                Ok(value) => (cap_result(value, cap), false),
                Err(message) => (json!({ "error": message }), true),
            };
            self.push_user_part(Part::ToolResult(ToolResult {
                id: call.id.clone(),
                name: call.name.clone(),
                content,
                is_error,
            }));
        }
        if calls.len() > limit {
            let skipped: Vec<&str> = calls[limit..].iter().map(|c| c.name.as_str()).collect();
            self.correct(
                Corrective::TooManyCalls,
                format!(
                    "SYSTEM WARNING: you requested {} tool calls in one turn; at most {limit} run per turn. \
                     The first {limit} ran; these were skipped: {}. Repeat them in a later turn if you still need them.",
                    calls.len(),
                    skipped.join(", ")
                ),
            );
        }
        if !duplicates.is_empty() {
            self.correct(
                Corrective::DuplicateCall,
                format!(
                    "SYSTEM WARNING: you repeated calls you already made with identical arguments ({}); their earlier \
                     results were returned again. Do not repeat calls: use the results you have, try different \
                     arguments, or give your answer.",
                    duplicates.join(", ")
                ),
            );
        }
    }

    /// Largest tool result in bytes (about 4 bytes per token).
    fn result_cap(&self) -> usize {
        let tokens = self.agent.limits.max_result_share * self.model.context_window() as f64;
        (tokens * 4.0).max(1024.0) as usize
    }

    /// A span for a call that is answered without running a tool.
    fn instant_span(&self, call: &ToolCall, result: Result<Value, String>, cache_hit: bool) {
        let mut span = Span::new(SpanKind::Tool, self.child_nesting, &call.name);
        span.args = Some(call.args.clone());
        span.cache_hit = cache_hit;
        let mut open = self.ctx.trajectory.start(span);
        match result {
            Ok(value) => {
                open.span_mut().results = Some(value);
                open.finish(None);
            }
            Err(e) => {
                open.finish(Some(e));
            }
        }
    }
}

/// Cuts a result whose JSON is longer than `cap` bytes to a prefix with a note, so one huge
/// answer cannot overflow the context (the span keeps the full result).
fn cap_result(value: Value, cap: usize) -> Value {
    let text = value.to_string();
    if text.len() <= cap {
        return value;
    }
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    json!({
        "truncated_result": &text[..end],
        "note": format!(
            "the result was {} bytes and was cut to the first {end}; narrow the call (smaller line range, \
             path prefix, more specific name) to see the rest",
            text.len()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_over_the_cap_are_cut_on_a_char_boundary() {
        let small = json!({"Contents": "int x;"});
        assert_eq!(cap_result(small.clone(), 100), small);
        let big = json!({"Contents": "é".repeat(100)});
        let cut = cap_result(big, 51);
        let prefix = cut["truncated_result"].as_str().unwrap();
        assert!(
            prefix.len() <= 51 && prefix.starts_with("{\"Contents\":\"é"),
            "{prefix}"
        );
        assert!(cut["note"].as_str().unwrap().contains("narrow the call"));
    }
}
