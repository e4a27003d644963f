//! Deposits through Stellar RPC, against a stand-in RPC answering
//! `getLatestLedger`, `getEvents` (topic filters, pages by cursor, a
//! capped limit) and `getTransaction` as the RPC docs show them, with the
//! SAC `transfer` events of protocol 23 built byte by byte here (not with
//! the market's encoder): nothing paid before the market's first look is
//! credited; each deposit is credited once across pages, a page served
//! twice and a restart; a memo credits the client whose deposit code it
//! is; a wrong asset is refused; an event of a contract that is no SAC is
//! ignored; a Horizon cursor is not read as an RPC one. On SQLite and
//! PostgreSQL.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tally_protocol::Signer;

// --- XDR, by hand -----------------------------------------------------

fn u32b(n: u32) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}
fn opaque(b: &[u8]) -> Vec<u8> {
    let mut out = u32b(b.len() as u32);
    out.extend_from_slice(b);
    out.resize(out.len() + (4 - b.len() % 4) % 4, 0);
    out
}
fn key(g: &str) -> [u8; 32] {
    stellar_strkey::ed25519::PublicKey::from_string(g)
        .unwrap()
        .0
}
fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
/// `ScVal::Address` of a `G...` account (type 18, account 0, ed25519 0).
fn sc_account(g: &str) -> Vec<u8> {
    [u32b(18), u32b(0), u32b(0), key(g).to_vec()].concat()
}
fn sc_symbol(s: &str) -> Vec<u8> {
    [u32b(15), opaque(s.as_bytes())].concat()
}
fn sc_string(s: &str) -> Vec<u8> {
    [u32b(14), opaque(s.as_bytes())].concat()
}
fn sc_i128(n: u64) -> Vec<u8> {
    [
        u32b(10),
        0i64.to_be_bytes().to_vec(),
        n.to_be_bytes().to_vec(),
    ]
    .concat()
}
/// `{amount: I128, to_muxed_id: U64}`, as a payment to a muxed account has it.
fn sc_amount_map(n: u64, muxed_id: u64) -> Vec<u8> {
    let muxed = [u32b(5), muxed_id.to_be_bytes().to_vec()].concat();
    let entries = [
        sc_symbol("amount"),
        sc_i128(n),
        sc_symbol("to_muxed_id"),
        muxed,
    ];
    [u32b(17), u32b(1), u32b(2), entries.concat()].concat()
}
/// The Stellar Asset Contract of `native` or `CODE:ISSUER` (code of 1-4) on testnet.
fn sac(asset: &str) -> String {
    let asset_xdr = match asset.split_once(':') {
        None => u32b(0),
        Some((code, issuer)) => {
            let mut four = code.as_bytes().to_vec();
            four.resize(4, 0);
            [u32b(1), four, u32b(0), key(issuer).to_vec()].concat()
        }
    };
    let network: [u8; 32] = Sha256::digest(b"Test SDF Network ; September 2015").into();
    let preimage = [u32b(8), network.to_vec(), u32b(1), asset_xdr].concat();
    format!(
        "{}",
        stellar_strkey::Contract(Sha256::digest(&preimage).into())
    )
}
/// A `TransactionEnvelope` (v1, no operations, unsigned) with `memo`
/// (the memo's XDR: type then body).
fn envelope(memo: Vec<u8>) -> String {
    let source = [u32b(0), vec![9; 32]].concat();
    let seq = 1i64.to_be_bytes().to_vec();
    b64(&[
        u32b(2),
        source,
        u32b(100),
        seq,
        u32b(0),
        memo,
        u32b(0),
        u32b(0),
        u32b(0),
    ]
    .concat())
}
fn text_memo(s: &str) -> Vec<u8> {
    [u32b(1), opaque(s.as_bytes())].concat()
}

// --- the stand-in -----------------------------------------------------

#[derive(Default)]
struct StandIn {
    latest: u32,
    /// Every event, ordered by id.
    events: Vec<Value>,
    /// Envelopes by transaction hash.
    txs: HashMap<String, String>,
    tx_calls: HashMap<String, usize>,
    /// The most events one answer holds (an RPC's configured maximum).
    cap: usize,
    repeat_next: bool,
    last: Option<Value>,
}

