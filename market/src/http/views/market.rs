//! The market as a whole: the hosted models (`GET /v1/models`) and the
//! statistics of `GET /v1/market`, with the workers online.

use tally_protocol::trust::{credibility, CheckRecord, ASSUMED_SABOTEURS};
use tally_protocol::wire::*;
use tally_protocol::{AccountId, Stroops};

use crate::db::{int, parse, query, text};
use crate::error::Result;
use crate::lifecycle::parse_task_state;
use crate::{now_ms, Market};

use super::accounts::public_record;

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

/// `GET /v1/market`. Where decisions are published in batches, it counts
/// client work only, undecided tasks as open (a claim, a check's or not,
/// changes no count) and decided ones once public, and lists workers by
/// their public records as they stood at the last publication.
pub async fn market_stats(m: &Market) -> Result<MarketStats> {
    let batched = crate::publish::batched(m);
    let published_before = crate::publish::cutoff(m, now_ms());
    let by_state = task_counts(m, batched, published_before).await?;
    let levels = price_levels(m, batched).await?;
    let online = query("SELECT COUNT(*) AS n FROM workers WHERE last_seen > $1")
        .bind(now_ms() - 60_000)
        .fetch_one(&m.db)
        .await?;
    let workers = online_workers(m, published_before).await?;
    let clearing = clearing_prices(m, published_before).await?;
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

/// The tasks by state: open, running, verified, failed, in review. Where
/// decisions are published in batches (`batched`), client tasks only, those
/// not decided before `published_before` as open.
async fn task_counts(m: &Market, batched: bool, published_before: i64) -> Result<[u64; 5]> {
    let mut by_state = [0u64; 5];
    let counts = if batched {
        query(
            "SELECT CASE WHEN t.decided_at < $1 THEN t.status ELSE 'open' END AS status, COUNT(*) AS n
             FROM tasks t JOIN bids b ON b.id = t.bid_id WHERE b.kind = 'client' GROUP BY 1",
        )
        .bind(published_before)
        .fetch_all(&m.db)
        .await?
    } else {
        query("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status")
            .fetch_all(&m.db)
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
    Ok(by_state)
}

/// The 20 highest prices of tasks open or running, with how many tasks
/// each (client tasks only where decisions are published in batches).
async fn price_levels(m: &Market, batched: bool) -> Result<Vec<PriceLevel>> {
    let levels_sql = if batched {
        "SELECT t.price, COUNT(*) AS n FROM tasks t JOIN bids b ON b.id = t.bid_id
         WHERE b.kind = 'client' AND t.status IN ('open', 'running')
         GROUP BY t.price ORDER BY t.price DESC LIMIT 20"
    } else {
        "SELECT price, COUNT(*) AS n FROM tasks WHERE status IN ('open', 'running') AND taken < wanted
         GROUP BY price ORDER BY price DESC LIMIT 20"
    };
    query(levels_sql)
        .fetch_all(&m.db)
        .await?
        .iter()
        .map(|r| {
            Ok(PriceLevel {
                price: Stroops(int(r, "price")?),
                tasks: int(r, "n")? as u64,
            })
        })
        .collect()
}

/// The prices of the 20 client tasks verified last among those public.
async fn clearing_prices(m: &Market, published_before: i64) -> Result<Vec<Stroops>> {
    query(
        "SELECT t.price FROM tasks t JOIN bids b ON b.id = t.bid_id
         WHERE t.status = 'verified' AND b.kind = 'client' AND t.decided_at < $1
         ORDER BY t.finished_at DESC, t.id DESC LIMIT 20",
    )
    .bind(published_before)
    .fetch_all(&m.db)
    .await?
    .iter()
    .map(|r| Ok(Stroops(int(r, "price")?)))
    .collect()
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
