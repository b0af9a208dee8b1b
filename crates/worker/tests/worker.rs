//! Workers against a real store (SQLite file, and PostgreSQL when one is configured) and a tiny
//! real kernel tree: claim, run the static expert, stream spans, finish or fail.

use std::path::Path;
use std::time::Duration;

use store::{Kernel, NewJob, Status, Store, WORKFLOW_KCSAN};
use worker::{Config, Ran};

const REPORT: &str = "BUG: KCSAN: data-race in bump / peek\n\n\
write to 0xffff888100000000 of 8 bytes by task 1 on cpu 0:\n bump+0x10/0x20 kernel/stats.c:5\n\n\
read to 0xffff888100000000 of 8 bytes by task 2 on cpu 1:\n peek+0x8/0x10 kernel/stats.c:10\n";

fn tiny_tree() -> tempfile::TempDir {
    let tree = tempfile::tempdir().unwrap();
    std::fs::write(tree.path().join("Makefile"), "all:\n").unwrap();
    std::fs::create_dir_all(tree.path().join("kernel")).unwrap();
    std::fs::write(
        tree.path().join("kernel/stats.c"),
        "struct s { unsigned long hits; };\n\nvoid bump(struct s *p)\n{\n\tp->hits++;\n}\n\nunsigned long peek(struct s *p)\n{\n\treturn p->hits;\n}\n",
    )
    .unwrap();
    tree
}

fn job(report: &str, kernel: Kernel, expert: &str) -> NewJob {
    NewJob {
        workflow: WORKFLOW_KCSAN.into(),
        title: "KCSAN: data-race in bump / peek".into(),
        report: report.into(),
        kernel,
        config: None,
        expert: expert.into(),
        model: None,
    }
}

fn config(cache: &Path, kernel: &Path) -> Config {
    let mut config = Config::new("test-worker", assess::cache::Cache::new(cache));
    config.default_kernel = Some(kernel.to_path_buf());
    config.poll = Duration::from_millis(20);
    config
}

async fn exercise(store: Store) {
    let tree = tiny_tree();
    let cache = tempfile::tempdir().unwrap();
    let config = config(cache.path(), tree.path());

    // A good job on the default tree: done, with a verdict and a stored, finished trajectory.
    let good = store
        .create_job(&job(REPORT, Kernel::Default, "static"))
        .await
        .unwrap();
    assert_eq!(
        worker::run_one(&store, &config).await.unwrap(),
        Ran::Done(good)
    );
    let done = store.job(good).await.unwrap();
    assert_eq!(done.status, Status::Done);
    assert_eq!(done.worker.as_deref(), Some("test-worker"));
    let outcome = done.outcome.expect("a verdict");
    assert!(
        outcome.results["Explanation"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    );
    assert_eq!(outcome.results["Title"], "KCSAN: data-race in bump / peek");
    let spans = store.spans(good, done.attempt).await.unwrap();
    assert!(spans.len() >= 3, "flow and its actions: {spans:?}");
    assert_eq!(spans[0].json["Type"], "flow");
    assert!(
        spans.iter().all(|s| s.json.get("Finished").is_some()),
        "every span is stored in its finished form: {spans:?}"
    );
    assert!(spans.iter().any(|s| s.json["Name"] == "expert"));

    // Text without a report: failed, saying why.
    let bad = store
        .create_job(&job("hello", Kernel::Default, "static"))
        .await
        .unwrap();
    assert_eq!(
        worker::run_one(&store, &config).await.unwrap(),
        Ran::Failed(bad)
    );
    let failed = store.job(bad).await.unwrap();
    assert_eq!(failed.status, Status::Failed);
    assert!(failed.error.unwrap().contains("no KCSAN report"));

    // A missing tree fails the job, not the worker.
    let gone = store
        .create_job(&job(
            REPORT,
            Kernel::Dir("/nonexistent/tree".into()),
            "static",
        ))
        .await
        .unwrap();
    assert_eq!(
        worker::run_one(&store, &config).await.unwrap(),
        Ran::Failed(gone)
    );
    assert!(
        store
            .job(gone)
            .await
            .unwrap()
            .error
            .unwrap()
            .contains("not found")
    );

    // An LLM job on a server without an LLM expert.
    let llm = store
        .create_job(&job(REPORT, Kernel::Default, "llm"))
        .await
        .unwrap();
    assert_eq!(
        worker::run_one(&store, &config).await.unwrap(),
        Ran::Failed(llm)
    );
    assert!(
        store
            .job(llm)
            .await
            .unwrap()
            .error
            .unwrap()
            .contains("no LLM expert")
    );

    assert_eq!(worker::run_one(&store, &config).await.unwrap(), Ran::Idle);

    // The loop: picks up a job, heartbeats, and stops on shutdown.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let looping = tokio::spawn(worker::run(store.clone(), config.clone(), stopped));
    let queued = store
        .create_job(&job(REPORT, Kernel::Default, "static"))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while store.job(queued).await.unwrap().status != Status::Done {
        assert!(
            std::time::Instant::now() < deadline,
            "the loop never ran the job"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        store
            .workers()
            .await
            .unwrap()
            .iter()
            .any(|w| w.name == "test-worker")
    );
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), looping)
        .await
        .expect("the loop stops on shutdown")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_runs_jobs_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite:{}", dir.path().join("jobs.db").display()))
        .await
        .unwrap();
    exercise(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_runs_jobs_on_postgres() {
    let Some(url) = testkit::postgres_url_or_skip("worker_runs_jobs_on_postgres") else {
        return;
    };
    let store = Store::open(&testkit::fresh_postgres_database(&url, "rj_worker_loop").await)
        .await
        .unwrap();
    exercise(store).await;
}
