//! `racejudge serve`: the service on one machine: the job store (a SQLite file under the data
//! dir by default, or PostgreSQL), the HTTP server (API and pages) and N in-process workers.
//!
//! At start, jobs left `running` by the previous process are queued again (its in-process
//! workers died with it). Ctrl-C (or SIGTERM) stops accepting requests, lets requests in flight
//! finish and stops the workers; a job still running then is left `running` and re-queued by
//! the next start, because the flow cannot be interrupted halfway.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::cmd::assess::{ExpertArgs, ExpertKind, expert_factory};
use crate::exit::{self, ResultExt};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port; the URL is printed on stderr).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The job store: `sqlite:PATH` or `postgres://…` (default: a SQLite file under the data
    /// dir, $RACEJUDGE_DATA_DIR or ~/.local/share/racejudge).
    #[arg(long, env = "RACEJUDGE_DB", value_name = "URL", hide_env_values = true)]
    pub db: Option<String>,
    /// In-process workers (0: only remote workers run jobs).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// The kernel tree for jobs that name no repository and commit.
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// `--expert llm` (with the provider flags) makes the LLM expert available to jobs that
    /// ask for it; jobs use the static expert unless they do.
    #[command(flatten)]
    pub expert: ExpertArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let db = match &args.db {
        Some(url) => url.clone(),
        None => {
            let dir = crate::paths::data_dir();
            format!("sqlite:{}", dir.join("racejudge.db").display())
        }
    };
    if let Some(kernel) = &args.kernel
        && !kernel.join("Makefile").is_file()
    {
        return Err(exit::bad_input(format!(
            "--kernel {}: not a kernel tree (no Makefile)",
            kernel.display()
        )));
    }
    let llm = match args.expert.expert {
        ExpertKind::Llm => Some(expert_factory(&args.expert)?),
        ExpertKind::Static => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("racejudge-serve")
        .build()
        .context("starting the async runtime")?;
    let outcome = runtime.block_on(async {
        // The URL is not repeated in errors: it may hold a password.
        let store = store::Store::open(&db)
            .await
            .context("opening the job store")
            .environment()?;
        let requeued = store
            .requeue_running()
            .await
            .context("re-queueing jobs left running")
            .environment()?;
        if requeued > 0 {
            eprintln!("re-queued {requeued} job(s) left running by the last run");
        }
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))
            .environment()?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let cache = assess::cache::Cache::new(crate::paths::cache_dir());
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
        let mut workers = Vec::new();
        for n in 0..args.workers {
            let mut config =
                worker::Config::new(format!("{host}-{}-{n}", std::process::id()), cache.clone());
            config.default_kernel = args.kernel.clone();
            config.llm = llm.clone();
            config.use_index = !args.expert.no_index;
            config.jobs = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            workers.push(tokio::spawn(worker::run(
                store.clone(),
                config,
                stopped.clone(),
            )));
        }
        eprintln!(
            "racejudge serving on http://{addr} ({} workers)",
            args.workers
        );
        let shutdown = crate::shutdown::signal().context("installing signal handlers")?;
        let mut server_stop = stopped.clone();
        let server = tokio::spawn(server::serve(listener, store.clone(), async move {
            let _ = server_stop.changed().await;
        }));
        shutdown.await;
        eprintln!("shutting down");
        let _ = stop.send(true);
        for w in workers {
            let _ = w.await;
        }
        match tokio::time::timeout(Duration::from_secs(10), server).await {
            Ok(Ok(Ok(()))) | Err(_) => {}
            Ok(Ok(Err(err))) => return Err(anyhow::Error::from(err).context("HTTP server")),
            Ok(Err(join)) => return Err(anyhow::anyhow!("HTTP server crashed: {join}")),
        }
        store.close().await;
        Ok::<_, anyhow::Error>(())
    });
    // A job abandoned at shutdown still holds a blocking thread: do not wait for it (its
    // attempt is re-queued at the next start).
    runtime.shutdown_timeout(Duration::from_secs(1));
    outcome.map(|()| ExitCode::SUCCESS)
}
