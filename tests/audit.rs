//! `tally audit` against an honest market, and against a dishonest proxy in
//! front of the same market that alters one thing in the JSON it relays:
//! every alteration is caught, with the right finding kind and a non-zero
//! exit status.

mod common;
mod stand_in;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use common::*;
use serde_json::Value;
use tally_protocol::wire::ResultRequest;
use tally_protocol::{Client, TaskId};

/// Workers claim a few tasks each in turn, then answer, until no work is left.
async fn work(workers: &[(Client, ResultRequest)]) {
    loop {
        let mut held = Vec::new();
        for (w, _) in workers {
            held.push(w.claim(4, 0).await.expect("claim").assignments);
        }
        if held.iter().all(Vec::is_empty) {
            return;
        }
        for ((w, answer), got) in workers.iter().zip(held) {
            for a in got {
                w.submit_result(a.assignment, answer).await.expect("result");
            }
        }
    }
}

/// A settled market: 6 tasks, three honest workers and a wrong one.
async fn settled_market() -> (TestMarket, TaskId) {
    let market = spawn_tweaked(Backend::Sqlite, |c| {
        c.settle_every = Duration::from_secs(3600);
        c.settle_max_ops = 2;
    })
    .await;
    let (client, model) = market.client_with_model(100_000_000).await;
    let mut workers = Vec::new();
    for answer in [honest(), honest_noisy(), honest(), wrong()] {
        workers.push((market.worker(&model).await, answer));
    }
    let images: Vec<Vec<u8>> = (0..6).map(png).collect();
    let created = client
        .bid_images(bid_request(&model, 10_000), &images)
        .await
        .unwrap();
    work(&workers).await;
    let written = tally_market::settle::settle_now(&market.market)
        .await
        .unwrap();
    assert!(written >= 2, "at least two records to chain");
    (market, created.tasks[0])
}

type Mutation = Arc<dyn Fn(&str, &mut Value) + Send + Sync>;

/// A proxy in front of `upstream` relaying every GET, `mutate`d.
async fn proxy(upstream: &str, mutate: Mutation) -> String {
    let upstream = upstream.to_string();
    let http = reqwest::Client::new();
    stand_in::serve(move |req: stand_in::Request| {
        let (http, mutate) = (http.clone(), Arc::clone(&mutate));
        let url = format!("{upstream}{}", req.path);
        async move {
            let resp = http.get(&url).send().await.expect("upstream answers");
            let status = resp.status().as_u16();
            let mut v: Value = resp.json().await.expect("upstream JSON");
            mutate(&req.path, &mut v);
            (status, v.to_string())
        }
    })
    .await
}

/// The record with `seq` in a settlements page, if the page has it.
fn record<'v>(path: &str, v: &'v mut Value, seq: u64) -> Option<&'v mut Value> {
    if !path.starts_with("/v1/settlements") {
        return None;
    }
    v["records"]
        .as_array_mut()?
        .iter_mut()
        .find(|r| r["seq"] == seq)
}

/// Flip one bit of the last byte of base64 data (an ed25519 signature's,
/// for a signature or an envelope, which ends with its signature).
fn flip_last_byte(b64: &Value) -> Value {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut bytes = engine.decode(b64.as_str().unwrap()).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    Value::String(engine.encode(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_market_passes_the_audit() {
    let (market, _) = settled_market().await;
    let (ok, report) = audit_cli(&market.url).await;
    assert!(ok, "{report}");
    assert_eq!(report["ok"], true);
    assert_eq!(report["findings"], serde_json::json!([]));
    assert!(report["records"].as_u64().unwrap() >= 2);
    assert!(report["amount"].as_i64().unwrap() > 0);
    // The text summary says so too; a transparent proxy changes nothing.
    let relay = proxy(&market.url, Arc::new(|_, _| {})).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["audit", "--market", &relay])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("all consistent"));
    market.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_alteration_by_a_dishonest_market_is_caught() {
    let (market, task) = settled_market().await;
    let evidence = format!("/v1/tasks/{task}/evidence");
    let on_evidence = move |path: &str| path == evidence;
    let cases: Vec<(&str, &str, Mutation)> = vec![
        (
            "a payout amount",
            "amount_mismatch",
            Arc::new(|path, v| {
                if let Some(r) = record(path, v, 1) {
                    let amount = r["payouts"][0]["amount"].as_i64().unwrap();
                    r["payouts"][0]["amount"] = (amount + 1).into();
                }
            }),
        ),
        (
            "a prev_hash",
            "broken_chain",
            Arc::new(|path, v| {
                if let Some(r) = record(path, v, 2) {
                    r["prev_hash"] = "ab".repeat(32).into();
                }
            }),
        ),
        (
            "a worker's result signature",
            "bad_result_signature",
            Arc::new({
                let on = on_evidence.clone();
                move |path, v| {
                    if on(path) {
                        v["results"][0]["signature"] =
                            flip_last_byte(&v["results"][0]["signature"]);
                    }
                }
            }),
        ),
        (
            "an envelope's signature",
            "bad_signature",
            Arc::new(|path, v| {
                if let Some(r) = record(path, v, 1) {
                    r["envelope_xdr"] = flip_last_byte(&r["envelope_xdr"]);
                }
            }),
        ),
        (
            "a duplicated record",
            "double_payment",
            Arc::new(|path, v| {
                if let Some(r) = record(path, v, 1).cloned() {
                    v["records"].as_array_mut().unwrap().insert(1, r);
                }
            }),
        ),
        (
            "an agreeing result moved to disagree",
            "verdict_mismatch",
            Arc::new({
                let on = on_evidence.clone();
                move |path, v| {
                    if on(path) {
                        let moved = v["verdict"]["agree"].as_array_mut().unwrap().remove(0);
                        v["verdict"]["disagree"].as_array_mut().unwrap().push(moved);
                    }
                }
            }),
        ),
        (
            "a paid task's evidence withheld",
            "withheld_evidence",
            Arc::new({
                let on = on_evidence.clone();
                move |path, v| {
                    if on(path) {
                        v["withheld"] = true.into();
                        v["results"] = serde_json::json!([]);
                        v["verdict"] = Value::Null;
                    }
                }
            }),
        ),
        (
            "a consensus box",
            "verdict_mismatch",
            Arc::new(move |path, v| {
                if on_evidence(path) {
                    let x1 = v["verdict"]["consensus"][0]["box"][0].as_f64().unwrap();
                    v["verdict"]["consensus"][0]["box"][0] = (x1 + 3.0).into();
                }
            }),
        ),
    ];
    for (what, kind, mutate) in cases {
        let url = proxy(&market.url, mutate).await;
        for _ in 0..2 {
            let (ok, report) = audit_cli(&url).await;
            assert!(!ok, "{what}: the audit must fail: {report}");
            assert_eq!(report["ok"], false, "{what}");
            let kinds: Vec<&str> = report["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["kind"].as_str().unwrap())
                .collect();
            assert!(
                kinds.contains(&kind),
                "{what}: expected {kind}, got {report}"
            );
        }
    }
    market.finish().await;
}
