//! What an agent is: [`Agent`] (instruction, first prompt, tools, typed outputs, [`Limits`])
//! and what a run needs and returns: [`RunContext`], [`TokenBudget`], [`AgentOutcome`].
//!
//! Typed outputs are delivered through a virtual `set-results` tool whose arguments are checked
//! against [`OutputSpec::schema`] (see [`crate::schema`]); a bad call goes back to the model as a
//! tool error. The loop itself lives in [`crate::run`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use llm::{ThinkingLevel, ToolDecl, Usage};
use serde::Serialize;
use serde_json::Value;
use tools::ToolBox;

use crate::error::AgentError;
use crate::trajectory::Trajectory;

/// The name of the virtual tool that delivers typed outputs.
pub const SET_RESULTS: &str = "set-results";

/// Bounds on one run of an agent.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Model turns before the single "answer now" phase (only `set-results` offered).
    pub max_iterations: u32,
    /// Tokens (input + output + thoughts, summaries included) this agent may spend per run.
    pub token_budget: Option<u64>,
    /// Tool calls of one turn that run at the same time.
    pub concurrency: usize,
    /// Tool calls of one turn that run at all; the rest are skipped and the model is told.
    pub max_calls_per_turn: usize,
    /// Summarise older turns when the estimated request exceeds this share of the window.
    pub compress_at: f64,
    /// Share of the window kept verbatim (the most recent turns) when summarising.
    pub keep_recent: f64,
    /// Largest share of the window one tool result may take; longer results are cut with a
    /// note telling the model to narrow the call (tools cap lines, not tokens).
    pub max_result_share: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_iterations: 60,
            token_budget: None,
            concurrency: 8,
            max_calls_per_turn: 10,
            compress_at: 0.75,
            keep_recent: 0.25,
            max_result_share: 0.2,
        }
    }
}

/// The typed outputs an agent must deliver via `set-results`.
#[derive(Clone)]
pub struct OutputSpec {
    /// Flat object schema (see [`crate::schema`]).
    pub schema: Value,
    pub description: String,
    /// Checks that a flat schema cannot express (one field required only when another has a
    /// given value) and may normalise the values; runs after the schema check.
    pub validator: Option<OutputValidator>,
}

impl std::fmt::Debug for OutputSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputSpec")
            .field("schema", &self.schema)
            .field("description", &self.description)
            .field("validator", &self.validator.is_some())
            .finish()
    }
}

/// Takes schema-valid `set-results` arguments and returns the outputs to keep (possibly
/// rewritten), or a message that goes back to the model as the tool error.
pub type OutputValidator = Arc<dyn Fn(Value) -> Result<Value, String> + Send + Sync>;

/// Compares the final text with the `set-results` values; `Some(detail)` when they disagree.
pub type ConsistencyCheck = Arc<dyn Fn(&str, &Value) -> Option<String> + Send + Sync>;

/// One LLM agent. Cheap to clone.
#[derive(Clone)]
pub struct Agent {
    pub name: String,
    /// System prompt (fully rendered).
    pub instruction: String,
    /// First user message (fully rendered).
    pub prompt: String,
    pub tools: ToolBox,
    /// `None`: every tool of `tools`.
    pub allowed_tools: Option<BTreeSet<String>>,
    pub outputs: Option<OutputSpec>,
    /// Whether a final text reply is required (besides outputs).
    pub needs_reply: bool,
    pub limits: Limits,
    pub temperature: Option<f32>,
    pub thinking: ThinkingLevel,
    pub consistency: Option<ConsistencyCheck>,
}

impl Agent {
    pub fn new(
        name: impl Into<String>,
        instruction: impl Into<String>,
        prompt: impl Into<String>,
        tools: ToolBox,
    ) -> Self {
        Agent {
            name: name.into(),
            instruction: instruction.into(),
            prompt: prompt.into(),
            tools,
            allowed_tools: None,
            outputs: None,
            needs_reply: true,
            limits: Limits::default(),
            temperature: None,
            thinking: ThinkingLevel::Default,
            consistency: None,
        }
    }

