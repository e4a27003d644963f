//! Deposits: with `--horizon`, the market follows the payments into the
//! operator's account (Horizon's `GET /accounts/{id}/payments`, oldest
//! first, transactions joined for their memos) and credits each one
//! exactly once:
//!
//! - to the client whose deposit code is the transaction's memo (what an
//!   exchange sends on the client's behalf), else to the sending account;
//! - only in the market's asset, only from successful transactions, only
//!   payments (plain or path) into the operator; anything else, and a memo
//!   that is no deposit code, is recorded as refused with the reason.
//!
//! Every record is keyed by the network's operation id (`deposits.id`), and
//! the cursor is stored in the same transaction as the page's credits, so a
//! restart, a page served twice or two market processes never credit twice.
//! Payments the operator itself sends (payouts) only move the cursor.
//!
//! With `--rpc` and no `--horizon`, the same records are read from Stellar
//! RPC's SAC `transfer` events instead ([`rpc`]; memos from
//! `getTransaction`). The stored cursor is one source's: an RPC cursor
//! (`digits-digits`) is refused by Horizon and a Horizon paging token is
//! refused here, so a market switching sources says so rather than
//! re-crediting or skipping deposits.

mod horizon;
pub mod rpc;

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tally_protocol::wire::{Deposit, DepositPage};
use tally_protocol::{AccountId, Stroops};

use crate::db::{int, query, text, WriteTx};
use crate::error::{MarketError, Result};
use crate::ledger;
use crate::{now_ms, to_time, Market};

pub use horizon::{parse_page, parse_units, Page, Record};

/// Records asked for per page.
pub const PAGE_LIMIT: usize = 200;

/// The deposit code of `account`: the text memo that credits a payment to
/// it (28 bytes at most, as text memos are).
pub fn deposit_code(account: &AccountId) -> String {
    let digest = Sha256::digest(format!("tally-deposit:{account}").as_bytes());
    format!("tally-{}", &hex::encode(digest)[..12])
}

/// `account`'s deposit code, remembered so a payment carrying it finds it.
pub async fn code_for(m: &Market, account: &AccountId) -> Result<String> {
    m.db.retrying("deposit code", || code_for_once(m, account))
        .await
}

