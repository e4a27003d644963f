//! Money out, over HTTP on SQLite and PostgreSQL: a client withdraws
//! available balance (never what open bids reserve) through the same
//! settlement records as workers' earnings, and the audit checks each
//! withdrawal against the request its account signed; and each payout
//! goes out as the payee's account allows: a payment where it exists, a
//! new account where it does not and the amount covers the minimum
//! balance, a claimable balance otherwise.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use common::*;
use serde_json::{json, Value};
use tally_protocol::wire::PayoutKind;
use tally_protocol::Stroops;

async fn withdrawals_leave_only_what_is_available_and_are_audited(backend: Backend) {
    let market = spawn_market(backend).await;
    let (client, model) = market.client_with_model(1_000_000).await;
    // A bid reserves 10,000 x 5 replicas.
    client
        .bid_images(bid_request(&model, 10_000), &[png(1)])
        .await
        .unwrap();
    let me = client.account_me().await.unwrap();
    assert_eq!((me.balance.0, me.reserved.0), (950_000, 50_000));

    let refused = client.withdraw(Stroops(960_000)).await.unwrap_err();
    assert!(refused.to_string().contains("402"), "{refused}");
    assert!(
        refused.to_string().contains("open bids reserve"),
        "{refused}"
    );
    for bad in [0, -5] {
        let e = client.withdraw(Stroops(bad)).await.unwrap_err();
        assert!(e.to_string().contains("400"), "{e}");
    }
    assert_eq!(
        client.account_me().await.unwrap().balance.0,
        950_000,
        "nothing lost"
    );

    let w = client.withdraw(Stroops(900_000)).await.unwrap();
    let me = client.account_me().await.unwrap();
    assert_eq!((me.balance.0, me.withdrawing.0), (50_000, 900_000));
    assert_eq!(
        client.withdrawals().await.unwrap().withdrawals,
        vec![w.clone()]
    );

    let mut events = market.market.events.subscribe();
    tally_market::settle::settle_now(&market.market)
        .await
        .unwrap();
    let me = client.account_me().await.unwrap();
    assert_eq!((me.withdrawing.0, me.paid_total.0), (0, 900_000));
    assert_eq!(
        events.try_recv().unwrap(),
        tally_protocol::wire::MarketEvent::SettlementWritten { seq: 1 }
    );
    let records = market.anonymous().settlements(0).await.unwrap().records;
    assert_eq!(records.len(), 1);
    let payout = &records[0].payouts[0];
    assert_eq!(&payout.account, client.signer().unwrap().account());
    assert_eq!(
        (payout.amount.0, payout.withdrawals.clone()),
        (900_000, vec![w.id])
    );
    assert!(payout.assignments.is_empty());
    let ev = market.anonymous().withdrawal_evidence(w.id).await.unwrap();
    ev.verify(&market.domain()).unwrap();
    assert_eq!(ev.payout_seq, Some(records[0].seq));
    let report = market.audit_ok().await;
    assert_eq!(report.withdrawals, 1);

    // Settled once: the next settlement has nothing to pay.
    assert_eq!(
        tally_market::settle::settle_now(&market.market)
            .await
            .unwrap(),
        0
    );
    // A withdrawal rewritten in the database no longer matches what its
    // account signed: the audit names it.
    market
        .write(
            tally_market::db::query("UPDATE withdrawals SET amount = 899999 WHERE id = $1")
                .bind(w.id),
        )
        .await;
    market.audit_finds("bad_withdrawal").await;
    // Put back for the ledger check at the end.
    market
        .write(
            tally_market::db::query("UPDATE withdrawals SET amount = 900000 WHERE id = $1")
                .bind(w.id),
        )
        .await;
    market.finish().await;
}
both!(withdrawals_leave_only_what_is_available_and_are_audited);

/// A stand-in Horizon that knows some accounts (`GET /accounts/{id}`).
async fn accounts_stand_in(known: HashMap<String, Value>) -> String {
    let state = Arc::new(Mutex::new(known));
    let app =
        Router::new()
            .route(
                "/accounts/{id}",
                get(
                    |State(s): State<Arc<Mutex<HashMap<String, Value>>>>,
                     Path(id): Path<String>| async move {
                        match s.lock().unwrap().get(&id) {
                            Some(v) => (StatusCode::OK, Json(v.clone())),
                            None => (
                                StatusCode::NOT_FOUND,
                                Json(
                                    json!({"type": "https://stellar.org/horizon-errors/not_found",
                                        "title": "Resource Missing", "status": 404}),
                                ),
                            ),
                        }
                    },
                ),
            )
            .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn account_body(id: &str) -> Value {
    json!({"id": id, "account_id": id, "sequence": "4294967296",
           "balances": [{"balance": "100.0000000", "asset_type": "native"}]})
}

async fn each_payout_goes_out_as_the_payees_account_allows(backend: Backend) {
    let market = spawn_market(backend).await;
    let existing = market.funded_client(100_000_000).await;
    let newcomer = market.funded_client(100_000_000).await;
    let small = market.funded_client(100_000_000).await;
    let operator = market.operator.account().to_string();
    let known: HashMap<String, Value> = [
        operator.clone(),
        existing.signer().unwrap().account().to_string(),
    ]
    .into_iter()
    .map(|id| (id.clone(), account_body(&id)))
    .collect();
    let horizon = accounts_stand_in(known).await;
    // 2 XLM to an account that exists, 2 XLM to one that does not, and
    // 0.1 XLM (under the minimum balance) to another that does not.
    existing.withdraw(Stroops(20_000_000)).await.unwrap();
    newcomer.withdraw(Stroops(20_000_000)).await.unwrap();
    small.withdraw(Stroops(1_000_000)).await.unwrap();
    let sub =
        tally_settlement::Submitter::new(tally_settlement::Endpoint::Horizon(horizon)).unwrap();
    let written = tally_market::settle::settle_with(&market.market, Some(&sub))
        .await
        .unwrap();
    assert_eq!(written, 1);
    let record = &market.anonymous().settlements(0).await.unwrap().records[0];
    let op_of = |c: &tally_protocol::Client| {
        record
            .payouts
            .iter()
            .find(|p| &p.account == c.signer().unwrap().account())
            .unwrap()
            .op
    };
    assert_eq!(op_of(&existing), PayoutKind::Payment);
    assert_eq!(op_of(&newcomer), PayoutKind::CreateAccount);
    assert_eq!(op_of(&small), PayoutKind::ClaimableBalance);
    // The signed transaction carries those ops, and the audit agrees.
    market.audit_ok().await;
    market.finish().await;
}
both!(each_payout_goes_out_as_the_payees_account_allows);