    /// Restricts the agent to these tools of its tool box.
    pub fn allow_tools<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_tools = Some(names.into_iter().map(Into::into).collect());
        self
    }

    pub fn with_outputs(mut self, schema: Value) -> Self {
        self.outputs = Some(OutputSpec {
            schema,
            description: "Use this tool to provide results of the analysis.".into(),
            validator: None,
        });
        self
    }

    /// Adds a validator to the outputs declared by [`Agent::with_outputs`] (which must come first;
    /// without outputs there is nothing to validate and this does nothing).
    pub fn with_output_validator(mut self, validator: OutputValidator) -> Self {
        if let Some(out) = &mut self.outputs {
            out.validator = Some(validator);
        }
        self
    }

    pub fn reply_required(mut self, needed: bool) -> Self {
        self.needs_reply = needed;
        self
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn with_sampling(mut self, temperature: Option<f32>, thinking: ThinkingLevel) -> Self {
        self.temperature = temperature;
        self.thinking = thinking;
        self
    }

    pub fn with_consistency_check(mut self, check: ConsistencyCheck) -> Self {
        self.consistency = Some(check);
        self
    }

    /// The system prompt as sent: the instruction plus the loop's standing rules.
    pub fn system_prompt(&self) -> String {
        let mut s = self.instruction.clone();
        if self.allowed_tool_names().next().is_some() {
            s.push_str("\nPrefer calling several tools at the same time to save round-trips.\n");
        }
        if self.outputs.is_some() {
            s.push_str("\nUse the set-results tool to provide the results of the analysis.\n");
            if self.needs_reply {
                s.push_str("Call it before your final reply; the final reply is your last message and has no tool calls.\n");
            }
        }
        s
    }

    pub(crate) fn tool_allowed(&self, name: &str) -> bool {
        self.tools.get(name).is_some()
            && self.allowed_tools.as_ref().is_none_or(|a| a.contains(name))
    }

    pub(crate) fn allowed_tool_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.tools
            .names()
            .filter(|n| self.allowed_tools.as_ref().is_none_or(|a| a.contains(*n)))
    }

    /// The tool declarations of a turn; in the answer-now phase only `set-results`.
    pub fn tool_decls(&self, answer_now: bool) -> Vec<ToolDecl> {
        let mut decls = Vec::new();
        if !answer_now {
            for spec in self.tools.specs() {
                if self.tool_allowed(spec.name) {
                    decls.push(ToolDecl {
                        name: spec.name.to_string(),
                        description: spec.description.to_string(),
                        parameters: spec.input_schema,
                    });
                }
            }
        }
        if let Some(out) = &self.outputs {
            decls.push(ToolDecl {
                name: SET_RESULTS.to_string(),
                description: out.description.clone(),
                parameters: out.schema.clone(),
            });
        }
        decls
    }

    pub(crate) fn check(&self) -> Result<(), AgentError> {
        let fail = |message: String| {
            Err(AgentError::Definition {
                agent: self.name.clone(),
                message,
            })
        };
        if let Some(allowed) = &self.allowed_tools {
            for name in allowed {
                if self.tools.get(name).is_none() {
                    return fail(format!("allowed tool {name:?} is not in the tool box"));
                }
            }
        }
        if self.tools.get(SET_RESULTS).is_some() {
            return fail(format!(
                "{SET_RESULTS:?} is reserved for the agent's outputs"
            ));
        }
        if let Some(out) = &self.outputs
            && let Err(message) = crate::schema::check_schema(&out.schema)
        {
            return fail(message);
        }
        if !self.needs_reply && self.outputs.is_none() {
            return fail("an agent needs a reply, outputs, or both".into());
        }
        let l = &self.limits;
        if l.concurrency == 0 || l.max_calls_per_turn == 0 || l.max_iterations == 0 {
            return fail("limits must be positive".into());
        }
        Ok(())
    }
}

/// A job-wide token budget shared by every agent (and candidate) of the job.
#[derive(Debug, Default)]
pub struct TokenBudget {
    limit: Option<u64>,
    used: AtomicU64,
}

impl TokenBudget {
    pub fn new(limit: Option<u64>) -> Self {
        TokenBudget {
            limit,
            used: AtomicU64::new(0),
        }
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }

    /// Charges `tokens`; fails once the total is over the limit.
    pub fn charge(&self, tokens: u64) -> Result<(), AgentError> {
        let used = self.used.fetch_add(tokens, Ordering::SeqCst) + tokens;
        match self.limit {
            Some(limit) if used > limit => Err(AgentError::TokenBudget { used, limit }),
            _ => Ok(()),
        }
    }
}

/// What a run records into and charges against.
#[derive(Clone, Default)]
pub struct RunContext {
    pub trajectory: Trajectory,
    /// Nesting of the spans this run starts (its agent span); its calls nest one deeper.
    pub nesting: u32,
    pub budget: Arc<TokenBudget>,
}

impl RunContext {
    pub fn new(trajectory: Trajectory, budget: Option<u64>) -> Self {
        RunContext {
            trajectory,
            nesting: 0,
            budget: Arc::new(TokenBudget::new(budget)),
        }
    }

    /// The same context one level deeper (for work under a flow or action span).
    pub fn nested(&self) -> Self {
        RunContext {
            nesting: self.nesting + 1,
            ..self.clone()
        }
    }
}

/// The final reply and set-results disagreed at some point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disagreement {
    pub detail: String,
    /// The model was asked to reconcile and the final pair agrees.
    pub resolved: bool,
}

/// A successful run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentOutcome {
    pub reply: String,
    /// The last successful `set-results` arguments.
    pub outputs: Option<Value>,
    pub usage: Usage,
    pub llm_calls: u32,
    pub tool_calls: u32,
    pub iterations: u32,
    pub summaries: u32,
    pub disagreement: Option<Disagreement>,
}
