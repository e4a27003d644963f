//! Spot checks: tasks whose answer the market knows, handed to workers in
//! place of client work and indistinguishable from it, before and after.
//!
//! The operator's golden set (`--golden DIR`: `models/*.onnx` and
//! `images/*`; any `expected/` answers are ignored) is private and never
//! served as it is. A check is a fresh variant of a golden image
//! ([`variant`]: cropped, maybe mirrored, scaled, its light changed and
//! noise added), in the one canonical encoding every input has
//! ([`crate::canonical`]), answered by the market's own confined detector
//! ([`Oracle`]); so no check shares its pixels with a public image, a golden
//! image or another check, and its bytes are made like a client image's.
//! Checks are made ahead of time ([`pool`]).
//!
//! When a claim would take a client task of a model the golden set covers,
//! the market may instead (with probability [`CheckRates::for_worker`]: every
//! claim of a worker that has passed none, a twentieth until it is trusted,
//! a two-hundredth after) hand the worker a check at the price of the task it
//! displaces, capped at the market's own reference ([`check_price`]). The
//! check is paid for by the displaced task's bid, from the verification
//! share its client reserved (two executions per task, refunded when unused),
//! else from the operator's fees, else its available balance; no money, no
//! check. Its result is judged against the market's answer alone: a pass is
//! counted, a failure catches the worker (credibility 0, no more work).
//!
//! Voting counts as spot-checking too (Sarmenta): where a credible verdict
//! on client work is agreed by two results or more, each agreeing result
//! counts as a passed check and each out-voted one as a failed check, the
//! public task showing it. A task a lone trusted result would verify gets,
//! at [`CheckRates::rerun`], one more ordinary replica first, so trusted
//! workers meet votes they cannot tell from any other replica.
//! Like every task's, a check's evidence is published only in the batch
//! after its decision ([`crate::publish`]), whole.

mod pool;
pub mod variant;

pub use crate::golden::{
    load_golden, CheckRates, Golden, GoldenItem, Oracle, OracleRef, MAX_GOLDEN_SIDE,
};
pub use pool::{spawn as spawn_pool, Pool, Prepared, READY};

use tally_protocol::vote::{self, VoteParams};
use tally_protocol::{AccountId, BidId, Detection, Sha256Hex, Stroops, TaskId};

use crate::db::{int, query, WriteTx};
use crate::error::{MarketError, Result};
use crate::ledger::{self, Book, Cause};
use crate::{now_ms, Market};

