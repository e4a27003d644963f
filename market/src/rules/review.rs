//! Human review, the reviewers' side: the
//! operator's signed marks of who may review, the queue a verified reviewer
//! takes tasks from (`GET /v1/reviews/next`), and answers
//! (`POST /v1/reviews/{id}`). Deciding a task from its reviews is
//! [`crate::decide`]'s; the rules both follow live in
//! [`tally_protocol::review`].
//!
//! A review is an assignment of kind `review`, held by the reviewer under a
//! lease like a replica (so it is paid, settled and audited like a result)
//! but it never takes a replica's slot. `UNIQUE (task_id, worker)` keeps a
//! reviewer from reviewing a task twice, and a worker from reviewing a task
//! it computed.
//!
//! Who may review: an answer counts when the reviewer's latest operator
//! mark says "verified" both at the answer's signed time and at its arrival
//! on the market's clock (`received_at` in the evidence, within the 60 s
//! window of the signed time); the audit applies the same rule to the
//! public marks.

use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use tally_protocol::review::{self as rules};
use tally_protocol::signing::SignedHeaders;
use tally_protocol::vote::Ballot;
use tally_protocol::wire::{
    ReviewOutcome, ReviewRequest, ReviewTicket, ReviewerMark, ReviewerMarkRequest, ReviewerMarks,
    SignedReview, TaskState,
};
use tally_protocol::{AccountId, AssignmentId, TaskId};

use crate::db::{int, parse, query, text, Executor, WriteTx};
use crate::decide::decide_loaded;
use crate::error::{MarketError, Result};
use crate::nonces::begin_signed;
use crate::results::validate_detections;
use crate::task::{lock_and_load, TaskRow};
use crate::{now_ms, to_time, Market};

/// How long a reviewer holds a review before the task may go to another
/// reviewer (an answer after it still counts while the task is undecided).
pub const REVIEW_LEASE: Duration = Duration::from_secs(600);

/// How many tasks under review one look considers.
const LOOK: i64 = 50;

/// Record the operator's signed mark (`POST /v1/admin/reviewers`); the
/// signed request is kept as public evidence.
pub async fn mark(
    m: &Market,
    signed: &SignedHeaders,
    body: &[u8],
    req: &ReviewerMarkRequest,
) -> Result<ReviewerMark> {
    m.db.retrying("reviewer mark", || mark_once(m, signed, body, req))
        .await
}

