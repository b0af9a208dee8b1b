//! Job workers for the racejudge service.
//!
//! A worker claims the oldest queued job from the [`store::Store`], runs the `assessment-kcsan`
//! flow on it exactly as `racejudge assess` does (static expert by default, the configured LLM
//! expert for `llm` jobs), streams every span and transcript entry into the store while the flow
//! records them, and then `finish`es or `fail`s its attempt. It heartbeats while it lives.
//!
//! The flow is synchronous (and may run for minutes), so it runs on a blocking thread; the
//! trajectory sink hands spans to an async writer task through a channel, because a sink may be
//! called from inside another runtime (the LLM expert's), where blocking on the store is not
//! allowed. Writes are fenced by the attempt: once a job is cancelled or re-queued, the store
//! refuses this attempt's writes ([`store::StoreError::Stale`]) and the worker drops the result.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use agent::{SinkError, Span, SpanSink, TranscriptEntry};
use assess::expert::Expert;
use assess::kcsan::{ExpertFactory, FlowOptions, KernelSpec};
use serde_json::Value;
use store::{Job, Kernel, Outcome, Store, StoreError};
use tokio::sync::{mpsc, watch};

/// Everything a worker needs besides the store.
#[derive(Clone)]
pub struct Config {
    /// Unique per worker process/thread: the store keys liveness and claims by it.
    pub name: String,
    /// Shown as the job's "Revision".
    pub version: String,
    /// The checkout/build/index cache shared with `racejudge assess`.
    pub cache: assess::cache::Cache,
    /// The tree for jobs that name none (`racejudge serve --kernel`).
    pub default_kernel: Option<PathBuf>,
    /// The LLM expert, when the server was configured with one; `llm` jobs fail without it.
    pub llm: Option<ExpertFactory>,
    /// Build/open the code index for the static expert (the LLM expert always needs it).
    pub use_index: bool,
    /// Parallelism of one flow (indexing).
    pub jobs: usize,
    pub arch: String,
    /// How long an idle worker waits before asking the queue again.
    pub poll: Duration,
    /// How often a worker tells the store it is alive.
    pub heartbeat: Duration,
}

