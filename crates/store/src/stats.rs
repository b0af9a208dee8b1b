//! Counts for the statistics page: reviewed accuracy and confusion per expert and model, and
//! the queue and review backlog.

use serde::{Deserialize, Serialize};

use crate::{Decision, Result, Status, Store, StoreError, on_pool};

/// Reviewed verdicts by what the expert said and what the reviewer decided. "Positive" is
/// harmful (the class a kernel developer must not miss): a benign verdict marked incorrect is a
/// missed harmful race.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// Said harmful, reviewed correct.
    pub true_harmful: i64,
    /// Said harmful, reviewed incorrect (really benign).
    pub false_harmful: i64,
    /// Said benign, reviewed correct.
    pub true_benign: i64,
    /// Said benign, reviewed incorrect (really harmful).
    pub false_benign: i64,
}

impl Confusion {
    pub fn reviewed(&self) -> i64 {
        self.true_harmful + self.false_harmful + self.true_benign + self.false_benign
    }
    pub fn correct(&self) -> i64 {
        self.true_harmful + self.true_benign
    }
    /// Correct / reviewed; `None` with nothing reviewed.
    pub fn accuracy(&self) -> Option<f64> {
        let n = self.reviewed();
        (n > 0).then(|| self.correct() as f64 / n as f64)
    }
    /// Of the really harmful races, the share called harmful; `None` without any.
    pub fn harmful_recall(&self) -> Option<f64> {
        let n = self.true_harmful + self.false_benign;
        (n > 0).then(|| self.true_harmful as f64 / n as f64)
    }
}

/// Reviewed outcomes of one expert and model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    pub expert: String,
    pub model: Option<String>,
    pub confusion: Confusion,
}

/// Jobs by status, and the review backlog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    pub queued: i64,
    pub running: i64,
    pub done: i64,
    pub failed: i64,
    pub cancelled: i64,
    /// Done jobs nobody has reviewed yet.
    pub unreviewed: i64,
}

/// One reviewed verdict, for the charts that bucket or plot them (accuracy by week, calibration
/// of the stated confidence against correctness).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewedVerdict {
    pub id: i64,
    pub expert: String,
    pub model: Option<String>,
    pub benign: bool,
    pub confidence: f64,
    pub correct: bool,
    pub finished_ms: i64,
}

impl Store {
    /// Every reviewed verdict (newest review state, `unreviewed` excluded), oldest job first.
    pub async fn reviewed_verdicts(&self) -> Result<Vec<ReviewedVerdict>> {
        let sql = "SELECT id, expert, model, benign, confidence, review, finished_ms FROM jobs \
             WHERE status = 'done' AND review <> 'unreviewed' AND benign IS NOT NULL \
             AND confidence IS NOT NULL AND finished_ms IS NOT NULL ORDER BY id";
        type Row = (i64, String, Option<String>, bool, f64, String, i64);
        let rows: Vec<Row> = on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await?);
        Ok(rows
            .into_iter()
            .map(
                |(id, expert, model, benign, confidence, review, finished_ms)| ReviewedVerdict {
                    id,
                    expert,
                    model,
                    benign,
                    confidence,
                    correct: review == Decision::Correct.as_str(),
                    finished_ms,
                },
            )
            .collect())
    }

    /// Reviewed verdicts per (expert, model), sorted by expert then model.
    pub async fn review_stats(&self) -> Result<Vec<GroupStats>> {
        let sql = "SELECT expert, model, benign, review, COUNT(*) FROM jobs \
             WHERE status = 'done' AND review <> 'unreviewed' AND benign IS NOT NULL \
             GROUP BY expert, model, benign, review ORDER BY expert, model";
        let rows: Vec<(String, Option<String>, bool, String, i64)> =
            on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await?);
        let mut groups: Vec<GroupStats> = Vec::new();
        for (expert, model, benign, review, n) in rows {
            let review: Decision = review
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("{e}")))?;
            let group = match groups.last_mut() {
                Some(g) if g.expert == expert && g.model == model => g,
                _ => {
                    groups.push(GroupStats {
                        expert,
                        model,
                        confusion: Confusion::default(),
                    });
                    groups.last_mut().expect("just pushed")
                }
            };
            let c = &mut group.confusion;
            match (benign, review) {
                (false, Decision::Correct) => c.true_harmful += n,
                (false, Decision::Incorrect) => c.false_harmful += n,
                (true, Decision::Correct) => c.true_benign += n,
                (true, Decision::Incorrect) => c.false_benign += n,
                (_, Decision::Unreviewed) => {}
            }
        }
        Ok(groups)
    }

    /// How many jobs are in each status, and how many done jobs await review.
    pub async fn status_counts(&self) -> Result<StatusCounts> {
        let by_status = "SELECT status, COUNT(*) FROM jobs GROUP BY status";
        let backlog = "SELECT COUNT(*) FROM jobs WHERE status = 'done' AND review = 'unreviewed'";
        let (rows, unreviewed): (Vec<(String, i64)>, i64) = on_pool!(self, pool => (
            sqlx::query_as(by_status).fetch_all(pool).await?,
            sqlx::query_scalar(backlog).fetch_one(pool).await?,
        ));
        let mut counts = StatusCounts {
            unreviewed,
            ..Default::default()
        };
        for (status, n) in rows {
            let status: Status = status
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("{e}")))?;
            *match status {
                Status::Queued => &mut counts.queued,
                Status::Running => &mut counts.running,
                Status::Done => &mut counts.done,
                Status::Failed => &mut counts.failed,
                Status::Cancelled => &mut counts.cancelled,
            } += n;
        }
        Ok(counts)
    }
}
