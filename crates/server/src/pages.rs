//! Server-rendered HTML pages, usable without JavaScript: the jobs list, a job's page (inputs,
//! verdict, explanation, crash report, decision history, review form, trajectory tree), submit,
//! stats and workers. Each has a JSON twin under `/api/v1`.
//!
//! Model thoughts and the raw transcript are not rendered: they are for reviewers only, and the
//! server has no accounts yet (the JSON export carries them for scripts).

use std::fmt::Write;

use axum::Form;
use axum::Router;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;
use store::{Decision, Job, JobSummary, Kernel, NewReview, Status};

use crate::api::{ListQuery, Submit, job_id, list_query, queue};
use crate::html::{esc, opt_time, page, time, url_param};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(jobs_page))
        .route("/jobs/{id}", get(job_page))
        .route("/jobs/{id}/review", post(review_form))
        .route("/jobs/{id}/cancel", post(cancel_form))
        .route("/jobs/{id}/restart", post(restart_form))
        .route("/submit", get(submit_page).post(submit_form))
        .route("/stats", get(stats_page))
        .route("/workers", get(workers_page))
}

fn verdict_cell(benign: Option<bool>, confidence: Option<f64>) -> String {
    match (benign, confidence) {
        (Some(true), Some(c)) => format!("Benign ✅ ({:.0}%)", c * 100.0),
        (Some(false), Some(c)) => format!("Harmful ❌ ({:.0}%)", c * 100.0),
        _ => String::new(),
    }
}

fn review_cell(review: Decision) -> &'static str {
    match review {
        Decision::Correct => "✅ correct",
        Decision::Incorrect => "❌ incorrect",
        Decision::Unreviewed => "",
    }
}

fn select(name: &str, options: &[&str], chosen: &Option<String>) -> String {
    let mut out = format!("<select name=\"{name}\"><option value=\"\">any {name}</option>");
    for option in options {
        let sel = if chosen.as_deref() == Some(*option) {
            " selected"
        } else {
            ""
        };
        let _ = write!(out, "<option{sel}>{option}</option>");
    }
    out.push_str("</select> ");
    out
}

async fn jobs_page(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Html<String>, ApiError> {
    let query = list_query(query)?;
    let filter = query.filter()?;
    let limit = query.limit()?;
    let page_ = state.store.list_jobs(&filter, query.before, limit).await?;
    let total = state.store.count_jobs(&filter).await?;
    let mut body = String::from("<h1>Jobs</h1><form method=\"get\" action=\"/\">");
    body += &select(
        "status",
        &["queued", "running", "done", "failed", "cancelled"],
        &query.status,
    );
    body += &select("verdict", &["benign", "harmful"], &query.verdict);
    body += &select(
        "review",
        &["correct", "incorrect", "unreviewed"],
        &query.review,
    );
    body += &select("expert", &["static", "llm"], &query.expert);
    let _ = write!(
        body,
        "<input name=\"model\" placeholder=\"model\" value=\"{}\"> \
         <input name=\"q\" placeholder=\"title or function\" value=\"{}\"> \
         <button>Filter</button></form><p>{total} jobs</p>",
        esc(query.model.as_deref().unwrap_or("")),
        esc(query.q.as_deref().unwrap_or(""))
    );
    body += "<table><tr><th>ID</th><th>Workflow</th><th>Result</th><th>Correct</th>\
             <th>Bug title</th><th>Created</th><th>Started</th><th>Finished</th>\
             <th>Revision</th><th>Error</th></tr>";
    for job in &page_.jobs {
        body += &job_row(job);
    }
    body += "</table>";
    if let Some(before) = page_.next_before {
        // The filters carry over to the next page.
        let mut link = format!("/?before={before}&limit={limit}");
        for (key, value) in [
            ("status", &query.status),
            ("verdict", &query.verdict),
            ("review", &query.review),
            ("expert", &query.expert),
            ("model", &query.model),
            ("q", &query.q),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                let _ = write!(link, "&{key}={}", url_param(v));
            }
        }
        let _ = write!(body, "<p><a href=\"{}\">Older jobs →</a></p>", esc(&link));
    }
    Ok(Html(page("Jobs", &body)))
}

