//! The tool-calling loop: [`Agent::run`] drives one conversation to a final reply and outputs.
//!
//! A [`Run`] owns the history and counters of one run. Each turn: summarise older turns if the
//! estimated request nears the model's window ([`context`]), call the model (one `llm` span),
//! then either accept a final reply (after the missing-results / empty-reply / consistency
//! checks, each allowed one corrective message) or execute the turn's tool calls concurrently
//! ([`calls`]). After `max_iterations` turns the model gets one "answer now" phase in which only
//! `set-results` is offered. Everything the loop says on its own is recorded in the transcript.

mod calls;
mod context;

use std::collections::{HashMap, HashSet};

use llm::{ChatModel, ChatRequest, ChatResponse, LlmError, Message, Part, Role, ToolDecl, Usage};

use crate::cache::is_cache_hit;
use crate::definition::{Agent, AgentOutcome, Disagreement, RunContext, SET_RESULTS};
use crate::error::AgentError;
use crate::span::{Span, SpanKind};
use crate::transcript::{Corrective, TranscriptEvent};

/// Turns allowed after the iteration limit: set-results, the final reply, one correction.
const ANSWER_NOW_TURNS: u32 = 3;

/// Turns that may force set-results: a forced model cannot end its turn any other way, so one
/// that keeps sending invalid results must get its choice back instead of looping until the
/// iteration limit.
const MAX_FORCED_TURNS: u32 = 2;

/// Turns to wait after a failed summary before paying for another attempt.
pub(crate) const SUMMARY_BACKOFF_TURNS: u32 = 2;

const MSG_MISSING_RESULTS: &str = "You did not call the set-results tool. Call it now with the results of \
your analysis. Then give your final reply again, in full: the reply you gave before is discarded.";
const MSG_EMPTY_REPLY: &str =
    "Your final reply was empty. Give your final reply now, in full, without tool calls.";
const MSG_ANSWER_NOW: &str = "You have reached the limit on tool-calling turns. Tools are now disabled except \
set-results. Give your best-effort answer from what you have learned: call set-results if you have not yet, \
then give your final reply.";
const MSG_ANSWER_NOW_NO_OUTPUTS: &str = "You have reached the limit on tool-calling turns and tools are now \
disabled. Give your best-effort final reply from what you have learned.";

impl Agent {
    /// Runs the agent against `model`, recording into `ctx`.
    pub async fn run(
        &self,
        model: &dyn ChatModel,
        ctx: &RunContext,
    ) -> Result<AgentOutcome, AgentError> {
        self.check()?;
        let system = self.system_prompt();
        let mut span = Span::new(SpanKind::Agent, ctx.nesting, &self.name);
        span.model = model.name();
        span.instruction = Some(system.clone());
        span.prompt = Some(self.prompt.clone());
        let mut open = ctx.trajectory.start(span);
        let mut run = Run::new(self, model, ctx, system);
        let result = run.drive().await;
        let s = open.span_mut();
        s.input_tokens = run.usage.input_tokens;
        s.output_tokens = run.usage.output_tokens;
        s.thoughts_tokens = run.usage.thoughts_tokens;
        s.cached_tokens = run.usage.cached_tokens;
        match &result {
            Ok(outcome) => {
                s.results = outcome.outputs.clone();
                s.reply = Some(outcome.reply.clone());
                open.finish(None);
            }
            Err(err) => {
                s.results = run.outputs.clone();
                open.finish(Some(err.to_string()));
            }
        }
        result
    }
}

enum Verdict {
    Accept,
    Continue,
}

pub(crate) struct Run<'a> {
    agent: &'a Agent,
    model: &'a dyn ChatModel,
    ctx: &'a RunContext,
    system: String,
    child_nesting: u32,
    history: Vec<Message>,
    /// The original first prompt; summaries are appended to a copy of it.
    first: Message,
    /// The latest summary of removed turns, folded into the next summary.
    summary: Option<String>,
    /// History index from which the next request's messages are new to the transcript.
    sent_from: usize,
    /// Input + output tokens of the last response and the history length it covered, to
    /// estimate the next request from real counts rather than from scratch.
    last_seen: Option<(u64, usize)>,
    last_llm_seq: u64,
    outputs: Option<serde_json::Value>,
    usage: Usage,
    agent_tokens: u64,
    llm_calls: u32,
    tool_calls: u32,
    iterations: u32,
    answer_now_turns: u32,
    summaries: u32,
    overflow_retried: bool,
    summary_backoff: u32,
    seen_calls: HashMap<String, serde_json::Value>,
    correctives: HashSet<Corrective>,
    /// Tool names of the previous request, to record tool-set changes (answer-now).
    last_tools: Vec<String>,
    disagreement: Option<Disagreement>,
    /// Whether requests name set-results as the tool to call (until it has been called).
    force_results: bool,
    /// Requests sent with a forced tool so far (see [`MAX_FORCED_TURNS`]).
    forced_turns: u32,
}

