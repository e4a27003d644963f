//! Deposits on-chain, against a stand-in Horizon serving Horizon's
//! documented payments pages: each payment into the operator's account is
//! credited exactly once (to the sender, or to the client whose deposit
//! code is the memo), across pages, a page served twice and a restart;
//! a wrong asset, an unknown memo, a failed transaction and a non-payment
//! are recorded as refused with their reason; the operator's own payouts
//! only move the cursor. On SQLite and PostgreSQL.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use common::*;
use serde_json::{json, Value};
use tally_protocol::wire::MarketEvent;
use tally_protocol::{Signer, Stroops};

/// The stand-in: every record it knows, paged by cursor like Horizon, and
/// (once, when asked) the same page again in place of the next one.
#[derive(Default)]
struct StandIn {
    records: Vec<Value>,
    repeat_next: bool,
    last_page: Vec<Value>,
    pages_served: usize,
}

type Shared = Arc<Mutex<StandIn>>;

async fn payments(
    State(s): State<Shared>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Json<Value> {
    let mut s = s.lock().unwrap();
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
    let after: u64 = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let page: Vec<Value> = if s.repeat_next && !s.last_page.is_empty() {
        s.repeat_next = false;
        s.last_page.clone()
    } else {
        s.records
            .iter()
            .filter(|r| r["paging_token"].as_str().unwrap().parse::<u64>().unwrap() > after)
            .take(limit)
            .cloned()
            .collect()
    };
    s.last_page = page.clone();
    s.pages_served += 1;
    Json(json!({"_links": {}, "_embedded": {"records": page}}))
}

async fn stand_in(state: Shared) -> String {
    let app = Router::new()
        .route("/accounts/{id}/payments", get(payments))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// A Horizon payment record (`payment`, native unless `asset` says otherwise).
fn payment(token: u64, from: &str, to: &str, amount: &str, memo: Option<&str>) -> Value {
    json!({
        "_links": {},
        "id": token.to_string(),
        "paging_token": token.to_string(),
        "transaction_successful": true,
        "source_account": from,
        "type": "payment",
        "type_i": 1,
        "created_at": "2026-12-01T12:00:00Z",
        "transaction_hash": format!("{token:064x}"),
        "asset_type": "native",
        "from": from,
        "to": to,
        "amount": amount,
        "transaction": {
            "hash": format!("{token:064x}"),
            "successful": true,
            "memo_type": if memo.is_some() { "text" } else { "none" },
            "memo": memo,
        },
    })
}

async fn follow(market: &TestMarket, url: &str) -> usize {
    let http = reqwest::Client::new();
    tally_market::deposits::follow_once(&market.market, &http, url)
        .await
        .expect("a page is followed")
}

async fn deposits_are_credited_once_or_refused_with_a_reason(backend: Backend) {
    let market = spawn_market(backend).await;
    let operator = market.operator.account().to_string();
    let alice = market.client(&Signer::generate());
    let bob = market.client(&Signer::generate());
    let exchange = Signer::generate().account().to_string();
    let stranger = Signer::generate().account().to_string();
    let bob_code = bob.account_me().await.unwrap().deposit_memo;
    assert!(
        bob_code.starts_with("tally-") && bob_code.len() <= 28,
        "{bob_code}"
    );
    let a = alice.signer().unwrap().account().to_string();

    let mut failed = payment(5, &stranger, &operator, "3.0000000", None);
    failed["transaction_successful"] = json!(false);
    let mut usdc = payment(6, &stranger, &operator, "4.0000000", None);
    usdc["asset_type"] = json!("credit_alphanum4");
    usdc["asset_code"] = json!("USDC");
    usdc["asset_issuer"] = json!(Signer::generate().account().to_string());
    let merge = json!({"id": "9", "paging_token": "9", "type": "account_merge",
        "transaction_successful": true, "transaction_hash": "ee", "source_account": stranger,
        "into": operator});
    let state: Shared = Arc::new(Mutex::new(StandIn {
        records: vec![
            payment(1, &a, &operator, "1.5000000", None),
            payment(2, &exchange, &operator, "2.0000000", Some(&bob_code)),
            payment(3, &operator, &a, "7.0000000", None), // a payout: not a deposit
            payment(
                4,
                &exchange,
                &operator,
                "1.0000000",
                Some("tally-000000000000"),
            ),
            failed,
            usdc,
            payment(7, &a, &operator, "0.0000010", None),
            merge,
        ],
        ..StandIn::default()
    }));
    let url = stand_in(Arc::clone(&state)).await;

    // Page size 200: one page holds it all; a second read finds nothing new.
    let mut events = market.market.events.subscribe();
    assert_eq!(follow(&market, &url).await, 8);
    // Each credit is pushed to listeners (GET /v1/events) once committed.
    let mut pushed = Vec::new();
    while let Ok(e) = events.try_recv() {
        pushed.push(e);
    }
    assert_eq!(
        pushed,
        vec![
            MarketEvent::DepositCredited {
                account: alice.signer().unwrap().account().clone(),
                amount: Stroops(15_000_000)
            },
            MarketEvent::DepositCredited {
                account: bob.signer().unwrap().account().clone(),
                amount: Stroops(20_000_000)
            },
            MarketEvent::DepositCredited {
                account: alice.signer().unwrap().account().clone(),
                amount: Stroops(10)
            },
        ]
    );
    assert_eq!(balance(&alice).await, 15_000_000 + 10);
    assert_eq!(balance(&bob).await, 20_000_000, "credited by its memo");
    let mine = alice.deposits().await.unwrap().deposits;
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|d| d.status == "credited"));
    let db = &market.market.db;
    let refused = |id: &'static str| async move {
        let r = tally_market::db::query("SELECT status, reason FROM deposits WHERE id = $1")
            .bind(id)
            .fetch_one(db)
            .await
            .unwrap();
        assert_eq!(r.try_get::<String>("status").unwrap(), "refused");
        r.try_get::<String>("reason").unwrap()
    };
    assert!(refused("4").await.contains("no deposit code"));
    assert!(refused("5").await.contains("failed"));
    assert!(refused("6").await.contains("settles in native"));
    assert!(refused("9").await.contains("not a payment"));
    let seen = market
        .read_one(tally_market::db::query(
            "SELECT COUNT(*) AS n FROM deposits WHERE id = '3'",
        ))
        .await;
    assert_eq!(
        seen.try_get::<i64>("n").unwrap(),
        0,
        "a payout is no deposit"
    );

    // The same page served again in place of the next: nothing twice.
    state.lock().unwrap().repeat_next = true;
    assert_eq!(follow(&market, &url).await, 8);
    assert_eq!(balance(&alice).await, 15_000_000 + 10);
    assert_eq!(balance(&bob).await, 20_000_000);

    // More arrives; another process on the same database (a restart)
    // reads on from the stored cursor.
    state
        .lock()
        .unwrap()
        .records
        .push(payment(10, &a, &operator, "1.0000000", None));
    let restarted = spawn_second_market(&market).await;
    assert_eq!(follow(&restarted, &url).await, 1);
    assert_eq!(balance(&alice).await, 25_000_010);
    assert_eq!(follow(&restarted, &url).await, 0);
    restarted.finish().await;
    market.finish().await;
}
both!(deposits_are_credited_once_or_refused_with_a_reason);