fn job_row(job: &JobSummary) -> String {
    let result = match job.status {
        Status::Done => verdict_cell(job.benign, job.confidence),
        other => other.to_string(),
    };
    format!(
        "<tr><td><a href=\"/jobs/{id}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td>\
         <td><a href=\"/jobs/{id}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td class=\"err\">{}</td></tr>",
        esc(&job.workflow),
        esc(&result),
        review_cell(job.review),
        esc(&job.title),
        time(job.created_ms),
        opt_time(job.started_ms),
        opt_time(job.finished_ms),
        esc(job.revision.as_deref().unwrap_or("")),
        esc(job.error_preview.as_deref().unwrap_or("")),
        id = job.id,
    )
}

fn kernel_text(kernel: &Kernel) -> String {
    match kernel {
        Kernel::Default => "server default".into(),
        Kernel::Dir(dir) => format!("directory {dir}"),
        Kernel::Git { repo, commit } => format!("{repo} @ {commit}"),
    }
}

async fn job_page(
    State(state): State<AppState>,
    path: Result<Path<i64>, PathRejection>,
) -> Result<Html<String>, ApiError> {
    let id = job_id(path)?;
    let job = state.store.job(id).await?;
    let reviews = state.store.reviews(id).await?;
    let spans = if job.attempt > 0 {
        state.store.spans(id, job.attempt).await?
    } else {
        Vec::new()
    };
    let csrf = state.csrf_token(&id.to_string());
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Job {id}: {}</h1>{}",
        esc(&job.input.title),
        inputs_table(&job)
    );
    if job.status == Status::Running || job.status == Status::Queued {
        // No JavaScript needed: reload to see new spans.
        body += "<p>This job is not finished: <a href=\"\">reload</a> to see its progress.</p>";
    }
    if let Some(error) = &job.error {
        let _ = write!(
            body,
            "<h2>Error</h2><pre class=\"err\">{}</pre>",
            esc(error)
        );
    }
    if let Some(outcome) = &job.outcome {
        let _ = write!(
            body,
            "<h2>Outputs</h2><table><tr><th>Benign</th><td>{}</td></tr>\
             <tr><th>Confidence</th><td>{:.2}</td></tr></table>",
            if outcome.benign { "✅ yes" } else { "❌ no" },
            outcome.confidence
        );
        if let Some(explanation) = outcome.results.get("Explanation").and_then(Value::as_str) {
            // Shown as preformatted text: markdown is not rendered, so nothing in it is markup.
            let _ = write!(
                body,
                "<h2>Explanation</h2><pre class=\"explanation\">{}</pre>",
                esc(explanation)
            );
        }
        if let Some(evidence) = outcome.results.get("Evidence") {
            let _ = write!(
                body,
                "<details><summary>Evidence</summary><pre>{}</pre></details>",
                esc(&serde_json::to_string_pretty(evidence).unwrap_or_default())
            );
        }
    }
    let _ = write!(
        body,
        "<h2>Crash report</h2><pre class=\"report\">{}</pre>",
        esc(&job.input.report)
    );
    body += "<h2>Decision history</h2>";
    if reviews.is_empty() {
        body += "<p>No decisions yet.</p>";
    } else {
        body += "<table><tr><th>When</th><th>Who</th><th>Decision</th><th>Reason</th>\
                 <th>Source</th></tr>";
        for r in reviews.iter().rev() {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                time(r.at_ms),
                esc(&r.review.reviewer),
                r.review.decision,
                esc(&r.review.reason),
                esc(&r.review.source)
            );
        }
        body += "</table>";
    }
    if job.status == Status::Done {
        let _ = write!(
            body,
            "<h2>Review</h2><form method=\"post\" action=\"/jobs/{id}/review\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label><input type=\"radio\" name=\"decision\" value=\"correct\"> correct</label> \
             <label><input type=\"radio\" name=\"decision\" value=\"incorrect\"> incorrect</label> \
             <label><input type=\"radio\" name=\"decision\" value=\"unreviewed\"> unreviewed</label><br>\
             <input name=\"reviewer\" placeholder=\"your name\" required> \
             <input name=\"reason\" placeholder=\"reason\" size=\"60\"> \
             <button>Save decision</button></form>"
        );
    }
    body += "<h2>Actions</h2>";
    if matches!(job.status, Status::Queued | Status::Running) {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/jobs/{id}/cancel\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button>Cancel</button></form>"
        );
    } else {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/jobs/{id}/restart\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button>Restart</button></form>"
        );
    }
    let _ = write!(
        body,
        "<p><a href=\"/api/v1/jobs/{id}/export\">Export as JSON</a></p>\
         <h2>Trajectory (attempt {})</h2>{}",
        job.attempt,
        trajectory(&spans.iter().map(|e| &e.json).collect::<Vec<_>>())
    );
    Ok(Html(page(&format!("Job {id}"), &body)))
}

