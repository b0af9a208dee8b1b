//! Jobs: creation, the queue workers claim from, results, listing; spans and the transcript;
//! worker liveness.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AssertSqlSafe;

use crate::{
    Backend, ERROR_PREVIEW_CHARS, Job, JobFilter, JobSummary, Kernel, NewJob, Outcome, Result,
    Store, StoreError, Verdict, check_text, decode_err, from_row, now_ms, on_pool,
};

/// Errors longer than this are cut (the reference keeps 1 MiB too): a runaway log must not make
/// a job row unreadable.
const MAX_ERROR_BYTES: usize = 1 << 20;

/// Who the service writes journal entries as, when no person decided.
pub(crate) const SYSTEM_REVIEWER: &str = "racejudge";

/// How a [`Job`] is read: its row and its texts.
const JOB_SELECT: &str = "SELECT id, workflow, title, kernel_dir, kernel_repo, kernel_commit, \
    expert, model, status, created_ms, started_ms, finished_ms, worker, revision, attempt, error, \
    benign, confidence, review, report, config, results \
    FROM jobs JOIN job_texts ON job_texts.job_id = jobs.id";

/// The columns [`JobSummary`] is read from (`{preview}` is [`ERROR_PREVIEW_CHARS`]).
const SUMMARY_COLUMNS: &str = "id, workflow, title, expert, model, status, created_ms, started_ms, \
    finished_ms, worker, revision, attempt, SUBSTR(error, 1, {preview}) AS error_preview, benign, \
    confidence, review";

from_row!(Job, row => {
    let kernel = match (
        row.try_get::<Option<String>, _>("kernel_dir")?,
        row.try_get::<Option<String>, _>("kernel_repo")?,
        row.try_get::<Option<String>, _>("kernel_commit")?,
    ) {
        (Some(dir), _, _) => Kernel::Dir(dir),
        (None, Some(repo), Some(commit)) => Kernel::Git { repo, commit },
        _ => Kernel::Default,
    };
    let outcome = match (
        row.try_get::<Option<bool>, _>("benign")?,
        row.try_get::<Option<f64>, _>("confidence")?,
        row.try_get::<Option<String>, _>("results")?,
    ) {
        (Some(benign), Some(confidence), Some(results)) => Some(Outcome {
            benign,
            confidence,
            results: serde_json::from_str(&results).map_err(decode_err)?,
        }),
        _ => None,
    };
    Ok(Job {
        id: row.try_get("id")?,
        input: NewJob {
            workflow: row.try_get("workflow")?,
            title: row.try_get("title")?,
            report: row.try_get("report")?,
            kernel,
            config: row.try_get("config")?,
            expert: row.try_get("expert")?,
            model: row.try_get("model")?,
        },
        status: row.try_get::<String, _>("status")?.parse().map_err(decode_err)?,
        created_ms: row.try_get("created_ms")?,
        started_ms: row.try_get("started_ms")?,
        finished_ms: row.try_get("finished_ms")?,
        worker: row.try_get("worker")?,
        revision: row.try_get("revision")?,
        attempt: row.try_get("attempt")?,
        error: row.try_get("error")?,
        outcome,
        review: row.try_get::<String, _>("review")?.parse().map_err(decode_err)?,
    })
});

from_row!(JobSummary, row => {
    Ok(JobSummary {
        id: row.try_get("id")?,
        workflow: row.try_get("workflow")?,
        title: row.try_get("title")?,
        expert: row.try_get("expert")?,
        model: row.try_get("model")?,
        status: row.try_get::<String, _>("status")?.parse().map_err(decode_err)?,
        created_ms: row.try_get("created_ms")?,
        started_ms: row.try_get("started_ms")?,
        finished_ms: row.try_get("finished_ms")?,
        worker: row.try_get("worker")?,
        revision: row.try_get("revision")?,
        attempt: row.try_get("attempt")?,
        error_preview: row.try_get("error_preview")?,
        benign: row.try_get("benign")?,
        confidence: row.try_get("confidence")?,
        review: row.try_get::<String, _>("review")?.parse().map_err(decode_err)?,
    })
});