impl<'a> Run<'a> {
    fn new(
        agent: &'a Agent,
        model: &'a dyn ChatModel,
        ctx: &'a RunContext,
        system: String,
    ) -> Self {
        let first = Message::user_text(agent.prompt.clone());
        Run {
            agent,
            model,
            ctx,
            system,
            child_nesting: ctx.nesting + 1,
            history: vec![first.clone()],
            first,
            summary: None,
            sent_from: 0,
            last_seen: None,
            last_llm_seq: 0,
            outputs: None,
            usage: Usage::default(),
            agent_tokens: 0,
            llm_calls: 0,
            tool_calls: 0,
            iterations: 0,
            answer_now_turns: 0,
            summaries: 0,
            overflow_retried: false,
            summary_backoff: 0,
            seen_calls: HashMap::new(),
            correctives: HashSet::new(),
            last_tools: Vec::new(),
            disagreement: None,
            force_results: false,
            forced_turns: 0,
        }
    }

    async fn drive(&mut self) -> Result<AgentOutcome, AgentError> {
        loop {
            let answer_now = self.iterations >= self.agent.limits.max_iterations;
            if answer_now {
                if self.answer_now_turns == 0 {
                    let msg = if self.agent.outputs.is_some() {
                        MSG_ANSWER_NOW
                    } else {
                        MSG_ANSWER_NOW_NO_OUTPUTS
                    };
                    self.correct(Corrective::AnswerNow, msg.to_string());
                    self.force_results = self.agent.outputs.is_some();
                } else if self.answer_now_turns >= ANSWER_NOW_TURNS {
                    return Err(AgentError::MaxIterations {
                        agent: self.agent.name.clone(),
                        limit: self.agent.limits.max_iterations,
                    });
                }
                self.answer_now_turns += 1;
            }
            if self.summary_backoff > 0 {
                self.summary_backoff -= 1;
            } else if self.over_window() {
                self.summarise(false).await?;
            }
            let tools = self.agent.tool_decls(answer_now);
            let response = self.call_model(&tools).await?;
            self.iterations += 1;
            let calls: Vec<llm::ToolCall> = response.message.tool_calls().cloned().collect();
            if calls.is_empty() {
                match self.final_check(&response.message.text())? {
                    Verdict::Accept => return Ok(self.outcome(response.message.text())),
                    Verdict::Continue => continue,
                }
            }
            self.run_calls(calls, answer_now).await;
            if !self.agent.needs_reply && self.outputs.is_some() {
                return Ok(self.outcome(String::new()));
            }
        }
    }

    fn outcome(&self, reply: String) -> AgentOutcome {
        AgentOutcome {
            reply,
            outputs: self.outputs.clone(),
            usage: self.usage,
            llm_calls: self.llm_calls,
            tool_calls: self.tool_calls,
            iterations: self.iterations,
            summaries: self.summaries,
            disagreement: self.disagreement.clone(),
        }
    }

