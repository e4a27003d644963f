//! A bid's status for its client and a decided task's public evidence:
//! the signed results, the vote, earlier verdicts and the reviews.

use std::collections::HashSet;

use base64::Engine as _;
use tally_protocol::wire::*;
use tally_protocol::{AccountId, AssignmentId, BidId, Sha256Hex, Stroops, TaskId};

use crate::db::{int, json, parse, query, text, Row};
use crate::error::{MarketError, Result};
use crate::lifecycle::parse_task_state;
use crate::task::StoredVerdict;
use crate::{now_ms, to_time, Market};

/// `GET /v1/bids/{id}`: only the client who placed it may read it.
pub async fn bid_status(m: &Market, caller: &AccountId, id: BidId) -> Result<BidStatus> {
    let pool = &m.db;
    let b = query(
        "SELECT client, model, price, reserved, spent, status, created_at, review_price FROM bids WHERE id = $1",
    )
    .bind(id.0)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| MarketError::NotFound(format!("no bid {id}")))?;
    let client: AccountId = parse(&text(&b, "client")?, "client")?;
    let review_price = b.try_get::<Option<i64>>("review_price")?.unwrap_or(0);
    if &client != caller {
        return Err(MarketError::Forbidden(format!(
            "bid {id} belongs to another client"
        )));
    }
    let rows = query(
        "SELECT t.id, t.status, t.input, t.verdict, t.revisions,
           (SELECT COUNT(*) FROM assignments a WHERE a.task_id = t.id AND a.kind = 'result' AND a.body IS NOT NULL) AS results,
           (SELECT COUNT(*) FROM assignments a WHERE a.task_id = t.id AND a.kind = 'review' AND a.body IS NOT NULL) AS reviews,
           (SELECT COUNT(*) FROM assignments a WHERE a.task_id = t.id AND a.kind = 'review' AND a.status = 'agreed') AS agreed_reviews
         FROM tasks t WHERE t.bid_id = $1 ORDER BY t.id",
    )
    .bind(id.0)
    .fetch_all(pool)
    .await?;
    let mut tasks = Vec::with_capacity(rows.len());
    for r in rows {
        let verdict: Option<String> = r.try_get("verdict")?;
        let status = parse_task_state(&text(&r, "status")?)?;
        let (consensus, reviewed) = match (status, verdict) {
            (TaskState::Verified, Some(v)) => {
                let stored = json::<StoredVerdict>(&v, "verdict")?;
                (Some(stored.verdict.consensus), stored.review.is_some())
            }
            _ => (None, false),
        };
        tasks.push(TaskStatus {
            task: TaskId(int(&r, "id")?),
            status,
            input: parse(&text(&r, "input")?, "input")?,
            results: int(&r, "results")? as u32,
            consensus,
            revisions: int(&r, "revisions")?.max(0) as u32,
            reviewed,
            reviews: int(&r, "reviews")?.max(0) as u32,
            review_cost: Stroops(int(&r, "agreed_reviews")?.max(0) * review_price),
        });
    }
    Ok(BidStatus {
        bid: id,
        status: if text(&b, "status")? == "done" {
            BidState::Done
        } else {
            BidState::Open
        },
        client,
        model: parse(&text(&b, "model")?, "model")?,
        price: Stroops(int(&b, "price")?),
        reserved: Stroops(int(&b, "reserved")?),
        spent: Stroops(int(&b, "spent")?),
        created_at: to_time(int(&b, "created_at")?),
        tasks,
    })
}

/// `GET /v1/tasks/{id}/evidence`: every signed result, the parameters and the verdict.
pub async fn evidence(m: &Market, id: TaskId) -> Result<Evidence> {
    let t = query(
        "SELECT t.bid_id, t.status, t.model, t.input, t.price, t.verdict, t.decided_at, b.params, b.fee_bps, b.kind, b.review_price
         FROM tasks t JOIN bids b ON b.id = t.bid_id WHERE t.id = $1",
    )
    .bind(id.0)
    .fetch_optional(&m.db)
    .await?
    .ok_or_else(|| MarketError::NotFound(format!("no task {id}")))?;
    let status = parse_task_state(&text(&t, "status")?)?;
    let decided = published_decision(m, id, &t).await?;
    let verdict: Option<String> = t.try_get("verdict")?;
    let stored = verdict
        .map(|v| json::<StoredVerdict>(&v, "verdict"))
        .transpose()?;
    let revisions = revisions(&m.db, id).await?;
    let results = shown_results(&m.db, id, status, &revisions).await?;
    // Reviews are published with the decision, like results.
    let reviews = if status.is_final() {
        crate::review::signed_reviews(&m.db, id).await?
    } else {
        Vec::new()
    };
    let review = stored.as_ref().and_then(|s| s.review.clone());
    Ok(Evidence {
        task: id,
        bid: BidId(int(&t, "bid_id")?),
        status,
        model: parse::<Sha256Hex>(&text(&t, "model")?, "model")?,
        input: parse::<Sha256Hex>(&text(&t, "input")?, "input")?,
        price: Stroops(int(&t, "price")?),
        fee_bps: int(&t, "fee_bps")? as u32,
        params: json(&text(&t, "params")?, "params")?,
        results,
        voted: stored.as_ref().map(|s| s.voted.clone()).unwrap_or_default(),
        weights: stored
            .as_ref()
            .map(|s| s.weights.clone())
            .unwrap_or_default(),
        credibility: stored.as_ref().and_then(|s| s.credibility),
        excluded: stored
            .as_ref()
            .map(|s| s.excluded.clone())
            .unwrap_or_default(),
        verdict: stored.map(|s| s.verdict),
        withheld: false,
        check: text(&t, "kind")? == "check",
        published_at: Some(to_time(crate::publish::public_at(m, decided))),
        revisions,
        review_price: t.try_get::<Option<i64>>("review_price")?.map(Stroops),
        reviews,
        review,
    })
}

