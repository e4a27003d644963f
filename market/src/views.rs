//! Read models: hosted models, bid status, evidence, an account's view of
//! the ledger, market statistics, settlement records and Prometheus metrics.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

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
        "SELECT client, model, price, reserved, spent, status, created_at FROM bids WHERE id = $1",
    )
    .bind(id.0)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| MarketError::NotFound(format!("no bid {id}")))?;
    let client: AccountId = parse(&text(&b, "client")?, "client")?;
    if &client != caller {
        return Err(MarketError::Forbidden(format!(
            "bid {id} belongs to another client"
        )));
    }
    let rows = query(
        "SELECT t.id, t.status, t.input, t.verdict, t.revisions,
           (SELECT COUNT(*) FROM assignments a WHERE a.task_id = t.id AND a.kind = 'result' AND a.body IS NOT NULL) AS results
         FROM tasks t WHERE t.bid_id = $1 ORDER BY t.id",
    )
    .bind(id.0)
    .fetch_all(pool)
    .await?;
    let mut tasks = Vec::with_capacity(rows.len());
    for r in rows {
        let verdict: Option<String> = r.try_get("verdict")?;
        let status = parse_task_state(&text(&r, "status")?)?;
        let consensus = match (status, verdict) {
            (TaskState::Verified, Some(v)) => {
                Some(json::<StoredVerdict>(&v, "verdict")?.verdict.consensus)
            }
            _ => None,
        };
        tasks.push(TaskStatus {
            task: TaskId(int(&r, "id")?),
            status,
            input: parse(&text(&r, "input")?, "input")?,
            results: int(&r, "results")? as u32,
            consensus,
            revisions: int(&r, "revisions")?.max(0) as u32,
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
        "SELECT t.bid_id, t.status, t.model, t.input, t.price, t.verdict, b.params, b.fee_bps, b.kind, b.review_price
         FROM tasks t JOIN bids b ON b.id = t.bid_id WHERE t.id = $1",
    )
    .bind(id.0)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| MarketError::NotFound(format!("no task {id}")))?;
    let status = parse_task_state(&text(&t, "status")?)?;
    // Published once decided, for every task alike: while a task runs, its
    // workers must not learn from it whether it is a spot check.
    if !status.is_final() {
        return Err(MarketError::NotFound(format!(
            "task {id} is not decided yet; its evidence is published when it is"
        )));
    }
    // A spot check shows what it paid, never its results or known answer:
    // its image may be used again; so does a client task whose answer is
    // in use as a check.
    let withheld = text(&t, "kind")? == "check" || crate::checks::harvest_in_use(pool, id).await?;
    let rows = if withheld {
        Vec::new()
    } else {
        query(
            "SELECT id, worker, body, signed_at, nonce, signature FROM assignments
             WHERE task_id = $1 AND kind = 'result' AND body IS NOT NULL ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(pool)
        .await?
    };
    let mut results = Vec::with_capacity(rows.len());
    for r in rows {
        let body: Vec<u8> = r.try_get("body")?;
        results.push(SignedResult {
            assignment: AssignmentId(int(&r, "id")?),
            worker: parse(&text(&r, "worker")?, "worker")?,
            body: base64::engine::general_purpose::STANDARD.encode(body),
            timestamp: int(&r, "signed_at")?,
            nonce: text(&r, "nonce")?,
            signature: text(&r, "signature")?,
        });
    }
    let verdict: Option<String> = if withheld {
        None
    } else {
        t.try_get("verdict")?
    };
    let stored = verdict
        .map(|v| json::<StoredVerdict>(&v, "verdict"))
        .transpose()?;
    let mut revisions = Vec::new();
    if !withheld {
        let rows = query(
            "SELECT verdict, caught, revised_at FROM task_revisions WHERE task_id = $1 ORDER BY revision",
        )
        .bind(id.0)
        .fetch_all(pool)
        .await?;
        for r in rows {
            let old = json::<StoredVerdict>(&text(&r, "verdict")?, "revised verdict")?;
            revisions.push(tally_protocol::wire::Revision {
                verdict: old.verdict,
                revised_at: to_time(int(&r, "revised_at")?),
                caught: parse(&text(&r, "caught")?, "caught worker")?,
            });
        }
    }
    // Reviews are published with the decision, like results.
    let reviews = if withheld {
        Vec::new()
    } else {
        crate::review::signed_reviews(pool, id).await?
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
        withheld,
        revisions,
        review_price: t.try_get::<Option<i64>>("review_price")?.map(Stroops),
        reviews,
        review,
    })
}

