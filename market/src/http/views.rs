//! Read models: hosted models, bid status, evidence, an account's view of
//! the ledger, market statistics, settlement records and Prometheus metrics.

mod metrics;
pub use metrics::metrics;

use base64::Engine as _;
use tally_protocol::wire::*;
use tally_protocol::{AccountId, AssignmentId, BidId, Sha256Hex, Stroops, TaskId};

use crate::db::query;
use crate::db::{int, json, parse, text};
use crate::error::{MarketError, Result};
use crate::ledger::{self, Book};
use crate::lifecycle::parse_task_state;
use crate::task::StoredVerdict;
use crate::{now_ms, to_time, Market};
use tally_protocol::trust::{credibility, CheckRecord, ASSUMED_SABOTEURS};
use tally_settlement::record::{STATUS_NOT_SUBMITTED, STATUS_PENDING};

/// `GET /v1/models`: every hosted model, oldest upload first (uploads in
/// the same millisecond in hash order); the model bytes are not read.
pub async fn models(m: &Market) -> Result<ModelList> {
    query("SELECT hash, size FROM models ORDER BY created_at, hash")
        .fetch_all(&m.db)
        .await?
        .iter()
        .map(|r| {
            Ok(HostedModel {
                model: parse(&text(r, "hash")?, "model hash")?,
                bytes: int(r, "size")? as u64,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(|models| ModelList { models })
}

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
    let pool = &m.db;
    let t = query(
        "SELECT t.bid_id, t.status, t.model, t.input, t.price, t.verdict, t.decided_at, b.params, b.fee_bps, b.kind, b.review_price
         FROM tasks t JOIN bids b ON b.id = t.bid_id WHERE t.id = $1",
    )
    .bind(id.0)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| MarketError::NotFound(format!("no task {id}")))?;
    let status = parse_task_state(&text(&t, "status")?)?;
    // Published for every task alike, checks and client work, in the batch
    // after its first decision (crate::publish): until then its workers
    // must not learn from it how their results were judged, or whether
    // the task was a check. Once public it stays public, re-opened or not.
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
    .fetch_one(pool)
    .await?;
    if int(&out, "n")? > 0 {
        return Err(MarketError::NotFound(format!(
            "task {id} is not public yet: a replica of it is still out"
        )));
    }
    let check = text(&t, "kind")? == "check";
    let rows = query(
        "SELECT id, worker, body, signed_at, nonce, signature FROM assignments
         WHERE task_id = $1 AND kind = 'result' AND body IS NOT NULL ORDER BY id",
    )
    .bind(id.0)
    .fetch_all(pool)
    .await?;
    let verdict: Option<String> = t.try_get("verdict")?;
    let stored = verdict
        .map(|v| json::<StoredVerdict>(&v, "verdict"))
        .transpose()?;
    let mut revisions = Vec::new();
    let revised = query(
        "SELECT verdict, caught, revised_at FROM task_revisions WHERE task_id = $1 ORDER BY revision",
    )
    .bind(id.0)
    .fetch_all(pool)
    .await?;
    for r in revised {
        let old = json::<StoredVerdict>(&text(&r, "verdict")?, "revised verdict")?;
        let caught: AccountId = parse(&text(&r, "caught")?, "caught worker")?;
        revisions.push(tally_protocol::wire::Revision {
            verdict: old.verdict,
            revised_at: to_time(int(&r, "revised_at")?),
            caught_by: catching_check(pool, &caught).await?,
            caught,
        });
    }
    // A task re-opened by backtracking shows the results its earlier
    // verdicts judged; those of its new replicas wait for its next decision
    // (a replica still out must not read the others').
    let judged_before: std::collections::HashSet<AssignmentId> = revisions
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
    // Reviews are published with the decision, like results.
    let reviews = if status.is_final() {
        crate::review::signed_reviews(pool, id).await?
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
        check,
        published_at: Some(to_time(crate::publish::public_at(m, decided))),
        revisions,
        review_price: t.try_get::<Option<i64>>("review_price")?.map(Stroops),
        reviews,
        review,
    })
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

/// What the probation holdback keeps from settlement now of a worker's
/// unpaid earnings on public tasks.
async fn held(m: &Market, worker: &AccountId) -> Result<Stroops> {
    let p = crate::settle::Probation::of(m, now_ms());
    let r = query(
        "SELECT CAST(COALESCE(SUM(e.amount), 0) AS BIGINT) AS held FROM ledger_entries e
           JOIN assignments a ON a.id = e.assignment_id JOIN tasks t ON t.id = a.task_id
         WHERE e.book = 'earned' AND a.worker = $1 AND a.payout_seq IS NULL AND a.kind = 'result'
           AND COALESCE(a.checks_at_submit, 0) < $2 AND a.finished_at > $3 AND t.decided_at < $4
           AND NOT EXISTS (SELECT 1 FROM workers w WHERE w.account = a.worker AND w.caught_at IS NOT NULL)",
    )
    .bind(worker.as_str())
    .bind(p.min_checks)
    .bind(p.since)
    .bind(p.published_before)
    .fetch_one(&m.db)
    .await?;
    Ok(Stroops(int(&r, "held")?))
}

/// A worker's record as the public may see it: where decisions are
/// published in batches, counted over public tasks only, so no view tells
/// a worker how a result it just sent was judged, or that it was a check.
pub(crate) struct PublicRecord {
    pub reputation: Reputation,
    pub checks: CheckRecord,
    /// Earnings on tasks not public yet (left out of what is shown).
    pub unpublished_earned: i64,
}

pub(crate) async fn public_record(m: &Market, worker: &AccountId) -> Result<PublicRecord> {
    let pool = &m.db;
    let rep = query(
        "SELECT agreed, disagreed, timed_out, checks_passed, checks_failed FROM workers WHERE account = $1",
    )
    .bind(worker.as_str())
    .fetch_optional(pool)
    .await?;
    let Some(rep) = rep else {
        return Ok(PublicRecord {
            reputation: Reputation::default(),
            checks: CheckRecord::default(),
            unpublished_earned: 0,
        });
    };
    let mut reputation = Reputation {
        agreed: int(&rep, "agreed")?.max(0) as u64,
        disagreed: int(&rep, "disagreed")?.max(0) as u64,
        timed_out: int(&rep, "timed_out")?.max(0) as u64,
    };
    // A failure is never hidden: the worker learns it at once (no more work).
    let mut checks = CheckRecord {
        passed: int(&rep, "checks_passed")?.max(0) as u64,
        failed: int(&rep, "checks_failed")?.max(0) as u64,
    };
    if !crate::publish::batched(m) {
        return Ok(PublicRecord {
            reputation,
            checks,
            unpublished_earned: 0,
        });
    }
    let published_before = crate::publish::cutoff(m, now_ms());
    let r = query(
        "SELECT
           COALESCE(SUM(CASE WHEN b.kind = 'check' AND a.status = 'agreed' THEN 1 ELSE 0 END), 0) AS passed,
           COALESCE(SUM(CASE WHEN a.status = 'agreed' THEN 1 ELSE 0 END), 0) AS agreed,
           COALESCE(SUM(CASE WHEN a.status = 'disagreed' THEN 1 ELSE 0 END), 0) AS disagreed
         FROM assignments a JOIN tasks t ON t.id = a.task_id JOIN bids b ON b.id = t.bid_id
         WHERE a.worker = $1 AND a.kind = 'result' AND t.decided_at < $2",
    )
    .bind(worker.as_str())
    .bind(published_before)
    .fetch_one(pool)
    .await?;
    checks.passed = int(&r, "passed")?.max(0) as u64;
    reputation.agreed = int(&r, "agreed")?.max(0) as u64;
    reputation.disagreed = int(&r, "disagreed")?.max(0) as u64;
    let r = query(
        "SELECT CAST(COALESCE(SUM(e.amount), 0) AS BIGINT) AS earned FROM ledger_entries e
           JOIN assignments a ON a.id = e.assignment_id JOIN tasks t ON t.id = a.task_id
         WHERE e.book = 'earned' AND a.worker = $1 AND a.payout_seq IS NULL
           AND (t.decided_at IS NULL OR t.decided_at >= $2)",
    )
    .bind(worker.as_str())
    .bind(published_before)
    .fetch_one(pool)
    .await?;
    Ok(PublicRecord {
        reputation,
        checks,
        unpublished_earned: int(&r, "earned")?,
    })
}

/// `GET /v1/accounts/me`.
pub async fn account_view(m: &Market, account: &AccountId) -> Result<AccountView> {
    let pool = &m.db;
    let owner = account.as_str();
    let fees: i64 = query(
        "SELECT CAST(COALESCE(SUM(e.amount), 0) AS BIGINT) AS fees FROM ledger_entries e
         JOIN assignments a ON a.id = e.assignment_id WHERE e.book = 'fees' AND a.worker = $1",
    )
    .bind(owner)
    .fetch_one(pool)
    .await?
    .try_get("fees")?;
    let record = public_record(m, account).await?;
    let earned = ledger::balance(pool, Book::Earned, owner).await?;
    let paid_total = ledger::balance(pool, Book::Paid, owner).await?;
    Ok(AccountView {
        account: account.clone(),
        balance: ledger::balance(pool, Book::Available, owner).await?,
        reserved: ledger::balance(pool, Book::Reserved, owner).await?,
        earned_unpaid: Stroops(earned.0 - record.unpublished_earned),
        held: held(m, account).await?,
        paid_total,
        not_submitted: if m.config.submits() {
            Stroops(0)
        } else {
            paid_total
        },
        fees_paid: Stroops(fees),
        reputation: record.reputation,
        checks: record.checks,
        credibility: credibility(ASSUMED_SABOTEURS, record.checks),
        deposit_memo: crate::deposits::code_for(m, account).await?,
        deposit_address: m.config.operator.account().to_string(),
        withdrawing: ledger::balance(pool, Book::Withdrawing, owner).await?,
    })
}

/// `GET /v1/market`. Where decisions are published in batches, it counts
/// client work only, undecided tasks as open (a claim, a check's or not,
/// changes no count) and decided ones once public, and lists workers by
/// their public records as they stood at the last publication.
pub async fn market_stats(m: &Market) -> Result<MarketStats> {
    let pool = &m.db;
    let batched = crate::publish::batched(m);
    let published_before = crate::publish::cutoff(m, now_ms());
    let mut by_state = [0u64; 5];
    let counts = if batched {
        query(
            "SELECT CASE WHEN t.decided_at < $1 THEN t.status ELSE 'open' END AS status, COUNT(*) AS n
             FROM tasks t JOIN bids b ON b.id = t.bid_id WHERE b.kind = 'client' GROUP BY 1",
        )
        .bind(published_before)
        .fetch_all(pool)
        .await?
    } else {
        query("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status")
            .fetch_all(pool)
            .await?
    };
    for r in counts {
        let i = match parse_task_state(&text(&r, "status")?)? {
            TaskState::Open => 0,
            TaskState::Running => 1,
            TaskState::Verified => 2,
            TaskState::Failed => 3,
            TaskState::Review => 4,
        };
        by_state[i] += int(&r, "n")? as u64;
    }
    if batched {
        // Re-opened tasks count as open, whatever their status says now.
        by_state[0] += std::mem::take(&mut by_state[1]) + std::mem::take(&mut by_state[4]);
    }
    let levels_sql = if batched {
        "SELECT t.price, COUNT(*) AS n FROM tasks t JOIN bids b ON b.id = t.bid_id
         WHERE b.kind = 'client' AND t.status IN ('open', 'running')
         GROUP BY t.price ORDER BY t.price DESC LIMIT 20"
    } else {
        "SELECT price, COUNT(*) AS n FROM tasks WHERE status IN ('open', 'running') AND taken < wanted
         GROUP BY price ORDER BY price DESC LIMIT 20"
    };
    let levels = query(levels_sql)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            Ok(PriceLevel {
                price: Stroops(int(r, "price")?),
                tasks: int(r, "n")? as u64,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let online = query("SELECT COUNT(*) AS n FROM workers WHERE last_seen > $1")
        .bind(now_ms() - 60_000)
        .fetch_one(pool)
        .await?;
    let workers = online_workers(m, published_before).await?;
    let clearing = query(
        "SELECT t.price FROM tasks t JOIN bids b ON b.id = t.bid_id
         WHERE t.status = 'verified' AND b.kind = 'client' AND t.decided_at < $1
         ORDER BY t.finished_at DESC, t.id DESC LIMIT 20",
    )
    .bind(published_before)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| Ok(Stroops(int(r, "price")?)))
    .collect::<Result<Vec<_>>>()?;
    Ok(MarketStats {
        open_tasks: by_state[0],
        running_tasks: by_state[1],
        verified_tasks: by_state[2],
        failed_tasks: by_state[3],
        review_tasks: by_state[4],
        price_levels: levels,
        workers_online: int(&online, "n")? as u64,
        workers,
        recent_clearing_prices: clearing,
        fee_bps: m.config.fee_bps,
        asset: m.config.asset.clone(),
        network: m.config.network.clone(),
        operator: m.config.operator.account().clone(),
        holdback_secs: if m.config.golden.items.is_empty() {
            0
        } else {
            m.config.holdback.as_secs()
        },
        trusted_after: m.config.check_rates.trusted_after,
    })
}

/// The workers seen in the last minute, most credible first (at most 100),
/// by their public records; where decisions are published in batches, as
/// they stood at the last publication (kept until the next).
async fn online_workers(m: &Market, published_before: i64) -> Result<Vec<WorkerSummary>> {
    if crate::publish::batched(m) {
        if let Some((at, list)) = &*m.online_workers.lock().expect("online workers") {
            if *at == published_before {
                return Ok(list.clone());
            }
        }
    }
    let rows = query(
        "SELECT account, checks_passed, checks_failed FROM workers WHERE last_seen > $1
         ORDER BY checks_failed ASC, checks_passed DESC, account LIMIT 100",
    )
    .bind(now_ms() - 60_000)
    .fetch_all(&m.db)
    .await?;
    let mut workers = Vec::with_capacity(rows.len());
    for r in rows {
        let account: AccountId = parse(&text(&r, "account")?, "worker")?;
        let checks = if crate::publish::batched(m) {
            public_record(m, &account).await?.checks
        } else {
            CheckRecord {
                passed: int(&r, "checks_passed")?.max(0) as u64,
                failed: int(&r, "checks_failed")?.max(0) as u64,
            }
        };
        workers.push(WorkerSummary {
            account,
            checks,
            credibility: credibility(ASSUMED_SABOTEURS, checks),
        });
    }
    workers.sort_by(|a, b| {
        (
            a.checks.failed,
            std::cmp::Reverse(a.checks.passed),
            a.account.as_str(),
        )
            .cmp(&(
                b.checks.failed,
                std::cmp::Reverse(b.checks.passed),
                b.account.as_str(),
            ))
    });
    if crate::publish::batched(m) {
        *m.online_workers.lock().expect("online workers") =
            Some((published_before, workers.clone()));
    }
    Ok(workers)
}

/// How long a worker's public history reaches back.
const HISTORY_HOURS: i64 = 7 * 24;
const HOUR_MS: i64 = 3_600_000;

/// `GET /v1/workers/{account}`: a worker's public record, with its
/// ended hours. The hour still running is left out: a worker that watched
/// its own record change task by task would learn which tasks were checks.
pub async fn worker_record(m: &Market, account: &AccountId) -> Result<WorkerRecord> {
    let pool = &m.db;
    let now = now_ms();
    let w = query("SELECT caught_at, last_seen FROM workers WHERE account = $1")
        .bind(account.as_str())
        .fetch_optional(pool)
        .await?;
    let Some(w) = w else {
        return Ok(WorkerRecord {
            account: account.clone(),
            known: false,
            online: false,
            caught: false,
            checks: CheckRecord::default(),
            credibility: credibility(ASSUMED_SABOTEURS, CheckRecord::default()),
            agreed: 0,
            disagreed: 0,
            paid_total: Stroops(0),
            hours: vec![],
        });
    };
    let record = public_record(m, account).await?;
    let checks = record.checks;
    let caught: Option<i64> = w.try_get("caught_at")?;
    let ended = now / HOUR_MS * HOUR_MS;
    let since = ended - HISTORY_HOURS * HOUR_MS;
    let rows = query(format!(
        "SELECT a.finished_at / {HOUR_MS} AS h, a.status,
                CAST(CASE WHEN c.task_id IS NULL THEN 0 ELSE 1 END AS BIGINT) AS is_check, COUNT(*) AS n
         FROM assignments a LEFT JOIN checks c ON c.task_id = a.task_id JOIN tasks t ON t.id = a.task_id
         WHERE a.worker = $1 AND a.kind = 'result' AND a.status IN ('agreed', 'disagreed') AND a.finished_at >= $2
           AND t.decided_at < $3
         GROUP BY 1, 2, 3"
    ))
    .bind(account.as_str())
    .bind(since)
    .bind(crate::publish::cutoff(m, now))
    .fetch_all(pool)
    .await?;
    // Checks decided since `since` (the running hour too), to find the
    // record as it stood when the history starts.
    let mut hours = std::collections::BTreeMap::<i64, (u64, u64, u64, u64)>::new();
    let (mut recent_passed, mut recent_failed) = (0u64, 0u64);
    for r in &rows {
        let h = int(r, "h")?;
        let n = int(r, "n")?.max(0) as u64;
        let agreed = text(r, "status")? == "agreed";
        let check = int(r, "is_check")? == 1;
        match (check, agreed) {
            (true, true) => recent_passed += n,
            (true, false) => recent_failed += n,
            _ => {}
        }
        if h * HOUR_MS >= ended {
            continue;
        }
        let e = hours.entry(h).or_default();
        if agreed {
            e.0 += n
        } else {
            e.1 += n
        }
        match (check, agreed) {
            (true, true) => e.2 += n,
            (true, false) => e.3 += n,
            _ => {}
        }
    }
    let mut passed = checks.passed.saturating_sub(recent_passed);
    let mut failed = checks.failed.saturating_sub(recent_failed);
    let hours = hours
        .into_iter()
        .map(|(h, (agreed, disagreed, p, f))| {
            passed += p;
            failed += f;
            let then = CheckRecord { passed, failed };
            WorkerHour {
                hour: to_time(h * HOUR_MS),
                agreed,
                disagreed,
                checks_passed: passed,
                credibility: credibility(ASSUMED_SABOTEURS, then),
            }
        })
        .collect();
    Ok(WorkerRecord {
        account: account.clone(),
        known: true,
        online: int(&w, "last_seen")? > now - 60_000,
        caught: caught.is_some(),
        checks,
        credibility: credibility(ASSUMED_SABOTEURS, checks),
        agreed: record.reputation.agreed,
        disagreed: record.reputation.disagreed,
        paid_total: ledger::balance(pool, Book::Paid, account.as_str()).await?,
        hours,
    })
}

/// `GET /v1/settlements?after=seq`: records in order, at most `limit`.
/// `after` as a stored sequence number: one beyond any (`i64::MAX`) when it
/// does not fit, so a huge `after` lists nothing instead of wrapping to a
/// negative number that lists everything.
fn seq_bound(after: u64) -> i64 {
    i64::try_from(after).unwrap_or(i64::MAX)
}

pub async fn settlements(m: &Market, after: u64, limit: u32) -> Result<SettlementPage> {
    let rows = query(
        "SELECT seq, prev_hash, hash, network, source, asset, payouts, envelope_xdr, tx_hash, status, created_at
         FROM settlements WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(seq_bound(after))
    .bind(i64::from(limit))
    .fetch_all(&m.db)
    .await?;
    let mut records = Vec::with_capacity(rows.len());
    for r in rows {
        records.push(SettlementRecord {
            seq: int(&r, "seq")? as u64,
            prev_hash: text(&r, "prev_hash")?,
            hash: text(&r, "hash")?,
            network: text(&r, "network")?,
            source: parse(&text(&r, "source")?, "source")?,
            asset: text(&r, "asset")?,
            payouts: json(&text(&r, "payouts")?, "payouts")?,
            envelope_xdr: text(&r, "envelope_xdr")?,
            tx_hash: text(&r, "tx_hash")?,
            status: match text(&r, "status")? {
                s if s == STATUS_PENDING && !m.config.submits() => STATUS_NOT_SUBMITTED.into(),
                s => s,
            },
            created_at: Some(to_time(int(&r, "created_at")?)),
        });
    }
    Ok(SettlementPage { records })
}

#[cfg(test)]
mod seq_tests {
    #[test]
    fn a_huge_after_lists_nothing_rather_than_everything() {
        assert_eq!(super::seq_bound(7), 7);
        assert_eq!(super::seq_bound(i64::MAX as u64), i64::MAX);
        assert_eq!(super::seq_bound(u64::MAX), i64::MAX);
        assert_eq!(super::seq_bound(1 << 63), i64::MAX);
    }
}