/// When the task `t` (its row) was first decided, or not found while its
/// evidence may not be shown yet.
///
/// Published for every task alike, checks and client work, in the batch
/// after its first decision (crate::publish): until then its workers must
/// not learn from it how their results were judged, or whether the task
/// was a check. Once public it stays public, re-opened or not.
async fn published_decision(m: &Market, id: TaskId, t: &Row) -> Result<i64> {
    let decided_at: Option<i64> = t.try_get("decided_at")?;
    let Some(decided) = decided_at else {
        return Err(MarketError::NotFound(format!(
            "task {id} is not decided yet; its evidence is published once it is"
        )));
    };
    if !crate::publish::is_public(m, decided_at, now_ms()) {
        return Err(MarketError::NotFound(format!(
            "task {id} is not public yet; decisions are published in batches, this one at {}",
            to_time(crate::publish::public_at(m, decided)).to_rfc3339()
        )));
    }
    // Nor while a replica of it is still out: its worker could copy the
    // published answer instead of computing one.
    let out = query(
        "SELECT COUNT(*) AS n FROM assignments WHERE task_id = $1 AND status = 'leased' AND kind = 'result'",
    )
    .bind(id.0)
    .fetch_one(&m.db)
    .await?;
    if int(&out, "n")? > 0 {
        return Err(MarketError::NotFound(format!(
            "task {id} is not public yet: a replica of it is still out"
        )));
    }
    Ok(decided)
}

/// The task's earlier verdicts, oldest first, each with the worker it
/// caught and the public task that caught it.
async fn revisions(pool: &crate::db::Db, id: TaskId) -> Result<Vec<Revision>> {
    let revised = query(
        "SELECT verdict, caught, revised_at FROM task_revisions WHERE task_id = $1 ORDER BY revision",
    )
    .bind(id.0)
    .fetch_all(pool)
    .await?;
    let mut revisions = Vec::with_capacity(revised.len());
    for r in revised {
        let old = json::<StoredVerdict>(&text(&r, "verdict")?, "revised verdict")?;
        let caught: AccountId = parse(&text(&r, "caught")?, "caught worker")?;
        revisions.push(Revision {
            verdict: old.verdict,
            revised_at: to_time(int(&r, "revised_at")?),
            caught_by: catching_check(pool, &caught).await?,
            caught,
        });
    }
    Ok(revisions)
}

/// The signed results the evidence shows. A task re-opened by backtracking
/// shows the results its earlier verdicts judged; those of its new replicas
/// wait for its next decision (a replica still out must not read the
/// others').
async fn shown_results(
    pool: &crate::db::Db,
    id: TaskId,
    status: TaskState,
    revisions: &[Revision],
) -> Result<Vec<SignedResult>> {
    let rows = query(
        "SELECT id, worker, body, signed_at, nonce, signature FROM assignments
         WHERE task_id = $1 AND kind = 'result' AND body IS NOT NULL ORDER BY id",
    )
    .bind(id.0)
    .fetch_all(pool)
    .await?;
    let judged_before: HashSet<AssignmentId> = revisions
        .iter()
        .flat_map(|r| r.verdict.agree.iter().chain(&r.verdict.disagree).copied())
        .collect();
    let mut results = Vec::with_capacity(rows.len());
    for r in rows {
        let assignment = AssignmentId(int(&r, "id")?);
        if !status.is_final() && !judged_before.contains(&assignment) {
            continue;
        }
        let body: Vec<u8> = r.try_get("body")?;
        results.push(SignedResult {
            assignment,
            worker: parse(&text(&r, "worker")?, "worker")?,
            body: base64::engine::general_purpose::STANDARD.encode(body),
            timestamp: int(&r, "signed_at")?,
            nonce: text(&r, "nonce")?,
            signature: text(&r, "signature")?,
        });
    }
    Ok(results)
}

/// The public task that caught `worker`: the spot check it failed, or the
/// client task where a credible majority out-voted it (for catches
/// recorded before that was kept: the first check it failed).
async fn catching_check(pool: &crate::db::Db, worker: &AccountId) -> Result<Option<TaskId>> {
    let r = query(
        "SELECT COALESCE(w.caught_by, (SELECT MIN(t.id) FROM assignments a JOIN tasks t ON t.id = a.task_id
             JOIN bids b ON b.id = t.bid_id
           WHERE a.worker = w.account AND a.status = 'disagreed' AND b.kind = 'check')) AS task
         FROM workers w WHERE w.account = $1",
    )
    .bind(worker.as_str())
    .fetch_optional(pool)
    .await?;
    Ok(match r {
        Some(r) => r.try_get::<Option<i64>>("task")?.map(TaskId),
        None => None,
    })
}
