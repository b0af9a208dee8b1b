//! The review journal: who said a verdict was correct or not, when, why and from where.

use crate::{
    Decision, NewReview, Result, Review, Status, Store, StoreError, check_text, decode_err,
    from_row, now_ms, on_pool,
};

from_row!(Review, row => {
    Ok(Review {
        id: row.try_get("id")?,
        job_id: row.try_get("job_id")?,
        at_ms: row.try_get("at_ms")?,
        review: NewReview {
            reviewer: row.try_get("reviewer")?,
            decision: row.try_get::<String, _>("decision")?.parse().map_err(decode_err)?,
            reason: row.try_get("reason")?,
            source: row.try_get("source")?,
        },
    })
});

impl Store {
    /// Appends `review` to the journal of job `id` and makes its decision the job's review
    /// state. Only a done job has a verdict to review.
    pub async fn review(&self, id: i64, review: &NewReview) -> Result<Review> {
        if review.reviewer.trim().is_empty() {
            return Err(StoreError::Invalid("a review needs a reviewer".into()));
        }
        check_text("reviewer", &review.reviewer)?;
        check_text("reason", &review.reason)?;
        check_text("source", &review.source)?;
        // The journal row and the job's state change together; the INSERT comes first and
        // writes, so a SQLite transaction holds the write lock from its first statement.
        let insert = "INSERT INTO reviews (job_id, at_ms, reviewer, decision, reason, source) \
             SELECT id, $2, $3, $4, $5, $6 FROM jobs WHERE id = $1 AND status = 'done' \
             RETURNING id, job_id, at_ms, reviewer, decision, reason, source";
        let update = "UPDATE jobs SET review = $2 WHERE id = $1";
        let row: Option<Review> = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let row: Option<Review> = sqlx::query_as(insert)
                .bind(id)
                .bind(now_ms())
                .bind(&review.reviewer)
                .bind(review.decision.as_str())
                .bind(&review.reason)
                .bind(&review.source)
                .fetch_optional(&mut *tx)
                .await?;
            if row.is_some() {
                sqlx::query(update)
                    .bind(id)
                    .bind(review.decision.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            row
        });
        match row {
            Some(row) => Ok(row),
            None => {
                let job = self.job(id).await?;
                debug_assert_ne!(job.status, Status::Done);
                Err(StoreError::WrongState {
                    id,
                    status: job.status,
                    action: "review",
                })
            }
        }
    }

    /// The review journal of job `id`, newest first.
    pub async fn reviews(&self, id: i64) -> Result<Vec<Review>> {
        let sql = "SELECT id, job_id, at_ms, reviewer, decision, reason, source FROM reviews \
             WHERE job_id = $1 ORDER BY id DESC";
        let rows = on_pool!(self, pool => sqlx::query_as(sql).bind(id).fetch_all(pool).await?);
        Ok(rows)
    }

    /// The review state of job `id` derived from its journal alone (the newest entry's decision,
    /// `Unreviewed` without one). [`crate::Job::review`] keeps the same value; this recomputes it.
    pub async fn derived_review(&self, id: i64) -> Result<Decision> {
        let sql = "SELECT decision FROM reviews WHERE job_id = $1 ORDER BY id DESC LIMIT 1";
        let decision: Option<String> =
            on_pool!(self, pool => sqlx::query_scalar(sql).bind(id).fetch_optional(pool).await?);
        match decision {
            None => Ok(Decision::Unreviewed),
            Some(d) => d.parse().map_err(|e| StoreError::Corrupt(format!("{e}"))),
        }
    }
}