fn inputs_table(job: &Job) -> String {
    let rows = [
        ("Status", job.status.to_string()),
        ("Workflow", job.input.workflow.clone()),
        ("Expert", job.input.expert.clone()),
        ("Model", job.input.model.clone().unwrap_or_default()),
        ("Kernel", kernel_text(&job.input.kernel)),
        (
            "Config",
            if job.input.config.is_some() {
                "given".into()
            } else {
                "none".into()
            },
        ),
        ("Created", time(job.created_ms)),
        ("Started", opt_time(job.started_ms)),
        ("Finished", opt_time(job.finished_ms)),
        ("Worker", job.worker.clone().unwrap_or_default()),
        ("Revision", job.revision.clone().unwrap_or_default()),
        ("Attempt", job.attempt.to_string()),
        ("Review", job.review.to_string()),
    ];
    let mut out = String::from("<h2>Inputs</h2><table>");
    for (k, v) in rows {
        let _ = write!(out, "<tr><th>{k}</th><td>{}</td></tr>", esc(&v));
    }
    out + "</table>"
}

/// Milliseconds between two RFC 3339 UTC stamps as the spans write them (`…T12:34:56.789Z`).
fn duration_ms(span: &Value) -> Option<i64> {
    fn ms(stamp: &str) -> Option<i64> {
        let t = stamp.split_once('T')?.1.trim_end_matches('Z');
        let (hms, frac) = t.split_once('.').unwrap_or((t, "0"));
        let mut parts = hms.split(':').map(|p| p.parse::<i64>().ok());
        let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
        let frac: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
        Some(((h * 60 + m) * 60 + s) * 1000 + frac)
    }
    let start = span.get("Started")?.as_str()?;
    let end = span.get("Finished")?.as_str()?;
    let days = |s: &str| s.split_once('T').map(|(d, _)| d.to_string());
    // Spans crossing midnight are rare; their duration is left out rather than wrong.
    if days(start) != days(end) {
        return None;
    }
    Some(ms(end)? - ms(start)?)
}

