//! The REST API under `/api/v1`. Every error is a 4xx with a JSON body naming the problem
//! (extractor rejections included); only a failing database is a 500.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::{Decision, JobFilter, Kernel, NewJob, NewReview, Status, Verdict, WORKFLOW_KCSAN};

use crate::{ApiError, AppState};

/// The OpenAPI document, written by hand (utoipa's proc-macros cost more CI time than the
/// dozen operations are worth); `openapi_lists_every_route` in the tests keeps it in step.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Most jobs one page of the list may hold.
pub const MAX_LIMIT: u32 = 500;
/// Largest report text one job may hold (a console log may be bigger: it is split first).
pub const MAX_REPORT_BYTES: usize = 1 << 20;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/jobs", post(submit).get(list))
        .route("/jobs/{id}", get(get_job))
        .route("/jobs/{id}/review", post(review))
        .route("/jobs/{id}/cancel", post(cancel))
        .route("/jobs/{id}/restart", post(restart))
        .route("/jobs/{id}/export", get(export))
        .route("/stats", get(stats))
        .route("/workers", get(workers))
        .fallback(|| async { ApiError::NotFound("no such API endpoint".into()) })
}

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(v)| v).map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(rej.body_text())
        } else {
            ApiError::BadRequest(rej.body_text())
        }
    })
}

pub(crate) fn job_id(path: Result<Path<i64>, PathRejection>) -> Result<i64, ApiError> {
    path.map(|Path(id)| id)
        .map_err(|_| ApiError::BadRequest("the job id must be an integer".into()))
}

/// A submission: one report, or a console log holding several (each becomes a job).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submit {
    pub report: String,
    /// `"default"` (the server's tree, also when absent) or `{"git": {"repo", "commit"}}`.
    /// `{"dir": …}` is refused over HTTP: a client must not point workers at any directory
    /// of the server's machine.
    #[serde(default)]
    pub kernel: Kernel,
    #[serde(default)]
    pub config: Option<String>,
    /// `static` (default) or `llm`.
    #[serde(default)]
    pub expert: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Submitted {
    pub jobs: Vec<SubmittedJob>,
    /// Parser warnings about the input, and reports skipped for having no access.
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct SubmittedJob {
    pub id: i64,
    pub title: String,
}

/// Splits `submit` into jobs and queues them; shared by the API and the submit page.
pub(crate) async fn queue(state: &AppState, submit: Submit) -> Result<Submitted, ApiError> {
    if submit.report.len() > 16 * MAX_REPORT_BYTES {
        return Err(ApiError::TooLarge(format!(
            "report: the text is larger than {} MiB",
            (16 * MAX_REPORT_BYTES) >> 20
        )));
    }
    let expert = submit.expert.unwrap_or_else(|| "static".into());
    if expert != "static" && expert != "llm" {
        return Err(ApiError::BadRequest(format!(
            "expert: expected \"static\" or \"llm\", got {expert:?}"
        )));
    }
    if matches!(submit.kernel, Kernel::Dir(_)) {
        return Err(ApiError::BadRequest(
            "kernel: a directory cannot be chosen over HTTP; use \"default\" or {\"git\": {\"repo\", \"commit\"}}"
                .into(),
        ));
    }
    let parsed = report::parse(&submit.report);
    let mut warnings: Vec<String> = parsed.warnings.iter().map(|w| format!("{w:?}")).collect();
    let lines: Vec<&str> = submit.report.lines().collect();
    let mut jobs = Vec::new();
    for report in &parsed.reports {
        if report.accesses.is_empty() {
            warnings.push(format!(
                "skipped {:?} (lines {}-{}): no access to analyse",
                report.full_title(),
                report.span.start,
                report.span.end
            ));
            continue;
        }
        // Each job keeps only its own report's lines, so a log of ten reports is ten jobs that
        // each show the crash they judge.
        let start = report.span.start.saturating_sub(1).min(lines.len());
        let end = report.span.end.clamp(start, lines.len());
        let text = lines[start..end].join("\n");
        if text.len() > MAX_REPORT_BYTES {
            return Err(ApiError::TooLarge(format!(
                "report at lines {}-{} is larger than 1 MiB",
                report.span.start, report.span.end
            )));
        }
        jobs.push(NewJob {
            workflow: WORKFLOW_KCSAN.into(),
            title: report.full_title(),
            report: text,
            kernel: submit.kernel.clone(),
            config: submit.config.clone(),
            expert: expert.clone(),
            model: submit.model.clone(),
        });
    }
    if jobs.is_empty() {
        return Err(ApiError::Unprocessable(
            "report: no KCSAN report with an access to analyse was found in the text".into(),
        ));
    }
    let mut out = Vec::new();
    for job in jobs {
        let id = state.store.create_job(&job).await?;
        out.push(SubmittedJob {
            id,
            title: job.title,
        });
    }
    Ok(Submitted {
        jobs: out,
        warnings,
    })
}

async fn submit(
    State(state): State<AppState>,
    body: Result<Json<Submit>, JsonRejection>,
) -> Result<(StatusCode, Json<Submitted>), ApiError> {
    let submitted = queue(&state, json_body(body)?).await?;
    Ok((StatusCode::CREATED, Json(submitted)))
}

/// The list's query string; shared with the jobs page.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ListQuery {
    pub status: Option<String>,
    pub verdict: Option<String>,
    pub review: Option<String>,
    pub expert: Option<String>,
    pub model: Option<String>,
    /// Search in the title (which names the racing functions).
    pub q: Option<String>,
    /// Keyset pagination: jobs older than this id.
    pub before: Option<i64>,
    pub limit: Option<u32>,
}

