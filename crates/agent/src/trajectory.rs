//! Recording a job: [`Trajectory`] numbers spans and fans them (and transcript entries) out to
//! pluggable [`SpanSink`]s; [`OpenSpan`] is a started span that must be finished.
//!
//! Each span is emitted twice with the same `seq`, at start and at finish, so a live viewer sees
//! work in progress. A sink failure is retried a few times and then logged; it never fails the
//! job (the reference aborted the job on a failed upload, aflow.md §10.2). [`JsonlSink`] writes
//! one event per line to a trajectory file and its transcript to a sibling
//! `<stem>.transcript.jsonl` (see [`transcript_path`]).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::span::{Span, SpanKind, Timestamp};
use crate::transcript::{TranscriptEntry, TranscriptEvent};

/// How often an event is offered to a failing sink before it is dropped with a warning.
const SINK_ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// Where span events and transcript entries go. Called from the agent loop's task, in event
/// order; implementations must be cheap or buffer internally.
pub trait SpanSink: Send + Sync {
    fn span(&self, span: &Span) -> Result<(), SinkError>;
    /// Transcript entries; sinks that only care about spans keep the default.
    fn transcript(&self, _entry: &TranscriptEntry) -> Result<(), SinkError> {
        Ok(())
    }
}

/// `run.jsonl` → `run.transcript.jsonl`; any other name gets `.transcript.jsonl` appended.
pub fn transcript_path(trajectory: &Path) -> PathBuf {
    let name = trajectory
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".jsonl").unwrap_or(&name);
    trajectory.with_file_name(format!("{stem}.transcript.jsonl"))
}

/// Appends JSON lines to a trajectory file and its transcript file, flushing each line so a
/// crash loses at most the event being written.
pub struct JsonlSink {
    spans: Mutex<(PathBuf, BufWriter<File>)>,
    transcript: Mutex<(PathBuf, BufWriter<File>)>,
}

impl JsonlSink {
    /// Creates (truncates) `trajectory` and its transcript file.
    pub fn create(trajectory: &Path) -> Result<Self, SinkError> {
        let open = |path: PathBuf| -> Result<(PathBuf, BufWriter<File>), SinkError> {
            let file = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&path)
                .map_err(|source| SinkError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
            Ok((path, BufWriter::new(file)))
        };
        Ok(JsonlSink {
            spans: Mutex::new(open(trajectory.to_path_buf())?),
            transcript: Mutex::new(open(transcript_path(trajectory))?),
        })
    }

    fn write_line<T: serde::Serialize>(
        target: &Mutex<(PathBuf, BufWriter<File>)>,
        value: &T,
    ) -> Result<(), SinkError> {
        let line = serde_json::to_string(value).map_err(|e| SinkError::Other(e.to_string()))?;
        // A poisoned lock only means another writer panicked mid-line; the file is still usable.
        let mut guard = target.lock().unwrap_or_else(|p| p.into_inner());
        let (path, out) = &mut *guard;
        out.write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush())
            .map_err(|source| SinkError::Io {
                path: path.display().to_string(),
                source,
            })
    }
}

impl SpanSink for JsonlSink {
    fn span(&self, span: &Span) -> Result<(), SinkError> {
        Self::write_line(&self.spans, span)
    }

    fn transcript(&self, entry: &TranscriptEntry) -> Result<(), SinkError> {
        Self::write_line(&self.transcript, entry)
    }
}

/// An in-memory sink, for tests and for callers that post-process a run.
#[derive(Default)]
pub struct MemorySink {
    pub spans: Mutex<Vec<Span>>,
    pub transcript: Mutex<Vec<TranscriptEntry>>,
}

