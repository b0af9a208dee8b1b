//! Keeping the conversation inside the model's context window.
//!
//! The size of the next request is estimated from the last response's real input + output
//! token counts plus a bytes/4 estimate of what was added since (no tokenizer needed, and the
//! estimate re-anchors on every turn). When it exceeds `Limits::compress_at` of
//! `ChatModel::context_window`, the turns between the first prompt and a recent suffix are
//! summarised by the model itself. The split is always just before a model turn, so every tool
//! call stays paired with its results; the summary is appended to the first prompt so user and
//! model turns keep alternating. Thresholds are shares of the window, so they follow the model.

use llm::{ChatRequest, Message, Part, Role, ThinkingLevel};

use crate::span::{Span, SpanKind};
use crate::transcript::{Corrective, TranscriptEvent};

use super::{Run, note_response, record_request, record_response};

const SUMMARY_INSTRUCTION: &str = "You compress the working history of an AI agent that investigates \
Linux kernel source code with tools. Write a faithful, dense summary of the conversation you are given so \
that the agent can continue its task from the summary alone: what it has established (with file paths, \
function names, line numbers and code facts exactly as seen), which tool calls it made and what they showed, \
hypotheses still open, and what it planned to do next. Do not invent facts. Do not give a final answer.";

const SUMMARY_HEADER: &str = "\n\nHere is a summary of the earlier part of this conversation (older turns \
were removed to fit the context window):\n\n";

/// Rough token count of a JSON-serialisable value: 4 bytes per token.
fn estimate<T: serde::Serialize + ?Sized>(value: &T) -> u64 {
    let bytes = serde_json::to_vec(value).map(|v| v.len()).unwrap_or(0) as u64;
    bytes.div_ceil(4)
}

fn render(summary: Option<&str>, messages: &[Message]) -> String {
    let mut out = String::new();
    if let Some(summary) = summary {
        out.push_str("## Summary of even earlier history\n\n");
        out.push_str(summary);
        out.push_str("\n\n");
    }
    for message in messages {
        out.push_str(match message.role {
            Role::User => "## user\n",
            Role::Model => "## agent\n",
        });
        for part in &message.parts {
            match part {
                Part::Text { text } if !text.is_empty() => {
                    out.push_str(text);
                    out.push('\n');
                }
                Part::ToolCall(call) => {
                    out.push_str(&format!("-> call {} {}\n", call.name, call.args))
                }
                Part::ToolResult(result) => out.push_str(&format!(
                    "<- {} {}: {}\n",
                    if result.is_error {
                        "error from"
                    } else {
                        "result of"
                    },
                    result.name,
                    result.content
                )),
                _ => {}
            }
        }
        out.push('\n');
    }
    out
}

impl Run<'_> {
    pub(super) fn estimated_request_tokens(&self) -> u64 {
        match self.last_seen {
            Some((tokens, len)) if len <= self.history.len() => {
                tokens + estimate(&self.history[len..])
            }
            _ => {
                estimate(&self.system)
                    + estimate(&self.agent.tool_decls(false))
                    + estimate(&self.history)
            }
        }
    }

    pub(super) fn over_window(&self) -> bool {
        let window = self.model.context_window() as f64;
        window > 0.0
            && self.estimated_request_tokens() as f64 > self.agent.limits.compress_at * window
    }

    /// Where the kept suffix starts: the earliest model turn whose suffix fits the keep budget
    /// (else the last model turn). `None` when there is nothing to summarise.
    fn split_point(&self) -> Option<usize> {
        let keep = (self.agent.limits.keep_recent * self.model.context_window() as f64) as u64;
        let h = &self.history;
        let candidates: Vec<usize> = (2..h.len())
            .filter(|&i| h[i].role == Role::Model && h[i - 1].role == Role::User)
            .collect();
        candidates
            .iter()
            .copied()
            .find(|&i| estimate(&h[i..]) <= keep)
            .or(candidates.last().copied())
    }

    /// Summarises older turns. Returns whether the history was rewritten. A failed summary is
    /// fatal only when `forced` (the provider already refused the input); otherwise the run
    /// goes on with the full history.
    pub(super) async fn summarise(&mut self, forced: bool) -> Result<bool, crate::AgentError> {
        let Some(split) = self.split_point() else {
            tracing::debug!(agent = %self.agent.name, "history too short to summarise");
            return Ok(false);
        };
        let input = render(self.summary.as_deref(), &self.history[1..split]);
        let request = ChatRequest {
            system: SUMMARY_INSTRUCTION.to_string(),
            messages: vec![Message::user_text(input)],
            tools: Vec::new(),
            temperature: Some(0.1),
            thinking: ThinkingLevel::Default,
            max_output_tokens: None,
            force_tool: None,
        };
        let name = format!("{}-summariser", self.agent.name);
        let mut span = Span::new(SpanKind::Llm, self.child_nesting, &name);
        span.model = self.model.name();
        let mut open = self.ctx.trajectory.start(span);
        record_request(
            self.ctx,
            open.seq(),
            &name,
            &self.model.name(),
            &request,
            0,
            true,
        );
        let result = match self.model.chat_recorded(&request).await {
            Ok(r) => Ok(r),
            Err(failure) => {
                for exchange in failure.exchanges {
                    self.ctx.trajectory.record(
                        open.seq(),
                        &name,
                        TranscriptEvent::Exchange { exchange },
                    );
                }
                Err(failure.error)
            }
        };
        let response = match result {
            Ok(r) if !r.message.text().trim().is_empty() => r,
            Ok(_) | Err(_) if !forced => {
                open.finish(Some(
                    "summary failed; continuing with the full history".into(),
                ));
                tracing::warn!(agent = %self.agent.name, "summarising the history failed; continuing");
                self.summary_backoff = super::SUMMARY_BACKOFF_TURNS;
                return Ok(false);
            }
            Ok(_) => {
                open.finish(Some("empty summary".into()));
                return Ok(false);
            }
            Err(err) => {
                open.finish(Some(err.to_string()));
                return Err(err.into());
            }
        };
        let summary = response.message.text();
        let seq = open.seq();
        {
            let s = open.span_mut();
            note_response(s, &response);
            s.reply = Some(summary.clone());
        }
        open.finish(None);
        record_response(self.ctx, seq, &name, &response);
        let mut first = self.first.clone();
        first.parts.push(Part::Text {
            text: format!("{SUMMARY_HEADER}{summary}"),
        });
        let removed = split - 1;
        let mut history = vec![first];
        history.extend(self.history.drain(split..));
        self.history = history;
        self.sent_from = 0;
        self.last_seen = None;
        self.summaries += 1;
        self.summary = Some(summary.clone());
        self.usage.add(&response.usage);
        self.llm_calls += 1;
        self.ctx.trajectory.record(
            seq,
            &self.agent.name,
            TranscriptEvent::Corrective {
                reason: Corrective::Summary,
                message: format!("replaced {removed} older messages with this summary:\n{summary}"),
            },
        );
        let u = response.usage;
        self.charge(u.input_tokens + u.output_tokens + u.thoughts_tokens)?;
        Ok(true)
    }
}
