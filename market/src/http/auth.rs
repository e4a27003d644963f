//! Signed requests: the [`Signed`] extractor checks the `tally-v2`
//! signature (bound to this market's network and operator), the timestamp
//! window and the nonce, then hands the handler the signer and the exact
//! body bytes that were signed.
//!
//! Everything the headers alone can refuse is refused before a byte of the
//! body is read: a malformed header, a timestamp outside the window, a nonce
//! already used, a declared length above the route's limit. A body then
//! streams in under two bounds: it must keep arriving at
//! [`Limits::body_min_rate`] after a grace of [`Limits::body_grace`] (else
//! 408), and bodies above [`Limits::max_body_bytes`] share an upload budget
//! of [`Limits::upload_budget_bytes`] (a body waits up to
//! [`Limits::upload_wait`] for its share, else 503), so a crowd of large
//! unsigned uploads cannot take the market's memory. The body is hashed as
//! it arrives and the signature checked over that hash.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_LENGTH;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tally_protocol::signing::{self, SignedHeaders, MAX_SKEW_MS};
use tally_protocol::AccountId;
use tokio::sync::OwnedSemaphorePermit;

use crate::error::{MarketError, Result};
use crate::nonces::{nonce_seen, remember_nonce, replayed};
use crate::{now_ms, Limits, Market};

/// A request whose signature, freshness and nonce have been checked.
pub struct Signed {
    pub headers: SignedHeaders,
    pub body: Bytes,
    /// A large body's share of the upload budget, held while the request
    /// is handled (its bytes are in memory until then).
    _upload: Option<OwnedSemaphorePermit>,
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
fn limit_for(l: &Limits, path: &str) -> usize {
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
/// transaction, opened with [`crate::nonces::begin_signed`]: one commit per request instead
/// of two. Used by the requests workers send for every task (results,
/// heartbeats, failures).
pub struct SignedWrite(pub Signed);

impl FromRequest<Arc<Market>> for SignedWrite {
    type Rejection = MarketError;

    async fn from_request(req: Request, m: &Arc<Market>) -> Result<Self> {
        Ok(SignedWrite(verify(req, m).await?))
    }
}

/// How far `timestamp_ms` is from `now_ms`, in milliseconds, without
/// overflow whatever a client wrote in the header.
pub fn skew_ms(now_ms: i64, timestamp_ms: i64) -> u64 {
    now_ms.abs_diff(timestamp_ms)
}

/// Refuse a timestamp outside the window.
fn check_fresh(h: &SignedHeaders) -> Result<()> {
    let skew = skew_ms(now_ms(), h.timestamp_ms);
    if skew > MAX_SKEW_MS as u64 {
        return Err(MarketError::Unauthorized(format!(
            "stale request: X-Tally-Timestamp is {} s away from the market's clock (limit {} s)",
            skew / 1000,
            MAX_SKEW_MS / 1000
        )));
    }
    Ok(())
}

/// Check everything the headers alone can tell, then read the body (bounded
/// in size, time and, for large bodies, in how many stream at once) and
/// check the signature over it.
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
    check_fresh(&headers)?;
    if nonce_seen(m, &headers).await? {
        return Err(replayed(m));
    }
    let limits = &m.config.limits;
    let limit = limit_for(limits, req.uri().path());
    let declared = match get(CONTENT_LENGTH.as_str()) {
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            MarketError::bad("bad_content_length", "Content-Length is not a number")
        })?),
        None => None,
    };
    if let Some(n) = declared {
        if n > limit as u64 {
            return Err(too_large(limit));
        }
    }
    let upload = upload_permit(m, declared, limit).await?;
    let (body, digest) = read_body(req.into_body(), limits, declared, limit).await?;
    headers
        .verify_digest(&m.domain, &method, &pq, &digest)
        .map_err(|e| MarketError::Unauthorized(format!("signature rejected: {e}")))?;
    Ok(Signed {
        headers,
        body,
        _upload: upload,
    })
}

fn too_large(limit: usize) -> MarketError {
    MarketError::TooLarge(format!("request body larger than {limit} bytes"))
}