impl MemorySink {
    pub fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn transcript_entries(&self) -> Vec<TranscriptEntry> {
        self.transcript
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl SpanSink for MemorySink {
    fn span(&self, span: &Span) -> Result<(), SinkError> {
        self.spans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(span.clone());
        Ok(())
    }

    fn transcript(&self, entry: &TranscriptEntry) -> Result<(), SinkError> {
        self.transcript
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(entry.clone());
        Ok(())
    }
}

struct Inner {
    next_seq: AtomicU64,
    sinks: Vec<Arc<dyn SpanSink>>,
}

/// The recorder for one job. Cheap to clone; clones share the sequence counter.
#[derive(Clone)]
pub struct Trajectory {
    inner: Arc<Inner>,
}

impl Default for Trajectory {
    fn default() -> Self {
        Trajectory::new(Vec::new())
    }
}

impl Trajectory {
    pub fn new(sinks: Vec<Arc<dyn SpanSink>>) -> Self {
        Trajectory {
            inner: Arc::new(Inner {
                next_seq: AtomicU64::new(0),
                sinks,
            }),
        }
    }

    /// Numbers and stamps `span`, emits its start event and returns the open span.
    pub fn start(&self, mut span: Span) -> OpenSpan {
        span.seq = self.inner.next_seq.fetch_add(1, Ordering::SeqCst);
        span.started = Timestamp::now();
        span.finished = None;
        self.emit(&span);
        OpenSpan {
            span,
            trajectory: self.clone(),
            done: false,
        }
    }

    /// Starts a span of `kind` named `name` at `nesting`.
    pub fn start_new(&self, kind: SpanKind, nesting: u32, name: &str) -> OpenSpan {
        self.start(Span::new(kind, nesting, name))
    }

    pub fn record(&self, span_seq: u64, agent: &str, event: TranscriptEvent) {
        let entry = TranscriptEntry {
            span_seq,
            agent: agent.to_string(),
            event,
        };
        let Ok(clean) = scrubbed(&entry) else { return };
        let entry = clean.unwrap_or(entry);
        for sink in &self.inner.sinks {
            deliver(|| sink.transcript(&entry), "transcript entry", span_seq);
        }
    }

    fn emit(&self, span: &Span) {
        let Ok(clean) = scrubbed(span) else { return };
        let span = clean.as_ref().unwrap_or(span);
        for sink in &self.inner.sinks {
            deliver(|| sink.span(span), "span", span.seq);
        }
    }
}

/// An event that held an API key but could not be rebuilt without it; it is dropped.
struct Unrecordable;

/// `event` with every API key this process connected with replaced by `[REDACTED]`, or
/// `Ok(None)` when it holds none. Checked here, once, for every sink: a key a user pasted into a
/// report, or one a model repeated, would otherwise be written into the trajectory verbatim.
fn scrubbed<T: serde::Serialize + serde::de::DeserializeOwned>(
    event: &T,
) -> Result<Option<T>, Unrecordable> {
    let Ok(json) = serde_json::to_string(event) else {
        return Ok(None);
    };
    let Some(clean) = llm::redact_known_secrets(&json) else {
        return Ok(None);
    };
    serde_json::from_str(&clean).map(Some).map_err(|err| {
        // Only a key cut through a JSON escape could get here; never record the original.
        tracing::warn!(%err, "dropped a trajectory event that held an API key");
        Unrecordable
    })
}

fn deliver(mut send: impl FnMut() -> Result<(), SinkError>, what: &str, seq: u64) {
    for attempt in 1..=SINK_ATTEMPTS {
        match send() {
            Ok(()) => return,
            Err(err) if attempt < SINK_ATTEMPTS => {
                tracing::debug!(%err, attempt, seq, "trajectory sink failed, retrying {what}");
            }
            Err(err) => {
                tracing::warn!(%err, seq, "trajectory sink failed {SINK_ATTEMPTS} times; dropping {what}");
            }
        }
    }
}

/// A started span. Finish it with [`OpenSpan::finish`]; dropping it unfinished emits a finish
/// event with an error so the trajectory never shows a span as running forever.
pub struct OpenSpan {
    span: Span,
    trajectory: Trajectory,
    done: bool,
}

impl OpenSpan {
    pub fn seq(&self) -> u64 {
        self.span.seq
    }

    pub fn nesting(&self) -> u32 {
        self.span.nesting
    }

    /// The span, to fill in results, tokens, reply before finishing.
    pub fn span_mut(&mut self) -> &mut Span {
        &mut self.span
    }

    pub fn finish(self, error: Option<String>) -> Span {
        self.finish_at(Timestamp::now(), error)
    }

    /// Finishes with a finish time measured elsewhere (concurrent tool calls are finished in
    /// call order, after the fact, so the event order stays deterministic).
    pub fn finish_at(mut self, at: Timestamp, error: Option<String>) -> Span {
        self.done = true;
        self.span.finished = Some(at.max(self.span.started));
        if error.is_some() {
            self.span.error = error;
        }
        self.trajectory.emit(&self.span);
        self.span.clone()
    }
}

impl Drop for OpenSpan {
    fn drop(&mut self) {
        if !self.done {
            self.span.finished = Some(Timestamp::now().max(self.span.started));
            if self.span.error.is_none() {
                self.span.error = Some("abandoned: the run ended before this span finished".into());
            }
            self.trajectory.emit(&self.span);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Flaky {
        failures_left: Mutex<usize>,
        seen: Mutex<Vec<u64>>,
    }

    impl SpanSink for Flaky {
        fn span(&self, span: &Span) -> Result<(), SinkError> {
            let mut left = self.failures_left.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                return Err(SinkError::Other("store unavailable".into()));
            }
            self.seen.lock().unwrap().push(span.seq);
            Ok(())
        }
    }

    #[test]
    fn failing_sink_is_retried_then_dropped_without_failing_the_run() {
        let flaky = Arc::new(Flaky {
            failures_left: Mutex::new(2),
            seen: Mutex::default(),
        });
        let memory = Arc::new(MemorySink::default());
        let traj = Trajectory::new(vec![flaky.clone(), memory.clone()]);
        let span = traj.start_new(SpanKind::Flow, 0, "f");
        span.finish(None);
        // Two failures, then the third attempt of the start event succeeds.
        assert_eq!(*flaky.seen.lock().unwrap(), vec![0, 0]);
        *flaky.failures_left.lock().unwrap() = 10;
        traj.start_new(SpanKind::Action, 1, "a").finish(None);
        assert_eq!(
            memory.spans().len(),
            4,
            "the healthy sink still gets every event"
        );
    }

    #[test]
    fn dropped_span_is_finished_with_an_error() {
        let memory = Arc::new(MemorySink::default());
        let traj = Trajectory::new(vec![memory.clone()]);
        drop(traj.start_new(SpanKind::Agent, 1, "expert"));
        let spans = memory.spans();
        assert_eq!(spans.len(), 2);
        assert!(spans[1].finished.is_some());
        assert!(
            spans[1]
                .error
                .as_deref()
                .unwrap_or("")
                .contains("abandoned")
        );
    }

    #[test]
    fn transcript_sits_next_to_the_trajectory() {
        assert_eq!(
            transcript_path(Path::new("/x/run.jsonl")),
            Path::new("/x/run.transcript.jsonl")
        );
        assert_eq!(
            transcript_path(Path::new("t")),
            Path::new("t.transcript.jsonl")
        );
    }
}