type Shared = Arc<Mutex<StandIn>>;

fn cursor_of(ledger: u32) -> String {
    format!("{:019}-{:010}", u64::from(ledger) << 32, 0)
}

fn get_events(s: &mut StandIn, params: &Value) -> Result<Value, &'static str> {
    if s.repeat_next {
        s.repeat_next = false;
        return s.last.clone().ok_or("no page yet");
    }
    if params.get("startLedger").is_some() {
        return Err("startLedger and cursor are exclusive; the follower always has a cursor");
    }
    let after = params["pagination"]["cursor"].as_str().ok_or("no cursor")?;
    let limit = params["pagination"]["limit"].as_u64().ok_or("no limit")? as usize;
    let filter = &params["filters"][0];
    if filter["type"] != "contract" {
        return Err("not a contract filter");
    }
    let topics = filter["topics"][0].as_array().ok_or("no topics")?;
    let matches = |e: &Value| {
        let t = e["topic"].as_array().unwrap();
        t.len() == topics.len() && t.iter().zip(topics).all(|(t, f)| f == "*" || f == t)
    };
    let page: Vec<Value> = (s.events.iter())
        .filter(|e| e["id"].as_str().unwrap() > after && matches(e))
        .take(limit.min(s.cap))
        .cloned()
        .collect();
    let cursor = match page.last() {
        Some(e) if page.len() == limit.min(s.cap) => e["id"].as_str().unwrap().to_string(),
        _ => cursor_of(s.latest + 1), // the end of the window scanned
    };
    let result = json!({
        "events": page, "cursor": cursor, "latestLedger": s.latest, "oldestLedger": 1,
        "latestLedgerCloseTime": "1754049600", "oldestLedgerCloseTime": "1753444800",
    });
    s.last = Some(result.clone());
    Ok(result)
}

async fn rpc(State(s): State<Shared>, Json(req): Json<Value>) -> Json<Value> {
    let mut s = s.lock().unwrap();
    let result = match req["method"].as_str() {
        Some("getLatestLedger") => {
            Ok(json!({"id": "ab".repeat(32), "protocolVersion": 23, "sequence": s.latest}))
        }
        Some("getEvents") => get_events(&mut s, &req["params"]),
        Some("getTransaction") => {
            let hash = req["params"]["hash"].as_str().unwrap_or("").to_string();
            *s.tx_calls.entry(hash.clone()).or_default() += 1;
            Ok(match s.txs.get(&hash) {
                Some(env) => json!({"status": "SUCCESS", "latestLedger": s.latest,
                    "ledger": 101, "createdAt": "1754049600", "applicationOrder": 1,
                    "envelopeXdr": env, "resultXdr": "AAAA", "resultMetaXdr": "AAAA"}),
                None => json!({"status": "NOT_FOUND", "latestLedger": s.latest}),
            })
        }
        _ => Err("method not found"),
    };
    Json(match result {
        Ok(r) => json!({"jsonrpc": "2.0", "id": req["id"], "result": r}),
        Err(e) => json!({"jsonrpc": "2.0", "id": req["id"],
            "error": {"code": -32602, "message": e}}),
    })
}