async fn the_market_follows_deposits_by_itself(backend: Backend) {
    let state: Shared = Arc::new(Mutex::new(StandIn::default()));
    let url = stand_in(Arc::clone(&state)).await;
    let market = spawn_market(backend).await;
    // A second market process on the same database follows the stand-in.
    let follower = deposit_follower(&market, |c| c.horizon = Some(url.clone())).await;
    let client = market.client(&Signer::generate());
    let operator = market.operator.account().to_string();
    let sender = client.signer().unwrap().account().to_string();
    state.lock().unwrap().records = (1..=250)
        .map(|i| payment(i, &sender, &operator, "0.0000001", None))
        .collect();
    // 250 records: one full page of 200 followed at once by the rest.
    let started = std::time::Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while balance(&client).await < 250 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "deposits never credited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(balance(&client).await, 250);
    eprintln!(
        "250 deposits on two pages credited {} ms after they appeared (polling every 20 ms)",
        started.elapsed().as_millis()
    );
    assert_eq!(client.deposits().await.unwrap().deposits.len(), 250);
    assert!(state.lock().unwrap().pages_served >= 2);
    follower.begin_shutdown();
    market.finish().await;
}
both!(the_market_follows_deposits_by_itself);

/// Two market processes on one database follow the same account at the
/// same moment, page after page: each deposit is credited exactly once.
async fn two_processes_following_at_once_credit_each_deposit_once(backend: Backend) {
    let state: Shared = Arc::new(Mutex::new(StandIn::default()));
    let url = stand_in(Arc::clone(&state)).await;
    let market = spawn_market(backend).await;
    let second = spawn_second_market(&market).await;
    let client = market.client(&Signer::generate());
    let operator = market.operator.account().to_string();
    let sender = client.signer().unwrap().account().to_string();
    state.lock().unwrap().records = (1..=450)
        .map(|i| payment(i, &sender, &operator, "0.0000001", None))
        .collect();
    let drain = |m: &TestMarket| {
        let (market, url) = (Arc::clone(&m.market), url.clone());
        async move {
            let http = reqwest::Client::new();
            let mut pages = 0;
            while tally_market::deposits::follow_once(&market, &http, &url)
                .await
                .expect("a page is followed")
                > 0
            {
                pages += 1;
            }
            pages
        }
    };
    let (a, b) = tokio::join!(drain(&market), drain(&second));
    assert!(
        a + b >= 3,
        "450 records take three pages of 200 ({a} + {b} followed)"
    );
    assert_eq!(balance(&client).await, 450, "every deposit credited once");
    assert_eq!(client.deposits().await.unwrap().deposits.len(), 450);
    second.finish().await;
    market.finish().await;
}
both!(two_processes_following_at_once_credit_each_deposit_once);
