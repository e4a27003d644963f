//! The axum router: thin handlers that parse, authenticate and call into
//! [`crate::bids`], [`crate::claims`], [`crate::results`] and [`crate::views`].
//!
//! - [`models`]: hosted models.
//! - [`work`]: offers, bids, claims, inputs and assignments.
//! - [`public`]: metrics, evidence, settlements, market statistics, worker
//!   records, the self-audit and the event stream.
//! - [`accounts`]: the caller's account, deposits, withdrawals, and the
//!   operator's views and credits.
//! - [`reviews`]: reviewer marks and reviews.

mod accounts;
mod models;
mod public;
mod reviews;
mod work;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use tally_protocol::wire::*;
use tally_protocol::{AssignmentId, Sha256Hex};

use crate::auth::Signed;
use crate::error::{MarketError, Result};
use crate::Market;

use accounts::*;
use models::*;
use public::*;
use reviews::*;
use work::*;

type S = State<Arc<Market>>;

/// Every route of the v1 API.
pub fn router(m: Arc<Market>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(crate::openapi::serve))
        .route("/docs", get(crate::openapi::docs))
        .route("/v1/models", get(list_models).post(upload_model))
        .route("/v1/models/{hash}", get(download_model))
        .route("/v1/offers", post(post_offer))
        .route("/v1/bids", post(post_bid))
        .route("/v1/bids/{id}", get(get_bid))
        .route("/v1/claims", post(claim))
        .route("/v1/inputs/{hash}", get(get_input))
        .route("/v1/assignments/{id}/heartbeat", post(heartbeat))
        .route("/v1/assignments/{id}/result", post(submit_result))
        .route("/v1/assignments/{id}/failure", post(report_failure))
        .route("/v1/tasks/{id}/evidence", get(evidence))
        .route("/v1/settlements", get(settlements))
        .route("/v1/market", get(market))
        .route("/v1/workers/{account}", get(worker_record))
        .route("/v1/events", get(events))
        .route("/v1/audit", get(audit))
        .route("/v1/accounts/me", get(account_me))
        .route("/v1/deposits", get(deposits))
        .route("/v1/withdrawals", get(withdrawals).post(withdraw))
        .route("/v1/withdrawals/{id}/evidence", get(withdrawal_evidence))
        .route("/v1/admin/credits", post(admin_credit))
        .route("/v1/admin/accounts", get(admin_accounts))
        .route("/v1/admin/workers", get(admin_workers))
        .route("/v1/admin/bids", get(admin_bids))
        .route("/v1/admin/reviewers", post(admin_mark_reviewer))
        .route("/v1/reviewers", get(reviewer_marks))
        .route("/v1/reviews/next", get(next_review))
        .route("/v1/reviews/{id}", post(submit_review))
        .merge(crate::console::routes())
        .fallback(|| async {
            MarketError::NotFound(
                "no such endpoint; the API is listed at /docs (and /openapi.json)".into(),
            )
        })
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            Arc::clone(&m),
            count_requests,
        ))
        .with_state(m)
}

/// Counts each request and runs it in a span naming it, so what a request
/// leads to (its decisions included) can be followed in the log.
async fn count_requests(State(m): S, req: Request, next: Next) -> Response {
    use tracing::Instrument;
    m.metrics.requests.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("request", method = %req.method(), path = %req.uri().path());
    next.run(req).instrument(span).await
}

/// A path or query integer (`what` names it in the error).
fn id<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T> {
    raw.parse().map_err(|_| {
        MarketError::bad(
            "bad_id",
            format!("{what} must be an integer id, got {raw:?}"),
        )
    })
}

/// A path's sha256 address.
fn hash(raw: &str) -> Result<Sha256Hex> {
    Sha256Hex::parse(raw).map_err(|e| MarketError::bad("bad_hash", e.to_string()))
}

/// A long poll's `wait_ms` (absent: 0), at most a minute.
fn wait_ms(q: &HashMap<String, String>) -> Result<u64> {
    Ok(match q.get("wait_ms") {
        Some(v) => id::<u64>(v, "wait_ms")?.min(crate::claims::MAX_WAIT_MS),
        None => 0,
    })
}

/// The assignment id in a signed write's path and its JSON body, the id
/// checked first.
fn assignment_and_body<T: DeserializeOwned>(
    raw: &str,
    what: &str,
    s: &Signed,
) -> Result<(AssignmentId, T)> {
    let a = id::<AssignmentId>(raw, what)?;
    Ok((a, s.json()?))
}

/// A market error as its HTTP answer: the status, and a JSON body with the
/// code and a sentence (internal errors say only that, the log has the cause).
impl IntoResponse for MarketError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "internal error");
            "internal error; the operator's log has the cause".to_string()
        } else {
            self.to_string()
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_string(),
                message,
            },
        };
        (status, Json(body)).into_response()
    }
}