    /// Checks a final (call-free) reply. Each kind of problem gets one corrective message; a
    /// second occurrence of a missing-results or empty reply fails the run, a persisting
    /// disagreement is accepted and reported in the outcome.
    fn final_check(&mut self, text: &str) -> Result<Verdict, AgentError> {
        if self.agent.outputs.is_some() && self.outputs.is_none() {
            if self.correctives.contains(&Corrective::MissingResults) {
                return Err(AgentError::MissingResults {
                    agent: self.agent.name.clone(),
                });
            }
            self.correct(Corrective::MissingResults, MSG_MISSING_RESULTS.to_string());
            self.force_results = true;
            return Ok(Verdict::Continue);
        }
        if self.agent.needs_reply && text.trim().is_empty() {
            if self.correctives.contains(&Corrective::EmptyReply) {
                return Err(AgentError::EmptyReply {
                    agent: self.agent.name.clone(),
                });
            }
            self.correct(Corrective::EmptyReply, MSG_EMPTY_REPLY.to_string());
            return Ok(Verdict::Continue);
        }
        let (Some(check), Some(outputs)) = (&self.agent.consistency, &self.outputs) else {
            return Ok(Verdict::Accept);
        };
        match check(text, outputs) {
            Some(detail) => {
                self.ctx.trajectory.record(
                    self.last_llm_seq,
                    &self.agent.name,
                    TranscriptEvent::Disagreement {
                        detail: detail.clone(),
                        outputs: outputs.clone(),
                    },
                );
                if self.disagreement.is_some() {
                    tracing::warn!(agent = %self.agent.name, %detail, "verdict still disagrees after reconcile");
                    return Ok(Verdict::Accept);
                }
                let msg = format!(
                    "Your set-results values and your final reply disagree: {detail}. Re-examine your analysis, \
                     call set-results again with the values you stand by, then repeat your final reply in full \
                     so that both agree."
                );
                self.disagreement = Some(Disagreement {
                    detail,
                    resolved: false,
                });
                self.correct(Corrective::Reconcile, msg);
                Ok(Verdict::Continue)
            }
            None => {
                if let Some(d) = &mut self.disagreement {
                    d.resolved = true;
                }
                Ok(Verdict::Accept)
            }
        }
    }

    /// Sends `text` to the model as a user message (merged into a pending user message so roles
    /// keep alternating) and records it.
    fn correct(&mut self, reason: Corrective, text: String) {
        self.correctives.insert(reason);
        self.ctx.trajectory.record(
            self.last_llm_seq,
            &self.agent.name,
            TranscriptEvent::Corrective {
                reason,
                message: text.clone(),
            },
        );
        self.push_user_part(Part::Text { text });
    }

    fn push_user_part(&mut self, part: Part) {
        match self.history.last_mut() {
            Some(last) if last.role == Role::User => last.parts.push(part),
            _ => self.history.push(Message {
                role: Role::User,
                parts: vec![part],
            }),
        }
    }

    fn request(&self, tools: &[ToolDecl]) -> ChatRequest {
        // Once the model has ended without its results (or is out of turns), asking nicely is
        // not enough for small models: name set-results as the tool it must call.
        let force_tool = (self.force_results
            && self.outputs.is_none()
            && self.forced_turns < MAX_FORCED_TURNS
            && tools.iter().any(|t| t.name == SET_RESULTS))
        .then(|| SET_RESULTS.to_string());
        ChatRequest {
            system: self.system.clone(),
            messages: self.history.clone(),
            tools: tools.to_vec(),
            temperature: self.agent.temperature,
            thinking: self.agent.thinking,
            max_output_tokens: None,
            force_tool,
        }
    }

    /// One model turn, with its `llm` span and transcript. An input overflow triggers one
    /// forced summarisation and a retry.
    async fn call_model(&mut self, tools: &[ToolDecl]) -> Result<ChatResponse, AgentError> {
        loop {
            let request = self.request(tools);
            if request.force_tool.is_some() {
                self.forced_turns += 1;
            }
            let mut span = Span::new(SpanKind::Llm, self.child_nesting, &self.agent.name);
            span.model = self.model.name();
            let mut open = self.ctx.trajectory.start(span);
            self.last_llm_seq = open.seq();
            let tool_names: Vec<String> = request.tools.iter().map(|t| t.name.clone()).collect();
            let tools_changed = tool_names != self.last_tools;
            record_request(
                self.ctx,
                open.seq(),
                &self.agent.name,
                &self.model.name(),
                &request,
                self.sent_from,
                tools_changed,
            );
            self.last_tools = tool_names;
            self.sent_from = self.history.len();
            match self.model.chat_recorded(&request).await {
                Ok(mut response) => {
                    if response.message.parts.is_empty() {
                        // Providers reject empty model turns in the history (INVALID_ARGUMENT).
                        response.message.parts.push(Part::Text {
                            text: String::new(),
                        });
                    }
                    let tokens = self.absorb(&mut open, &response);
                    open.finish(None);
                    self.history.push(response.message.clone());
                    self.sent_from = self.history.len();
                    self.last_seen = Some((
                        response.usage.input_tokens + response.usage.output_tokens,
                        self.history.len(),
                    ));
                    self.charge(tokens)?;
                    return Ok(response);
                }
                Err(failure) => {
                    // The attempts of a failed turn belong in the transcript as much as those of
                    // a successful one: they are the only record of what the provider said.
                    for exchange in failure.exchanges {
                        self.ctx.trajectory.record(
                            open.seq(),
                            &self.agent.name,
                            TranscriptEvent::Exchange { exchange },
                        );
                    }
                    let err = failure.error;
                    let retry =
                        matches!(err, LlmError::InputTooLong { .. }) && !self.overflow_retried;
                    self.ctx.trajectory.record(
                        open.seq(),
                        &self.agent.name,
                        TranscriptEvent::LlmError {
                            message: err.to_string(),
                            will_retry: retry,
                        },
                    );
                    open.finish(Some(err.to_string()));
                    if !retry {
                        return Err(err.into());
                    }
                    self.overflow_retried = true;
                    if !self.summarise(true).await? {
                        return Err(err.into());
                    }
                }
            }
        }
    }

