//! Signed requests: the [`Signed`] extractor checks the `tally-v1`
//! signature, the timestamp window and the nonce, then hands the handler the
//! signer and the exact body bytes that were signed.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use tally_protocol::signing::{self, SignedHeaders, MAX_SKEW_MS};
use tally_protocol::AccountId;

use crate::db::{query, WriteTx};
use crate::error::{MarketError, Result};
use crate::{now_ms, Market};

/// A request whose signature, freshness and nonce have been checked.
pub struct Signed {
    pub headers: SignedHeaders,
    pub body: Bytes,
}

impl Signed {
    pub fn account(&self) -> &AccountId {
        &self.headers.account
    }

    /// Parse the body as JSON; unknown fields and type errors are 400s.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        parse_json(&self.body)
    }
}

/// Parse a JSON body with a message that names the problem.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| MarketError::bad("bad_json", format!("invalid request body: {e}")))
}

/// The body limit of a path.
fn limit_for(m: &Market, path: &str) -> usize {
    let l = &m.config.limits;
    match path {
        "/v1/models" => l.max_model_bytes,
        "/v1/bids" => l.max_bid_bytes,
        _ => l.max_body_bytes,
    }
}

impl FromRequest<Arc<Market>> for Signed {
    type Rejection = MarketError;

    async fn from_request(req: Request, m: &Arc<Market>) -> Result<Self> {
        let signed = verify(req, m).await?;
        remember_nonce(m, &signed.headers).await?;
        Ok(signed)
    }
}

/// A signed request whose nonce is recorded inside the handler's own write
/// transaction, opened with [`begin_signed`]: one commit per request instead
/// of two. Used by the requests workers send for every task (results,
/// heartbeats, failures).
pub struct SignedWrite(pub Signed);

impl FromRequest<Arc<Market>> for SignedWrite {
    type Rejection = MarketError;

    async fn from_request(req: Request, m: &Arc<Market>) -> Result<Self> {
        Ok(SignedWrite(verify(req, m).await?))
    }
}

/// Begin the write transaction of a [`SignedWrite`] request, recording its
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

/// Check the signature and the timestamp window.
async fn verify(req: Request, m: &Arc<Market>) -> Result<Signed> {
    let method = req.method().as_str().to_string();
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    let h = req.headers();
    let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    let headers = SignedHeaders::parse(
        get(signing::HEADER_ACCOUNT),
        get(signing::HEADER_TIMESTAMP),
        get(signing::HEADER_NONCE),
        get(signing::HEADER_SIGNATURE),
    )
    .map_err(|e| MarketError::Unauthorized(format!("this request must be signed: {e}")))?;
    let limit = limit_for(m, req.uri().path());
    let body = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| MarketError::TooLarge(format!("request body larger than {limit} bytes")))?;
    headers
        .verify(&method, &pq, &body)
        .map_err(|e| MarketError::Unauthorized(format!("signature rejected: {e}")))?;
    let skew = (now_ms() - headers.timestamp_ms).abs();
    if skew > MAX_SKEW_MS {
        return Err(MarketError::Unauthorized(format!(
            "stale request: X-Tally-Timestamp is {} s away from the market's clock (limit 60 s)",
            skew / 1000
        )));
    }
    Ok(Signed { headers, body })
}

/// Record a nonce in its own transaction; a nonce seen before from the
/// same account is a replay.
async fn remember_nonce(m: &Market, h: &SignedHeaders) -> Result<()> {
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

fn replayed(m: &Market) -> MarketError {
    m.metrics.replays.fetch_add(1, Ordering::Relaxed);
    MarketError::conflict(
        "replayed_request",
        "this nonce was already used: a replayed request is never applied twice",
    )
}

/// Forget nonces older than twice the timestamp window: a request that old
/// is refused as stale anyway.
pub async fn prune_nonces(m: &Market) -> Result<()> {
    let mut tx = m.db.begin().await?;
    query("DELETE FROM nonces WHERE seen_at < $1")
        .bind(now_ms() - 2 * MAX_SKEW_MS)
        .execute(&mut tx)
        .await?;
    tx.commit().await
}

/// Only the operator's key may call admin endpoints.
pub fn require_operator(m: &Market, s: &Signed) -> Result<()> {
    if s.account() == m.config.operator.account() {
        Ok(())
    } else {
        Err(MarketError::Forbidden(
            "only the operator's key may do this".into(),
        ))
    }
}