async fn mark_once(
    m: &Market,
    signed: &SignedHeaders,
    body: &[u8],
    req: &ReviewerMarkRequest,
) -> Result<ReviewerMark> {
    let mut tx = begin_signed(m, signed).await?;
    let id: i64 = query(
        "INSERT INTO reviewer_marks (account, verified, signer, body, signed_at, nonce, signature, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(req.account.as_str())
    .bind(i64::from(req.verified))
    .bind(signed.account.as_str())
    .bind(body)
    .bind(signed.timestamp_ms)
    .bind(signed.nonce.as_str())
    .bind(signed.signature.as_str())
    .bind(now_ms())
    .fetch_one(&mut tx)
    .await?
    .try_get("id")?;
    tx.commit().await?;
    tracing::info!(account = %req.account, verified = req.verified, "reviewer mark");
    Ok(ReviewerMark {
        id,
        account: req.account.clone(),
        verified: req.verified,
        signer: signed.account.clone(),
        body: base64::engine::general_purpose::STANDARD.encode(body),
        timestamp: signed.timestamp_ms,
        nonce: signed.nonce.clone(),
        signature: signed.signature.clone(),
    })
}

/// Every mark, oldest first (`GET /v1/reviewers`).
pub async fn marks(m: &Market) -> Result<ReviewerMarks> {
    let rows = query(
        "SELECT id, account, verified, signer, body, signed_at, nonce, signature
         FROM reviewer_marks ORDER BY signed_at, id",
    )
    .fetch_all(&m.db)
    .await?;
    let marks = rows
        .iter()
        .map(|r| {
            let body: Vec<u8> = r.try_get("body")?;
            Ok(ReviewerMark {
                id: int(r, "id")?,
                account: parse(&text(r, "account")?, "reviewer")?,
                verified: int(r, "verified")? != 0,
                signer: parse(&text(r, "signer")?, "signer")?,
                body: base64::engine::general_purpose::STANDARD.encode(body),
                timestamp: int(r, "signed_at")?,
                nonce: text(r, "nonce")?,
                signature: text(r, "signature")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ReviewerMarks { marks })
}

/// Refuse an account whose latest mark at `at_ms` is not "verified" (the
/// rule [`rules::verified_at`] the audit applies to the same marks).
/// Answers are judged at both their signed time and their arrival (see
/// [`submit`]).
async fn require_reviewer<'c>(ex: impl Executor<'c>, who: &AccountId, at_ms: i64) -> Result<()> {
    let latest = query(
        "SELECT verified FROM reviewer_marks WHERE account = $1 AND signed_at <= $2
         ORDER BY signed_at DESC, id DESC LIMIT 1",
    )
    .bind(who.as_str())
    .bind(at_ms)
    .fetch_optional(ex)
    .await?;
    match latest {
        Some(r) if int(&r, "verified")? != 0 => Ok(()),
        _ => Err(MarketError::NotAReviewer(format!(
            "{who} is not marked as a verified reviewer by the operator"
        ))),
    }
}

/// The next review for `reviewer`: the one it holds, unanswered and under
/// a live lease, or a new one on the oldest task that wants a reviewer and
/// that it has not touched; `None` when nothing waits.
pub async fn next(m: &Market, reviewer: &AccountId) -> Result<Option<ReviewTicket>> {
    m.db.retrying("review ticket", || next_once(m, reviewer))
        .await
}

async fn next_once(m: &Market, reviewer: &AccountId) -> Result<Option<ReviewTicket>> {
    let now = now_ms();
    require_reviewer(&m.db, reviewer, now).await?;
    let mut tx = m.db.begin().await?;
    let held = query(
        "SELECT a.id, a.task_id, a.lease_expires_at FROM assignments a JOIN tasks t ON t.id = a.task_id
         WHERE a.worker = $1 AND a.kind = 'review' AND a.status = 'leased' AND t.status = 'review'
           AND a.lease_expires_at > $2
         ORDER BY a.id LIMIT 1",
    )
    .bind(reviewer.as_str())
    .bind(now)
    .fetch_optional(&mut tx)
    .await?;
    if let Some(r) = held {
        let review = AssignmentId(int(&r, "id")?);
        let task = lock_and_load(&mut tx, TaskId(int(&r, "task_id")?)).await?;
        let ticket = ticket(&mut tx, &task, review, int(&r, "lease_expires_at")?).await?;
        tx.commit().await?;
        return Ok(Some(ticket));
    }
    let waiting = query(
        "SELECT t.id FROM tasks t WHERE t.status = 'review'
           AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.task_id = t.id AND a.worker = $1)
         ORDER BY t.id LIMIT $2",
    )
    .bind(reviewer.as_str())
    .bind(LOOK)
    .fetch_all(&mut tx)
    .await?;
    for r in waiting {
        let task = lock_and_load(&mut tx, TaskId(int(&r, "id")?)).await?;
        if task.state != TaskState::Review || !wants_reviewer(&mut tx, task.id, now).await? {
            continue;
        }
        let expires = now + REVIEW_LEASE.as_millis() as i64;
        let inserted = query(
            "INSERT INTO assignments (task_id, worker, status, lease_expires_at, created_at, kind)
             VALUES ($1, $2, 'leased', $3, $4, 'review') ON CONFLICT (task_id, worker) DO NOTHING RETURNING id",
        )
        .bind(task.id.0)
        .bind(reviewer.as_str())
        .bind(expires)
        .bind(now)
        .fetch_optional(&mut tx)
        .await?;
        let Some(row) = inserted else { continue };
        let review = AssignmentId(int(&row, "id")?);
        let ticket = ticket(&mut tx, &task, review, expires).await?;
        tx.commit().await?;
        return Ok(Some(ticket));
    }
    tx.rollback().await?;
    Ok(None)
}

/// Whether a task under review wants another reviewer now: answered
/// reviews and reviews out under a live lease against [`rules::reviewers_wanted`].
async fn wants_reviewer(tx: &mut WriteTx<'_>, task: TaskId, now: i64) -> Result<bool> {
    let r = query(
        "SELECT
           CAST(COALESCE(SUM(CASE WHEN status = 'submitted' THEN 1 ELSE 0 END), 0) AS BIGINT) AS answered,
           CAST(COALESCE(SUM(CASE WHEN status = 'leased' AND lease_expires_at > $2 THEN 1 ELSE 0 END), 0) AS BIGINT) AS out
         FROM assignments WHERE task_id = $1 AND kind = 'review'",
    )
    .bind(task.0)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let answered = int(&r, "answered")?.max(0) as u32;
    let out = int(&r, "out")?.max(0) as u32;
    Ok(rules::reviewers_wanted(answered, out) > 0)
}

/// The ticket of a review: the task and its candidates (its results grouped).
async fn ticket(
    tx: &mut WriteTx<'_>,
    task: &TaskRow,
    review: AssignmentId,
    expires: i64,
) -> Result<ReviewTicket> {
    let rows = query(
        "SELECT a.id, a.body FROM assignments a LEFT JOIN workers w ON w.account = a.worker
         WHERE a.task_id = $1 AND a.kind = 'result' AND a.body IS NOT NULL
           AND a.status IN ('submitted', 'agreed', 'disagreed') AND COALESCE(w.checks_failed, 0) = 0
         ORDER BY a.id",
    )
    .bind(task.id.0)
    .fetch_all(&mut *tx)
    .await?;
    let mut ballots = Vec::with_capacity(rows.len());
    for r in &rows {
        let body: Vec<u8> = r.try_get("body")?;
        let result: tally_protocol::wire::ResultRequest = serde_json::from_slice(&body)
            .map_err(|e| MarketError::Corrupt(format!("stored result body: {e}")))?;
        ballots.push(Ballot {
            assignment: AssignmentId(int(r, "id")?),
            detections: result.detections,
        });
    }
    let input = query("SELECT input FROM tasks WHERE id = $1")
        .bind(task.id.0)
        .fetch_one(&mut *tx)
        .await?;
    Ok(ReviewTicket {
        review,
        task: task.id,
        model: task.model.clone(),
        input: parse(&text(&input, "input")?, "input")?,
        price: task.review_price.unwrap_or_default(),
        lease_expires_at: to_time(expires),
        candidates: rules::candidates(&task.params, &ballots),
        params: task.params,
    })
}

/// Take a signed review and let the reviews decide the task. Like results,
/// a transaction PostgreSQL picks as a deadlock victim is run again.
pub async fn submit(
    m: &Market,
    signed: &SignedHeaders,
    id: AssignmentId,
    body: &[u8],
    req: &ReviewRequest,
) -> Result<ReviewOutcome> {
    validate_detections(m, &req.detections, "bad_review")?;
    m.db.retrying("review", || submit_once(m, signed, id, body))
        .await
}

async fn submit_once(
    m: &Market,
    signed: &SignedHeaders,
    id: AssignmentId,
    body: &[u8],
) -> Result<ReviewOutcome> {
    let mut tx = begin_signed(m, signed).await?;
    let a =
        query("SELECT task_id, worker, status FROM assignments WHERE id = $1 AND kind = 'review'")
            .bind(id.0)
            .fetch_optional(&mut tx)
            .await?
            .ok_or_else(|| MarketError::NotFound(format!("no review {id}")))?;
    let task_id = TaskId(int(&a, "task_id")?);
    if text(&a, "worker")? != signed.account.as_str() {
        return Err(MarketError::Forbidden(format!(
            "review {id} belongs to another reviewer"
        )));
    }
    // Standing is judged when the answer was signed and when it arrives:
    // a signed time back-dated inside the window to before a revocation
    // does not bring back a standing the reviewer has lost.
    let arrived = now_ms();
    require_reviewer(&mut tx, &signed.account, signed.timestamp_ms).await?;
    require_reviewer(&mut tx, &signed.account, arrived).await?;
    let task = lock_and_load(&mut tx, task_id).await?;
    if task.state != TaskState::Review {
        return Err(MarketError::conflict(
            "decided",
            format!("task {task_id} is already {}", task.state.as_str()),
        ));
    }
    let stored = query(
        "UPDATE assignments SET status = 'submitted', body = $1, signed_at = $2, nonce = $3, signature = $4,
         finished_at = $5 WHERE id = $6 AND status = 'leased'",
    )
    .bind(body)
    .bind(signed.timestamp_ms)
    .bind(&signed.nonce)
    .bind(&signed.signature)
    .bind(arrived)
    .bind(id.0)
    .execute(&mut tx)
    .await?;
    if stored != 1 {
        let status = text(&a, "status")?;
        return Err(MarketError::conflict(
            "already_finished",
            format!("review {id} is already {status}"),
        ));
    }
    m.metrics.reviews.fetch_add(1, Ordering::Relaxed);
    let decision = decide_loaded(m, &mut tx, task).await?;
    tx.commit().await?;
    crate::events::announce(m, decision.events).await;
    Ok(ReviewOutcome {
        review: id,
        task: task_id,
        task_status: decision.task_state,
    })
}

/// A decided task's answered reviews, as signed (its evidence).
pub(crate) async fn signed_reviews<'c>(
    ex: impl Executor<'c>,
    task: TaskId,
) -> Result<Vec<SignedReview>> {
    let rows = query(
        "SELECT id, worker, body, signed_at, nonce, signature, finished_at FROM assignments
         WHERE task_id = $1 AND kind = 'review' AND body IS NOT NULL ORDER BY id",
    )
    .bind(task.0)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            let body: Vec<u8> = r.try_get("body")?;
            Ok(SignedReview {
                review: AssignmentId(int(r, "id")?),
                reviewer: parse(&text(r, "worker")?, "reviewer")?,
                body: base64::engine::general_purpose::STANDARD.encode(body),
                timestamp: int(r, "signed_at")?,
                nonce: text(r, "nonce")?,
                signature: text(r, "signature")?,
                received_at: int(r, "finished_at")?,
            })
        })
        .collect()
}