/// One page of the job list, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub jobs: Vec<JobSummary>,
    /// Pass as `before` for the next (older) page; `None` on the last page.
    pub next_before: Option<i64>,
}

/// One stored span or transcript entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: i64,
    pub json: Value,
}

from_row!(Entry, row => {
    let text: String = row.try_get("json")?;
    Ok(Entry {
        seq: row.try_get("seq")?,
        json: serde_json::from_str(&text).map_err(decode_err)?,
    })
});

/// A worker process as last seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Worker {
    pub name: String,
    pub version: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// The jobs it is running now, oldest claim first.
    pub running: Vec<i64>,
}

from_row!(Worker, row => {
    Ok(Worker {
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        first_seen_ms: row.try_get("first_seen_ms")?,
        last_seen_ms: row.try_get("last_seen_ms")?,
        running: Vec::new(),
    })
});

/// A value bound to a `$N` placeholder of a query built at run time.
enum Arg {
    Text(String),
    Int(i64),
    Bool(bool),
}

/// Binds `$args` in order to `$query` (expanded per backend, like `on_pool!`).
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Arg::Text(s) => query.bind(s),
                Arg::Int(i) => query.bind(i),
                Arg::Bool(b) => query.bind(b),
            };
        }
        query
    }};
}

/// The `WHERE` clause of a filtered list and its arguments; placeholders are numbered from 1.
fn filter_sql(filter: &JobFilter, before: Option<i64>) -> (String, Vec<Arg>) {
    let mut conds = Vec::new();
    let mut args = Vec::new();
    let mut push = |cond: &str, arg: Arg| {
        args.push(arg);
        conds.push(cond.replace('?', &format!("${}", args.len())));
    };
    if let Some(status) = filter.status {
        push("status = ?", Arg::Text(status.as_str().into()));
    }
    if let Some(verdict) = filter.verdict {
        push("benign = ?", Arg::Bool(verdict == Verdict::Benign));
    }
    if let Some(review) = filter.review {
        push("review = ?", Arg::Text(review.as_str().into()));
    }
    if let Some(expert) = &filter.expert {
        push("expert = ?", Arg::Text(expert.clone()));
    }
    if let Some(model) = &filter.model {
        push("model = ?", Arg::Text(model.clone()));
    }
    if let Some(title) = &filter.title {
        // LOWER on both sides: SQLite's LIKE ignores ASCII case, PostgreSQL's does not.
        let pattern = format!("%{}%", escape_like(&title.to_lowercase()));
        push("LOWER(title) LIKE ? ESCAPE '\\'", Arg::Text(pattern));
    }
    if let Some(before) = before {
        push("id < ?", Arg::Int(before));
    }
    if conds.is_empty() {
        (String::new(), args)
    } else {
        (format!("WHERE {}", conds.join(" AND ")), args)
    }
}

fn check_filter(filter: &JobFilter) -> Result<()> {
    [&filter.expert, &filter.model, &filter.title]
        .into_iter()
        .flatten()
        .try_for_each(|value| check_text("filter", value))
}

/// Refuses a job the store could not keep the same on both backends, or that no worker could
/// run: an empty workflow or expert, a half-given git kernel, NUL characters.
fn validate_new_job(job: &NewJob) -> Result<()> {
    for (field, value) in [("workflow", &job.workflow), ("expert", &job.expert)] {
        if value.trim().is_empty() {
            return Err(StoreError::Invalid(format!("a job needs a {field}")));
        }
    }
    if let Kernel::Git { repo, commit } = &job.kernel
        && (repo.trim().is_empty() || commit.trim().is_empty())
    {
        return Err(StoreError::Invalid(
            "a git kernel needs both a repository and a commit".into(),
        ));
    }
    let kernel: Vec<(&str, &String)> = match &job.kernel {
        Kernel::Default => vec![],
        Kernel::Dir(dir) => vec![("kernel directory", dir)],
        Kernel::Git { repo, commit } => {
            vec![("kernel repository", repo), ("kernel commit", commit)]
        }
    };
    let optional = [("config", &job.config), ("model", &job.model)];
    [
        ("workflow", &job.workflow),
        ("title", &job.title),
        ("report", &job.report),
        ("expert", &job.expert),
    ]
    .into_iter()
    .chain(kernel)
    .chain(
        optional
            .into_iter()
            .filter_map(|(f, v)| v.as_ref().map(|v| (f, v))),
    )
    .try_for_each(|(field, value)| check_text(field, value))
}

