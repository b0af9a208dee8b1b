//! The store's behaviour, run once on SQLite (a temp file, always) and once on PostgreSQL (a fresh
//! database on the server at `$RACEJUDGE_TEST_POSTGRES`; skipped with a visible message when that
//! is unset, a failure under `RACEJUDGE_REQUIRE_INPUTS=1`). Each test is a function over a
//! [`TestDb`]; `both_backends!` turns it into `sqlite::<name>` and `postgres::<name>`.

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use store::{
    BackendKind, Decision, JobFilter, Kernel, NewJob, NewReview, Outcome, Role, Status, Store,
    StoreError, Verdict, WORKFLOW_KCSAN, hash_token,
};

/// A store on a fresh database, reopenable to play a server restart.
struct TestDb {
    store: Store,
    url: String,
    kind: BackendKind,
    /// Keeps the SQLite file alive for the test.
    dir: Option<tempfile::TempDir>,
}

impl TestDb {
    async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("store.db").display());
        let store = Store::open(&url).await.unwrap();
        TestDb {
            store,
            url,
            kind: BackendKind::Sqlite,
            dir: Some(dir),
        }
    }

    /// A database of its own for `test` on the test server, dropped and created anew, so tests
    /// run in parallel and a rerun starts clean.
    async fn postgres(test: &str) -> Option<TestDb> {
        let server = testkit::postgres_url_or_skip(&format!("postgres::{test}"))?;
        let name = format!("rj_{test}");
        let url = testkit::fresh_postgres_database(&server, &name).await;
        let store = Store::open(&url).await.unwrap();
        Some(TestDb {
            store,
            url,
            kind: BackendKind::Postgres,
            dir: None,
        })
    }

    /// Closes the store and opens it again, as a restarted server would.
    async fn reopen(&mut self) {
        self.store.close().await;
        self.store = Store::open(&self.url).await.unwrap();
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::TestDb::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(db) = super::TestDb::postgres(stringify!($name)).await {
                        super::$name(db).await;
                    }
                }
            )*
        }
    };
}

both_backends!(
    migrations_make_a_usable_empty_store,
    jobs_round_trip,
    list_filters_search_and_pages,
    concurrent_claims_never_share_a_job,
    results_only_from_the_running_attempt,
    spans_upsert_and_read_in_order,
    review_journal_sets_the_current_state,
    restart_requeues_running_jobs_and_keeps_everything,
    cancel_and_restart,
    workers_and_stale_requeue,
    users_and_token_hashes,
    stats_count_reviewed_verdicts,
    bad_input_is_refused_alike,
);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn new_job(title: &str) -> NewJob {
    NewJob {
        workflow: WORKFLOW_KCSAN.into(),
        title: title.into(),
        report: format!("==================\nBUG: {title}\n"),
        kernel: Kernel::Default,
        config: None,
        expert: "static".into(),
        model: None,
    }
}

fn outcome(benign: bool) -> Outcome {
    Outcome {
        benign,
        confidence: 0.75,
        results: json!({"Benign": benign, "Confident": true, "Explanation": "because", "Evidence": []}),
    }
}

/// Claims the next job as `worker` and finishes it with `benign`; returns its id.
async fn run_one(store: &Store, benign: bool) -> i64 {
    let job = store.claim("w", "v1").await.unwrap().expect("a queued job");
    store
        .finish(job.id, job.attempt, &outcome(benign))
        .await
        .unwrap();
    job.id
}

fn review(decision: Decision, reason: &str) -> NewReview {
    NewReview {
        reviewer: "dev@example.org".into(),
        decision,
        reason: reason.into(),
        source: "test".into(),
    }
}

