//! What anyone may read: metrics, task evidence, settlement records,
//! market statistics, worker records, the market's self-audit and the
//! event stream.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tally_protocol::wire::*;
use tally_protocol::{AccountId, TaskId};

use crate::error::{MarketError, Result};
use crate::views;

use super::{id, S};
pub(super) async fn metrics(State(m): S) -> Result<Response> {
    let text = views::metrics(&m).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

pub(super) async fn evidence(State(m): S, Path(raw): Path<String>) -> Result<Json<Evidence>> {
    Ok(Json(
        views::evidence(&m, id::<TaskId>(&raw, "task")?).await?,
    ))
}

pub(super) async fn settlements(
    State(m): S,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<SettlementPage>> {
    let after = match q.get("after") {
        Some(v) => id::<u64>(v, "after")?,
        None => 0,
    };
    let limit = match q.get("limit") {
        Some(v) => id::<u32>(v, "limit")?.clamp(1, 1000),
        None => 1000,
    };
    Ok(Json(views::settlements(&m, after, limit).await?))
}

pub(super) async fn market(State(m): S) -> Result<Json<MarketStats>> {
    Ok(Json(views::market_stats(&m).await?))
}

pub(super) async fn worker_record(
    State(m): S,
    Path(account): Path<String>,
) -> Result<Json<WorkerRecord>> {
    let account: AccountId = account.parse().map_err(|e| MarketError::BadRequest {
        code: "bad_account",
        message: format!("{account} is not a worker account (G...): {e}"),
    })?;
    Ok(Json(views::worker_record(&m, &account).await?))
}

pub(super) async fn audit(State(m): S) -> Result<Json<SelfAudit>> {
    let last = m.audit.lock().expect("audit report").clone();
    last.map(Json).ok_or_else(|| {
        MarketError::NotFound(
            "the market has not audited itself yet; tally audit --market URL does it now".into(),
        )
    })
}

/// `GET /v1/events`: server-sent events, one JSON [`MarketEvent`] each.
pub(super) async fn events(
    State(m): S,
) -> axum::response::sse::Sse<
    impl futures::Stream<
        Item = std::result::Result<axum::response::sse::Event, std::convert::Infallible>,
    >,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let rx = m.events.subscribe();
    let shutdown = m.shutdown_signal();
    // Where decisions are published in batches, a task's decision reaches
    // the public stream only when its evidence does (`task_published`): an
    // event at the moment of decision would tell a worker how its result
    // was taken. Clients hear their own bids' decisions at once through
    // their signed long polls.
    let batched = crate::publish::batched(&m);
    let stream = futures::stream::unfold(rx, move |mut rx| {
        let mut shutdown = shutdown.clone();
        async move {
            let got = loop {
                let got = tokio::select! {
                    e = rx.recv() => e,
                    _ = shutdown.changed() => return None,
                };
                let private = matches!(
                    got,
                    Ok(MarketEvent::TaskDecided { .. }
                        | MarketEvent::TaskRevised { .. }
                        | MarketEvent::BidDone { .. })
                );
                if !(batched && private) {
                    break got;
                }
            };
            let event = match got {
                Ok(e) => {
                    Event::default().data(serde_json::to_string(&e).expect("events serialize"))
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    Event::default().event("lagged").data(n.to_string())
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            };
            Some((Ok(event), rx))
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