/// Makes `%`, `_` and `\` match themselves in a `LIKE … ESCAPE '\'` pattern.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Cuts `error` to [`MAX_ERROR_BYTES`] on a character boundary, saying so.
fn cap_error(error: &str) -> String {
    if error.len() <= MAX_ERROR_BYTES {
        return error.to_string();
    }
    let mut end = MAX_ERROR_BYTES;
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n... [truncated]", &error[..end])
}

impl Store {
    /// Queues a new job and returns its id.
    pub async fn create_job(&self, job: &NewJob) -> Result<i64> {
        validate_new_job(job)?;
        let (dir, repo, commit) = match &job.kernel {
            Kernel::Default => (None, None, None),
            Kernel::Dir(dir) => (Some(dir.clone()), None, None),
            Kernel::Git { repo, commit } => (None, Some(repo.clone()), Some(commit.clone())),
        };
        let row = "INSERT INTO jobs (workflow, title, kernel_dir, kernel_repo, kernel_commit, \
             expert, model, status, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8) RETURNING id";
        let texts = "INSERT INTO job_texts (job_id, report, config) VALUES ($1, $2, $3)";
        // One transaction, so a worker never claims a job whose texts are not there yet.
        let id = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let id: i64 = sqlx::query_scalar(row)
                .bind(&job.workflow)
                .bind(&job.title)
                .bind(dir)
                .bind(repo)
                .bind(commit)
                .bind(&job.expert)
                .bind(&job.model)
                .bind(now_ms())
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query(texts)
                .bind(id)
                .bind(&job.report)
                .bind(&job.config)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            id
        });
        Ok(id)
    }

    /// The job `id`, or [`StoreError::NoSuchJob`].
    pub async fn job(&self, id: i64) -> Result<Job> {
        let sql = AssertSqlSafe(format!("{JOB_SELECT} WHERE id = $1"));
        let job = on_pool!(self, pool => {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await?
        });
        job.ok_or(StoreError::NoSuchJob(id))
    }

    /// The jobs matching `filter`, newest first, older than `before` (an id) when given, at most
    /// `limit` of them.
    pub async fn list_jobs(
        &self,
        filter: &JobFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Page> {
        check_filter(filter)?;
        let (cond, args) = filter_sql(filter, before);
        let columns = SUMMARY_COLUMNS.replace("{preview}", &ERROR_PREVIEW_CHARS.to_string());
        let sql = AssertSqlSafe(format!(
            "SELECT {columns} FROM jobs {cond} ORDER BY id DESC LIMIT {limit}"
        ));
        let jobs: Vec<JobSummary> = on_pool!(self, pool => {
            bind_args!(sqlx::query_as(sql), args).fetch_all(pool).await?
        });
        let next_before = match jobs.last() {
            Some(last) if jobs.len() == limit as usize => Some(last.id),
            _ => None,
        };
        Ok(Page { jobs, next_before })
    }

    /// How many jobs match `filter`.
    pub async fn count_jobs(&self, filter: &JobFilter) -> Result<i64> {
        check_filter(filter)?;
        let (cond, args) = filter_sql(filter, None);
        let sql = AssertSqlSafe(format!("SELECT COUNT(*) FROM jobs {cond}"));
        let n = on_pool!(self, pool => {
            bind_args!(sqlx::query_scalar(sql), args).fetch_one(pool).await?
        });
        Ok(n)
    }

    /// Hands the oldest queued job to `worker` (running `version`), or `None` when the queue is
    /// empty. Atomic: two workers never get the same job. Also records the worker as alive.
    /// (The job is read back after the claim; a cancel in between shows in its status.)
    pub async fn claim(&self, worker: &str, version: &str) -> Result<Option<Job>> {
        self.heartbeat(worker, version).await?;
        // One statement: the subquery picks the job and the UPDATE takes it. SQLite runs a
        // write statement under its database write lock; PostgreSQL locks the picked row and
        // lets concurrent claimers skip it rather than wait for it and then find it taken.
        let lock = match self.backend {
            Backend::Sqlite(_) => "",
            Backend::Postgres(_) => "FOR UPDATE SKIP LOCKED",
        };
        let sql = AssertSqlSafe(format!(
            "UPDATE jobs SET status = 'running', started_ms = $1, finished_ms = NULL, worker = $2, \
             revision = $3, attempt = attempt + 1, error = NULL, benign = NULL, confidence = NULL \
             WHERE id = (SELECT id FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1 {lock}) \
             AND status = 'queued' \
             RETURNING id"
        ));
        let id: Option<i64> = on_pool!(self, pool => {
            sqlx::query_scalar(sql)
                .bind(now_ms())
                .bind(worker)
                .bind(version)
                .fetch_optional(pool)
                .await?
        });
        match id {
            Some(id) => Ok(Some(self.job(id).await?)),
            None => Ok(None),
        }
    }

    /// Records the verdict of `attempt` of job `id` and marks it done. Fails with
    /// [`StoreError::Stale`] when that attempt is no longer running (cancelled, re-queued).
    pub async fn finish(&self, id: i64, attempt: i64, outcome: &Outcome) -> Result<()> {
        let row = "UPDATE jobs SET status = 'done', finished_ms = $1, benign = $2, confidence = $3 \
             WHERE id = $4 AND attempt = $5 AND status = 'running'";
        let texts = "UPDATE job_texts SET results = $2 WHERE job_id = $1";
        let results = outcome.results.to_string();
        // The guarded UPDATE writes first, so a SQLite transaction holds the write lock from it.
        let n = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(row)
                .bind(now_ms())
                .bind(outcome.benign)
                .bind(outcome.confidence)
                .bind(id)
                .bind(attempt)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n > 0 {
                sqlx::query(texts).bind(id).bind(results).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            n
        });
        self.expect_running(n, id, attempt).await
    }

    /// Marks `attempt` of job `id` failed with `error` (cut to 1 MiB; a NUL character, which
    /// PostgreSQL cannot store, becomes U+FFFD: the worker could not do better).
    pub async fn fail(&self, id: i64, attempt: i64, error: &str) -> Result<()> {
        let sql = "UPDATE jobs SET status = 'failed', finished_ms = $1, error = $2 \
             WHERE id = $3 AND attempt = $4 AND status = 'running'";
        let n = on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(now_ms())
                .bind(cap_error(&error.replace('\0', "\u{FFFD}")))
                .bind(id)
                .bind(attempt)
                .execute(pool)
                .await?
                .rows_affected()
        });
        self.expect_running(n, id, attempt).await
    }

    /// After a write guarded by "this attempt is running": `Ok` when it hit a row, otherwise
    /// why not.
    async fn expect_running(&self, rows: u64, id: i64, attempt: i64) -> Result<()> {
        if rows > 0 {
            return Ok(());
        }
        self.job(id).await?;
        Err(StoreError::Stale { id, attempt })
    }

    /// Cancels a queued or running job. A running job's worker learns it when its next write
    /// fails with [`StoreError::Stale`] (or when it polls the job's status).
    pub async fn cancel(&self, id: i64) -> Result<()> {
        let sql = "UPDATE jobs SET status = 'cancelled', finished_ms = $1 \
             WHERE id = $2 AND status IN ('queued', 'running')";
        let n = on_pool!(self, pool => {
            sqlx::query(sql).bind(now_ms()).bind(id).execute(pool).await?.rows_affected()
        });
        if n > 0 {
            return Ok(());
        }
        let job = self.job(id).await?;
        Err(StoreError::WrongState {
            id,
            status: job.status,
            action: "cancel",
        })
    }

    /// Queues a finished (done, failed or cancelled) job again; the next claim starts a new
    /// attempt, and the old attempt's spans and transcript are kept under its number. A review
    /// of the old verdict no longer applies: the journal gets an `unreviewed` entry saying so.
    pub async fn restart(&self, id: i64) -> Result<Job> {
        const FINISHED: &str = "status IN ('done', 'failed', 'cancelled')";
        let journal = AssertSqlSafe(format!(
            "INSERT INTO reviews (job_id, at_ms, reviewer, decision, reason, source) \
             SELECT id, $2, $3, 'unreviewed', 'restarted: the verdict will be new', 'restart' \
             FROM jobs WHERE id = $1 AND {FINISHED} AND review <> 'unreviewed'"
        ));
        let requeue = AssertSqlSafe(format!(
            "UPDATE jobs SET status = 'queued', started_ms = NULL, finished_ms = NULL, \
             worker = NULL, revision = NULL, error = NULL, benign = NULL, confidence = NULL, \
             review = 'unreviewed' WHERE id = $1 AND {FINISHED}"
        ));
        let texts = "UPDATE job_texts SET results = NULL WHERE job_id = $1";
        // Both statements write, so the SQLite transaction holds the write lock from the first.
        let n = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(journal)
                .bind(id)
                .bind(now_ms())
                .bind(SYSTEM_REVIEWER)
                .execute(&mut *tx)
                .await?;
            let n = sqlx::query(requeue).bind(id).execute(&mut *tx).await?.rows_affected();
            if n > 0 {
                sqlx::query(texts).bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            n
        });
        let job = self.job(id).await?;
        if n == 0 {
            return Err(StoreError::WrongState {
                id,
                status: job.status,
                action: "restart",
            });
        }
        Ok(job)
    }

    /// Queues again every job left running, keeping its attempt count (the next claim starts a
    /// new attempt). For a server whose workers are all in-process, at start: they died with the
    /// last process. Not for a database shared with other live servers or remote workers (it
    /// would take their jobs away): use [`Store::requeue_stale`] there. Returns how many.
    pub async fn requeue_running(&self) -> Result<u64> {
        let sql = "UPDATE jobs SET status = 'queued', started_ms = NULL, worker = NULL \
             WHERE status = 'running'";
        let n = on_pool!(self, pool => sqlx::query(sql).execute(pool).await?.rows_affected());
        Ok(n)
    }

    /// Queues again the running jobs of workers not seen since `seen_before_ms` (for remote
    /// workers, which die without the server noticing). Returns how many.
    pub async fn requeue_stale(&self, seen_before_ms: i64) -> Result<u64> {
        let sql = "UPDATE jobs SET status = 'queued', started_ms = NULL, worker = NULL \
             WHERE status = 'running' AND (worker IS NULL OR worker NOT IN \
             (SELECT name FROM workers WHERE last_seen_ms >= $1))";
        let n = on_pool!(self, pool => {
            sqlx::query(sql).bind(seen_before_ms).execute(pool).await?.rows_affected()
        });
        Ok(n)
    }

    /// Records that `worker` (running `version`) is alive now.
    pub async fn heartbeat(&self, worker: &str, version: &str) -> Result<()> {
        if worker.trim().is_empty() {
            return Err(StoreError::Invalid("a worker needs a name".into()));
        }
        check_text("worker name", worker)?;
        check_text("worker version", version)?;
        let sql = "INSERT INTO workers (name, version, first_seen_ms, last_seen_ms) \
             VALUES ($1, $2, $3, $3) \
             ON CONFLICT (name) DO UPDATE SET version = excluded.version, \
             last_seen_ms = excluded.last_seen_ms";
        on_pool!(self, pool => {
            sqlx::query(sql).bind(worker).bind(version).bind(now_ms()).execute(pool).await?;
        });
        Ok(())
    }

    /// Every worker ever seen, most recently seen first, with the jobs each runs now.
    pub async fn workers(&self) -> Result<Vec<Worker>> {
        let workers_sql = "SELECT name, version, first_seen_ms, last_seen_ms FROM workers \
             ORDER BY last_seen_ms DESC, name";
        let running_sql = "SELECT worker, id FROM jobs WHERE status = 'running' \
             AND worker IS NOT NULL ORDER BY started_ms, id";
        let (mut workers, running): (Vec<Worker>, Vec<(String, i64)>) = on_pool!(self, pool => (
            sqlx::query_as(workers_sql).fetch_all(pool).await?,
            sqlx::query_as(running_sql).fetch_all(pool).await?,
        ));
        for worker in &mut workers {
            worker.running = running
                .iter()
                .filter(|(name, _)| *name == worker.name)
                .map(|(_, id)| *id)
                .collect();
        }
        Ok(workers)
    }

    /// Stores span `seq` of `attempt` of job `id`, replacing an earlier version of it (a span is
    /// written when it starts and again when it finishes). Only the running attempt may write.
    pub async fn put_span(&self, id: i64, attempt: i64, seq: i64, span: &Value) -> Result<()> {
        self.put_entry("spans", "span", id, attempt, seq, span)
            .await
    }

    /// The spans of `attempt` of job `id`, in `seq` order.
    pub async fn spans(&self, id: i64, attempt: i64) -> Result<Vec<Entry>> {
        self.entries("spans", "span", id, attempt).await
    }

    /// Stores transcript entry `seq` of `attempt` of job `id` (replacing one with that `seq`).
    pub async fn put_transcript(
        &self,
        id: i64,
        attempt: i64,
        seq: i64,
        entry: &Value,
    ) -> Result<()> {
        self.put_entry("transcript", "entry", id, attempt, seq, entry)
            .await
    }

    /// The transcript of `attempt` of job `id`, in `seq` order.
    pub async fn transcript(&self, id: i64, attempt: i64) -> Result<Vec<Entry>> {
        self.entries("transcript", "entry", id, attempt).await
    }

    async fn put_entry(
        &self,
        table: &str,
        column: &str,
        id: i64,
        attempt: i64,
        seq: i64,
        json: &Value,
    ) -> Result<()> {
        // INSERT … SELECT so that the "attempt is running" check and the write are one
        // statement. (SQLite needs the WHERE to parse an upsert after a SELECT.)
        let sql = AssertSqlSafe(format!(
            "INSERT INTO {table} (job_id, attempt, seq, {column}) \
             SELECT id, attempt, $3, $4 FROM jobs WHERE id = $1 AND attempt = $2 AND status = 'running' \
             ON CONFLICT (job_id, attempt, seq) DO UPDATE SET {column} = excluded.{column}"
        ));
        let n = on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(id)
                .bind(attempt)
                .bind(seq)
                .bind(json.to_string())
                .execute(pool)
                .await?
                .rows_affected()
        });
        self.expect_running(n, id, attempt).await
    }

    async fn entries(
        &self,
        table: &str,
        column: &str,
        id: i64,
        attempt: i64,
    ) -> Result<Vec<Entry>> {
        let sql = AssertSqlSafe(format!(
            "SELECT seq, {column} AS json FROM {table} WHERE job_id = $1 AND attempt = $2 ORDER BY seq"
        ));
        let entries = on_pool!(self, pool => {
            sqlx::query_as(sql).bind(id).bind(attempt).fetch_all(pool).await?
        });
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Status;

    #[test]
    fn like_patterns_match_wildcards_literally() {
        assert_eq!(escape_like("a%b_c\\d"), "a\\%b\\_c\\\\d");
    }

    #[test]
    fn long_errors_are_cut_on_a_char_boundary() {
        let error = "é".repeat(MAX_ERROR_BYTES);
        let capped = cap_error(&error);
        assert!(capped.len() < MAX_ERROR_BYTES + 32);
        assert!(capped.ends_with("... [truncated]"));
        assert_eq!(cap_error("short"), "short");
    }

    #[test]
    fn filters_number_their_placeholders_in_order() {
        let filter = JobFilter {
            status: Some(Status::Done),
            title: Some("x".into()),
            ..Default::default()
        };
        let (sql, args) = filter_sql(&filter, Some(7));
        assert_eq!(
            sql,
            "WHERE status = $1 AND LOWER(title) LIKE $2 ESCAPE '\\' AND id < $3"
        );
        assert_eq!(args.len(), 3);
        assert_eq!(filter_sql(&JobFilter::default(), None).0, "");
    }
}
