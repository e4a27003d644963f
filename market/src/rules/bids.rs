//! Taking a bid: check its numbers and the client's balance first, then
//! decode its images, then write the bid, its inputs, its tasks and its
//! reservation in one transaction — or nothing at all.
//!
//! The order is the defence: the reservation is computed from the numbers
//! alone and an account that cannot pay it is refused (402) before any
//! image is decoded, so a bid from an empty account costs the market no
//! decoding. The reservation itself is posted in the bid's transaction
//! (after decoding, which runs outside it so no write lock is held while
//! images decode): a balance spent meanwhile still fails the bid with 402,
//! and a failed decode commits nothing.
//!
//! Every input is stored and served only in its canonical form
//! ([`crate::canonical`]): decoded once, re-encoded, and named by the
//! sha256 of those bytes, whatever format and metadata the client sent.

use tally_protocol::vote::VoteParams;
use tally_protocol::wire::{BidCreated, BidRequest};
use tally_protocol::{AccountId, BidId, Stroops, TaskId};

use crate::db::query;
use crate::error::{MarketError, Result};
use crate::ledger::{self, Book, Cause};
use crate::wake::Work;
use crate::{now_ms, Market};

mod inputs;
pub(crate) use inputs::store_input;
use inputs::{decode_inputs, Input};

/// Where spot checks run, the executions each task reserves beyond its
/// replicas to pay for the checks that displace its bid's claims (its
/// verification share, refunded when unspent).
pub const VERIFICATION_SHARE: u32 = 2;

/// The confidence a bid's verdicts must reach: only where the market runs
/// spot checks (so credibility can be earned); elsewhere the quorum decides.
fn confidence(m: &Market, asked: Option<f64>) -> Result<Option<f64>> {
    if let Some(c) = asked {
        if !(c > 0.0 && c < 1.0) {
            return Err(MarketError::bad(
                "bad_confidence",
                "confidence must be strictly between 0 and 1, e.g. 0.999",
            ));
        }
    }
    if m.config.golden.items.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        asked.unwrap_or(tally_protocol::trust::DEFAULT_CONFIDENCE),
    ))
}

/// A bid's numbers once checked and defaulted.
struct Shape {
    params: VoteParams,
    replicas: u32,
    max_replicas: u32,
    reserve: Stroops,
}

/// Check a bid's numbers and fill in the defaults: where credibility
/// decides (a market with spot checks), one replica and a quorum of one,
/// and more replicas only as the results' credibility needs them; else
/// three replicas and a quorum of two.
fn validate(m: &Market, req: &BidRequest) -> Result<Shape> {
    let lim = &m.config.limits;
    let confidence = confidence(m, req.confidence)?;
    if req.price.0 <= 0 {
        return Err(MarketError::bad(
            "bad_price",
            "price must be a positive number of stroops",
        ));
    }
    let (replicas, quorum, max_replicas) = replica_counts(lim, req, confidence.is_some())?;
    check_terms(lim, req)?;
    let params = vote_params(req, quorum, confidence)?;
    if req.review_price.is_some_and(|r| r.0 <= 0) {
        return Err(MarketError::bad(
            "bad_review_price",
            "review_price must be a positive number of stroops",
        ));
    }
    // Where spot checks run, each task also reserves executions for the
    // checks that displace this bid's claims (its verification share,
    // refunded when unspent).
    let executions = max_replicas.saturating_add(if confidence.is_some() {
        VERIFICATION_SHARE
    } else {
        0
    });
    let reserve = reservation(req.price, executions, req.review_price, req.inputs.len())
        .ok_or_else(|| {
            MarketError::bad(
                "amount_overflow",
                "(price x max_replicas + review_price x reviews) x inputs overflows",
            )
        })?;
    Ok(Shape {
        params,
        replicas,
        max_replicas,
        reserve,
    })
}

/// The bid's inputs and deadline within bounds.
fn check_terms(lim: &crate::config::Limits, req: &BidRequest) -> Result<()> {
    if req.inputs.is_empty() || req.inputs.len() > lim.max_inputs {
        return Err(MarketError::bad(
            "bad_inputs",
            format!("a bid carries 1 to {} inputs", lim.max_inputs),
        ));
    }
    if req.deadline_secs == 0 || req.deadline_secs > 7 * 24 * 3600 {
        return Err(MarketError::bad(
            "bad_deadline",
            "deadline_secs must be between 1 and 604800",
        ));
    }
    Ok(())
}