/// Stores the golden set's models (admitted when loaded) so checks can name them.
pub(crate) async fn store_golden_models(db: &crate::db::Db, config: &crate::Config) -> Result<()> {
    if config.golden.models.is_empty() {
        return Ok(());
    }
    db.retrying("golden models", move || async move {
        let mut tx = db.begin().await?;
        for bytes in &config.golden.models {
            query(
                "INSERT INTO models (hash, bytes, size, uploaded_by, created_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (hash) DO NOTHING",
            )
            .bind(Sha256Hex::of(bytes).as_str())
            .bind(bytes.as_slice())
            .bind(bytes.len() as i64)
            .bind(config.operator.account().as_str())
            .bind(now_ms())
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await
    })
    .await
}

/// A uniform draw in `[0, 1)`.
pub(crate) fn draw() -> f64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// A ready check of `model`, if one is made (the claim gets client work otherwise).
pub(crate) fn choose(m: &Market, model: &Sha256Hex) -> Option<Prepared> {
    m.check_pool.take(model)
}

/// Recent verified client prices of a model a check's price is capped by.
const REFERENCE_TASKS: i64 = 101;

/// What a check displacing a task at `displaced` pays: that price, capped at
/// twice the median price of the model's last [`REFERENCE_TASKS`] verified
/// client tasks and at `--check-price-cap`, so no client's price moves it
/// beyond the market's own reference.
pub(crate) async fn check_price(
    tx: &mut WriteTx<'_>,
    m: &Market,
    model: &Sha256Hex,
    displaced: Stroops,
) -> Result<Stroops> {
    let rows = query(
        "SELECT t.price FROM tasks t JOIN bids b ON b.id = t.bid_id
         WHERE t.model = $1 AND t.status = 'verified' AND b.kind = 'client'
         ORDER BY t.id DESC LIMIT $2",
    )
    .bind(model.as_str())
    .bind(REFERENCE_TASKS)
    .fetch_all(&mut *tx)
    .await?;
    let mut prices = rows
        .iter()
        .map(|r| int(r, "price"))
        .collect::<Result<Vec<i64>>>()?;
    prices.sort_unstable();
    let cap = m.config.check_price_cap.0;
    let reference = prices
        .get(prices.len() / 2)
        .map_or(cap, |median| median.saturating_mul(2).min(cap));
    Ok(Stroops(displaced.0.min(reference).max(1)))
}

/// Move `price` into the operator's available balance for a check that
/// displaces a task of `displaced`: from that bid's verification share,
/// else the operator's fees; or leave it where the operator's own balance
/// covers it. `false`: nothing can pay.
async fn fund(
    tx: &mut WriteTx<'_>,
    operator: &str,
    displaced: BidId,
    price: Stroops,
) -> Result<bool> {
    // The bid's share: what its client reserved for verification and has
    // not spent on it. One statement takes it, so two claims cannot both.
    let took = query(
        "UPDATE bids SET spent = spent + $1, check_spent = check_spent + $1
         WHERE id = $2 AND kind = 'client' AND check_spent + $1 <= check_allowance
           AND spent + $1 <= reserved - refunded RETURNING client",
    )
    .bind(price.0)
    .bind(displaced.0)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(r) = took {
        let client = crate::db::text(&r, "client")?;
        let cause = Cause::of_bid(displaced);
        to_operator(tx, (Book::Reserved, &client), operator, price, cause).await?;
        return Ok(true);
    }
    // Then the operator's money. Look before posting (a refused posting may
    // already have written), holding the rows on PostgreSQL so concurrent
    // claims cannot spend the same money; SQLite's single writer already
    // serialises them.
    let lock = if tx.is_postgres() { " FOR UPDATE" } else { "" };
    let mut held = [0i64; 2];
    for (i, book) in [Book::Fees, Book::Available].into_iter().enumerate() {
        held[i] = query(format!(
            "SELECT amount FROM balances WHERE book = $1 AND owner = $2{lock}"
        ))
        .bind(book.as_str())
        .bind(operator)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get::<i64>("amount"))
        .transpose()?
        .unwrap_or(0);
    }
    let [fees, available] = held;
    if fees >= price.0 {
        to_operator(
            tx,
            (Book::Fees, operator),
            operator,
            price,
            Cause::default(),
        )
        .await?;
        return Ok(true);
    }
    Ok(available >= price.0)
}

/// A `check_fund` posting: `price` from `from` to the operator's available balance.
async fn to_operator(
    tx: &mut WriteTx<'_>,
    (book, owner): (Book, &str),
    operator: &str,
    price: Stroops,
    cause: Cause,
) -> Result<()> {
    ledger::transfer(
        tx,
        ledger::Posting::CheckFund,
        cause,
        (book, owner),
        (Book::Available, operator),
        price.0,
    )
    .await
}

/// A new check task of one replica on `prepared`, displacing a task of bid
/// `displaced` at `price`, funded ([`fund`]) and already taken by the
/// claiming worker; `None` when nothing can pay for it. Runs inside the
/// claim's transaction.
pub(crate) async fn create(
    tx: &mut WriteTx<'_>,
    m: &Market,
    prepared: &Prepared,
    displaced: BidId,
    price: Stroops,
    lease_ms: i64,
) -> Result<Option<(TaskId, Sha256Hex, Stroops)>> {
    let operator = m.config.operator.account().as_str().to_string();
    let now = now_ms();
    let price = check_price(tx, m, &prepared.model, price).await?;
    if !fund(tx, &operator, displaced, price).await? {
        return Ok(None);
    }
    let params = VoteParams {
        quorum: 1,
        ..VoteParams::default()
    };
    let bid = BidId(
        query(
            "INSERT INTO bids (client, model, price, replicas, quorum, max_replicas, params, fee_bps, reserved, status, deadline_at, created_at, kind)
             VALUES ($1, $2, $3, 1, 1, 1, $4, $5, $3, 'open', $6, $7, 'check') RETURNING id",
        )
        .bind(operator.as_str())
        .bind(prepared.model.as_str())
        .bind(price.0)
        .bind(serde_json::to_string(&params).expect("params serialize"))
        .bind(i64::from(m.config.fee_bps))
        .bind(now + 10 * lease_ms.max(60_000))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .try_get::<i64>("id")?,
    );
    crate::bids::reserve_for(tx, bid, &operator, price).await?;
    let input = Sha256Hex::of(&prepared.bytes);
    crate::bids::store_input(
        tx,
        &input,
        &prepared.bytes,
        prepared.width,
        prepared.height,
        now,
    )
    .await?;
    let task: i64 = query(
        "INSERT INTO tasks (bid_id, input, model, price, status, wanted, taken, max_replicas, created_at)
         VALUES ($1, $2, $3, $4, 'running', 1, 1, 1, $5) RETURNING id",
    )
    .bind(bid.0)
    .bind(input.as_str())
    .bind(prepared.model.as_str())
    .bind(price.0)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    query("INSERT INTO checks (task_id, item, reference) VALUES ($1, $2, $3)")
        .bind(task)
        .bind(prepared.source.as_str())
        .bind(serde_json::to_string(&prepared.reference).expect("detections serialize"))
        .execute(&mut *tx)
        .await?;
    m.metrics
        .checks
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(Some((TaskId(task), input, price)))
}