async fn migrations_make_a_usable_empty_store(mut db: TestDb) {
    assert_eq!(db.store.kind(), db.kind);
    assert_eq!(db.store.count_jobs(&JobFilter::default()).await.unwrap(), 0);
    assert_eq!(db.store.status_counts().await.unwrap(), Default::default());
    assert!(db.store.claim("w", "v1").await.unwrap().is_none());
    // Opening again finds the migrations applied and changes nothing.
    let id = db
        .store
        .create_job(&new_job("KCSAN: data-race in a / b"))
        .await
        .unwrap();
    db.reopen().await;
    assert_eq!(
        db.store.job(id).await.unwrap().input.title,
        "KCSAN: data-race in a / b"
    );
    if let Some(dir) = &db.dir {
        // WAL mode: the write-ahead log sits beside the database file.
        assert!(dir.path().join("store.db-wal").exists());
        // A data directory that does not exist yet is created.
        let nested = dir.path().join("data/dir/store.db");
        let store = Store::open(&format!("sqlite:{}", nested.display()))
            .await
            .unwrap();
        store.close().await;
        assert!(nested.is_file());
    }
}

async fn jobs_round_trip(db: TestDb) {
    let before = now_ms();
    let input = NewJob {
        kernel: Kernel::Git {
            repo: "https://git.example.org/linux.git".into(),
            commit: "9b618abc0cd923b36c7a5ebc58a21174112d8f70".into(),
        },
        config: Some("CONFIG_KCSAN=y\n".into()),
        expert: "llm".into(),
        model: Some("gemini:gemini-2.5-pro".into()),
        ..new_job("KCSAN: data-race in smc_switch_to_fallback / sock_poll")
    };
    let id = db.store.create_job(&input).await.unwrap();
    let job = db.store.job(id).await.unwrap();
    assert_eq!(job.input, input);
    assert_eq!(job.status, Status::Queued);
    assert_eq!(job.attempt, 0);
    assert_eq!(job.review, Decision::Unreviewed);
    assert!(job.outcome.is_none() && job.error.is_none() && job.started_ms.is_none());
    assert!((before..=now_ms()).contains(&job.created_ms));

    let dir = NewJob {
        kernel: Kernel::Dir("/srv/linux".into()),
        ..new_job("t")
    };
    let id2 = db.store.create_job(&dir).await.unwrap();
    assert!(id2 > id, "ids grow in creation order");
    assert_eq!(db.store.job(id2).await.unwrap().input.kernel, dir.kernel);

    assert!(matches!(
        db.store.job(id2 + 100).await,
        Err(StoreError::NoSuchJob(n)) if n == id2 + 100
    ));
}