async fn code_for_once(m: &Market, account: &AccountId) -> Result<String> {
    let code = deposit_code(account);
    let known = query("SELECT 1 AS one FROM deposit_codes WHERE code = $1")
        .bind(code.as_str())
        .fetch_optional(&m.db)
        .await?;
    if known.is_some() {
        return Ok(code);
    }
    let mut tx = m.db.begin().await?;
    query("INSERT INTO deposit_codes (code, account) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(code.as_str())
        .bind(account.as_str())
        .execute(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(code)
}

/// The cursor to read on from (`None`: from the start).
pub async fn cursor(m: &Market) -> Result<Option<String>> {
    let row = query("SELECT cursor FROM deposit_cursor WHERE id = 1")
        .fetch_optional(&m.db)
        .await?;
    row.map(|r| text(&r, "cursor")).transpose()
}

/// What one record comes to.
enum Verdict {
    /// Not a payment into the operator (its own payouts): only the cursor moves.
    Skip,
    Credit(AccountId),
    Refuse(String),
}

/// Credit (or refuse) the records of one page and move the cursor past
/// them, in one transaction; how many were new.
pub async fn apply_page(m: &Market, page: &Page) -> Result<usize> {
    m.db.retrying("deposits", || apply_page_once(m, page)).await
}

async fn apply_page_once(m: &Market, page: &Page) -> Result<usize> {
    let Some(last) = page.records.last() else {
        return Ok(0);
    };
    let operator = m.config.operator.account().to_string();
    let mut tx = m.db.begin().await?;
    let mut fresh = 0;
    let mut credited = Vec::new();
    for r in &page.records {
        let verdict = judge(&mut tx, m, &operator, r).await?;
        let (account, status, reason) = match &verdict {
            Verdict::Skip => continue,
            Verdict::Credit(a) => (Some(a.clone()), "credited", None),
            Verdict::Refuse(why) => (None, "refused", Some(why.clone())),
        };
        let inserted = query(
            "INSERT INTO deposits (id, account, sender, amount, asset, memo, tx_hash, status, reason, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING",
        )
        .bind(r.id.as_str())
        .bind(account.as_ref().map(|a| a.as_str().to_string()))
        .bind(r.from.as_str())
        .bind(r.amount.unwrap_or(0))
        .bind(r.asset.as_str())
        .bind(r.memo.clone())
        .bind(r.tx_hash.as_str())
        .bind(status)
        .bind(reason.clone())
        .bind(now_ms())
        .execute(&mut tx)
        .await?;
        if inserted == 0 {
            continue; // seen before: credited (or refused) then
        }
        fresh += 1;
        match (&account, r.amount) {
            (Some(a), Some(amount)) => {
                ledger::credit(&mut tx, a, Stroops(amount)).await?;
                tracing::info!(deposit = %r.id, account = %a, amount, "deposit credited");
                credited.push(tally_protocol::wire::MarketEvent::DepositCredited {
                    account: a.clone(),
                    amount: Stroops(amount),
                });
            }
            _ => {
                tracing::warn!(deposit = %r.id, sender = %r.from, reason = ?reason, "deposit refused")
            }
        }
    }
    query(
        "INSERT INTO deposit_cursor (id, cursor) VALUES (1, $1)
         ON CONFLICT (id) DO UPDATE SET cursor = excluded.cursor",
    )
    .bind(last.paging_token.as_str())
    .execute(&mut tx)
    .await?;
    tx.commit().await?;
    crate::events::announce(m, credited).await;
    Ok(fresh)
}

async fn judge(tx: &mut WriteTx<'_>, m: &Market, operator: &str, r: &Record) -> Result<Verdict> {
    if r.to.as_deref() != Some(operator) || r.from == operator {
        return Ok(Verdict::Skip);
    }
    if !r.successful {
        return Ok(Verdict::Refuse("the transaction failed".into()));
    }
    if !r.is_payment {
        return Ok(Verdict::Refuse(format!(
            "a {} operation is not a payment",
            r.kind
        )));
    }
    if r.asset != m.config.asset {
        return Ok(Verdict::Refuse(format!(
            "paid in {}, but this market settles in {}",
            r.asset, m.config.asset
        )));
    }
    let Some(amount) = r.amount else {
        return Ok(Verdict::Refuse(
            "the amount is not a number of stroops".into(),
        ));
    };
    if amount <= 0 {
        return Ok(Verdict::Refuse("nothing was paid".into()));
    }
    if let Some(memo) = r.memo.as_deref().filter(|m| !m.is_empty()) {
        let row = query("SELECT account FROM deposit_codes WHERE code = $1")
            .bind(memo)
            .fetch_optional(&mut *tx)
            .await?;
        return Ok(match row {
            Some(row) => Verdict::Credit(crate::db::parse(&text(&row, "account")?, "account")?),
            None => Verdict::Refuse(format!(
                "memo {memo:?} is no deposit code (GET /v1/accounts/me gives each client its own)"
            )),
        });
    }
    match r.from.parse::<AccountId>() {
        Ok(a) => Ok(Verdict::Credit(a)),
        Err(_) => Ok(Verdict::Refuse(format!(
            "sender {} is not an account",
            r.from
        ))),
    }
}

/// `GET /v1/deposits`: the deposits credited to `account` or sent by it.
pub async fn list(m: &Market, account: &AccountId) -> Result<DepositPage> {
    let rows = query(
        "SELECT id, account, sender, amount, asset, memo, tx_hash, status, reason, created_at
         FROM deposits WHERE account = $1 OR sender = $1 ORDER BY created_at DESC, id DESC LIMIT 1000",
    )
    .bind(account.as_str())
    .fetch_all(&m.db)
    .await?;
    let mut deposits = Vec::with_capacity(rows.len());
    for r in rows {
        let credited: Option<String> = r.try_get("account")?;
        deposits.push(Deposit {
            id: text(&r, "id")?,
            account: credited
                .map(|a| crate::db::parse(&a, "account"))
                .transpose()?,
            sender: text(&r, "sender")?,
            amount: Stroops(int(&r, "amount")?),
            asset: text(&r, "asset")?,
            memo: r.try_get("memo")?,
            tx_hash: text(&r, "tx_hash")?,
            status: text(&r, "status")?,
            reason: r.try_get("reason")?,
            created_at: to_time(int(&r, "created_at")?),
        });
    }
    Ok(DepositPage { deposits })
}

/// Read the next page after the stored cursor and apply it; how many
/// records the page held.
pub async fn follow_once(m: &Market, http: &reqwest::Client, horizon: &str) -> Result<usize> {
    let after = cursor(m).await?;
    let url = horizon::payments_url(
        horizon,
        m.config.operator.account().as_str(),
        after.as_deref(),
    );
    let body = http
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| MarketError::Upstream(format!("horizon payments: {e}")))?
        .text()
        .await
        .map_err(|e| MarketError::Upstream(format!("horizon payments: {e}")))?;
    let page = parse_page(&body).map_err(MarketError::Upstream)?;
    apply_page(m, &page).await?;
    Ok(page.records.len())
}

/// Store `cursor` (after a page is applied: the deposits are in already).
async fn store_cursor(m: &Market, cursor: &str, replace: bool) -> Result<()> {
    m.db.retrying("deposit cursor", || store_cursor_once(m, cursor, replace))
        .await
}

async fn store_cursor_once(m: &Market, cursor: &str, replace: bool) -> Result<()> {
    let sql = if replace {
        "INSERT INTO deposit_cursor (id, cursor) VALUES (1, $1)
         ON CONFLICT (id) DO UPDATE SET cursor = excluded.cursor"
    } else {
        "INSERT INTO deposit_cursor (id, cursor) VALUES (1, $1) ON CONFLICT (id) DO NOTHING"
    };
    let mut tx = m.db.begin().await?;
    query(sql).bind(cursor).execute(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}

/// The stored cursor as an RPC cursor; on the first run, the start of the
/// latest ledger, stored (see [`rpc`]: nothing paid before is credited).
async fn rpc_cursor(m: &Market, http: &reqwest::Client, url: &str) -> Result<String> {
    let stored = match cursor(m).await? {
        Some(c) => c,
        None => {
            let start = rpc::ledger_cursor(rpc::latest_ledger(http, url).await?);
            store_cursor(m, &start, false).await?; // another process may have begun
            cursor(m).await?.unwrap_or(start)
        }
    };
    if !rpc::is_cursor(&stored) {
        return Err(MarketError::Upstream(format!(
            "the stored deposit cursor {stored:?} is Horizon's: deposits have been followed \
             through Horizon, keep following them with --horizon"
        )));
    }
    Ok(stored)
}

/// [`follow_once`] through Stellar RPC at `url`: read the transfer events
/// after the stored cursor, apply them, store the answer's cursor; how
/// many events the answer held.
pub async fn follow_once_rpc(m: &Market, http: &reqwest::Client, url: &str) -> Result<usize> {
    let after = rpc_cursor(m, http, url).await?;
    let operator = m.config.operator.account().to_string();
    let read = rpc::read_page(http, url, &operator, &m.config.network, &after).await?;
    apply_page(m, &read.page).await?;
    // Past the last event, or past an empty window: a crash before this
    // only means the page is read (and skipped) again.
    if let Some(next) = read.cursor.filter(|c| *c != after) {
        store_cursor(m, &next, true).await?;
    }
    Ok(read.events)
}

/// Where deposits are followed from.
enum Source {
    Horizon(String),
    Rpc(String),
}

/// Follow deposits while the market runs (with `--horizon`, else with
/// `--rpc`): a full page is followed by the next at once, else the
/// follower waits `deposit_poll`.
pub fn spawn(m: &Arc<Market>) {
    let source = match (&m.config.horizon, &m.config.rpc) {
        (Some(h), _) => Source::Horizon(h.clone()),
        (None, Some(r)) => Source::Rpc(r.clone()),
        (None, None) => return,
    };
    let m = Arc::clone(m);
    tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        let mut shutdown = m.shutdown_signal();
        loop {
            let followed = match &source {
                Source::Horizon(url) => follow_once(&m, &http, url).await,
                Source::Rpc(url) => follow_once_rpc(&m, &http, url).await,
            };
            let wait = match followed {
                Ok(n) if n >= PAGE_LIMIT => Duration::ZERO,
                Ok(_) => m.config.deposit_poll,
                Err(e) => {
                    tracing::warn!(error = %e, "following deposits failed; trying again");
                    m.config.deposit_poll.max(Duration::from_secs(1))
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
        }
    });
}