/// What the probation holdback keeps from settlement now of a worker's
/// unpaid earnings.
async fn held(m: &Market, worker: &AccountId) -> Result<Stroops> {
    let p = crate::settle::Probation::of(m, now_ms());
    let r = query(
        "SELECT CAST(COALESCE(SUM(e.amount), 0) AS BIGINT) AS held FROM ledger_entries e
           JOIN assignments a ON a.id = e.assignment_id JOIN workers w ON w.account = a.worker
         WHERE e.book = 'earned' AND a.worker = $1 AND a.payout_seq IS NULL
           AND w.caught_at IS NULL AND w.checks_passed < $2 AND a.finished_at > $3",
    )
    .bind(worker.as_str())
    .bind(p.min_checks)
    .bind(p.since)
    .fetch_one(&m.db)
    .await?;
    Ok(Stroops(int(&r, "held")?))
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
    let rep = query(
        "SELECT agreed, disagreed, timed_out, checks_passed, checks_failed FROM workers WHERE account = $1",
    )
        .bind(owner)
        .fetch_optional(pool)
        .await?;
    let (reputation, checks) = match rep {
        Some(r) => (
            Reputation {
                agreed: int(&r, "agreed")? as u64,
                disagreed: int(&r, "disagreed")? as u64,
                timed_out: int(&r, "timed_out")? as u64,
            },
            CheckRecord {
                passed: int(&r, "checks_passed")?.max(0) as u64,
                failed: int(&r, "checks_failed")?.max(0) as u64,
            },
        ),
        None => (Reputation::default(), CheckRecord::default()),
    };
    Ok(AccountView {
        account: account.clone(),
        balance: ledger::balance(pool, Book::Available, owner).await?,
        reserved: ledger::balance(pool, Book::Reserved, owner).await?,
        earned_unpaid: ledger::balance(pool, Book::Earned, owner).await?,
        held: held(m, account).await?,
        paid_total: ledger::balance(pool, Book::Paid, owner).await?,
        fees_paid: Stroops(fees),
        reputation,
        checks,
        credibility: credibility(ASSUMED_SABOTEURS, checks),
        deposit_memo: crate::deposits::code_for(m, account).await?,
        deposit_address: m.config.operator.account().to_string(),
        withdrawing: ledger::balance(pool, Book::Withdrawing, owner).await?,
    })
}

/// `GET /v1/market`.
pub async fn market_stats(m: &Market) -> Result<MarketStats> {
    let pool = &m.db;
    let mut by_state = [0u64; 5];
    for r in query("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status")
        .fetch_all(pool)
        .await?
    {
        let i = match parse_task_state(&text(&r, "status")?)? {
            TaskState::Open => 0,
            TaskState::Running => 1,
            TaskState::Verified => 2,
            TaskState::Failed => 3,
            TaskState::Review => 4,
        };
        by_state[i] = int(&r, "n")? as u64;
    }
    let levels = query(
        "SELECT price, COUNT(*) AS n FROM tasks WHERE status IN ('open', 'running') AND taken < wanted
         GROUP BY price ORDER BY price DESC LIMIT 20",
    )
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
    let mut workers = Vec::new();
    for r in query(
        "SELECT account, checks_passed, checks_failed FROM workers WHERE last_seen > $1
         ORDER BY checks_failed ASC, checks_passed DESC, account LIMIT 100",
    )
    .bind(now_ms() - 60_000)
    .fetch_all(pool)
    .await?
    {
        let checks = CheckRecord {
            passed: int(&r, "checks_passed")?.max(0) as u64,
            failed: int(&r, "checks_failed")?.max(0) as u64,
        };
        workers.push(WorkerSummary {
            account: parse(&text(&r, "account")?, "worker")?,
            checks,
            credibility: credibility(ASSUMED_SABOTEURS, checks),
        });
    }
    let clearing = query("SELECT price FROM tasks WHERE status = 'verified' ORDER BY finished_at DESC, id DESC LIMIT 20")
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
    })
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
    let w = query(
        "SELECT agreed, disagreed, checks_passed, checks_failed, caught_at, last_seen FROM workers WHERE account = $1",
    )
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
    let checks = CheckRecord {
        passed: int(&w, "checks_passed")?.max(0) as u64,
        failed: int(&w, "checks_failed")?.max(0) as u64,
    };
    let caught: Option<i64> = w.try_get("caught_at")?;
    let ended = now / HOUR_MS * HOUR_MS;
    let since = ended - HISTORY_HOURS * HOUR_MS;
    let rows = query(format!(
        "SELECT a.finished_at / {HOUR_MS} AS h, a.status,
                CAST(CASE WHEN c.task_id IS NULL THEN 0 ELSE 1 END AS BIGINT) AS is_check, COUNT(*) AS n
         FROM assignments a LEFT JOIN checks c ON c.task_id = a.task_id
         WHERE a.worker = $1 AND a.kind = 'result' AND a.status IN ('agreed', 'disagreed') AND a.finished_at >= $2
         GROUP BY 1, 2, 3"
    ))
    .bind(account.as_str())
    .bind(since)
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
        agreed: int(&w, "agreed")?.max(0) as u64,
        disagreed: int(&w, "disagreed")?.max(0) as u64,
        paid_total: ledger::balance(pool, Book::Paid, account.as_str()).await?,
        hours,
    })
}