async fn list_filters_search_and_pages(db: TestDb) {
    let s = &db.store;
    // 24 jobs: every third by the llm expert; titles name a function pair, two of them odd.
    let mut ids = Vec::new();
    for i in 0..24 {
        let title = match i {
            5 => "KCSAN: data-race in Foo_Bar / baz".to_string(),
            6 => "KCSAN: data-race in 100%_done / x".to_string(),
            _ => format!("KCSAN: data-race in func{i} / other{i}"),
        };
        let job = if i % 3 == 0 {
            NewJob {
                expert: "llm".into(),
                model: Some("m1".into()),
                ..new_job(&title)
            }
        } else {
            new_job(&title)
        };
        ids.push(s.create_job(&job).await.unwrap());
    }
    // The six oldest run: three benign, three harmful; two get reviews.
    let mut done = Vec::new();
    for i in 0..6 {
        done.push(run_one(s, i % 2 == 0).await);
    }
    s.review(done[0], &review(Decision::Correct, ""))
        .await
        .unwrap();
    s.review(done[1], &review(Decision::Incorrect, "it is harmful"))
        .await
        .unwrap();

    let list = |filter: JobFilter| async move {
        let page = s.list_jobs(&filter, None, 100).await.unwrap();
        assert_eq!(
            s.count_jobs(&filter).await.unwrap(),
            page.jobs.len() as i64,
            "count agrees with the list for {filter:?}"
        );
        page.jobs.iter().map(|j| j.id).collect::<Vec<_>>()
    };
    let newest_first = |v: &[i64]| v.iter().rev().copied().collect::<Vec<_>>();

    assert_eq!(list(JobFilter::default()).await, newest_first(&ids));
    let by_status = |status| JobFilter {
        status: Some(status),
        ..Default::default()
    };
    assert_eq!(list(by_status(Status::Done)).await, newest_first(&done));
    assert_eq!(list(by_status(Status::Queued)).await.len(), 18);
    let benign: Vec<i64> = done.iter().step_by(2).copied().collect();
    assert_eq!(
        list(JobFilter {
            verdict: Some(Verdict::Benign),
            ..Default::default()
        })
        .await,
        newest_first(&benign)
    );
    assert_eq!(
        list(JobFilter {
            verdict: Some(Verdict::Harmful),
            ..Default::default()
        })
        .await
        .len(),
        3
    );
    assert_eq!(
        list(JobFilter {
            review: Some(Decision::Incorrect),
            ..Default::default()
        })
        .await,
        vec![done[1]]
    );
    // Unreviewed covers every job nobody reviewed, queued ones included.
    assert_eq!(
        list(JobFilter {
            review: Some(Decision::Unreviewed),
            ..Default::default()
        })
        .await
        .len(),
        22
    );
    let llm: Vec<i64> = ids.iter().step_by(3).copied().collect();
    assert_eq!(
        list(JobFilter {
            expert: Some("llm".into()),
            ..Default::default()
        })
        .await,
        newest_first(&llm)
    );
    assert_eq!(
        list(JobFilter {
            model: Some("m1".into()),
            status: Some(Status::Done),
            ..Default::default()
        })
        .await,
        vec![ids[3], ids[0]]
    );
    let search = |t: &str| JobFilter {
        title: Some(t.into()),
        ..Default::default()
    };
    // Case-insensitive substring.
    assert_eq!(list(search("foo_bar")).await, vec![ids[5]]);
    assert_eq!(list(search("FUNC1 ")).await, vec![ids[1]]);
    assert_eq!(list(search("func1")).await.len(), 11); // func1, func10..func19
    // `%` and `_` are literal characters, not wildcards.
    assert_eq!(list(search("100%_")).await, vec![ids[6]]);
    assert_eq!(list(search("0%")).await, vec![ids[6]]);
    assert!(
        list(search("c_")).await.is_empty(),
        "`_` would match func1, func2, …"
    );
    assert!(list(search("nothing like this")).await.is_empty());

    // Keyset pages of 10: 24 jobs in three pages, no overlap, newest first throughout.
    let mut seen = Vec::new();
    let mut before = None;
    let mut pages = 0;
    loop {
        let page = s
            .list_jobs(&JobFilter::default(), before, 10)
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.jobs.iter().map(|j| j.id));
        match page.next_before {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, newest_first(&ids));
    // A page boundary under a filter.
    let page = s
        .list_jobs(&by_status(Status::Queued), Some(ids[10]), 100)
        .await
        .unwrap();
    assert_eq!(
        page.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        newest_first(&ids[6..10])
    );
    assert_eq!(page.next_before, None);

    // The summary carries the verdict and review for the list's columns.
    let row = &s
        .list_jobs(&by_status(Status::Done), None, 100)
        .await
        .unwrap()
        .jobs;
    let first = row.iter().find(|j| j.id == done[1]).unwrap();
    assert_eq!(first.benign, Some(false));
    assert_eq!(first.review, Decision::Incorrect);
    assert_eq!(first.confidence, Some(0.75));
}

async fn concurrent_claims_never_share_a_job(db: TestDb) {
    const JOBS: usize = 60;
    const CLAIMERS: usize = 8;
    for i in 0..JOBS {
        db.store
            .create_job(&new_job(&format!("race {i}")))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for c in 0..CLAIMERS {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            let worker = format!("worker-{c}");
            let mut got = Vec::new();
            while let Some(job) = store.claim(&worker, "v1").await.unwrap() {
                assert_eq!(job.status, Status::Running);
                assert_eq!(job.worker.as_deref(), Some(worker.as_str()));
                got.push(job.id);
            }
            (worker, got)
        }));
    }
    let mut all = HashSet::new();
    for task in tasks {
        let (worker, got) = task.await.unwrap();
        for id in got {
            assert!(all.insert(id), "job {id} handed out twice");
            // The row agrees with what the claimer was told.
            let job = db.store.job(id).await.unwrap();
            assert_eq!(job.worker.as_deref(), Some(worker.as_str()));
            assert_eq!(job.attempt, 1);
        }
    }
    assert_eq!(all.len(), JOBS);
    let counts = db.store.status_counts().await.unwrap();
    assert_eq!((counts.queued, counts.running), (0, JOBS as i64));
}

