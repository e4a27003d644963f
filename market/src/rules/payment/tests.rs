//! Payment against a real store (SQLite in a temporary folder), no server:
//! what a paid result moves between books, and that a bid never pays more
//! than it reserved.

use std::sync::Arc;

use tally_protocol::vote::VoteParams;
use tally_protocol::wire::TaskState;
use tally_protocol::{AccountId, AssignmentId, BidId, Sha256Hex, Signer, Stroops, TaskId};

use super::pay;
use crate::bids::reserve_for;
use crate::db::query;
use crate::ledger::{self, balance, check_invariants, Book};
use crate::task::TaskRow;
use crate::{now_ms, Config, Market};

const PRICE: i64 = 1_000;

async fn market() -> (tempfile::TempDir, Arc<Market>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("market.db").display());
    let m = Market::open(Config::new(&url, Signer::from_seed([7; 32])))
        .await
        .unwrap();
    (dir, m)
}

/// A client with `reserve` stroops reserved for one bid of one task.
async fn funded_task(m: &Market, reserve: i64) -> TaskRow {
    let client = Signer::from_seed([1; 32]).account().clone();
    let model = Sha256Hex::of(b"model");
    let mut tx = m.db.begin().await.unwrap();
    ledger::credit(&mut tx, &client, Stroops(reserve))
        .await
        .unwrap();
    query("INSERT INTO models (hash, bytes, size, uploaded_by, created_at) VALUES ($1, $2, 1, $3, $4)")
        .bind(model.as_str())
        .bind(&b"m"[..])
        .bind(client.as_str())
        .bind(now_ms())
        .execute(&mut tx)
        .await
        .unwrap();
    let bid: i64 = query(
        "INSERT INTO bids (client, model, price, replicas, quorum, max_replicas, params, fee_bps, reserved, status, deadline_at, created_at)
         VALUES ($1, $2, $3, 3, 2, 3, '{}', 250, $4, 'open', $5, $5) RETURNING id",
    )
    .bind(client.as_str())
    .bind(model.as_str())
    .bind(PRICE)
    .bind(reserve)
    .bind(now_ms())
    .fetch_one(&mut tx)
    .await
    .unwrap()
    .try_get("id")
    .unwrap();
    reserve_for(&mut tx, BidId(bid), client.as_str(), Stroops(reserve))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    TaskRow {
        id: TaskId(1),
        model,
        bid: BidId(bid),
        client,
        state: TaskState::Verified,
        price: Stroops(PRICE),
        fee_bps: 250,
        wanted: 3,
        taken: 3,
        max_replicas: 3,
        params: VoteParams::default(),
        verdict: None,
        is_check: false,
        review_price: None,
    }
}

fn worker(n: u8) -> AccountId {
    Signer::from_seed([n; 32]).account().clone()
}

#[tokio::test]
async fn a_paid_result_moves_its_price_from_the_reservation_to_the_worker_and_the_fee() {
    let (_dir, m) = market().await;
    let task = funded_task(&m, 3 * PRICE).await;
    let (a, b) = (worker(2), worker(3));
    let mut tx = m.db.begin().await.unwrap();
    pay(
        &m,
        &mut tx,
        &task,
        &[(AssignmentId(1), &a), (AssignmentId(2), &b)],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let fee = PRICE * 250 / 10_000;
    for w in [&a, &b] {
        assert_eq!(
            balance(&m.db, Book::Earned, w.as_str()).await.unwrap(),
            Stroops(PRICE - fee)
        );
    }
    let operator = m.config.operator.account().clone();
    assert_eq!(
        balance(&m.db, Book::Fees, operator.as_str()).await.unwrap(),
        Stroops(2 * fee)
    );
    assert_eq!(
        balance(&m.db, Book::Reserved, task.client.as_str())
            .await
            .unwrap(),
        Stroops(PRICE)
    );
    assert_eq!(check_invariants(&m.db).await.unwrap(), vec![]);
}

#[tokio::test]
async fn a_bid_never_pays_beyond_its_reservation() {
    let (_dir, m) = market().await;
    let task = funded_task(&m, PRICE).await;
    let (a, b) = (worker(2), worker(3));
    let mut tx = m.db.begin().await.unwrap();
    let over = pay(
        &m,
        &mut tx,
        &task,
        &[(AssignmentId(1), &a), (AssignmentId(2), &b)],
    )
    .await;
    assert!(over.is_err(), "two prices from a reservation of one");
    tx.rollback().await.unwrap();
    assert_eq!(
        balance(&m.db, Book::Earned, a.as_str()).await.unwrap(),
        Stroops(0)
    );
    assert_eq!(check_invariants(&m.db).await.unwrap(), vec![]);
}
