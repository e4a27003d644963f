//! Replay protection: every signed request's nonce is recorded once per
//! account, inside the transaction that carries the request's effects
//! ([`begin_signed`]) or on its own for reads; a nonce seen before is a
//! replay. Nonces older than twice the timestamp window are forgotten (a
//! request that old is refused as stale anyway).

use std::sync::atomic::Ordering;

use tally_protocol::signing::{SignedHeaders, MAX_SKEW_MS};

use crate::db::{query, WriteTx};
use crate::error::{MarketError, Result};
use crate::{now_ms, Market};

/// Begin the write transaction of a signed write request, recording its
/// nonce first: a replay fails here, and the nonce is kept exactly when the
/// request's effects are.
pub async fn begin_signed<'a>(m: &'a Market, h: &SignedHeaders) -> Result<WriteTx<'a>> {
    let mut tx = m.db.begin().await?;
    if insert_nonce(&mut tx, h).await? {
        Ok(tx)
    } else {
        Err(replayed(m))
    }
}

/// Whether `h`'s nonce is already recorded (looked up before the body is
/// read; recording it stays with the request's effects).
pub(crate) async fn nonce_seen(m: &Market, h: &SignedHeaders) -> Result<bool> {
    Ok(
        query("SELECT 1 AS one FROM nonces WHERE account = $1 AND nonce = $2")
            .bind(h.account.as_str())
            .bind(h.nonce.to_ascii_lowercase())
            .fetch_optional(&m.db)
            .await?
            .is_some(),
    )
}

/// Record a nonce in its own transaction; a nonce seen before from the
/// same account is a replay.
pub(crate) async fn remember_nonce(m: &Market, h: &SignedHeaders) -> Result<()> {
    m.db.retrying("nonce", || remember_nonce_once(m, h)).await
}

async fn remember_nonce_once(m: &Market, h: &SignedHeaders) -> Result<()> {
    let mut tx = m.db.begin().await?;
    let fresh = insert_nonce(&mut tx, h).await?;
    tx.commit().await?;
    if fresh {
        Ok(())
    } else {
        Err(replayed(m))
    }
}

async fn insert_nonce(tx: &mut WriteTx<'_>, h: &SignedHeaders) -> Result<bool> {
    let n = query(
        "INSERT INTO nonces (account, nonce, seen_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(h.account.as_str())
    .bind(h.nonce.to_ascii_lowercase())
    .bind(now_ms())
    .execute(tx)
    .await?;
    Ok(n == 1)
}

pub(crate) fn replayed(m: &Market) -> MarketError {
    m.metrics.replays.fetch_add(1, Ordering::Relaxed);
    MarketError::conflict(
        "replayed_request",
        "this nonce was already used: a replayed request is never applied twice",
    )
}

/// Forget nonces older than twice the timestamp window: a request that old
/// is refused as stale anyway.
pub async fn prune_nonces(m: &Market) -> Result<()> {
    m.db.retrying("nonce pruning", || prune_nonces_once(m))
        .await
}

async fn prune_nonces_once(m: &Market) -> Result<()> {
    let mut tx = m.db.begin().await?;
    query("DELETE FROM nonces WHERE seen_at < $1")
        .bind(now_ms().saturating_sub(2 * MAX_SKEW_MS))
        .execute(&mut tx)
        .await?;
    tx.commit().await
}