/// The known answer of a check task.
pub(crate) async fn reference(tx: &mut WriteTx<'_>, task: TaskId) -> Result<Vec<Detection>> {
    let r = query("SELECT reference FROM checks WHERE task_id = $1")
        .bind(task.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| MarketError::Corrupt(format!("check task {task} has no known answer")))?;
    crate::db::json(&crate::db::text(&r, "reference")?, "check reference")
}

/// Whether checks given to `worker` in the last 24 hours are priced below
/// the market's budget per worker (`Config::check_budget`): no identity
/// draws more than that from check prices, whoever funds them.
pub(crate) async fn within_budget(
    tx: &mut WriteTx<'_>,
    m: &Market,
    worker: &AccountId,
) -> Result<bool> {
    let since = now_ms() - 24 * 3600 * 1000;
    let r = query(
        "SELECT CAST(COALESCE(SUM(t.price), 0) AS BIGINT) AS priced FROM assignments a
           JOIN tasks t ON t.id = a.task_id JOIN bids b ON b.id = t.bid_id
         WHERE a.worker = $1 AND a.created_at > $2 AND b.kind = 'check'",
    )
    .bind(worker.as_str())
    .bind(since)
    .fetch_one(&mut *tx)
    .await?;
    Ok(int(&r, "priced")? < m.config.check_budget.0)
}

/// Whether `detections` pass the check whose answer is `reference`.
pub fn passes(params: &VoteParams, reference: &[Detection], detections: &[Detection]) -> bool {
    vote::agrees(params, reference, detections)
}

/// Counts a check's outcome in the worker's record: a spot check, or a
/// vote on client work decided by a credible majority (voting as
/// spot-checking). A failure catches the worker, `task` being the public
/// task that shows it.
pub(crate) async fn record(
    tx: &mut WriteTx<'_>,
    worker: &AccountId,
    passed: bool,
    task: TaskId,
) -> Result<()> {
    if passed {
        return record_passes(tx, &[worker]).await;
    }
    query(
        "UPDATE workers SET checks_failed = checks_failed + 1, caught_at = COALESCE(caught_at, $2),
           caught_by = COALESCE(caught_by, $3) WHERE account = $1",
    )
    .bind(worker.as_str())
    .bind(now_ms())
    .bind(task.0)
    .execute(&mut *tx)
    .await?;
    tracing::warn!(%worker, %task, "a worker failed a check: caught");
    forfeit(tx, worker).await
}

/// Counts a passed check for each of `workers` in one statement (a
/// credible vote passes all its agreeing workers at once).
pub(crate) async fn record_passes(tx: &mut WriteTx<'_>, workers: &[&AccountId]) -> Result<()> {
    if workers.is_empty() {
        return Ok(());
    }
    let mut q = query(format!(
        "UPDATE workers SET checks_passed = checks_passed + 1 WHERE account IN ({})",
        crate::db::placeholders(1, workers.len())
    ));
    for w in workers {
        q = q.bind(w.as_str());
    }
    q.execute(&mut *tx).await?;
    Ok(())
}

/// A caught worker's unsettled earnings go back to the clients whose tasks
/// paid them (checks' to the operator), in one `forfeit` posting naming
/// each assignment.
async fn forfeit(tx: &mut WriteTx<'_>, worker: &AccountId) -> Result<()> {
    let n = crate::payment::give_back(tx, ledger::Posting::Forfeit, worker, None).await?;
    if n > 0 {
        tracing::warn!(%worker, results = n, "a caught worker's unsettled earnings go back to its clients");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_workers_are_checked_more_than_trusted_ones() {
        let r = CheckRates::default();
        assert_eq!(
            r.for_worker(0),
            1.0,
            "a worker is checked before its results count"
        );
        assert!(r.for_worker(1) > r.for_worker(100));
        assert_eq!(r.for_worker(r.trusted_after), r.trusted);
    }
}