/// Empty form fields mean "any".
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl ListQuery {
    pub fn filter(&self) -> Result<JobFilter, ApiError> {
        let status = given(&self.status)
            .map(|s| s.parse::<Status>())
            .transpose()
            .map_err(|e| ApiError::BadRequest(format!("status: {e}")))?;
        let review = given(&self.review)
            .map(|s| s.parse::<Decision>())
            .transpose()
            .map_err(|e| ApiError::BadRequest(format!("review: {e}")))?;
        let verdict = match given(&self.verdict) {
            None => None,
            Some("benign") => Some(Verdict::Benign),
            Some("harmful") => Some(Verdict::Harmful),
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "verdict: expected benign or harmful, got {other:?}"
                )));
            }
        };
        Ok(JobFilter {
            status,
            verdict,
            review,
            expert: given(&self.expert).map(String::from),
            model: given(&self.model).map(String::from),
            title: given(&self.q).map(String::from),
        })
    }

    pub fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(50),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::BadRequest(format!(
                "limit: must be 1..={MAX_LIMIT}, got {n}"
            ))),
        }
    }
}

pub(crate) fn list_query(
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<ListQuery, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|rej| ApiError::BadRequest(rej.body_text()))
}

async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let query = list_query(query)?;
    let filter = query.filter()?;
    let page = state
        .store
        .list_jobs(&filter, query.before, query.limit()?)
        .await?;
    let total = state.store.count_jobs(&filter).await?;
    Ok(Json(
        json!({ "jobs": page.jobs, "next_before": page.next_before, "total": total }),
    ))
}

async fn get_job(
    State(state): State<AppState>,
    path: Result<Path<i64>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = job_id(path)?;
    let job = state.store.job(id).await?;
    let reviews = state.store.reviews(id).await?;
    Ok(Json(json!({ "job": job, "reviews": reviews })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    pub decision: Decision,
    #[serde(default)]
    pub reason: String,
    /// Who decided. Until accounts exist this is what the client says; `anonymous` if absent.
    #[serde(default)]
    pub reviewer: Option<String>,
}

async fn review(
    State(state): State<AppState>,
    path: Result<Path<i64>, PathRejection>,
    body: Result<Json<ReviewBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = job_id(path)?;
    let body = json_body(body)?;
    let review = state
        .store
        .review(
            id,
            &NewReview {
                reviewer: body.reviewer.unwrap_or_else(|| "anonymous".into()),
                decision: body.decision,
                reason: body.reason,
                source: "api".into(),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!(review))))
}

async fn cancel(
    State(state): State<AppState>,
    path: Result<Path<i64>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = job_id(path)?;
    state.store.cancel(id).await?;
    Ok(Json(json!({ "job": state.store.job(id).await? })))
}

async fn restart(
    State(state): State<AppState>,
    path: Result<Path<i64>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = job_id(path)?;
    Ok(Json(json!({ "job": state.store.restart(id).await? })))
}

/// The format tag of an exported job, bumped when its shape changes.
pub const EXPORT_FORMAT: &str = "racejudge-job/1";

async fn export(
    State(state): State<AppState>,
    path: Result<Path<i64>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = job_id(path)?;
    let store = &state.store;
    let job = store.job(id).await?;
    let mut attempts = Vec::new();
    for attempt in 1..=job.attempt {
        let spans: Vec<Value> = store
            .spans(id, attempt)
            .await?
            .into_iter()
            .map(|e| e.json)
            .collect();
        let transcript: Vec<Value> = store
            .transcript(id, attempt)
            .await?
            .into_iter()
            .map(|e| e.json)
            .collect();
        attempts.push(json!({ "attempt": attempt, "trajectory": spans, "transcript": transcript }));
    }
    Ok(Json(json!({
        "format": EXPORT_FORMAT,
        "inputs": job.input,
        "job": job,
        "results": job.outcome.as_ref().map(|o| &o.results),
        "reviews": store.reviews(id).await?,
        "attempts": attempts,
    })))
}

async fn stats(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let groups = state.store.review_stats().await?;
    let counts = state.store.status_counts().await?;
    let groups: Vec<Value> = groups
        .iter()
        .map(|g| {
            json!({
                "expert": g.expert,
                "model": g.model,
                "confusion": g.confusion,
                "reviewed": g.confusion.reviewed(),
                "accuracy": g.confusion.accuracy(),
                "harmful_recall": g.confusion.harmful_recall(),
            })
        })
        .collect();
    Ok(Json(json!({ "counts": counts, "groups": groups })))
}

async fn workers(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "workers": state.store.workers().await? })))
}