/// A body above `max_body_bytes` (or of unknown length on a route that
/// takes large bodies) takes its size out of the upload budget while it
/// streams in; it waits at most `upload_wait` for it.
async fn upload_permit(
    m: &Market,
    declared: Option<u64>,
    limit: usize,
) -> Result<Option<OwnedSemaphorePermit>> {
    let l = &m.config.limits;
    let size = declared.unwrap_or(limit as u64);
    if size <= l.max_body_bytes as u64 {
        return Ok(None);
    }
    let units = budget_units(size, l.upload_budget_bytes);
    let busy = || {
        MarketError::Busy(format!(
            "the market is taking in other large uploads; try again in a few seconds \
             (at most {} MB of large bodies are read at once)",
            l.upload_budget_bytes >> 20
        ))
    };
    let acquire = Arc::clone(&m.uploads).acquire_many_owned(units);
    match tokio::time::timeout(l.upload_wait, acquire).await {
        Ok(Ok(permit)) => Ok(Some(permit)),
        Ok(Err(_)) | Err(_) => Err(busy()),
    }
}

/// The budget is counted in units of [`BUDGET_UNIT`] bytes.
pub const BUDGET_UNIT: usize = 64 << 10;

/// The units a body of `size` bytes takes (never more than the whole budget).
fn budget_units(size: u64, budget_bytes: usize) -> u32 {
    let total = (budget_bytes / BUDGET_UNIT).max(1) as u64;
    size.div_ceil(BUDGET_UNIT as u64).clamp(1, total) as u32
}

/// The units in a budget of `budget_bytes`.
pub fn budget_total(budget_bytes: usize) -> usize {
    (budget_bytes / BUDGET_UNIT).max(1)
}

/// Read a body of at most `limit` bytes, hashing it as it arrives. It must
/// keep coming: by `body_grace + received / body_min_rate` after the start,
/// else 408.
async fn read_body(
    body: axum::body::Body,
    l: &Limits,
    declared: Option<u64>,
    limit: usize,
) -> Result<(Bytes, String)> {
    let start = tokio::time::Instant::now();
    let capacity = declared.map_or(0, |n| n as usize).min(limit);
    let mut buf = Vec::with_capacity(capacity);
    let mut hash = Sha256::new();
    let mut stream = body.into_data_stream();
    let rate = l.body_min_rate.max(1) as f64;
    loop {
        let due =
            start + l.body_grace + std::time::Duration::from_secs_f64(buf.len() as f64 / rate);
        let frame = match tokio::time::timeout_at(due, stream.next()).await {
            Err(_) => {
                return Err(MarketError::Timeout(format!(
                    "the request body arrived too slowly: {} bytes after {} ms \
                     (a body must arrive at {} bytes/s or faster)",
                    buf.len(),
                    start.elapsed().as_millis(),
                    l.body_min_rate
                )))
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(MarketError::bad(
                    "bad_body",
                    format!("the request body could not be read: {e}"),
                ))
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        if buf.len() + frame.len() > limit {
            return Err(too_large(limit));
        }
        hash.update(&frame);
        buf.extend_from_slice(&frame);
    }
    Ok((Bytes::from(buf), hex::encode(hash.finalize())))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_never_overflows() {
        assert_eq!(skew_ms(1_000, i64::MIN), 1_000 + (1u64 << 63));
        assert_eq!(skew_ms(i64::MIN, i64::MAX), u64::MAX);
        assert_eq!(skew_ms(5, 5), 0);
        assert_eq!(skew_ms(5, 7), 2);
    }

    #[test]
    fn a_body_takes_its_size_of_the_budget_and_never_more_than_all() {
        let budget = 128 << 20;
        assert_eq!(budget_units(1, budget), 1);
        assert_eq!(budget_units(BUDGET_UNIT as u64 + 1, budget), 2);
        assert_eq!(budget_units(60 << 20, budget), 960);
        assert_eq!(budget_units(u64::MAX, budget), budget_total(budget) as u32);
    }
}