impl Config {
    /// A config with the defaults `racejudge serve` uses.
    pub fn new(name: impl Into<String>, cache: assess::cache::Cache) -> Self {
        Config {
            name: name.into(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            cache,
            default_kernel: None,
            llm: None,
            use_index: true,
            jobs: 1,
            arch: "x86_64".into(),
            poll: Duration::from_millis(200),
            heartbeat: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What [`run_one`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    /// The queue was empty.
    Idle,
    /// Job `id` got a verdict.
    Done(i64),
    /// Job `id` failed; the error is in the store.
    Failed(i64),
    /// Job `id` was cancelled or re-queued while it ran; its result was dropped.
    Dropped(i64),
}

/// Claims one job and runs it to the end. `Ran::Idle` when the queue is empty.
pub async fn run_one(store: &Store, config: &Config) -> Result<Ran, WorkerError> {
    let Some(job) = store.claim(&config.name, &config.version).await? else {
        return Ok(Ran::Idle);
    };
    run_job(store, config, job).await
}

/// Runs claimed `job` (its current attempt) and records the outcome.
pub async fn run_job(store: &Store, config: &Config, job: Job) -> Result<Ran, WorkerError> {
    let (id, attempt) = (job.id, job.attempt);
    tracing::info!(job = id, attempt, worker = %config.name, "running job");
    let (tx, rx) = mpsc::unbounded_channel();
    let sink = Arc::new(StoreSink {
        tx,
        transcript_seq: AtomicI64::new(0),
        stale: Arc::new(AtomicBool::new(false)),
    });
    let stale = sink.stale.clone();
    let writer = tokio::spawn(write_entries(store.clone(), id, attempt, rx, stale.clone()));
    let cfg = config.clone();
    let result = tokio::task::spawn_blocking(move || execute(&cfg, &job, sink)).await;
    // The sink (and so the channel's sender) is gone with the flow: the writer drains what is
    // left, so every span is stored before the job is marked finished.
    if let Err(err) = writer.await {
        tracing::warn!(job = id, error = %err, "span writer stopped");
    }
    let written = match result {
        Ok(Ok(outcome)) => store
            .finish(id, attempt, &outcome)
            .await
            .map(|_| Ran::Done(id)),
        Ok(Err(message)) => store
            .fail(id, attempt, &message)
            .await
            .map(|_| Ran::Failed(id)),
        Err(join) => store
            .fail(
                id,
                attempt,
                &format!("internal error: the worker crashed: {join}"),
            )
            .await
            .map(|_| Ran::Failed(id)),
    };
    match written {
        Err(StoreError::Stale { .. }) => {
            tracing::info!(job = id, attempt, "job cancelled or re-queued meanwhile");
            Ok(Ran::Dropped(id))
        }
        other => Ok(other?),
    }
}

/// Runs workers' loop until `shutdown` turns true (or its sender is dropped): claim, run, repeat;
/// heartbeat meanwhile. A job running at shutdown is abandoned (left `running`): the flow cannot
/// be interrupted, and `racejudge serve` re-queues it at its next start.
pub async fn run(store: Store, config: Config, mut shutdown: watch::Receiver<bool>) {
    let heartbeat = {
        let (store, name, version, every) = (
            store.clone(),
            config.name.clone(),
            config.version.clone(),
            config.heartbeat,
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(err) = store.heartbeat(&name, &version).await {
                    tracing::warn!(worker = %name, error = %err, "heartbeat failed");
                }
            }
        })
    };
    loop {
        if *shutdown.borrow() {
            break;
        }
        let ran = tokio::select! {
            ran = run_one(&store, &config) => ran,
            _ = shutdown.changed() => break,
        };
        let wait = match ran {
            Ok(Ran::Idle) => config.poll,
            Ok(_) => continue,
            Err(err) => {
                // The database is away (or a row is unreadable): back off and try again.
                tracing::warn!(worker = %config.name, error = %err, "claiming a job failed");
                config.poll.max(Duration::from_secs(1))
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            changed = shutdown.changed() => if changed.is_err() { break },
        }
    }
    heartbeat.abort();
}

/// What the sink forwards to the writer task.
enum Record {
    Span(i64, Value),
    Transcript(i64, Value),
}

/// The trajectory sink of one attempt: numbers transcript entries and hands everything to the
/// writer. Never blocks the flow.
struct StoreSink {
    tx: mpsc::UnboundedSender<Record>,
    transcript_seq: AtomicI64,
    stale: Arc<AtomicBool>,
}

impl StoreSink {
    fn send(&self, record: Record) -> Result<(), SinkError> {
        if self.stale.load(Ordering::Relaxed) {
            return Err(SinkError::Other("the job is no longer running".into()));
        }
        self.tx
            .send(record)
            .map_err(|_| SinkError::Other("the span writer stopped".into()))
    }
}

impl SpanSink for StoreSink {
    fn span(&self, span: &Span) -> Result<(), SinkError> {
        let json = serde_json::to_value(span).map_err(|e| SinkError::Other(e.to_string()))?;
        self.send(Record::Span(span.seq as i64, json))
    }

    fn transcript(&self, entry: &TranscriptEntry) -> Result<(), SinkError> {
        let json = serde_json::to_value(entry).map_err(|e| SinkError::Other(e.to_string()))?;
        let seq = self.transcript_seq.fetch_add(1, Ordering::SeqCst);
        self.send(Record::Transcript(seq, json))
    }
}

/// Writes records in the order they were recorded until the sink is dropped. A stale attempt
/// stops the writing (the flow runs on; its result will be refused too); any other error is
/// logged and the record skipped: a sink failure is never fatal.
async fn write_entries(
    store: Store,
    id: i64,
    attempt: i64,
    mut rx: mpsc::UnboundedReceiver<Record>,
    stale: Arc<AtomicBool>,
) {
    while let Some(record) = rx.recv().await {
        if stale.load(Ordering::Relaxed) {
            continue;
        }
        let written = match &record {
            Record::Span(seq, json) => store.put_span(id, attempt, *seq, json).await,
            Record::Transcript(seq, json) => store.put_transcript(id, attempt, *seq, json).await,
        };
        match written {
            Ok(()) => {}
            Err(StoreError::Stale { .. }) => stale.store(true, Ordering::Relaxed),
            Err(err) => tracing::warn!(job = id, error = %err, "cannot store a span"),
        }
    }
}

/// The static expert: deterministic, no configuration.
fn static_factory() -> ExpertFactory {
    Arc::new(|tree, _| {
        Ok(Box::new(assess::static_expert::StaticExpert::new(tree)) as Box<dyn Expert>)
    })
}

/// Runs the flow for `job`; `Err` is the message stored as the job's error.
fn execute(config: &Config, job: &Job, sink: Arc<StoreSink>) -> Result<Outcome, String> {
    let input = &job.input;
    let parsed = report::parse(&input.report);
    let report = parsed
        .reports
        .into_iter()
        .find(|r| !r.accesses.is_empty())
        .ok_or("bad input: no KCSAN report with an access to analyse")?;
    let kernel = match &input.kernel {
        Kernel::Default => KernelSpec::Dir(config.default_kernel.clone().ok_or(
            "bad input: the job names no kernel and the server has no default (--kernel)",
        )?),
        Kernel::Dir(dir) => KernelSpec::Dir(dir.into()),
        Kernel::Git { repo, commit } => KernelSpec::Repo {
            url: repo.clone(),
            commit: commit.clone(),
        },
    };
    // The flow reads `.config` from a file; the job holds its text.
    let config_file = match &input.config {
        Some(text) => {
            let file = tempfile::NamedTempFile::new()
                .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()).map(|_| f))
                .map_err(|e| format!("environment: cannot write the job's .config: {e}"))?;
            Some(file)
        }
        None => None,
    };
    let expert = match input.expert.as_str() {
        "static" => static_factory(),
        "llm" => config
            .llm
            .clone()
            .ok_or("environment: this server has no LLM expert configured")?,
        other => return Err(format!("bad input: unknown expert {other:?}")),
    };
    let opts = FlowOptions {
        cache: config.cache.clone(),
        build: false,
        jobs: config.jobs,
        use_index: config.use_index || input.expert == "llm",
        expert,
    };
    let flow = assess::kcsan::assessment_flow(&opts)
        .map_err(|e| format!("internal error: building the flow: {e}"))?;
    let trajectory = agent::Trajectory::new(vec![sink as Arc<dyn SpanSink>]);
    let title = report.full_title();
    let assessment = assess::kcsan::assess(
        &flow,
        report,
        kernel,
        config_file.as_ref().map(|f| f.path().to_path_buf()),
        config.arch.clone(),
        &trajectory,
    )
    .map_err(|e| e.to_string())?;
    let mut results = serde_json::to_value(&assessment).map_err(|e| e.to_string())?;
    if let Some(fields) = results.as_object_mut() {
        fields.insert("Title".into(), Value::String(title));
    }
    Ok(Outcome {
        benign: assessment.benign,
        confidence: assessment.confidence,
        results,
    })
}