/// The spans as nested `<details>`, by their `Nesting`, in `Seq` order. Thoughts are left out
/// (reviewers only); args, results, prompt, reply and errors are shown escaped.
pub fn trajectory(spans: &[&Value]) -> String {
    if spans.is_empty() {
        return "<p>No spans recorded.</p>".into();
    }
    let mut out = String::from("<div class=\"trajectory\">");
    let mut open: Vec<u64> = Vec::new();
    for span in spans {
        let nesting = span.get("Nesting").and_then(Value::as_u64).unwrap_or(0);
        while open.last().is_some_and(|&n| n >= nesting) {
            open.pop();
            out += "</details>";
        }
        let text = |key: &str| span.get(key).and_then(Value::as_str).unwrap_or("");
        let duration = duration_ms(span)
            .map(|ms| format!("{ms} ms"))
            .unwrap_or_else(|| "running".into());
        let tokens = ["InputTokens", "OutputTokens"]
            .iter()
            .filter_map(|k| span.get(*k).and_then(Value::as_u64))
            .sum::<u64>();
        let _ = write!(
            out,
            "<details class=\"span\"><summary>#{} {} <b>{}</b> {} · {}{}{}{}</summary>",
            span.get("Seq").and_then(Value::as_u64).unwrap_or(0),
            esc(text("Type")),
            esc(text("Name")),
            esc(text("Started")),
            esc(&duration),
            if text("Model").is_empty() {
                String::new()
            } else {
                format!(" · {}", esc(text("Model")))
            },
            if tokens > 0 {
                format!(" · {tokens} tokens")
            } else {
                String::new()
            },
            if text("Error").is_empty() {
                ""
            } else {
                " · <span class=\"err\">error</span>"
            },
        );
        for key in ["Error", "Args", "Results", "Instruction", "Prompt", "Reply"] {
            let Some(value) = span.get(key) else { continue };
            let shown = match value {
                Value::String(s) => s.clone(),
                other => serde_json::to_string_pretty(other).unwrap_or_default(),
            };
            let _ = write!(out, "<div>{key}:</div><pre>{}</pre>", esc(&shown));
        }
        open.push(nesting);
    }
    for _ in open {
        out += "</details>";
    }
    out + "</div>"
}

#[derive(Debug, Deserialize)]
struct ReviewForm {
    csrf: String,
    decision: Option<String>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    reviewer: String,
}

#[derive(Debug, Deserialize)]
struct ActionForm {
    csrf: String,
}

fn form<T>(form: Result<Form<T>, FormRejection>) -> Result<T, ApiError> {
    form.map(|Form(f)| f)
        .map_err(|rej| ApiError::BadRequest(rej.body_text()))
}

fn check_csrf(state: &AppState, scope: &str, token: &str) -> Result<(), ApiError> {
    if state.csrf_ok(scope, token) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "the form's CSRF token is missing or stale: reload the page and try again".into(),
        ))
    }
}

async fn review_form(
    State(state): State<AppState>,
    path: Result<Path<i64>, PathRejection>,
    body: Result<Form<ReviewForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let id = job_id(path)?;
    let body = form(body)?;
    check_csrf(&state, &id.to_string(), &body.csrf)?;
    let decision: Decision = body
        .decision
        .as_deref()
        .ok_or_else(|| ApiError::BadRequest("decision: choose one".into()))?
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("decision: {e}")))?;
    state
        .store
        .review(
            id,
            &NewReview {
                reviewer: body.reviewer.trim().to_string(),
                decision,
                reason: body.reason,
                source: "web".into(),
            },
        )
        .await?;
    Ok(Redirect::to(&format!("/jobs/{id}")).into_response())
}

async fn cancel_form(
    State(state): State<AppState>,
    path: Result<Path<i64>, PathRejection>,
    body: Result<Form<ActionForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let id = job_id(path)?;
    check_csrf(&state, &id.to_string(), &form(body)?.csrf)?;
    state.store.cancel(id).await?;
    Ok(Redirect::to(&format!("/jobs/{id}")).into_response())
}

async fn restart_form(
    State(state): State<AppState>,
    path: Result<Path<i64>, PathRejection>,
    body: Result<Form<ActionForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let id = job_id(path)?;
    check_csrf(&state, &id.to_string(), &form(body)?.csrf)?;
    state.store.restart(id).await?;
    Ok(Redirect::to(&format!("/jobs/{id}")).into_response())
}

async fn submit_page(State(state): State<AppState>) -> Html<String> {
    let body = format!(
        "<h1>Submit</h1><form method=\"post\" action=\"/submit\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <p>Paste a KCSAN report or a console log (several reports become several jobs):</p>\
         <textarea name=\"report\" rows=\"20\" cols=\"100\" required></textarea>\
         <p>Kernel: the server's tree, or <input name=\"repo\" placeholder=\"git repository\"> \
         <input name=\"commit\" placeholder=\"commit\"></p>\
         <p>Expert: <select name=\"expert\"><option>static</option><option>llm</option></select> \
         <input name=\"model\" placeholder=\"model (llm)\"></p><button>Submit</button></form>",
        state.csrf_token("submit")
    );
    Html(page("Submit", &body))
}