/// `GET /v1/settlements?after=seq`: records in order, at most `limit`.
pub async fn settlements(m: &Market, after: u64, limit: u32) -> Result<SettlementPage> {
    let rows = query(
        "SELECT seq, prev_hash, hash, network, source, asset, payouts, envelope_xdr, tx_hash, status, created_at
         FROM settlements WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after as i64)
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
            status: text(&r, "status")?,
            created_at: Some(to_time(int(&r, "created_at")?)),
        });
    }
    Ok(SettlementPage { records })
}

/// `GET /metrics` in the Prometheus text format.
pub async fn metrics(m: &Market) -> Result<String> {
    let stats = market_stats(m).await?;
    let c = &m.metrics;
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = writeln!(
            out,
            "# HELP tally_{name} {help}\n# TYPE tally_{name} counter\ntally_{name} {v}"
        );
    };
    counter(
        "requests_total",
        "HTTP requests served.",
        c.requests.load(Ordering::Relaxed),
    );
    counter(
        "bids_total",
        "Bids accepted.",
        c.bids.load(Ordering::Relaxed),
    );
    counter(
        "claims_total",
        "Assignments handed out.",
        c.claims.load(Ordering::Relaxed),
    );
    counter(
        "claim_looks_total",
        "Looks for work by claims, those that found nothing included.",
        c.claim_looks.load(Ordering::Relaxed),
    );
    counter(
        "results_total",
        "Results received.",
        c.results.load(Ordering::Relaxed),
    );
    counter(
        "failures_total",
        "Failures reported by workers.",
        c.failures.load(Ordering::Relaxed),
    );
    counter(
        "tasks_verified_total",
        "Tasks verified by the vote.",
        c.verified.load(Ordering::Relaxed),
    );
    counter(
        "tasks_failed_total",
        "Tasks failed without a verdict.",
        c.failed.load(Ordering::Relaxed),
    );
    counter(
        "tasks_to_review_total",
        "Tasks without consensus sent to human review.",
        c.to_review.load(Ordering::Relaxed),
    );
    counter(
        "tasks_reviewed_total",
        "Tasks verified by human reviews.",
        c.reviewed.load(Ordering::Relaxed),
    );
    counter(
        "reviews_total",
        "Reviews answered.",
        c.reviews.load(Ordering::Relaxed),
    );
    counter(
        "leases_expired_total",
        "Leases that ran out.",
        c.expired.load(Ordering::Relaxed),
    );
    counter(
        "paid_results_total",
        "Agreeing results paid.",
        c.paid_results.load(Ordering::Relaxed),
    );
    counter(
        "settlements_total",
        "Settlement records written.",
        c.settlements.load(Ordering::Relaxed),
    );
    counter(
        "replays_total",
        "Replayed requests refused.",
        c.replays.load(Ordering::Relaxed),
    );
    let _ = writeln!(
        out,
        "# HELP tally_tasks Tasks by state.\n# TYPE tally_tasks gauge"
    );
    for (state, n) in [
        ("open", stats.open_tasks),
        ("running", stats.running_tasks),
        ("verified", stats.verified_tasks),
        ("failed", stats.failed_tasks),
        ("review", stats.review_tasks),
    ] {
        let _ = writeln!(out, "tally_tasks{{state=\"{state}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP tally_workers_online Workers seen in the last minute.\n# TYPE tally_workers_online gauge\ntally_workers_online {}",
        stats.workers_online
    );
    let _ = writeln!(
        out,
        "# HELP tally_claims_waiting Claims long-polling for work.\n# TYPE tally_claims_waiting gauge\ntally_claims_waiting {}",
        m.waiters.len()
    );
    Ok(out)
}
