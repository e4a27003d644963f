//! Withdrawals: a client moves available balance out to its own account on
//! the network. The request (`POST /v1/withdrawals`, signed) moves the
//! amount `available -> withdrawing` at once, so nothing reserved for open
//! bids can leave and nothing is spent twice; the next settlement record
//! pays it like a worker's earnings (`withdrawing -> paid`), naming the
//! withdrawal in its payout, and the signed request stays public
//! (`GET /v1/withdrawals/{id}/evidence`) so `tally audit` checks that every
//! such payout was asked for, by whom and for how much.

use base64::Engine as _;
use tally_protocol::wire::{Withdrawal, WithdrawalEvidence, WithdrawalPage, WithdrawalRequest};
use tally_protocol::{AccountId, SignedHeaders, Stroops};

use crate::db::{int, parse, query, text};
use crate::error::{MarketError, Result};
use crate::ledger::{self, Book, Cause};
use crate::nonces::begin_signed;
use crate::{now_ms, to_time, Market};

/// Take a signed withdrawal request: the amount leaves the available
/// balance now and is paid by the next settlement record.
pub async fn request(
    m: &Market,
    signed: &SignedHeaders,
    body: &[u8],
    req: &WithdrawalRequest,
) -> Result<Withdrawal> {
    m.db.retrying("withdrawal", || request_once(m, signed, body, req))
        .await
}

async fn request_once(
    m: &Market,
    signed: &SignedHeaders,
    body: &[u8],
    req: &WithdrawalRequest,
) -> Result<Withdrawal> {
    if req.amount.0 <= 0 {
        return Err(MarketError::bad(
            "bad_amount",
            "amount must be a positive number of stroops",
        ));
    }
    let account = &signed.account;
    let mut tx = begin_signed(m, signed).await?;
    let available = ledger::balance(&mut tx, Book::Available, account.as_str()).await?;
    if available.0 < req.amount.0 {
        tx.rollback().await?;
        return Err(MarketError::InsufficientFunds(format!(
            "withdrawing {} stroops, but the available balance is {} stroops (what open bids reserve cannot leave)",
            req.amount.0, available.0
        )));
    }
    let now = now_ms();
    let id: i64 = query(
        "INSERT INTO withdrawals (account, amount, body, signed_at, nonce, signature, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(account.as_str())
    .bind(req.amount.0)
    .bind(body)
    .bind(signed.timestamp_ms)
    .bind(signed.nonce.as_str())
    .bind(signed.signature.as_str())
    .bind(now)
    .fetch_one(&mut tx)
    .await?
    .try_get("id")?;
    ledger::transfer(
        &mut tx,
        ledger::Posting::Withdraw,
        Cause::default(),
        (Book::Available, account.as_str()),
        (Book::Withdrawing, account.as_str()),
        req.amount.0,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(%account, amount = req.amount.0, id, "withdrawal asked for");
    Ok(Withdrawal {
        id,
        account: account.clone(),
        amount: req.amount,
        payout_seq: None,
        created_at: to_time(now),
    })
}

fn withdrawal(r: &crate::db::Row) -> Result<Withdrawal> {
    let seq: Option<i64> = r.try_get("payout_seq")?;
    Ok(Withdrawal {
        id: int(r, "id")?,
        account: parse(&text(r, "account")?, "account")?,
        amount: Stroops(int(r, "amount")?),
        payout_seq: seq.map(|s| s as u64),
        created_at: to_time(int(r, "created_at")?),
    })
}

/// `GET /v1/withdrawals`: `account`'s withdrawals, newest first.
pub async fn list(m: &Market, account: &AccountId) -> Result<WithdrawalPage> {
    let rows = query(
        "SELECT id, account, amount, payout_seq, created_at FROM withdrawals
         WHERE account = $1 ORDER BY id DESC LIMIT 1000",
    )
    .bind(account.as_str())
    .fetch_all(&m.db)
    .await?;
    Ok(WithdrawalPage {
        withdrawals: rows.iter().map(withdrawal).collect::<Result<_>>()?,
    })
}

/// `GET /v1/withdrawals/{id}/evidence`: the signed request, public.
pub async fn evidence(m: &Market, id: i64) -> Result<WithdrawalEvidence> {
    let r = query(
        "SELECT id, account, amount, body, signed_at, nonce, signature, payout_seq
         FROM withdrawals WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&m.db)
    .await?
    .ok_or_else(|| MarketError::NotFound(format!("no withdrawal {id}")))?;
    let body: Vec<u8> = r.try_get("body")?;
    let seq: Option<i64> = r.try_get("payout_seq")?;
    Ok(WithdrawalEvidence {
        id,
        account: parse(&text(&r, "account")?, "account")?,
        amount: Stroops(int(&r, "amount")?),
        body: base64::engine::general_purpose::STANDARD.encode(body),
        timestamp: int(&r, "signed_at")?,
        nonce: text(&r, "nonce")?,
        signature: text(&r, "signature")?,
        payout_seq: seq.map(|s| s as u64),
    })
}
