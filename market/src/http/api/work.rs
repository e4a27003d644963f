//! The work itself: workers' offers and claims, clients' bids and their
//! status (a long poll), inputs, and an assignment's heartbeats, result or
//! failure.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tally_protocol::wire::*;
use tally_protocol::{AssignmentId, BidId};

use crate::auth::{Signed, SignedWrite};
use crate::db::query;
use crate::error::{MarketError, Result};
use crate::events::{next_until, Heard};
use crate::{bids, claims, results, views};

use super::{assignment_and_body, hash, id, wait_ms, S};
pub(super) async fn post_offer(State(m): S, s: Signed) -> Result<Json<Offer>> {
    Ok(Json(claims::post_offer(&m, s.account(), s.json()?).await?))
}

pub(super) async fn post_bid(State(m): S, s: Signed) -> Result<(StatusCode, Json<BidCreated>)> {
    let created = bids::create_bid(&m, s.account(), s.json()?).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `GET /v1/bids/{id}`; with `wait_ms=N` (at most 60 s) it answers as soon
/// as the bid differs from what the caller saw (`seen`: its decided tasks)
/// or is done.
pub(super) async fn get_bid(
    State(m): S,
    Path(raw): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    s: Signed,
) -> Result<Json<BidStatus>> {
    let bid = id::<BidId>(&raw, "bid")?;
    let wait_ms = wait_ms(&q)?;
    let seen = q.get("seen").map(|v| id::<usize>(v, "seen")).transpose()?;
    // Listen before looking: a change between the look and the wait wakes us.
    let mut events = m.events.subscribe();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(wait_ms);
    let mut baseline = seen;
    loop {
        let status = views::bid_status(&m, s.account(), bid).await?;
        let decided = status.tasks.iter().filter(|t| t.status.is_final()).count();
        let seen = *baseline.get_or_insert(decided);
        if wait_ms == 0 || status.status == BidState::Done || decided != seen {
            return Ok(Json(status));
        }
        loop {
            match next_until(&mut events, deadline).await {
                Heard::Event(
                    MarketEvent::TaskDecided { bid: b, .. } | MarketEvent::BidDone { bid: b },
                ) if b == bid => break,
                // A revision of one of this bid's tasks changes it too.
                Heard::Event(MarketEvent::TaskRevised { task })
                    if status.tasks.iter().any(|t| t.task == task) =>
                {
                    return Ok(Json(views::bid_status(&m, s.account(), bid).await?));
                }
                Heard::Event(_) => continue,
                Heard::Missed => break,
                Heard::Over => return Ok(Json(status)),
            }
        }
    }
}

pub(super) async fn claim(State(m): S, s: Signed) -> Result<Json<Claimed>> {
    Ok(Json(claims::claim(&m, s.account(), s.json()?).await?))
}

/// Input bytes go to the client who sent them and to workers assigned to them.
pub(super) async fn get_input(State(m): S, Path(raw): Path<String>, s: Signed) -> Result<Response> {
    let h = hash(&raw)?;
    let who = s.account().as_str();
    let allowed = query(
        "SELECT 1 AS one FROM tasks t JOIN bids b ON b.id = t.bid_id
         WHERE t.input = $1 AND (b.client = $2 OR EXISTS
           (SELECT 1 FROM assignments a WHERE a.task_id = t.id AND a.worker = $2 AND a.status = 'leased'))
         LIMIT 1",
    )
    .bind(h.as_str())
    .bind(who)
    .fetch_optional(&m.db)
    .await?
    .is_some();
    if !allowed {
        return Err(MarketError::Forbidden(format!(
            "input {h} is readable only by its client and the workers assigned to it"
        )));
    }
    let row = query("SELECT bytes FROM inputs WHERE hash = $1")
        .bind(h.as_str())
        .fetch_one(&m.db)
        .await?;
    let bytes: Vec<u8> = row.try_get("bytes")?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

pub(super) async fn heartbeat(
    State(m): S,
    Path(raw): Path<String>,
    SignedWrite(s): SignedWrite,
) -> Result<Json<Lease>> {
    Ok(Json(
        results::heartbeat(&m, &s.headers, id::<AssignmentId>(&raw, "assignment")?).await?,
    ))
}

pub(super) async fn submit_result(
    State(m): S,
    Path(raw): Path<String>,
    SignedWrite(s): SignedWrite,
) -> Result<Json<AssignmentOutcome>> {
    let (a, req): (_, ResultRequest) = assignment_and_body(&raw, "assignment", &s)?;
    Ok(Json(
        results::submit_result(&m, &s.headers, a, &s.body, &req).await?,
    ))
}

pub(super) async fn report_failure(
    State(m): S,
    Path(raw): Path<String>,
    SignedWrite(s): SignedWrite,
) -> Result<Json<AssignmentOutcome>> {
    let (a, req): (_, FailureRequest) = assignment_and_body(&raw, "assignment", &s)?;
    Ok(Json(
        results::report_failure(&m, &s.headers, a, &req.reason).await?,
    ))
}
