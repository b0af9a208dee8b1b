//! `racejudge assess`: run the assessment-kcsan flow on one report and print the verdict.
//!
//! Progress per step goes to stderr (a spinner per step on a terminal, one plain line per step
//! otherwise); the verdict and explanation (or one JSON document with `--json`) to stdout. Exit 0
//! whatever the verdict. `--trajectory FILE` records the flow, its actions and any nested agent
//! work as JSONL through [`agent::JsonlSink`] (transcript next to it), readable by
//! `racejudge trajectory show`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::{SinkError, Span, SpanKind, SpanSink};
use anyhow::Context;
use assess::expert::Expert;
use assess::flow::{FailureKind, FlowRunError, StepError};
use assess::kcsan::{ExpertFactory, FlowOptions, KernelSpec};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::exit::{self, ResultExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExpertKind {
    Static,
    Llm,
}

/// Options shared by `assess` and `eval`.
#[derive(Debug, clap::Args)]
pub struct ExpertArgs {
    /// Which expert judges the race.
    #[arg(long, value_enum, default_value = "static")]
    pub expert: ExpertKind,
    /// LLM provider (llm expert only; default gemini, or the one --llm-config names).
    #[arg(long, value_parser = ["gemini", "openai", "anthropic"])]
    pub provider: Option<String>,
    /// LLM model name or comma-separated fallback chain (llm expert only). Without it, an
    /// OpenAI-compatible server is asked for its models and its only one is used.
    #[arg(long)]
    pub model: Option<String>,
    /// LLM provider config file (JSON, see docs/llm.md); flags override its values.
    #[arg(long, env = "RACEJUDGE_LLM_CONFIG", value_name = "FILE")]
    pub llm_config: Option<PathBuf>,
    /// Context window of the model in tokens (default: built-in table by model name, else
    /// 128000 with a warning). History is summarised before it outgrows this.
    #[arg(long, env = "RACEJUDGE_LLM_CONTEXT_WINDOW", value_name = "TOKENS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub context_window: Option<u64>,
    /// Output limit sent with each model request (`max_tokens`).
    #[arg(long, env = "RACEJUDGE_LLM_MAX_OUTPUT_TOKENS", value_name = "TOKENS",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_output_tokens: Option<u32>,
    /// Timeout of one HTTP attempt to the LLM, in seconds (default 600).
    #[arg(long, env = "RACEJUDGE_LLM_TIMEOUT", value_name = "SECONDS", value_parser = seconds)]
    pub timeout: Option<Duration>,
    /// HTTP attempts per model turn and model, the first included (default 8).
    #[arg(long, env = "RACEJUDGE_LLM_ATTEMPTS", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub attempts: Option<u32>,
    /// Limit on one model turn, all attempts and backoff included, in seconds (default 1800).
    #[arg(long, env = "RACEJUDGE_LLM_DEADLINE", value_name = "SECONDS", value_parser = seconds)]
    pub llm_deadline: Option<Duration>,
    /// Skip the code index (built on first use, then cached); the static expert then scans only
    /// the files the report names and cannot resolve declarations elsewhere.
    #[arg(long)]
    pub no_index: bool,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The report file (a bare report, console log or email); `-` reads stdin.
    pub report: String,
    /// An unpacked kernel tree to analyse (skips the checkout).
    #[arg(long, conflicts_with_all = ["repo", "commit"])]
    pub kernel: Option<PathBuf>,
    /// Kernel git repository (URL or local path) to check out from; needs --commit.
    #[arg(long, requires = "commit")]
    pub repo: Option<String>,
    /// Commit (hash, branch or tag) to check out; needs --repo.
    #[arg(long, requires = "repo")]
    pub commit: Option<String>,
    /// Kernel .config (used by --build and by the index's #if evaluation).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Target architecture.
    #[arg(long, default_value = "x86_64")]
    pub arch: String,
    #[command(flatten)]
    pub expert: ExpertArgs,
    /// Build the kernel (make olddefconfig + vmlinux) before indexing.
    #[arg(long)]
    pub build: bool,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// Record the run (flow, actions, agent/LLM/tool spans) as JSONL to this file; the
    /// transcript goes next to it (`X.jsonl` -> `X.transcript.jsonl`).
    #[arg(long)]
    pub trajectory: Option<PathBuf>,
}

/// Shows each step of the flow on stderr: a spinner while it runs on a terminal, one plain line
/// per start and finish otherwise (so CI logs still say where the time went).
pub struct Progress {
    tty: bool,
    bars: Mutex<HashMap<u64, ProgressBar>>,
}

impl Progress {
    pub fn new() -> Self {
        Progress {
            tty: std::io::stderr().is_terminal(),
            bars: Mutex::default(),
        }
    }
}

impl SpanSink for Progress {
    fn span(&self, span: &Span) -> Result<(), SinkError> {
        if span.kind != SpanKind::Action {
            return Ok(());
        }
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        match (span.finished, &span.error) {
            (None, _) if self.tty => {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(span.name.clone());
                bar.enable_steady_tick(Duration::from_millis(100));
                bars.insert(span.seq, bar);
            }
            (None, _) => eprintln!("[{}] {} ...", span.seq, span.name),
            (Some(_), error) => {
                let ms = span.duration_ms().unwrap_or(0);
                let line = match error {
                    None => format!("{} done ({ms} ms)", span.name),
                    Some(err) => format!("{} failed: {err}", span.name),
                };
                match bars.remove(&span.seq) {
                    Some(bar) => bar.finish_with_message(line),
                    None => eprintln!("[{}] {line}", span.seq),
                }
            }
        }
        Ok(())
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

/// Builds the expert factory; for the LLM expert this connects to the provider first (no network
/// traffic yet), so a missing API key is an environment error before any work starts.
pub fn expert_factory(args: &ExpertArgs) -> anyhow::Result<ExpertFactory> {
    match args.expert {
        ExpertKind::Static => Ok(Arc::new(|tree, _| {
            Ok(Box::new(assess::static_expert::StaticExpert::new(tree)) as Box<dyn Expert>)
        })),
        ExpertKind::Llm => {
            let provider = match args.provider.as_deref() {
                Some("openai") => llm::Provider::OpenAi,
                Some("anthropic") => llm::Provider::Anthropic,
                _ => llm::Provider::Gemini,
            };
            // The config file (if any) or the environment, then the flags over either.
            let mut config = match &args.llm_config {
                Some(path) => {
                    let config = llm::ProviderConfig::from_file(path).environment()?;
                    if args.provider.is_some() && config.provider != provider {
                        return Err(exit::bad_input(format!(
                            "--provider {provider} contradicts {} (provider {})",
                            path.display(),
                            config.provider
                        )));
                    }
                    config
                }
                None => {
                    llm::ProviderConfig::from_env(provider, args.model.as_deref()).environment()?
                }
            };
            config
                .apply(&llm::Overrides {
                    model: args.model.clone(),
                    context_window: args.context_window,
                    max_output_tokens: args.max_output_tokens,
                    timeout: args.timeout,
                    attempts: args.attempts,
                    deadline: args.llm_deadline,
                })
                .bad_input()?;
            let model = llm::connect(config).environment()?;
            Ok(Arc::new(move |tree, context| {
                // The tree's toolbox: its index, plus the built vmlinux's DWARF after --build.
                let tools = tree.toolbox().ok_or_else(|| {
                    StepError::environment(
                        "the llm expert needs the code index, which could not be built",
                    )
                })?;
                Ok(Box::new(assess::llm_expert::LlmExpert {
                    model: model.clone(),
                    tools,
                    context,
                    // The static facts about this tree open the model's first message.
                    tree: Some(tree),
                }) as Box<dyn Expert>)
            }))
        }
    }
}

/// A positive, finite number of seconds (fractions allowed) for the LLM timeouts.
fn seconds(text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?} is not a positive number of seconds"))
}

/// Maps a flow failure to the CLI's exit classification.
pub fn flow_error(err: FlowRunError) -> anyhow::Error {
    let message = err.to_string();
    match err.kind() {
        FailureKind::BadInput => exit::bad_input(message),
        FailureKind::Environment => exit::environment(message),
        FailureKind::Internal => anyhow::anyhow!(message),
    }
}

/// Reads a report file (or stdin) and parses its first report. No report is bad input.
pub fn read_report(path: &str) -> anyhow::Result<(String, report::Report)> {
    let (_, bytes) = crate::input::read(Some(std::path::Path::new(path)))?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let parsed = report::parse(&text);
    let Some(first) = parsed.reports.into_iter().next() else {
        return Err(exit::bad_input(format!("{path}: no KCSAN report found")));
    };
    if first.accesses.is_empty() {
        return Err(exit::bad_input(format!(
            "{path}: the KCSAN report has no access to analyse"
        )));
    }
    Ok((text, first))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (_, report) = read_report(&args.report)?;
    let kernel = match (&args.kernel, &args.repo, &args.commit) {
        (Some(dir), _, _) => KernelSpec::Dir(dir.clone()),
        (None, Some(url), Some(commit)) => KernelSpec::Repo {
            url: url.clone(),
            commit: commit.clone(),
        },
        _ => {
            return Err(exit::bad_input(
                "no kernel: pass --kernel DIR or --repo URL --commit SHA",
            ));
        }
    };
    // Checked before any checkout, build or index is paid for.
    if let Some(config) = &args.config {
        tools::KConfig::read_checked(config)
            .context("--config")
            .bad_input()?;
    }
    let opts = FlowOptions {
        cache: assess::cache::Cache::new(crate::paths::cache_dir()),
        build: args.build,
        jobs: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        // The LLM expert's tools read the code index.
        use_index: !args.expert.no_index || args.expert.expert == ExpertKind::Llm,
        expert: expert_factory(&args.expert)?,
    };
    let flow =
        assess::kcsan::assessment_flow(&opts).context("building the assessment-kcsan flow")?;
    let mut sinks: Vec<Arc<dyn SpanSink>> = vec![Arc::new(Progress::new())];
    let record = match &args.trajectory {
        Some(path) => {
            let file = agent::JsonlSink::create(path)
                .with_context(|| format!("cannot write trajectory {}", path.display()))
                .bad_input()?;
            let record = Arc::new(CheckedSink::new(file));
            sinks.push(record.clone());
            Some(record)
        }
        None => None,
    };
    let trajectory = agent::Trajectory::new(sinks);
    let result = assess::kcsan::assess(
        &flow,
        report.clone(),
        kernel,
        args.config.clone(),
        args.arch.clone(),
        &trajectory,
    );
    let assessment = result.map_err(flow_error)?;
    // The flow holds this job's index (and so its cache lease): let go of it first, so that
    // eviction weighs this job's entries like any other's — as the most recently used.
    drop(flow);
    evict_over_limit(&opts.cache);
    if args.json {
        // The documented shape: the assessment's own fields at the top level
        // (`Benign`, `Confident`, `Explanation`, `Evidence`, …) plus the report's `Title`.
        let mut doc = serde_json::to_value(&assessment)?;
        if let Some(fields) = doc.as_object_mut() {
            fields.insert("Title".into(), serde_json::json!(report.full_title()));
        }
        outln!("{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        let verdict = if assessment.benign {
            "BENIGN"
        } else {
            "HARMFUL"
        };
        let bold = std::io::stdout().is_terminal();
        let (b, e) = if bold {
            ("\x1b[1m", "\x1b[0m")
        } else {
            ("", "")
        };
        outln!(
            "{b}Verdict: {verdict}{e} (confident: {}, confidence {:.0}%, expert {})\n",
            if assessment.confident { "yes" } else { "no" },
            assessment.confidence * 100.0,
            assessment.expert
        )?;
        out!("{}", assessment.explanation)?;
    }
    // The verdict stands, but the record the user asked for is incomplete: say so and fail.
    if let Some(failure) = record.and_then(|r| r.first_failure()) {
        return Err(anyhow::anyhow!(
            "the trajectory is incomplete: {failure} (the verdict above is still valid)"
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// A trajectory sink that remembers its first write failure, so that a record the user asked
/// for and did not get fails the command at the end instead of vanishing into a log line.
pub struct CheckedSink<S> {
    inner: S,
    failure: Mutex<Option<String>>,
}

impl<S: SpanSink> CheckedSink<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            failure: Mutex::new(None),
        }
    }

    pub fn first_failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn note(&self, result: Result<(), SinkError>) -> Result<(), SinkError> {
        if let Err(err) = &result {
            self.failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert_with(|| err.to_string());
        }
        result
    }
}

impl<S: SpanSink> SpanSink for CheckedSink<S> {
    fn span(&self, span: &Span) -> Result<(), SinkError> {
        self.note(self.inner.span(span))
    }

    fn transcript(&self, entry: &agent::TranscriptEntry) -> Result<(), SinkError> {
        self.note(self.inner.transcript(entry))
    }
}

/// Default cap on the checkouts, builds and indexes kept in the cache (`RACEJUDGE_CACHE_MAX_GB`).
const DEFAULT_CACHE_MAX_GB: u64 = 50;

/// Evicts least-recently-used checkouts, builds and indexes beyond the configured size. Entries in
/// use by another job are skipped; a failure only costs disk space, so it is logged, not fatal.
fn evict_over_limit(cache: &assess::cache::Cache) {
    let max_gb = std::env::var("RACEJUDGE_CACHE_MAX_GB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(DEFAULT_CACHE_MAX_GB);
    match cache.evict_to(max_gb.saturating_mul(1 << 30)) {
        Ok(evicted) if !evicted.is_empty() => {
            tracing::info!(count = evicted.len(), max_gb, "evicted cache entries")
        }
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "cache eviction failed"),
    }
}
