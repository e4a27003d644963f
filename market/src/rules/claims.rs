//! Matching: a claim takes the best-priced open tasks first (price desc,
//! then age) among those the worker's offer covers, that still need a
//! replica, and that this worker has not touched.
//!
//! Exclusivity does not rest on the read: each slot is taken by a
//! conditional `UPDATE ... WHERE taken < wanted`, and `UNIQUE (task_id,
//! worker)` forbids a second replica of one task to one worker, so it holds
//! under any interleaving and across several market processes.

use std::sync::Arc;
use std::time::Duration;

use tally_protocol::wire::{Assignment, ClaimRequest, Claimed, Offer, OfferRequest};
use tally_protocol::{AccountId, Sha256Hex};

use crate::db::{int, placeholders, query, text, WriteTx};
use crate::error::{MarketError, Result};
use crate::wake::WakeUp;

mod take;
use crate::{now_ms, to_time, Market};
use take::take;

/// The longest a claim may wait for work.
pub const MAX_WAIT_MS: u64 = 60_000;
/// The most assignments one claim may take.
pub const MAX_TASKS: u32 = 64;

/// Store (or replace) a worker's offer.
pub async fn post_offer(m: &Market, worker: &AccountId, req: OfferRequest) -> Result<Offer> {
    m.db.retrying("offer", || post_offer_once(m, worker, req.clone()))
        .await
}

async fn post_offer_once(m: &Market, worker: &AccountId, req: OfferRequest) -> Result<Offer> {
    if req.models.is_empty() || req.models.len() > 64 {
        return Err(MarketError::bad(
            "bad_offer",
            "an offer names 1 to 64 models",
        ));
    }
    if req.min_price.0 < 0 {
        return Err(MarketError::bad(
            "bad_price",
            "min_price must not be negative",
        ));
    }
    if req.capacity == 0 || req.capacity > 1024 {
        return Err(MarketError::bad(
            "bad_capacity",
            "capacity must be between 1 and 1024",
        ));
    }
    let now = now_ms();
    let models = serde_json::to_string(&req.models).expect("hashes serialize");
    let mut tx = m.db.begin().await?;
    query(
        "INSERT INTO offers (worker, models, min_price, capacity, updated_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (worker) DO UPDATE SET models = excluded.models, min_price = excluded.min_price,
         capacity = excluded.capacity, updated_at = excluded.updated_at",
    )
    .bind(worker.as_str())
    .bind(models)
    .bind(req.min_price.0)
    .bind(i64::from(req.capacity))
    .bind(now)
    .execute(&mut tx)
    .await?;
    mark_seen(&mut tx, worker, now).await?;
    tx.commit().await?;
    Ok(Offer {
        worker: worker.clone(),
        models: req.models,
        min_price: req.min_price,
        capacity: req.capacity,
        updated_at: to_time(now),
    })
}

struct StoredOffer {
    models: Vec<Sha256Hex>,
    min_price: i64,
    capacity: i64,
}

async fn load_offer(m: &Market, worker: &AccountId) -> Result<Option<StoredOffer>> {
    let row = query("SELECT models, min_price, capacity FROM offers WHERE worker = $1")
        .bind(worker.as_str())
        .fetch_optional(&m.db)
        .await?;
    row.map(|r| {
        Ok(StoredOffer {
            models: crate::db::json(&text(&r, "models")?, "offer models")?,
            min_price: int(&r, "min_price")?,
            capacity: int(&r, "capacity")?,
        })
    })
    .transpose()
}

