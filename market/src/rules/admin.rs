//! The operator's views (`GET /v1/admin/...`, signed with the operator's
//! key): every account's books, every worker's standing and pay, the
//! newest bids with their progress.

use std::collections::BTreeMap;

use tally_protocol::trust::{credibility, CheckRecord, ASSUMED_SABOTEURS};
use tally_protocol::wire::{
    AccountBooks, AdminAccounts, AdminBid, AdminBids, AdminWorker, AdminWorkers, BidState,
    Reputation,
};
use tally_protocol::{BidId, Stroops};

use crate::db::{int, parse, query, text};
use crate::error::Result;
use crate::{to_time, Market};

/// Every account's balances, by book.
pub async fn accounts(m: &Market) -> Result<AdminAccounts> {
    let rows =
        query("SELECT book, owner, amount FROM balances WHERE book <> 'external' ORDER BY owner")
            .fetch_all(&m.db)
            .await?;
    let mut by: BTreeMap<String, AccountBooks> = BTreeMap::new();
    for r in rows {
        let owner = text(&r, "owner")?;
        let amount = Stroops(int(&r, "amount")?);
        let books = by.entry(owner.clone()).or_insert_with(|| AccountBooks {
            account: owner,
            ..AccountBooks::default()
        });
        match text(&r, "book")?.as_str() {
            "available" => books.available = amount,
            "reserved" => books.reserved = amount,
            "earned" => books.earned = amount,
            "withdrawing" => books.withdrawing = amount,
            "paid" => books.paid = amount,
            "fees" => books.fees = amount,
            _ => {}
        }
    }
    Ok(AdminAccounts {
        accounts: by.into_values().collect(),
    })
}

/// Every worker, most credible first.
pub async fn workers(m: &Market) -> Result<AdminWorkers> {
    let rows = query(
        "SELECT w.account, w.agreed, w.disagreed, w.timed_out, w.checks_passed, w.checks_failed,
           w.caught_at, w.last_seen,
           COALESCE((SELECT amount FROM balances b WHERE b.book = 'earned' AND b.owner = w.account), 0) AS earned,
           COALESCE((SELECT amount FROM balances b WHERE b.book = 'paid' AND b.owner = w.account), 0) AS paid
         FROM workers w ORDER BY w.checks_failed ASC, w.checks_passed DESC, w.account LIMIT 10000",
    )
    .fetch_all(&m.db)
    .await?;
    let mut workers = Vec::with_capacity(rows.len());
    for r in rows {
        let checks = CheckRecord {
            passed: int(&r, "checks_passed")?.max(0) as u64,
            failed: int(&r, "checks_failed")?.max(0) as u64,
        };
        let caught: Option<i64> = r.try_get("caught_at")?;
        workers.push(AdminWorker {
            account: parse(&text(&r, "account")?, "worker")?,
            credibility: credibility(ASSUMED_SABOTEURS, checks),
            checks,
            reputation: Reputation {
                agreed: int(&r, "agreed")?.max(0) as u64,
                disagreed: int(&r, "disagreed")?.max(0) as u64,
                timed_out: int(&r, "timed_out")?.max(0) as u64,
            },
            earned_unpaid: Stroops(int(&r, "earned")?),
            paid: Stroops(int(&r, "paid")?),
            caught_at: caught.map(to_time),
            last_seen: to_time(int(&r, "last_seen")?),
        });
    }
    Ok(AdminWorkers { workers })
}

/// The newest 200 bids, with how many of their tasks are decided.
pub async fn bids(m: &Market) -> Result<AdminBids> {
    let rows = query(
        "SELECT b.id, b.client, b.kind, b.model, b.price, b.status, b.reserved, b.spent, b.created_at,
           (SELECT COUNT(*) FROM tasks t WHERE t.bid_id = b.id) AS tasks,
           (SELECT COUNT(*) FROM tasks t WHERE t.bid_id = b.id AND t.status = 'verified') AS verified,
           (SELECT COUNT(*) FROM tasks t WHERE t.bid_id = b.id AND t.status = 'failed') AS failed
         FROM bids b ORDER BY b.id DESC LIMIT 200",
    )
    .fetch_all(&m.db)
    .await?;
    let mut bids = Vec::with_capacity(rows.len());
    for r in rows {
        bids.push(AdminBid {
            bid: BidId(int(&r, "id")?),
            client: parse(&text(&r, "client")?, "client")?,
            kind: text(&r, "kind")?,
            model: parse(&text(&r, "model")?, "model")?,
            price: Stroops(int(&r, "price")?),
            status: if text(&r, "status")? == "done" {
                BidState::Done
            } else {
                BidState::Open
            },
            tasks: int(&r, "tasks")?.max(0) as u64,
            verified: int(&r, "verified")?.max(0) as u64,
            failed: int(&r, "failed")?.max(0) as u64,
            reserved: Stroops(int(&r, "reserved")?),
            spent: Stroops(int(&r, "spent")?),
            created_at: to_time(int(&r, "created_at")?),
        });
    }
    Ok(AdminBids { bids })
}
