//! `GET /v1/workers/{account}`: a worker's public record, with its ended
//! hours of the last week.

use std::collections::BTreeMap;

use tally_protocol::trust::{credibility, CheckRecord, ASSUMED_SABOTEURS};
use tally_protocol::wire::*;
use tally_protocol::{AccountId, Stroops};

use crate::db::{int, query, text};
use crate::error::Result;
use crate::ledger::{self, Book};
use crate::{now_ms, to_time, Market};

use super::accounts::public_record;

/// How long a worker's public history reaches back.
const HISTORY_HOURS: i64 = 7 * 24;
const HOUR_MS: i64 = 3_600_000;

/// `GET /v1/workers/{account}`: a worker's public record, with its
/// ended hours. The hour still running is left out: a worker that watched
/// its own record change task by task would learn which tasks were checks.
pub async fn worker_record(m: &Market, account: &AccountId) -> Result<WorkerRecord> {
    let now = now_ms();
    let w = query("SELECT caught_at, last_seen FROM workers WHERE account = $1")
        .bind(account.as_str())
        .fetch_optional(&m.db)
        .await?;
    let Some(w) = w else {
        return Ok(unknown(account));
    };
    let record = public_record(m, account).await?;
    let checks = record.checks;
    let caught: Option<i64> = w.try_get("caught_at")?;
    let ended = now / HOUR_MS * HOUR_MS;
    let decided = decided_since(m, account, now, ended - HISTORY_HOURS * HOUR_MS).await?;
    Ok(WorkerRecord {
        account: account.clone(),
        known: true,
        online: int(&w, "last_seen")? > now - 60_000,
        caught: caught.is_some(),
        checks,
        credibility: credibility(ASSUMED_SABOTEURS, checks),
        agreed: record.reputation.agreed,
        disagreed: record.reputation.disagreed,
        paid_total: ledger::balance(&m.db, Book::Paid, account.as_str()).await?,
        hours: history(&decided, checks, ended),
    })
}

/// The record of an account the market has never seen work from.
fn unknown(account: &AccountId) -> WorkerRecord {
    WorkerRecord {
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
    }
}

/// How many of a worker's results one hour decided alike: agreed or not,
/// on a check or not.
struct Decided {
    /// The hour, in hours since the epoch.
    hour: i64,
    agreed: bool,
    check: bool,
    n: u64,
}

/// The worker's results finished since `since` and decided publicly by
/// `now`, by hour.
async fn decided_since(
    m: &Market,
    account: &AccountId,
    now: i64,
    since: i64,
) -> Result<Vec<Decided>> {
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
    .fetch_all(&m.db)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Decided {
                hour: int(r, "h")?,
                agreed: text(r, "status")? == "agreed",
                check: int(r, "is_check")? == 1,
                n: int(r, "n")?.max(0) as u64,
            })
        })
        .collect()
}

/// The ended hours (before `ended`) of `decided`, each with the checks
/// record as it stood at its end: `checks` (the record now) less the checks
/// decided since the history starts (the running hour too), then added back
/// hour by hour.
fn history(decided: &[Decided], checks: CheckRecord, ended: i64) -> Vec<WorkerHour> {
    let mut hours = BTreeMap::<i64, (u64, u64, u64, u64)>::new();
    let (mut recent_passed, mut recent_failed) = (0u64, 0u64);
    for d in decided {
        let n = d.n;
        match (d.check, d.agreed) {
            (true, true) => recent_passed += n,
            (true, false) => recent_failed += n,
            _ => {}
        }
        if d.hour * HOUR_MS >= ended {
            continue;
        }
        let e = hours.entry(d.hour).or_default();
        if d.agreed {
            e.0 += n
        } else {
            e.1 += n
        }
        match (d.check, d.agreed) {
            (true, true) => e.2 += n,
            (true, false) => e.3 += n,
            _ => {}
        }
    }
    let mut passed = checks.passed.saturating_sub(recent_passed);
    let mut failed = checks.failed.saturating_sub(recent_failed);
    hours
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
        .collect()
}