async fn results_only_from_the_running_attempt(db: TestDb) {
    let s = &db.store;
    let a = s.create_job(&new_job("a")).await.unwrap();
    let b = s.create_job(&new_job("b")).await.unwrap();
    // Oldest first.
    let job = s.claim("w1", "rev-1").await.unwrap().unwrap();
    assert_eq!(job.id, a);
    assert_eq!(job.revision.as_deref(), Some("rev-1"));
    assert!(job.started_ms.is_some());
    assert!(matches!(
        s.finish(a, job.attempt + 1, &outcome(true)).await,
        Err(StoreError::Stale { .. })
    ));
    s.finish(a, job.attempt, &outcome(true)).await.unwrap();
    let done = s.job(a).await.unwrap();
    assert_eq!(done.status, Status::Done);
    assert_eq!(done.outcome, Some(outcome(true)));
    assert!(done.finished_ms >= done.started_ms);
    // Finishing twice is refused: the attempt is no longer running.
    assert!(matches!(
        s.finish(a, job.attempt, &outcome(false)).await,
        Err(StoreError::Stale { .. })
    ));

    let job = s.claim("w1", "rev-1").await.unwrap().unwrap();
    assert_eq!(job.id, b);
    s.fail(b, job.attempt, "checkout failed: no such commit")
        .await
        .unwrap();
    let failed = s.job(b).await.unwrap();
    assert_eq!(failed.status, Status::Failed);
    assert_eq!(
        failed.error.as_deref(),
        Some("checkout failed: no such commit")
    );
    assert!(failed.outcome.is_none());
    assert!(matches!(
        s.fail(b + 50, 1, "x").await,
        Err(StoreError::NoSuchJob(_))
    ));
}

