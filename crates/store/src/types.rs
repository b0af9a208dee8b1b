//! The values the store reads and writes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The only workflow the engine runs today.
pub const WORKFLOW_KCSAN: &str = "assessment-kcsan";

/// An enum column held a value this code does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownValue {
    what: &'static str,
    value: String,
}

/// A string-valued enum stored as TEXT: `as_str` names the stored value, `FromStr` reads it back.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident ($what:literal) { $($(#[$vmeta:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($(#[$vmeta])* $variant),* }

        impl $name {
            pub const ALL: &[$name] = &[$($name::$variant),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $($text => Ok($name::$variant),)*
                    _ => Err(UnknownValue { what: $what, value: s.to_string() }),
                }
            }
        }
    };
}

text_enum! {
    /// Where a job is in its life.
    Status ("status") {
        /// Waiting for a worker.
        Queued = "queued",
        /// Claimed by a worker.
        Running = "running",
        /// Finished with a verdict.
        Done = "done",
        /// Finished with an error.
        Failed = "failed",
        /// Stopped by a user before it finished.
        Cancelled = "cancelled",
    }
}

text_enum! {
    /// A reviewer's decision on a verdict; `Unreviewed` also withdraws an earlier decision.
    Decision ("decision") {
        Correct = "correct",
        Incorrect = "incorrect",
        Unreviewed = "unreviewed",
    }
}

text_enum! {
    /// What an account may do. The server decides what each role allows; the store only keeps it.
    Role ("role") {
        Viewer = "viewer",
        Reviewer = "reviewer",
        Admin = "admin",
        /// A worker process: claims jobs and writes their results.
        Worker = "worker",
    }
}

/// The expert's verdict, for filtering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Benign,
    Harmful,
}

/// Which kernel source a job analyses.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kernel {
    /// The server's default tree (`racejudge serve --kernel`).
    #[default]
    Default,
    /// A tree on the worker's disk.
    Dir(String),
    /// A git repository and commit to check out.
    Git { repo: String, commit: String },
}

/// What a job is asked to do: everything a user submits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// `assessment-kcsan` today ([`WORKFLOW_KCSAN`]).
    pub workflow: String,
    /// The parsed report's title (`KCSAN: data-race in a / b`): what the list shows and searches.
    pub title: String,
    /// The report text as submitted.
    pub report: String,
    pub kernel: Kernel,
    /// The kernel `.config` text, when one was given.
    pub config: Option<String>,
    /// `static` or `llm`.
    pub expert: String,
    /// `provider:model` for the LLM expert.
    pub model: Option<String>,
}

/// What a finished job found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub benign: bool,
    /// 0.5 = a coin toss, 1.0 = certain.
    pub confidence: f64,
    /// The expert's whole output (`Benign`, `Confident`, `Explanation`, `Evidence`, …) as JSON.
    pub results: Value,
}

/// One job, with its inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: i64,
    #[serde(flatten)]
    pub input: NewJob,
    pub status: Status,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    /// The worker that claimed the current attempt.
    pub worker: Option<String>,
    /// That worker's version (the seeds' "Revision" column).
    pub revision: Option<String>,
    /// How many times the job has been claimed; spans and transcript are kept per attempt.
    pub attempt: i64,
    pub error: Option<String>,
    /// Present once the job is done.
    pub outcome: Option<Outcome>,
    /// The decision of the newest review journal entry.
    pub review: Decision,
}

/// One row of the job list: no report, config or results body, and the error cut to
/// [`ERROR_PREVIEW_CHARS`] characters, so that a page of a few hundred rows stays small.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    pub id: i64,
    pub workflow: String,
    pub title: String,
    pub expert: String,
    pub model: Option<String>,
    pub status: Status,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub worker: Option<String>,
    pub revision: Option<String>,
    pub attempt: i64,
    pub error_preview: Option<String>,
    pub benign: Option<bool>,
    pub confidence: Option<f64>,
    pub review: Decision,
}

/// How much of a job's error the list shows.
pub const ERROR_PREVIEW_CHARS: i64 = 200;

/// Filters for [`crate::Store::list_jobs`] and [`crate::Store::count_jobs`]; all given ones must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobFilter {
    pub status: Option<Status>,
    pub verdict: Option<Verdict>,
    pub review: Option<Decision>,
    pub expert: Option<String>,
    pub model: Option<String>,
    /// A substring of the title, matched case-insensitively (ASCII); `%` and `_` are literal.
    pub title: Option<String>,
}

/// A review to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewReview {
    /// Who decided (a user name or an email).
    pub reviewer: String,
    pub decision: Decision,
    pub reason: String,
    /// Where the decision came from (`web`, `api`, `cli`, …).
    pub source: String,
}

/// One entry of a job's review journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub id: i64,
    pub job_id: i64,
    pub at_ms: i64,
    #[serde(flatten)]
    pub review: NewReview,
}