async fn stand_in(state: Shared) -> String {
    let app = Router::new().route("/", post(rpc)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// A `transfer` event of `contract` at (ledger, tx, op), with the
/// transaction's envelope (its `memo`) known to the stand-in.
struct Transfer<'a> {
    at: (u32, u32, u32),
    contract: String,
    from: &'a str,
    to: &'a str,
    asset: &'a str,
    value: Vec<u8>,
}

fn add(s: &mut StandIn, t: Transfer, memo: Vec<u8>) -> String {
    let (ledger, tx, op) = t.at;
    let toid = (u64::from(ledger) << 32) | (u64::from(tx) << 12) | u64::from(op);
    let id = format!("{toid:019}-{:010}", 0);
    let hash = format!("{:064x}", (u64::from(ledger) << 32) | u64::from(tx));
    let topic = [sc_symbol("transfer"), sc_account(t.from), sc_account(t.to)];
    let mut topic: Vec<String> = topic.iter().map(|t| b64(t)).collect();
    topic.push(b64(&sc_string(t.asset)));
    s.events.push(json!({
        "type": "contract", "ledger": ledger, "ledgerClosedAt": "2025-08-01T12:00:00Z",
        "contractId": t.contract, "id": id, "pagingToken": id, "operationIndex": op,
        "transactionIndex": tx, "inSuccessfulContractCall": true, "txHash": hash,
        "topic": topic, "value": b64(&t.value),
    }));
    s.events
        .sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    s.txs.insert(hash.clone(), envelope(memo));
    s.latest = s.latest.max(ledger);
    hash
}

async fn follow(market: &TestMarket, url: &str) -> usize {
    let http = reqwest::Client::new();
    tally_market::deposits::follow_once_rpc(&market.market, &http, url)
        .await
        .expect("a page is followed")
}

async fn count(market: &TestMarket, sql: &str) -> i64 {
    let row = market.read_one(tally_market::db::query(sql)).await;
    row.try_get::<i64>("n").unwrap()
}

async fn deposits_through_rpc_are_credited_once(backend: Backend) {
    let market = spawn_market(backend).await;
    let op = market.operator.account().to_string();
    let alice = market.client(&Signer::generate());
    let bob = market.client(&Signer::generate());
    let bob_code = bob.account_me().await.unwrap().deposit_memo;
    let a = alice.signer().unwrap().account().to_string();
    let exchange = Signer::generate().account().to_string();
    let stranger = Signer::generate().account().to_string();
    let usdc = format!("USDC:{}", Signer::generate().account());
    let xlm = || sac("native");
    let none = || u32b(0);
    let spoof = format!("{}", stellar_strkey::Contract([7; 32]));
    let t = |at, contract, from, to, asset, value| Transfer {
        at,
        contract,
        from,
        to,
        asset,
        value,
    };

    let state: Shared = Arc::new(Mutex::new(StandIn {
        latest: 100,
        cap: 3,
        ..StandIn::default()
    }));
    let multi_hash;
    {
        let mut s = state.lock().unwrap();
        // Before the market first looked: never credited.
        add(
            &mut s,
            t((90, 1, 0), xlm(), &a, &op, "native", sc_i128(50_000_000)),
            none(),
        );
        add(
            &mut s,
            t((101, 1, 0), xlm(), &a, &op, "native", sc_i128(15_000_000)),
            none(),
        );
        let map = sc_amount_map(20_000_000, 5);
        add(
            &mut s,
            t((101, 2, 0), xlm(), &exchange, &op, "native", map),
            text_memo(&bob_code),
        );
        add(
            &mut s,
            t((102, 1, 0), xlm(), &op, &a, "native", sc_i128(70_000_000)),
            none(),
        );
        let sac_usdc = sac(&usdc);
        add(
            &mut s,
            t((102, 2, 0), sac_usdc, &stranger, &op, &usdc, sc_i128(4)),
            none(),
        );
        let fake = sc_i128(1_000_000_000);
        add(
            &mut s,
            t((103, 1, 0), spoof, &a, &op, "native", fake),
            none(),
        );
        let id_memo = [u32b(2), 42u64.to_be_bytes().to_vec()].concat();
        add(
            &mut s,
            t((103, 2, 0), xlm(), &exchange, &op, "native", sc_i128(10)),
            id_memo.clone(),
        );
        multi_hash = add(
            &mut s,
            t((103, 2, 1), xlm(), &exchange, &op, "native", sc_i128(20)),
            id_memo,
        );
        s.latest = 100; // the ledger the market first sees
    }
    let url = stand_in(Arc::clone(&state)).await;

    // First look: the cursor starts at ledger 100; a page of three.
    assert_eq!(follow(&market, &url).await, 3);
    state.lock().unwrap().latest = 103;
    assert_eq!(
        balance(&alice).await,
        15_000_000,
        "the payment before is not credited"
    );
    assert_eq!(balance(&bob).await, 20_000_000, "credited by its memo");
    let mine = alice.deposits().await.unwrap().deposits;
    assert_eq!((mine.len(), mine[0].status.as_str()), (1, "credited"));

    // The same page again in place of the next: nothing twice.
    state.lock().unwrap().repeat_next = true;
    assert_eq!(follow(&market, &url).await, 3);
    assert_eq!(
        (balance(&alice).await, balance(&bob).await),
        (15_000_000, 20_000_000)
    );

    // The second page: the spoof is ignored, the id memo refused, and one
    // transaction's two payments ask for its memo once.
    assert_eq!(follow(&market, &url).await, 3);
    assert_eq!(follow(&market, &url).await, 0);
    assert_eq!(state.lock().unwrap().tx_calls[&multi_hash], 1);
    assert_eq!(balance(&alice).await, 15_000_000);
    let reasons = tally_market::db::query(
        "SELECT status, reason, asset FROM deposits WHERE status = 'refused' ORDER BY id",
    )
    .fetch_all(&market.market.db)
    .await
    .unwrap();
    let reasons: Vec<(String, String)> = reasons
        .iter()
        .map(|r| (r.try_get("asset").unwrap(), r.try_get("reason").unwrap()))
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert_eq!(reasons[0].0, usdc);
    assert!(reasons[0].1.contains("settles in native"), "{reasons:?}");
    assert!(reasons[1..]
        .iter()
        .all(|r| r.1.contains("\"42\" is no deposit code")));
    let all = "SELECT COUNT(*) AS n FROM deposits";
    assert_eq!(
        count(&market, all).await,
        5,
        "no payout, no spoof, nothing from before"
    );

    // More arrives; another process on the same database (a restart)
    // reads on from the stored cursor.
    add(
        &mut state.lock().unwrap(),
        t((104, 1, 0), xlm(), &a, &op, "native", sc_i128(10_000_000)),
        none(),
    );
    let restarted = spawn_second_market(&market).await;
    assert_eq!(follow(&restarted, &url).await, 1);
    assert_eq!(balance(&alice).await, 25_000_000);
    assert_eq!(follow(&restarted, &url).await, 0);
    assert_eq!(count(&market, all).await, 6);
    restarted.finish().await;
    market.finish().await;
}
both!(deposits_through_rpc_are_credited_once);

async fn a_horizon_cursor_is_not_followed_through_rpc(backend: Backend) {
    let market = spawn_market(backend).await;
    let state: Shared = Arc::new(Mutex::new(StandIn {
        latest: 100,
        cap: 10,
        ..StandIn::default()
    }));
    let url = stand_in(state).await;
    market
        .write(tally_market::db::query(
            "INSERT INTO deposit_cursor (id, cursor) VALUES (1, '12884905985')",
        ))
        .await;
    let http = reqwest::Client::new();
    let err = tally_market::deposits::follow_once_rpc(&market.market, &http, &url)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Horizon"), "{err}");
    market.finish().await;
}
both!(a_horizon_cursor_is_not_followed_through_rpc);

async fn the_market_follows_rpc_by_itself(backend: Backend) {
    let state: Shared = Arc::new(Mutex::new(StandIn {
        latest: 100,
        cap: 4,
        ..StandIn::default()
    }));
    let url = stand_in(Arc::clone(&state)).await;
    let market = spawn_market(backend).await;
    let follower = deposit_follower(&market, |c| c.rpc = Some(url.clone())).await;
    let client = market.client(&Signer::generate());
    let (op, sender) = (
        market.operator.account().to_string(),
        client.signer().unwrap().account().to_string(),
    );
    // Wait for the follower's first look (it stores the cursor), then pay.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while count(&market, "SELECT COUNT(*) AS n FROM deposit_cursor").await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never looked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    {
        let mut s = state.lock().unwrap();
        for i in 1..=10 {
            let t = Transfer {
                at: (100 + i, 1, 0),
                contract: sac("native"),
                from: &sender,
                to: &op,
                asset: "native",
                value: sc_i128(1),
            };
            add(&mut s, t, u32b(0));
        }
    }
    while balance(&client).await < 10 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "deposits never credited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(balance(&client).await, 10);
    follower.begin_shutdown();
    market.finish().await;
}
both!(the_market_follows_rpc_by_itself);