async fn spans_upsert_and_read_in_order(db: TestDb) {
    let s = &db.store;
    let id = s.create_job(&new_job("spans")).await.unwrap();
    let job = s.claim("w", "v").await.unwrap().unwrap();
    let span = |seq: i64, finished: bool| json!({"Seq": seq, "Type": "tool", "Name": format!("t{seq}"), "Finished": finished.then_some("2026-01-01T00:00:00Z")});
    // Spans appear as they start, out of order across concurrent tool calls, then are replaced
    // when they finish.
    s.put_span(id, job.attempt, 0, &span(0, false))
        .await
        .unwrap();
    s.put_span(id, job.attempt, 2, &span(2, false))
        .await
        .unwrap();
    s.put_span(id, job.attempt, 1, &span(1, false))
        .await
        .unwrap();
    let running = s.spans(id, job.attempt).await.unwrap();
    assert_eq!(running.iter().map(|e| e.seq).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(running[2].json, span(2, false));
    s.put_span(id, job.attempt, 1, &span(1, true))
        .await
        .unwrap();
    s.put_span(id, job.attempt, 0, &span(0, true))
        .await
        .unwrap();
    let spans = s.spans(id, job.attempt).await.unwrap();
    assert_eq!(spans.len(), 3);
    assert_eq!(spans[0].json, span(0, true));
    assert_eq!(spans[1].json, span(1, true));
    assert_eq!(spans[2].json, span(2, false));

    let exchange = json!({"request": {"model": "m"}, "response": {"text": "<script>x</script>"}});
    s.put_transcript(id, job.attempt, 0, &exchange)
        .await
        .unwrap();
    s.put_transcript(id, job.attempt, 1, &json!({"n": 1}))
        .await
        .unwrap();
    let transcript = s.transcript(id, job.attempt).await.unwrap();
    assert_eq!(transcript.len(), 2);
    assert_eq!(transcript[0].json, exchange);

    // Nothing is written for another attempt or after the job finished.
    assert!(matches!(
        s.put_span(id, job.attempt + 1, 5, &span(5, false)).await,
        Err(StoreError::Stale { .. })
    ));
    s.finish(id, job.attempt, &outcome(false)).await.unwrap();
    assert!(matches!(
        s.put_span(id, job.attempt, 3, &span(3, false)).await,
        Err(StoreError::Stale { .. })
    ));
    assert!(matches!(
        s.put_transcript(id, job.attempt, 2, &json!({})).await,
        Err(StoreError::Stale { .. })
    ));
    assert_eq!(s.spans(id, job.attempt).await.unwrap().len(), 3);
    assert!(s.spans(id, job.attempt + 1).await.unwrap().is_empty());
}

async fn review_journal_sets_the_current_state(db: TestDb) {
    let s = &db.store;
    let id = s.create_job(&new_job("review me")).await.unwrap();
    // No verdict yet, nothing to review.
    assert!(matches!(
        s.review(id, &review(Decision::Correct, "")).await,
        Err(StoreError::WrongState {
            status: Status::Queued,
            ..
        })
    ));
    assert!(matches!(
        s.review(id + 9, &review(Decision::Correct, "")).await,
        Err(StoreError::NoSuchJob(_))
    ));
    run_one(s, true).await;
    assert!(matches!(
        s.review(
            id,
            &NewReview {
                reviewer: " ".into(),
                ..review(Decision::Correct, "")
            }
        )
        .await,
        Err(StoreError::Invalid(_))
    ));

    let first = s
        .review(
            id,
            &review(Decision::Incorrect, "the flag guards a pointer"),
        )
        .await
        .unwrap();
    assert_eq!(first.job_id, id);
    assert_eq!(s.job(id).await.unwrap().review, Decision::Incorrect);
    let second = s
        .review(
            id,
            &NewReview {
                reviewer: "other@example.org".into(),
                source: "api".into(),
                ..review(Decision::Correct, "re-read: it is only a statistic")
            },
        )
        .await
        .unwrap();
    assert!(second.at_ms >= first.at_ms);
    let journal = s.reviews(id).await.unwrap();
    assert_eq!(journal, vec![second.clone(), first.clone()], "newest first");
    assert_eq!(journal[1].review.reason, "the flag guards a pointer");
    assert_eq!(journal[0].review.source, "api");
    assert_eq!(s.job(id).await.unwrap().review, Decision::Correct);
    assert_eq!(s.derived_review(id).await.unwrap(), Decision::Correct);

    // Unreviewed withdraws the decision, and is journaled like any other.
    s.review(id, &review(Decision::Unreviewed, "not sure"))
        .await
        .unwrap();
    assert_eq!(s.job(id).await.unwrap().review, Decision::Unreviewed);
    assert_eq!(s.derived_review(id).await.unwrap(), Decision::Unreviewed);
    assert_eq!(s.reviews(id).await.unwrap().len(), 3);
}

async fn restart_requeues_running_jobs_and_keeps_everything(mut db: TestDb) {
    let ids = [
        db.store.create_job(&new_job("one")).await.unwrap(),
        db.store.create_job(&new_job("two")).await.unwrap(),
        db.store.create_job(&new_job("three")).await.unwrap(),
    ];
    let done = run_one(&db.store, false).await;
    db.store
        .review(done, &review(Decision::Correct, "yes"))
        .await
        .unwrap();
    let running = db.store.claim("w", "v").await.unwrap().unwrap();
    assert_eq!(running.id, ids[1]);
    db.store
        .put_span(running.id, running.attempt, 0, &json!({"Name": "flow"}))
        .await
        .unwrap();

    // The server dies with job two running, and starts again.
    db.reopen().await;
    assert_eq!(db.store.requeue_running().await.unwrap(), 1);
    assert_eq!(db.store.requeue_running().await.unwrap(), 0);
    let again = db.store.job(ids[1]).await.unwrap();
    assert_eq!(again.status, Status::Queued);
    assert!(again.worker.is_none() && again.started_ms.is_none());
    // Nothing was lost: the finished job, its review, the old attempt's spans.
    let kept = db.store.job(done).await.unwrap();
    assert_eq!(kept.outcome, Some(outcome(false)));
    assert_eq!(kept.review, Decision::Correct);
    assert_eq!(db.store.reviews(done).await.unwrap().len(), 1);
    assert_eq!(db.store.spans(ids[1], 1).await.unwrap().len(), 1);

    // The re-queued job is claimed first (oldest) as a new attempt.
    let retry = db.store.claim("w2", "v").await.unwrap().unwrap();
    assert_eq!((retry.id, retry.attempt), (ids[1], 2));
    assert!(db.store.spans(ids[1], 2).await.unwrap().is_empty());
}

async fn cancel_and_restart(db: TestDb) {
    let s = &db.store;
    let queued = s.create_job(&new_job("queued")).await.unwrap();
    s.cancel(queued).await.unwrap();
    let job = s.job(queued).await.unwrap();
    assert_eq!(job.status, Status::Cancelled);
    assert!(job.finished_ms.is_some());
    assert!(matches!(
        s.cancel(queued).await,
        Err(StoreError::WrongState {
            status: Status::Cancelled,
            action: "cancel",
            ..
        })
    ));
    // A cancelled job is never claimed.
    assert!(s.claim("w", "v").await.unwrap().is_none());

    // Cancelling a running job: the worker's next write is refused.
    let id = s.create_job(&new_job("running")).await.unwrap();
    let job = s.claim("w", "v").await.unwrap().unwrap();
    s.cancel(id).await.unwrap();
    assert!(matches!(
        s.finish(id, job.attempt, &outcome(true)).await,
        Err(StoreError::Stale { .. })
    ));
    assert_eq!(s.job(id).await.unwrap().status, Status::Cancelled);

    // Restart: back in the queue, claimed as a new attempt.
    assert_eq!(s.restart(id).await.unwrap().status, Status::Queued);
    assert!(matches!(
        s.restart(id).await,
        Err(StoreError::WrongState {
            status: Status::Queued,
            action: "restart",
            ..
        })
    ));
    let second = s.claim("w", "v").await.unwrap().unwrap();
    assert_eq!((second.id, second.attempt), (id, 2));
    assert!(matches!(
        s.restart(id).await,
        Err(StoreError::WrongState {
            status: Status::Running,
            ..
        })
    ));
    s.finish(id, 2, &outcome(true)).await.unwrap();
    s.review(id, &review(Decision::Incorrect, "wrong"))
        .await
        .unwrap();

    // Restarting a reviewed job drops its verdict, and the journal says why.
    let restarted = s.restart(id).await.unwrap();
    assert!(restarted.outcome.is_none() && restarted.finished_ms.is_none());
    assert_eq!(restarted.review, Decision::Unreviewed);
    let journal = s.reviews(id).await.unwrap();
    assert_eq!(journal.len(), 2);
    assert_eq!(journal[0].review.decision, Decision::Unreviewed);
    assert_eq!(journal[0].review.source, "restart");
    assert_eq!(s.derived_review(id).await.unwrap(), Decision::Unreviewed);
    let third = s.claim("w", "v").await.unwrap().unwrap();
    assert_eq!(third.attempt, 3);
    assert!(matches!(
        s.restart(id + 99).await,
        Err(StoreError::NoSuchJob(_))
    ));
}

async fn workers_and_stale_requeue(db: TestDb) {
    let s = &db.store;
    for i in 0..3 {
        s.create_job(&new_job(&format!("job {i}"))).await.unwrap();
    }
    let a = s.claim("alpha", "v1").await.unwrap().unwrap();
    let b1 = s.claim("beta", "v2").await.unwrap().unwrap();
    let b2 = s.claim("beta", "v2").await.unwrap().unwrap();
    s.heartbeat("idle", "v3").await.unwrap();
    let workers = s.workers().await.unwrap();
    let find = |name: &str| workers.iter().find(|w| w.name == name).unwrap().clone();
    assert_eq!(workers.len(), 3);
    assert_eq!(find("alpha").running, vec![a.id]);
    assert_eq!(find("beta").running, vec![b1.id, b2.id]);
    assert_eq!(find("beta").version, "v2");
    assert!(find("idle").running.is_empty());
    assert!(find("idle").last_seen_ms >= find("idle").first_seen_ms);

    // Everyone was seen after time 0: nothing is stale.
    assert_eq!(s.requeue_stale(0).await.unwrap(), 0);
    // Nobody was seen after "a second from now": all three running jobs go back.
    assert_eq!(s.requeue_stale(now_ms() + 1000).await.unwrap(), 3);
    assert!(
        s.workers()
            .await
            .unwrap()
            .iter()
            .all(|w| w.running.is_empty())
    );
    assert_eq!(s.status_counts().await.unwrap().queued, 3);
}

async fn users_and_token_hashes(db: TestDb) {
    let s = &db.store;
    assert!(matches!(
        s.add_user("alice", Role::Reviewer, Some("hunter2")).await,
        Err(StoreError::Invalid(_))
    ));
    let phc = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
    let alice = s
        .add_user("alice", Role::Reviewer, Some(phc))
        .await
        .unwrap();
    assert!(matches!(
        s.add_user("alice", Role::Admin, None).await,
        Err(StoreError::Conflict(_))
    ));
    let bot = s.add_user("worker-1", Role::Worker, None).await.unwrap();
    let user = s.user_by_name("alice").await.unwrap().unwrap();
    assert_eq!((user.id, user.role), (alice, Role::Reviewer));
    assert_eq!(user.password_hash.as_deref(), Some(phc));
    assert!(s.user_by_name("mallory").await.unwrap().is_none());

    let token = s.issue_token(alice, "cli").await.unwrap();
    let other = s.issue_token(bot, "worker").await.unwrap();
    assert_ne!(token.token, other.token);
    assert!(token.token.starts_with("rjt_") && token.token.len() > 60);
    assert_eq!(
        s.user_for_token(&token.token).await.unwrap().unwrap().id,
        alice
    );
    assert_eq!(
        s.user_for_token(&other.token).await.unwrap().unwrap().role,
        Role::Worker
    );
    // What is stored is no key: presenting the hash itself gets nobody in.
    assert!(
        s.user_for_token(&hash_token(&token.token))
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.user_for_token("rjt_guess").await.unwrap().is_none());
    assert!(s.revoke_token(token.id).await.unwrap());
    assert!(!s.revoke_token(token.id).await.unwrap());
    assert!(s.user_for_token(&token.token).await.unwrap().is_none());
    assert!(s.user_for_token(&other.token).await.unwrap().is_some());

    if let Some(dir) = &db.dir {
        // The raw tokens appear in no byte of the SQLite files; their hashes do.
        s.close().await;
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(!contains(&token.token) && !contains(&other.token));
        assert!(contains(&hash_token(&other.token)));
        assert!(!contains("hunter2"));
    }
}

async fn stats_count_reviewed_verdicts(db: TestDb) {
    let s = &db.store;
    // Static expert: 4 done (2 benign, 2 harmful); llm/m1: 2 done; one failed, one queued.
    for _ in 0..6 {
        s.create_job(&new_job("static")).await.unwrap();
    }
    let st: Vec<i64> = vec![
        run_one(s, true).await,
        run_one(s, true).await,
        run_one(s, false).await,
        run_one(s, false).await,
    ];
    let failing = s.claim("w", "v").await.unwrap().unwrap();
    s.fail(failing.id, failing.attempt, "boom").await.unwrap();
    let llm = NewJob {
        expert: "llm".into(),
        model: Some("m1".into()),
        ..new_job("llm")
    };
    // Take the sixth static job out of the way (it is cancelled below) so the llm jobs run next.
    let queued_static = s.claim("w", "v").await.unwrap().unwrap();
    s.create_job(&llm).await.unwrap();
    s.create_job(&llm).await.unwrap();
    let l1 = run_one(s, false).await;
    let _l2 = run_one(s, true).await;
    s.cancel(queued_static.id).await.unwrap();

    s.review(st[0], &review(Decision::Correct, ""))
        .await
        .unwrap(); // true benign
    s.review(st[1], &review(Decision::Incorrect, ""))
        .await
        .unwrap(); // false benign
    s.review(st[2], &review(Decision::Correct, ""))
        .await
        .unwrap(); // true harmful
    s.review(st[3], &review(Decision::Correct, ""))
        .await
        .unwrap();
    s.review(st[3], &review(Decision::Incorrect, ""))
        .await
        .unwrap(); // latest wins: false harmful
    s.review(l1, &review(Decision::Correct, "")).await.unwrap(); // true harmful

    let stats = s.review_stats().await.unwrap();
    assert_eq!(stats.len(), 2);
    assert_eq!(
        (stats[0].expert.as_str(), stats[0].model.as_deref()),
        ("llm", Some("m1"))
    );
    assert_eq!(stats[0].confusion.reviewed(), 1);
    assert_eq!(stats[0].confusion.true_harmful, 1);
    let c = stats[1].confusion;
    assert_eq!(stats[1].expert, "static");
    assert_eq!(
        (
            c.true_benign,
            c.false_benign,
            c.true_harmful,
            c.false_harmful
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(c.accuracy(), Some(0.5));
    assert_eq!(c.harmful_recall(), Some(0.5));

    let counts = s.status_counts().await.unwrap();
    assert_eq!(
        (
            counts.queued,
            counts.running,
            counts.done,
            counts.failed,
            counts.cancelled
        ),
        (0, 0, 6, 1, 1)
    );
    assert_eq!(counts.unreviewed, 1, "one llm verdict awaits review");
}

async fn bad_input_is_refused_alike(db: TestDb) {
    let s = &db.store;
    let invalid = |r: Result<i64, StoreError>| matches!(r, Err(StoreError::Invalid(_)));
    // PostgreSQL cannot store a NUL character; SQLite could, but the store answers the same on both.
    let nul = NewJob {
        report: "BUG: KCSAN\0garbage from the console".into(),
        ..new_job("t")
    };
    assert!(invalid(s.create_job(&nul).await));
    let half_git = NewJob {
        kernel: Kernel::Git {
            repo: "https://git.example.org/linux.git".into(),
            commit: " ".into(),
        },
        ..new_job("t")
    };
    assert!(invalid(s.create_job(&half_git).await));
    assert!(invalid(
        s.create_job(&NewJob {
            expert: "".into(),
            ..new_job("t")
        })
        .await
    ));
    let nul_search = JobFilter {
        title: Some("a\0b".into()),
        ..Default::default()
    };
    assert!(invalid(s.count_jobs(&nul_search).await));
    assert!(matches!(
        s.list_jobs(&nul_search, None, 10).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.claim(" ", "v").await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        s.count_jobs(&JobFilter::default()).await.unwrap(),
        0,
        "nothing was stored"
    );

    // A worker's error text is kept, its NUL replaced: the worker could not do better.
    let id = s.create_job(&new_job("t")).await.unwrap();
    let job = s.claim("w", "v").await.unwrap().unwrap();
    s.fail(id, job.attempt, "died at\0here").await.unwrap();
    assert_eq!(
        s.job(id).await.unwrap().error.as_deref(),
        Some("died at\u{FFFD}here")
    );

    let done = s.create_job(&new_job("t")).await.unwrap();
    run_one(s, true).await;
    assert!(matches!(
        s.review(done, &review(Decision::Correct, "x\0y")).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(s.reviews(done).await.unwrap().is_empty());
    assert!(matches!(
        s.issue_token(12345, "nobody").await,
        Err(StoreError::NoSuchUser(12345))
    ));
    assert!(invalid(s.add_user("", Role::Admin, None).await));
}
