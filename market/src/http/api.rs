//! The axum router: thin handlers that parse, authenticate and call into
//! [`crate::bids`], [`crate::claims`], [`crate::results`] and [`crate::views`].

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tally_protocol::wire::*;
use tally_protocol::{AccountId, AssignmentId, BidId, Sha256Hex, TaskId};

use crate::auth::{require_operator, Signed, SignedWrite};
use crate::db::query;
use crate::error::{MarketError, Result};
use crate::events::{next_until, Heard};
use crate::{bids, claims, ledger, now_ms, results, views, Market};

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

fn id<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T> {
    raw.parse().map_err(|_| {
        MarketError::bad(
            "bad_id",
            format!("{what} must be an integer id, got {raw:?}"),
        )
    })
}

fn hash(raw: &str) -> Result<Sha256Hex> {
    Sha256Hex::parse(raw).map_err(|e| MarketError::bad("bad_hash", e.to_string()))
}

async fn metrics(State(m): S) -> Result<Response> {
    let text = views::metrics(&m).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

async fn upload_model(State(m): S, s: Signed) -> Result<Json<ModelUploaded>> {
    if s.body.is_empty() {
        return Err(MarketError::bad(
            "empty_model",
            "the model is the raw ONNX bytes of the body",
        ));
    }
    // Admission: a model no worker may run (external data, foreign
    // operators, not a YOLOX detector, ...) is refused, 422 with the rule's
    // code and a sentence naming the problem, and never stored.
    let policy = tally_model::Policy {
        max_bytes: m.config.limits.max_model_bytes,
        ..tally_model::Policy::default()
    };
    if let Err(refusal) = tally_model::admit(&s.body, &policy) {
        tracing::info!(account = %s.account(), code = refusal.code(), "model refused: {refusal}");
        return Err(MarketError::unprocessable(
            refusal.code(),
            refusal.to_string(),
        ));
    }
    let h = Sha256Hex::of(&s.body);
    let (m, s, h) = (&m, &s, &h);
    m.db
        .retrying("model upload", move || async move {
            let mut tx = m.db.begin().await?;
            query(
                "INSERT INTO models (hash, bytes, size, uploaded_by, created_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (hash) DO NOTHING",
            )
            .bind(h.as_str())
            .bind(s.body.as_ref())
            .bind(s.body.len() as i64)
            .bind(s.account().as_str())
            .bind(now_ms())
            .execute(&mut tx)
            .await?;
            tx.commit().await
        })
        .await?;
    Ok(Json(ModelUploaded {
        model: h.clone(),
        size: s.body.len() as u64,
    }))
}

async fn download_model(State(m): S, Path(raw): Path<String>) -> Result<Response> {
    let h = hash(&raw)?;
    let row = query("SELECT bytes FROM models WHERE hash = $1")
        .bind(h.as_str())
        .fetch_optional(&m.db)
        .await?
        .ok_or_else(|| MarketError::NotFound(format!("no model {h}")))?;
    let bytes: Vec<u8> = row.try_get("bytes")?;
    // A model stored before admission existed is admitted here too: no
    // worker is ever handed one that fails it.
    let policy = tally_model::Policy {
        max_bytes: usize::MAX,
        ..tally_model::Policy::default()
    };
    let bytes =
        tokio::task::spawn_blocking(move || tally_model::admit(&bytes, &policy).map(|_| bytes))
            .await
            .map_err(|e| MarketError::Corrupt(format!("admission panicked: {e}")))?
            .map_err(|refusal| {
                MarketError::unprocessable(
                    refusal.code(),
                    format!("model {h} was stored before admission and fails it: {refusal}"),
                )
            })?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

async fn list_models(State(m): S) -> Result<Json<ModelList>> {
    Ok(Json(views::models(&m).await?))
}

async fn post_offer(State(m): S, s: Signed) -> Result<Json<Offer>> {
    Ok(Json(claims::post_offer(&m, s.account(), s.json()?).await?))
}

async fn post_bid(State(m): S, s: Signed) -> Result<(StatusCode, Json<BidCreated>)> {
    let created = bids::create_bid(&m, s.account(), s.json()?).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `GET /v1/bids/{id}`; with `wait_ms=N` (at most 60 s) it answers as soon
/// as the bid differs from what the caller saw (`seen`: its decided tasks)
/// or is done.
async fn get_bid(
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

/// A long poll's `wait_ms` (absent: 0), at most a minute.
fn wait_ms(q: &HashMap<String, String>) -> Result<u64> {
    Ok(match q.get("wait_ms") {
        Some(v) => id::<u64>(v, "wait_ms")?.min(crate::claims::MAX_WAIT_MS),
        None => 0,
    })
}

async fn audit(State(m): S) -> Result<Json<SelfAudit>> {
    let last = m.audit.lock().expect("audit report").clone();
    last.map(Json).ok_or_else(|| {
        MarketError::NotFound(
            "the market has not audited itself yet; tally audit --market URL does it now".into(),
        )
    })
}

/// `GET /v1/events`: server-sent events, one JSON [`MarketEvent`] each.
async fn events(
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

async fn claim(State(m): S, s: Signed) -> Result<Json<Claimed>> {
    Ok(Json(claims::claim(&m, s.account(), s.json()?).await?))
}

/// Input bytes go to the client who sent them and to workers assigned to them.
async fn get_input(State(m): S, Path(raw): Path<String>, s: Signed) -> Result<Response> {
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

async fn heartbeat(
    State(m): S,
    Path(raw): Path<String>,
    SignedWrite(s): SignedWrite,
) -> Result<Json<Lease>> {
    Ok(Json(
        results::heartbeat(&m, &s.headers, id::<AssignmentId>(&raw, "assignment")?).await?,
    ))
}

async fn submit_result(
    State(m): S,
    Path(raw): Path<String>,
    SignedWrite(s): SignedWrite,
) -> Result<Json<AssignmentOutcome>> {
    let a = id::<AssignmentId>(&raw, "assignment")?;
    let req: ResultRequest = s.json()?;
    Ok(Json(
        results::submit_result(&m, &s.headers, a, &s.body, &req).await?,
    ))
}

async fn report_failure(
    State(m): S,
    Path(raw): Path<String>,
    SignedWrite(s): SignedWrite,
) -> Result<Json<AssignmentOutcome>> {
    let a = id::<AssignmentId>(&raw, "assignment")?;
    let req: FailureRequest = s.json()?;
    Ok(Json(
        results::report_failure(&m, &s.headers, a, &req.reason).await?,
    ))
}

async fn evidence(State(m): S, Path(raw): Path<String>) -> Result<Json<Evidence>> {
    Ok(Json(
        views::evidence(&m, id::<TaskId>(&raw, "task")?).await?,
    ))
}

async fn settlements(
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

async fn market(State(m): S) -> Result<Json<MarketStats>> {
    Ok(Json(views::market_stats(&m).await?))
}

async fn worker_record(State(m): S, Path(account): Path<String>) -> Result<Json<WorkerRecord>> {
    let account: AccountId = account.parse().map_err(|e| MarketError::BadRequest {
        code: "bad_account",
        message: format!("{account} is not a worker account (G...): {e}"),
    })?;
    Ok(Json(views::worker_record(&m, &account).await?))
}

async fn account_me(State(m): S, s: Signed) -> Result<Json<AccountView>> {
    Ok(Json(views::account_view(&m, s.account()).await?))
}

async fn deposits(State(m): S, s: Signed) -> Result<Json<DepositPage>> {
    Ok(Json(crate::deposits::list(&m, s.account()).await?))
}

async fn withdraw(State(m): S, SignedWrite(s): SignedWrite) -> Result<Json<Withdrawal>> {
    let req: WithdrawalRequest = s.json()?;
    Ok(Json(
        crate::withdrawals::request(&m, &s.headers, &s.body, &req).await?,
    ))
}

async fn withdrawals(State(m): S, s: Signed) -> Result<Json<WithdrawalPage>> {
    Ok(Json(crate::withdrawals::list(&m, s.account()).await?))
}

async fn withdrawal_evidence(
    State(m): S,
    Path(raw): Path<String>,
) -> Result<Json<WithdrawalEvidence>> {
    Ok(Json(
        crate::withdrawals::evidence(&m, id::<i64>(&raw, "withdrawal")?).await?,
    ))
}

async fn admin_accounts(State(m): S, s: Signed) -> Result<Json<AdminAccounts>> {
    require_operator(&m, &s)?;
    Ok(Json(crate::admin::accounts(&m).await?))
}

async fn admin_workers(State(m): S, s: Signed) -> Result<Json<AdminWorkers>> {
    require_operator(&m, &s)?;
    Ok(Json(crate::admin::workers(&m).await?))
}

async fn admin_bids(State(m): S, s: Signed) -> Result<Json<AdminBids>> {
    require_operator(&m, &s)?;
    Ok(Json(crate::admin::bids(&m).await?))
}

async fn admin_credit(State(m): S, s: Signed) -> Result<Json<AccountView>> {
    require_operator(&m, &s)?;
    let req: CreditRequest = s.json()?;
    if req.amount.0 <= 0 {
        return Err(MarketError::bad(
            "bad_amount",
            "amount must be a positive number of stroops",
        ));
    }
    let (db, req) = (&m.db, &req);
    db.retrying("credit", move || async move {
        let mut tx = db.begin().await?;
        ledger::credit(&mut tx, &req.account, req.amount).await?;
        tx.commit().await
    })
    .await?;
    Ok(Json(views::account_view(&m, &req.account).await?))
}

async fn admin_mark_reviewer(
    State(m): S,
    SignedWrite(s): SignedWrite,
) -> Result<Json<ReviewerMark>> {
    require_operator(&m, &s)?;
    let req: ReviewerMarkRequest = s.json()?;
    Ok(Json(
        crate::review::mark(&m, &s.headers, &s.body, &req).await?,
    ))
}

async fn reviewer_marks(State(m): S) -> Result<Json<ReviewerMarks>> {
    Ok(Json(crate::review::marks(&m).await?))
}

/// The next review for a verified reviewer, or 204 when nothing waits;
/// with `wait_ms=N` (at most 60 s) it waits for a task to want a reviewer
/// (a task going to review, or reviews that did not decide it).
async fn next_review(
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

async fn submit_review(
    State(m): S,
    Path(raw): Path<String>,
    SignedWrite(s): SignedWrite,
) -> Result<Json<ReviewOutcome>> {
    let id = id::<AssignmentId>(&raw, "review")?;
    let req: ReviewRequest = s.json()?;
    Ok(Json(
        crate::review::submit(&m, &s.headers, id, &s.body, &req).await?,
    ))
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