/// Replicas, quorum and the most replicas, defaulted by whether
/// credibility decides (`weighed`) and checked against the market's limit.
fn replica_counts(
    lim: &crate::config::Limits,
    req: &BidRequest,
    weighed: bool,
) -> Result<(u32, u32, u32)> {
    let (replicas, quorum, headroom) = if weighed {
        (req.replicas.unwrap_or(1), req.quorum.unwrap_or(1), 4)
    } else {
        (req.replicas.unwrap_or(3), req.quorum.unwrap_or(2), 2)
    };
    // A quorum above the default replicas raises them with it.
    let replicas = if req.replicas.is_none() {
        replicas.max(quorum)
    } else {
        replicas
    };
    if replicas == 0 || replicas > lim.max_replicas {
        return Err(MarketError::bad(
            "bad_replicas",
            format!("replicas must be between 1 and {}", lim.max_replicas),
        ));
    }
    if quorum == 0 || quorum > replicas {
        return Err(MarketError::bad(
            "bad_quorum",
            format!("quorum must be between 1 and replicas ({replicas})"),
        ));
    }
    let max_replicas = req
        .max_replicas
        .unwrap_or((replicas + headroom).min(lim.max_replicas));
    if max_replicas < replicas || max_replicas > lim.max_replicas {
        return Err(MarketError::bad(
            "bad_max_replicas",
            format!(
                "max_replicas must be between replicas ({replicas}) and {}",
                lim.max_replicas
            ),
        ));
    }
    Ok((replicas, quorum, max_replicas))
}

/// The vote's tolerances, each in (0, 1], defaulted.
fn vote_params(req: &BidRequest, quorum: u32, confidence: Option<f64>) -> Result<VoteParams> {
    let d = VoteParams::default();
    let unit = |v: Option<f64>, default: f64, name: &'static str| -> Result<f64> {
        let v = v.unwrap_or(default);
        if v.is_finite() && v > 0.0 && v <= 1.0 {
            Ok(v)
        } else {
            Err(MarketError::bad(
                "bad_vote_params",
                format!("{name} must be in (0, 1]"),
            ))
        }
    };
    Ok(VoteParams {
        quorum,
        iou: unit(req.iou, d.iou, "iou")?,
        min_score: unit(req.min_score, d.min_score, "min_score")?,
        agree: unit(req.agree, d.agree, "agree")?,
        margin: d.margin,
        confidence,
    })
}

/// What a bid reserves: `(price x executions + review_price x MAX_REVIEWS)
/// x inputs` (a bid that pays for review also reserves every review a task
/// may need); `None` when it overflows.
fn reservation(
    price: Stroops,
    max_replicas: u32,
    review_price: Option<Stroops>,
    inputs: usize,
) -> Option<Stroops> {
    let results = price.checked_mul(i64::from(max_replicas))?;
    let per_task = match review_price {
        None => results,
        Some(r) => {
            results.checked_add(r.checked_mul(i64::from(tally_protocol::review::MAX_REVIEWS))?)?
        }
    };
    per_task.checked_mul(i64::try_from(inputs).ok()?)
}

/// Moves `amount` of `owner`'s available balance into the reservation of `bid`.
pub(crate) async fn reserve_for(
    tx: &mut crate::db::WriteTx<'_>,
    bid: BidId,
    owner: &str,
    amount: Stroops,
) -> Result<()> {
    ledger::transfer(
        tx,
        ledger::Posting::Reserve,
        Cause::of_bid(bid),
        (Book::Available, owner),
        (Book::Reserved, owner),
        amount.0,
    )
    .await
}

fn cannot_pay(reserve: Stroops, available: Stroops) -> MarketError {
    MarketError::InsufficientFunds(format!(
        "this bid reserves {} stroops ((price x (max_replicas + verification share) + \
         review_price x reviews) x inputs) but the available balance is {} stroops",
        reserve.0, available.0
    ))
}

/// Take a bid for `client`: its numbers checked, its model known and its
/// reservation covered before any image is decoded, then the bid, its
/// tasks and the reservation stored in one transaction and waiting claims
/// told.
pub async fn create_bid(m: &Market, client: &AccountId, req: BidRequest) -> Result<BidCreated> {
    let shape = validate(m, &req)?;
    admit(m, client, &req, shape.reserve).await?;
    let inputs = decode_inputs(m, &req).await?;
    let (req, inputs, shape) = (&req, &inputs, &shape);
    let (bid, tasks) =
        m.db.retrying("bid", move || store_bid(m, client, req, shape, inputs))
            .await?;
    m.metrics
        .bids
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    m.work_arrived(Work {
        model: req.model.clone(),
        price: req.price.0,
        slots: tasks.len() * shape.replicas as usize,
    })
    .await;
    Ok(BidCreated {
        bid,
        tasks,
        reserved: shape.reserve,
        inputs: inputs.iter().map(|i| i.hash.clone()).collect(),
    })
}