/// Long-poll for up to `max_tasks` assignments, waiting at most `wait_ms`.
#[tracing::instrument(level = "debug", skip_all, fields(worker = %worker))]
pub async fn claim(m: &Market, worker: &AccountId, req: ClaimRequest) -> Result<Claimed> {
    if req.max_tasks == 0 || req.max_tasks > MAX_TASKS {
        return Err(MarketError::bad(
            "bad_claim",
            format!("max_tasks must be between 1 and {MAX_TASKS}"),
        ));
    }
    if req.wait_ms > MAX_WAIT_MS {
        return Err(MarketError::bad(
            "bad_claim",
            format!("wait_ms must be at most {MAX_WAIT_MS}"),
        ));
    }
    let offer = load_offer(m, worker).await?.ok_or_else(|| {
        MarketError::conflict(
            "no_offer",
            "post an offer (POST /v1/offers) before claiming",
        )
    })?;
    let standing = touch_worker(m, worker).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(req.wait_ms);
    let mut shutdown = m.shutdown_signal();
    let models: Arc<[Sha256Hex]> = Arc::from(offer.models.clone());
    // A trusted claim counts as waiting for its whole long poll (rule 7).
    let _trusted = standing
        .trusted
        .then(|| m.waiters.trusted_claim(Arc::clone(&models)));
    let mut woken: Option<WakeUp<'_>> = None;
    loop {
        // Register before looking: work that arrives after the look wakes us.
        let waiting = m
            .waiters
            .register_as(Arc::clone(&models), offer.min_price, standing.trusted);
        let held = leased_count(m, worker).await?;
        let room = (offer.capacity - held).clamp(0, i64::from(req.max_tasks));
        if room == 0 {
            return Ok(Claimed {
                assignments: vec![],
            });
        }
        // Rule 7: a worker not yet trusted does not join another one on a
        // task while a trusted worker waits for such work.
        let pairing =
            standing.checked && !standing.trusted && m.waiters.trusted_waiting(&offer.models);
        let claimer = Claimer {
            m,
            worker,
            offer: &offer,
            check_rate: standing.check_rate,
            pairing,
        };
        let got = try_claim(&claimer, room).await?;
        if !got.is_empty() || tokio::time::Instant::now() >= deadline || *shutdown.borrow() {
            return Ok(Claimed { assignments: got });
        }
        if let Some(up) = woken.take() {
            // Woken for work we could not take: someone else may, if a slot
            // of it is still free. Once every slot is gone (often to claims
            // in another process) the wake-up stops here instead of waking
            // waiter after waiter to look for nothing.
            if let Some((model, price)) = up.work() {
                if slot_free(m, model, price).await? {
                    up.pass_on();
                }
            }
        }
        tokio::select! {
            up = waiting.woken() => woken = Some(up),
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Whether any task of `model` paying at least `price` has a slot free.
async fn slot_free(m: &Market, model: &Sha256Hex, price: i64) -> Result<bool> {
    Ok(query(
        "SELECT 1 AS one FROM tasks WHERE status IN ('open', 'running') AND taken < wanted
         AND model = $1 AND price >= $2 LIMIT 1",
    )
    .bind(model.as_str())
    .bind(price)
    .fetch_optional(&m.db)
    .await?
    .is_some())
}

async fn leased_count(m: &Market, worker: &AccountId) -> Result<i64> {
    let r = query("SELECT COUNT(*) AS n FROM assignments WHERE worker = $1 AND status = 'leased' AND kind = 'result'")
        .bind(worker.as_str())
        .fetch_one(&m.db)
        .await?;
    int(&r, "n")
}

/// Where a claiming worker stands.
struct Standing {
    /// How likely its claim is to get a spot check instead of a client task.
    check_rate: f64,
    /// It has passed the checks that make its single result credible.
    trusted: bool,
    /// The market runs spot checks (without them no one is trusted).
    checked: bool,
}

/// Mark the worker as seen (at most every few seconds, to spare writes) and
/// say where it stands; a worker caught by a check gets no more work at all.
async fn touch_worker(m: &Market, worker: &AccountId) -> Result<Standing> {
    m.db.retrying("worker seen", || touch_worker_once(m, worker))
        .await
}

async fn touch_worker_once(m: &Market, worker: &AccountId) -> Result<Standing> {
    let now = now_ms();
    let r = query("SELECT last_seen, checks_passed, checks_failed FROM workers WHERE account = $1")
        .bind(worker.as_str())
        .fetch_optional(&m.db)
        .await?;
    let (last_seen, passed, failed) = match &r {
        Some(r) => (
            int(r, "last_seen")?,
            int(r, "checks_passed")?,
            int(r, "checks_failed")?,
        ),
        None => (i64::MIN, 0, 0),
    };
    if failed > 0 {
        return Err(MarketError::Forbidden(
            "this worker failed a spot check (a task whose answer the market knew); it gets no more work".into(),
        ));
    }
    let checked = !m.config.golden.items.is_empty();
    let standing = Standing {
        check_rate: if checked {
            m.config.check_rates.for_worker(passed.max(0) as u64)
        } else {
            0.0
        },
        trusted: checked && passed.max(0) as u64 >= m.config.check_rates.trusted_after,
        checked,
    };
    if now.saturating_sub(last_seen) < 5_000 {
        return Ok(standing);
    }
    let mut tx = m.db.begin().await?;
    mark_seen(&mut tx, worker, now).await?;
    tx.commit().await?;
    Ok(standing)
}

/// Record that `worker` was seen at `now`.
async fn mark_seen(tx: &mut WriteTx<'_>, worker: &AccountId, now: i64) -> Result<()> {
    query(
        "INSERT INTO workers (account, last_seen) VALUES ($1, $2)
         ON CONFLICT (account) DO UPDATE SET last_seen = excluded.last_seen",
    )
    .bind(worker.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A claim as it is matched: who claims, with what offer, how likely a
/// spot check takes a candidate's place, and whether tasks another
/// untrusted worker is on are left to trusted ones (`pairing`).
#[derive(Clone, Copy)]
struct Claimer<'a> {
    m: &'a Market,
    worker: &'a AccountId,
    offer: &'a StoredOffer,
    check_rate: f64,
    pairing: bool,
}

/// Take up to `n` slots now. A pass that loses races to concurrent claims
/// (another process took the slot between our read and our update) looks
/// again, so a claim never comes back empty while a slot it may take is free.
async fn try_claim(c: &Claimer<'_>, n: i64) -> Result<Vec<Assignment>> {
    c.m.metrics
        .claim_looks
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut out = Vec::new();
    for _ in 0..8 {
        let (mut got, lost) = claim_pass(c, n - out.len() as i64).await?;
        out.append(&mut got);
        if lost == 0 || out.len() as i64 >= n {
            break;
        }
    }
    c.m.metrics
        .claims
        .fetch_add(out.len() as u64, std::sync::atomic::Ordering::Relaxed);
    Ok(out)
}

/// One matching pass: the slots taken, and how many candidates were lost to
/// concurrent claims. With `pairing`, tasks another untrusted worker is on
/// are left to trusted ones.
async fn claim_pass(c: &Claimer<'_>, n: i64) -> Result<(Vec<Assignment>, usize)> {
    c.m.db.retrying("claim", || claim_pass_once(c, n)).await
}

async fn claim_pass_once(c: &Claimer<'_>, n: i64) -> Result<(Vec<Assignment>, usize)> {
    let Claimer {
        m,
        worker,
        offer,
        pairing,
        ..
    } = *c;
    if offer.models.is_empty() {
        return Ok((vec![], 0));
    }
    let not_with_untrusted = if pairing {
        format!(
            "AND NOT EXISTS (SELECT 1 FROM assignments p JOIN workers pw ON pw.account = p.worker
               WHERE p.task_id = t.id AND pw.checks_passed < {})",
            m.config.check_rates.trusted_after.min(i64::MAX as u64)
        )
    } else {
        String::new()
    };
    let sql = format!(
        "SELECT t.id, t.bid_id, t.model, t.input, t.price FROM tasks t
         WHERE t.status IN ('open', 'running') AND t.taken < t.wanted AND t.price >= $1
           AND t.model IN ({})
           AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.task_id = t.id AND a.worker = $2)
           {not_with_untrusted}
         ORDER BY t.price DESC, t.id ASC LIMIT $3",
        placeholders(4, offer.models.len()),
    );
    // On PostgreSQL the look is repeated under row locks, skipping tasks
    // another process or connection is claiming or deciding right now, so
    // concurrent claims spread over the best candidates instead of queueing
    // on the same few.
    let locked = format!("{sql} FOR UPDATE OF t SKIP LOCKED");
    let candidates_in = |sql: &'_ str| {
        let mut q = query(sql.to_string())
            .bind(offer.min_price)
            .bind(worker.as_str())
            .bind(n);
        for model in &offer.models {
            q = q.bind(model.as_str());
        }
        q
    };
    let candidates = || candidates_in(&sql);
    // Look without the write lock: most woken claims find nothing, and they
    // must not queue behind the writers to learn it. What the look finds is
    // tried under the lock; only if some of it was taken meanwhile does the
    // pass look again, inside its transaction, which sees every write.
    let seen = candidates().fetch_all(&m.db).await?;
    if seen.is_empty() {
        return Ok((vec![], 0));
    }
    let mut tx = m.db.begin().await?;
    if tx.is_postgres() {
        let free = candidates_in(&locked).fetch_all(&mut tx).await?;
        if free.len() >= seen.len().min(n as usize) {
            let mut out = Vec::with_capacity(free.len());
            let lost = take(&mut tx, c, &free, &mut out).await?;
            tx.commit().await?;
            return Ok((out, lost));
        }
        // Some of what the look saw is locked by another claim or decision
        // and may still have slots: wait for those locks instead (a fresh
        // transaction, so no row stays locked out of order meanwhile).
        tx.rollback().await?;
        tx = m.db.begin().await?;
    }
    let mut out = Vec::with_capacity(seen.len());
    let mut lost = take(&mut tx, c, &seen, &mut out).await?;
    if lost > 0 {
        // The tasks just taken are excluded by the query itself (this
        // worker is on them now).
        let mut fresh = candidates().fetch_all(&mut tx).await?;
        fresh.truncate(n as usize - out.len());
        lost = take(&mut tx, c, &fresh, &mut out).await?;
    }
    tx.commit().await?;
    Ok((out, lost))
}