#[derive(Debug, Deserialize)]
struct SubmitForm {
    csrf: String,
    report: String,
    #[serde(default)]
    repo: String,
    #[serde(default)]
    commit: String,
    #[serde(default)]
    expert: String,
    #[serde(default)]
    model: String,
}

async fn submit_form(
    State(state): State<AppState>,
    body: Result<Form<SubmitForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let body = form(body)?;
    check_csrf(&state, "submit", &body.csrf)?;
    let kernel = match (body.repo.trim(), body.commit.trim()) {
        ("", "") => Kernel::Default,
        (repo, commit) => Kernel::Git {
            repo: repo.into(),
            commit: commit.into(),
        },
    };
    let non_empty = |s: String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let submitted = queue(
        &state,
        Submit {
            report: body.report,
            kernel,
            config: None,
            expert: non_empty(body.expert),
            model: non_empty(body.model),
        },
    )
    .await?;
    let target = match submitted.jobs.as_slice() {
        [one] => format!("/jobs/{}", one.id),
        _ => "/".into(),
    };
    Ok(Redirect::to(&target).into_response())
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1}%", v * 100.0))
        .unwrap_or_else(|| "–".into())
}

async fn stats_page(State(state): State<AppState>) -> Result<Html<String>, ApiError> {
    let groups = state.store.review_stats().await?;
    let counts = state.store.status_counts().await?;
    let mut body = format!(
        "<h1>Statistics</h1><h2>Jobs</h2><table><tr><th>queued</th><th>running</th><th>done</th>\
         <th>failed</th><th>cancelled</th><th>unreviewed backlog</th></tr><tr><td>{}</td>\
         <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        counts.queued,
        counts.running,
        counts.done,
        counts.failed,
        counts.cancelled,
        counts.unreviewed
    );
    body += "<h2>Reviewed accuracy</h2><table><tr><th>Expert</th><th>Model</th>\
             <th>Reviewed</th><th>Accuracy</th><th>Harmful recall</th></tr>";
    let mut total = store::Confusion::default();
    for g in &groups {
        let c = g.confusion;
        total.true_harmful += c.true_harmful;
        total.false_harmful += c.false_harmful;
        total.true_benign += c.true_benign;
        total.false_benign += c.false_benign;
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"accuracy\">{}</td><td>{}</td></tr>",
            esc(&g.expert),
            esc(g.model.as_deref().unwrap_or("")),
            c.reviewed(),
            pct(c.accuracy()),
            pct(c.harmful_recall())
        );
    }
    let _ = write!(
        body,
        "<tr><th colspan=\"2\">all</th><td>{}</td><td class=\"accuracy\">{}</td><td>{}</td></tr>\
         </table><h2>Confusion matrix (all reviewed)</h2><table class=\"confusion\">\
         <tr><th></th><th>really harmful</th><th>really benign</th></tr>\
         <tr><th>said harmful</th><td>{}</td><td>{}</td></tr>\
         <tr><th>said benign</th><td>{}</td><td>{}</td></tr></table>",
        total.reviewed(),
        pct(total.accuracy()),
        pct(total.harmful_recall()),
        total.true_harmful,
        total.false_harmful,
        total.false_benign,
        total.true_benign
    );
    Ok(Html(page("Statistics", &body)))
}

async fn workers_page(State(state): State<AppState>) -> Result<Html<String>, ApiError> {
    let workers = state.store.workers().await?;
    let mut body = String::from(
        "<h1>Workers</h1><table><tr><th>Name</th><th>Version</th><th>Last seen</th>\
         <th>Running</th></tr>",
    );
    for w in &workers {
        let running: Vec<String> = w
            .running
            .iter()
            .map(|id| format!("<a href=\"/jobs/{id}\">{id}</a>"))
            .collect();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&w.name),
            esc(&w.version),
            time(w.last_seen_ms),
            running.join(", ")
        );
    }
    body += "</table>";
    Ok(Html(page("Workers", &body)))
}
