/*!
The LLM agent: a tool-calling loop with typed outputs, and the record of what it did.

Principal types:
- [`Agent`]: one agent definition (instruction, first prompt, tools with an allow list, typed
  outputs via a validated `set-results` tool, [`Limits`]); [`Agent::run`] drives the loop
  ([`run`] module docs list its rules) and [`Agent::run_candidates`] votes over N runs.
- [`Trajectory`] / [`Span`] / [`SpanSink`]: every flow, action, agent, LLM and tool step as a
  span emitted at start and finish to pluggable sinks ([`JsonlSink`] writes JSONL), plus the
  verbatim turn-level [`transcript`] next to it.
- [`CachingModel`]: an on-disk LLM reply cache that makes reruns replay deterministically.
- [`view`]: reading a trajectory back into a tree and rendering it for a terminal.

Architecture invariants:
- Speaks to models only through [`llm::ChatModel`] and to code only through [`tools::ToolBox`].
- Nothing a model sends is fatal to the process: unknown tools, bad arguments, duplicate calls,
  too many calls and tool panics become tool errors the model sees.
- Recording never fails a job: sink errors are retried and logged.
*/

pub mod cache;
pub mod candidates;
pub mod consistency;
pub mod definition;
pub mod error;
pub mod run;
pub mod schema;
pub mod span;
pub mod trajectory;
pub mod transcript;
pub mod view;

pub use cache::{CachingModel, is_cache_hit};
pub use candidates::{Vote, outputs_key};
pub use consistency::bool_verdict_check;
pub use definition::{
    Agent, AgentOutcome, ConsistencyCheck, Disagreement, Limits, OutputSpec, OutputValidator,
    RunContext, SET_RESULTS, TokenBudget,
};
pub use error::AgentError;
pub use span::{Span, SpanKind, Timestamp};
pub use trajectory::{
    JsonlSink, MemorySink, OpenSpan, SinkError, SpanSink, Trajectory, transcript_path,
};
pub use transcript::{Corrective, TranscriptEntry, TranscriptEvent};