    /// Copies a response's usage, thoughts and reply into its span and the transcript; returns
    /// the tokens to charge.
    fn absorb(&mut self, open: &mut crate::trajectory::OpenSpan, response: &ChatResponse) -> u64 {
        let seq = open.seq();
        let msg = &response.message;
        let has_calls = msg.tool_calls().next().is_some();
        let mut thoughts: Vec<&str> = msg
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::Thought { text, .. } if !text.is_empty() => Some(text.as_str()),
                _ => None,
            })
            .collect();
        let text = msg.text();
        if has_calls && !text.trim().is_empty() {
            // Text that accompanies tool calls is commentary, not the answer.
            thoughts.push(&text);
        }
        let s = open.span_mut();
        note_response(s, response);
        if !thoughts.is_empty() {
            s.thoughts = Some(thoughts.join("\n\n"));
        }
        if !has_calls {
            s.reply = Some(text);
        }
        record_response(self.ctx, seq, &s.name, response);
        self.usage.add(&response.usage);
        self.llm_calls += 1;
        response.usage.input_tokens + response.usage.output_tokens + response.usage.thoughts_tokens
    }

    /// Charges the job budget and this agent's own budget.
    fn charge(&mut self, tokens: u64) -> Result<(), AgentError> {
        self.agent_tokens += tokens;
        self.ctx.budget.charge(tokens)?;
        match self.agent.limits.token_budget {
            Some(limit) if self.agent_tokens > limit => Err(AgentError::TokenBudget {
                used: self.agent_tokens,
                limit,
            }),
            _ => Ok(()),
        }
    }
}

/// The model, token counts and cache hit of a response, on its LLM span.
fn note_response(span: &mut Span, response: &ChatResponse) {
    span.model = response.model.clone();
    span.input_tokens = response.usage.input_tokens;
    span.output_tokens = response.usage.output_tokens;
    span.thoughts_tokens = response.usage.thoughts_tokens;
    span.cached_tokens = response.usage.cached_tokens;
    span.cache_hit = is_cache_hit(response);
}

/// Records a response in the transcript under span `seq`: its HTTP exchanges (retries
/// included), then the response itself.
fn record_response(ctx: &RunContext, seq: u64, agent: &str, response: &ChatResponse) {
    for exchange in &response.exchanges {
        ctx.trajectory.record(
            seq,
            agent,
            TranscriptEvent::Exchange {
                exchange: exchange.clone(),
            },
        );
    }
    ctx.trajectory.record(
        seq,
        agent,
        TranscriptEvent::Response {
            model: response.model.clone(),
            message: response.message.clone(),
            usage: response.usage,
            finish: response.finish,
            cache_hit: is_cache_hit(response),
        },
    );
}

/// Records a request as the messages added since index `from` (with the system prompt and tool
/// names when the conversation starts afresh).
/// Tool names are included when they changed since the agent's previous request.
fn record_request(
    ctx: &RunContext,
    seq: u64,
    agent: &str,
    model: &str,
    request: &ChatRequest,
    from: usize,
    tools_changed: bool,
) {
    let from = from.min(request.messages.len());
    let fresh = from == 0;
    ctx.trajectory.record(
        seq,
        agent,
        TranscriptEvent::Request {
            model: model.to_string(),
            history_len: request.messages.len(),
            from,
            system: fresh.then(|| request.system.clone()),
            tools: (fresh || tools_changed)
                .then(|| request.tools.iter().map(|t| t.name.clone()).collect()),
            new_messages: request.messages[from..].to_vec(),
        },
    );
}
