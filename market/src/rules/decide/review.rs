//! Tasks under human review: a task of a bid that
//! pays for review goes to review instead of failing, and the reviews
//! decide it with the rules of [`tally_protocol::review`]. Reviews are
//! assignments of kind `review`: paid, settled and audited like results.

use std::sync::atomic::Ordering;

use tally_protocol::review::{self as rules};
use tally_protocol::vote::{self, Ballot, Verdict};
use tally_protocol::wire::{ReviewRequest, ReviewVerdict, TaskState};
use tally_protocol::{AccountId, AssignmentId, Stroops};

use super::case::Case;
use super::{verify, Decision, Verified};
use crate::db::{int, parse, query, text, WriteTx};
use crate::error::{MarketError, Result};
use crate::lifecycle::{task_transition, AssignmentState};
use crate::payment::{fail_task, pay_at};
use crate::task::{StoredVerdict, TaskRow};
use crate::{now_ms, Market};

/// Whether a task the vote cannot decide goes to review rather than failing:
/// its bid pays for review, it is a client's task (spot checks have a known
/// answer), and nothing of it was paid yet (a task re-opened by
/// backtracking whose new vote fails gives back and fails as before).
pub(super) fn goes_to_review(task: &TaskRow, paid: usize) -> bool {
    task.review_price.is_some() && !task.is_check && paid == 0
}

/// Move a task to review: its results wait, unjudged, for the reviewers.
pub(super) async fn send_to_review(
    m: &Market,
    tx: &mut WriteTx<'_>,
    task: &TaskRow,
) -> Result<Decision> {
    task_transition(task.state, TaskState::Review)?;
    query("UPDATE tasks SET status = 'review' WHERE id = $1")
        .bind(task.id.0)
        .execute(&mut *tx)
        .await?;
    m.metrics.to_review.fetch_add(1, Ordering::Relaxed);
    Ok(Decision::moved(task, TaskState::Review, vec![]))
}

/// An answered review, as loaded for the vote.
struct Answered {
    id: AssignmentId,
    reviewer: AccountId,
    request: ReviewRequest,
}

async fn answered_reviews(tx: &mut WriteTx<'_>, task: &TaskRow) -> Result<Vec<Answered>> {
    let rows = query(
        "SELECT id, worker, body FROM assignments
         WHERE task_id = $1 AND kind = 'review' AND status = 'submitted' ORDER BY id",
    )
    .bind(task.id.0)
    .fetch_all(&mut *tx)
    .await?;
    rows.iter()
        .map(|r| {
            let body: Vec<u8> = r.try_get("body")?;
            Ok(Answered {
                id: AssignmentId(int(r, "id")?),
                reviewer: parse(&text(r, "worker")?, "reviewer")?,
                request: serde_json::from_slice(&body)
                    .map_err(|e| MarketError::Corrupt(format!("stored review body: {e}")))?,
            })
        })
        .collect()
}

/// Decide a task under review once its reviews allow: two agreeing
/// reviews verify it with their consensus (results agreeing with it are
/// paid the task's price, agreeing reviews the review price); as many
/// reviews as allowed without agreement fail it; otherwise it waits.
pub(super) async fn decide_review(
    m: &Market,
    tx: &mut WriteTx<'_>,
    case: &Case,
) -> Result<Decision> {
    let task = &case.task;
    let reviews = answered_reviews(tx, task).await?;
    if (reviews.len() as u32) < rules::REVIEW_QUORUM {
        return Ok(Decision::unchanged(task));
    }
    let ballots: Vec<Ballot> = reviews
        .iter()
        .map(|r| Ballot {
            assignment: r.id,
            detections: r.request.detections.clone(),
        })
        .collect();
    let verdict = rules::review_vote(&task.params, &ballots);
    if !rules::decides(&task.params, &verdict) {
        if !rules::exhausted(reviews.len() as u32) {
            // Undecided: it wants one more reviewer now; tell those waiting.
            return Ok(Decision::moved(task, TaskState::Review, vec![]));
        }
        // Reviewers disagree to the end: nothing is paid, the bid refunded.
        fail_task(m, tx, task).await?;
        return Ok(Decision::moved(task, TaskState::Failed, vec![]));
    }
    let price = task.review_price.ok_or_else(|| {
        MarketError::Corrupt(format!("task {} in review has no review price", task.id))
    })?;
    let voters = case.voters();
    let caught = case.caught();
    let mut judged = Vec::with_capacity(voters.len());
    for s in &voters {
        let agrees = vote::agrees(&task.params, &verdict.consensus, &s.parse()?.detections);
        judged.push((s.id, agrees));
    }
    let pick = |want: bool| -> Vec<AssignmentId> {
        judged
            .iter()
            .filter(|(_, a)| *a == want)
            .map(|(id, _)| *id)
            .collect()
    };
    let stored = StoredVerdict {
        verdict: Verdict {
            consensus: verdict.consensus.clone(),
            agree: pick(true),
            disagree: pick(false),
            numbers: verdict.numbers,
        },
        voted: voters.iter().map(|s| s.id).collect(),
        weights: vec![],
        credibility: None,
        excluded: caught.iter().map(|s| s.id).collect(),
        review: Some(ReviewVerdict {
            voted: ballots.iter().map(|b| b.assignment).collect(),
            verdict: verdict.clone(),
        }),
    };
    // Reviews first: the task row is locked already, assignments come next.
    judge_reviews(m, tx, task, price, &reviews, &verdict).await?;
    m.metrics.reviewed.fetch_add(1, Ordering::Relaxed);
    let verified = Verified {
        stored,
        voters,
        caught,
    };
    verify(m, tx, case, verified).await
}

/// Agreeing reviews are paid the review price; the others are not; reviews
/// handed out and not answered are cancelled.
async fn judge_reviews(
    m: &Market,
    tx: &mut WriteTx<'_>,
    task: &TaskRow,
    price: Stroops,
    reviews: &[Answered],
    verdict: &Verdict,
) -> Result<()> {
    let now = now_ms();
    let mut paid = Vec::new();
    for r in reviews {
        let agreed = verdict.agree.contains(&r.id);
        let to = if agreed {
            AssignmentState::Agreed
        } else {
            AssignmentState::Disagreed
        };
        crate::task::set_assignment(tx, r.id, AssignmentState::Submitted, to).await?;
        if agreed {
            paid.push((r.id, &r.reviewer));
        }
    }
    pay_at(m, tx, task, price, &paid).await?;
    query(
        "UPDATE assignments SET status = 'cancelled', finished_at = $1
         WHERE task_id = $2 AND kind = 'review' AND status = 'leased'",
    )
    .bind(now)
    .bind(task.id.0)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
