//! Review: the operator's reviewer marks, their public list, and a
//! verified reviewer's next review (a long poll) and answer.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tally_protocol::wire::*;

use crate::auth::{require_operator, Signed, SignedWrite};
use crate::error::Result;
use crate::events::{next_until, Heard};

use super::{assignment_and_body, wait_ms, S};
pub(super) async fn admin_mark_reviewer(
    State(m): S,
    SignedWrite(s): SignedWrite,
) -> Result<Json<ReviewerMark>> {
    require_operator(&m, &s)?;
    let req: ReviewerMarkRequest = s.json()?;
    Ok(Json(
        crate::review::mark(&m, &s.headers, &s.body, &req).await?,
    ))
}

pub(super) async fn reviewer_marks(State(m): S) -> Result<Json<ReviewerMarks>> {
    Ok(Json(crate::review::marks(&m).await?))
}

/// The next review for a verified reviewer, or 204 when nothing waits;
/// with `wait_ms=N` (at most 60 s) it waits for a task to want a reviewer
/// (a task going to review, or reviews that did not decide it).
pub(super) async fn next_review(
    State(m): S,
    Query(q): Query<HashMap<String, String>>,
    s: Signed,
) -> Result<Response> {
    let wait_ms = wait_ms(&q)?;
    // Listen before looking: a task going to review in between wakes us.
    let mut events = m.events.subscribe();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(wait_ms);
    let nothing = || StatusCode::NO_CONTENT.into_response();
    loop {
        if let Some(ticket) = crate::review::next(&m, s.account()).await? {
            return Ok(Json(ticket).into_response());
        }
        if wait_ms == 0 {
            return Ok(nothing());
        }
        loop {
            match next_until(&mut events, deadline).await {
                Heard::Event(MarketEvent::TaskDecided {
                    status: TaskState::Review,
                    ..
                })
                | Heard::Missed => break,
                Heard::Event(_) => continue,
                Heard::Over => return Ok(nothing()),
            }
        }
    }
}

pub(super) async fn submit_review(
    State(m): S,
    Path(raw): Path<String>,
    SignedWrite(s): SignedWrite,
) -> Result<Json<ReviewOutcome>> {
    let (id, req): (_, ReviewRequest) = assignment_and_body(&raw, "review", &s)?;
    Ok(Json(
        crate::review::submit(&m, &s.headers, id, &s.body, &req).await?,
    ))
}