/// The cheap checks before any decoding: the model is known and the
/// client's available balance covers the reservation.
async fn admit(m: &Market, client: &AccountId, req: &BidRequest, reserve: Stroops) -> Result<()> {
    let model_known = query("SELECT 1 AS one FROM models WHERE hash = $1")
        .bind(req.model.as_str())
        .fetch_optional(&m.db)
        .await?
        .is_some();
    if !model_known {
        return Err(MarketError::NotFound(format!(
            "unknown model {}: upload it first (POST /v1/models)",
            req.model
        )));
    }
    let available = ledger::balance(&m.db, Book::Available, client.as_str()).await?;
    if available.0 < reserve.0 {
        return Err(cannot_pay(reserve, available));
    }
    Ok(())
}

/// Store the bid, its inputs and tasks, and its reservation, in one
/// transaction (run again by the caller if the database aborts it).
async fn store_bid(
    m: &Market,
    client: &AccountId,
    req: &BidRequest,
    shape: &Shape,
    inputs: &[Input],
) -> Result<(BidId, Vec<TaskId>)> {
    let now = now_ms();
    let deadline = now.saturating_add((req.deadline_secs as i64).saturating_mul(1000));
    let mut tx = m.db.begin().await?;
    let bid = BidId(
        query(
            "INSERT INTO bids (client, model, price, replicas, quorum, max_replicas, params, fee_bps, reserved, status, deadline_at, created_at, review_price)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10, $11, $12) RETURNING id",
        )
        .bind(client.as_str())
        .bind(req.model.as_str())
        .bind(req.price.0)
        .bind(i64::from(shape.replicas))
        .bind(i64::from(shape.params.quorum))
        .bind(i64::from(shape.max_replicas))
        .bind(serde_json::to_string(&shape.params).expect("params serialize"))
        .bind(i64::from(m.config.fee_bps))
        .bind(shape.reserve.0)
        .bind(deadline)
        .bind(now)
        .bind(req.review_price.map(|r| r.0))
        .fetch_one(&mut tx)
        .await?
        .try_get::<i64>("id")?,
    );
    if shape.params.confidence.is_some() {
        // The verification share (see `validate`).
        query("UPDATE bids SET check_allowance = $1 WHERE id = $2")
            .bind(
                req.price
                    .0
                    .saturating_mul(i64::from(VERIFICATION_SHARE))
                    .saturating_mul(inputs.len() as i64),
            )
            .bind(bid.0)
            .execute(&mut tx)
            .await?;
    }
    let tasks = insert_tasks(&mut tx, bid, req, shape, inputs, now).await?;
    let reserved = reserve_for(&mut tx, bid, client.as_str(), shape.reserve).await;
    if let Err(MarketError::InsufficientFunds(_)) = reserved {
        let available = ledger::balance(&mut tx, Book::Available, client.as_str()).await?;
        return Err(cannot_pay(
            shape.reserve,
            Stroops(available.0 + shape.reserve.0),
        ));
    }
    reserved?;
    tx.commit().await?;
    Ok((bid, tasks))
}

/// Store each input (once) and a task of `bid` on it.
async fn insert_tasks(
    tx: &mut crate::db::WriteTx<'_>,
    bid: BidId,
    req: &BidRequest,
    shape: &Shape,
    inputs: &[Input],
    now: i64,
) -> Result<Vec<TaskId>> {
    let mut tasks = Vec::with_capacity(inputs.len());
    for input in inputs {
        store_input(
            &mut *tx,
            &input.hash,
            &input.bytes,
            input.width,
            input.height,
            now,
        )
        .await?;
        let id: i64 = query(
            "INSERT INTO tasks (bid_id, input, model, price, status, wanted, max_replicas, created_at)
             VALUES ($1, $2, $3, $4, 'open', $5, $6, $7) RETURNING id",
        )
        .bind(bid.0)
        .bind(input.hash.as_str())
        .bind(req.model.as_str())
        .bind(req.price.0)
        .bind(i64::from(shape.replicas))
        .bind(i64::from(shape.max_replicas))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        tasks.push(TaskId(id));
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reservation_is_checked_arithmetic() {
        assert_eq!(reservation(Stroops(10), 5, None, 3), Some(Stroops(150)));
        assert_eq!(
            reservation(Stroops(10), 5, Some(Stroops(7)), 3),
            Some(Stroops((50 + 28) * 3))
        );
        assert_eq!(reservation(Stroops(i64::MAX / 2), 3, None, 1), None);
        assert_eq!(
            reservation(Stroops(1), 1, Some(Stroops(i64::MAX / 3)), 1),
            None
        );
        assert_eq!(reservation(Stroops(i64::MAX / 4), 1, None, 5), None);
        assert_eq!(reservation(Stroops(1), 16, None, usize::MAX), None);
    }
}
