//! Every hostile or malformed request is refused with a 4xx and a JSON
//! error, writes nothing, and leaves the market serving.

mod common;

use base64::Engine as _;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use tally_protocol::signing::{self, Signer};
use tally_protocol::Stroops;

/// Send `body` signed by `signer` (or a tampered variant), return status and JSON.
async fn raw(
    market: &TestMarket,
    signer: &Signer,
    method: Method,
    path: &str,
    body: Vec<u8>,
    tamper: Tamper,
) -> (u16, Value) {
    let ts = match tamper {
        Tamper::Stale => signing::now_ms() - 120_000,
        _ => signing::now_ms(),
    };
    let nonce = match &tamper {
        Tamper::Nonce(n) => n.clone(),
        _ => signing::fresh_nonce(),
    };
    let mut h = signer.sign_at(&market.domain(), method.as_str(), path, &body, ts, &nonce);
    if let Tamper::BadSignature = tamper {
        h.signature = Signer::generate().sign_bytes(b"something else");
    }
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{}", market.url, path))
        .header("content-type", "application/json")
        .body(body);
    if !matches!(tamper, Tamper::Unsigned) {
        req = req
            .header(signing::HEADER_ACCOUNT, h.account.as_str())
            .header(signing::HEADER_TIMESTAMP, h.timestamp_ms.to_string())
            .header(signing::HEADER_NONCE, &h.nonce)
            .header(signing::HEADER_SIGNATURE, &h.signature);
    }
    let resp = match req.send().await {
        Ok(resp) => resp,
        // Refused from its headers, the body unread: the market may close
        // the connection while the client still writes the body.
        Err(e) if e.is_request() && format!("{e:?}").contains("BodyWrite") => {
            return (0, json!({"unread": e.to_string()}))
        }
        Err(e) => panic!("market answers: {e:?}"),
    };
    let status = resp.status().as_u16();
    let json: Value = resp.json().await.unwrap_or(Value::Null);
    (status, json)
}

/// `raw` with POST.
async fn post(
    market: &TestMarket,
    signer: &Signer,
    path: &str,
    body: Vec<u8>,
    tamper: Tamper,
) -> (u16, Value) {
    raw(market, signer, Method::POST, path, body, tamper).await
}

#[derive(Clone)]
enum Tamper {
    None,
    Stale,
    BadSignature,
    Unsigned,
    Nonce(String),
}

/// A body declared over its limit: 413 when the client reads the answer
/// before the market closes the connection, else refused unread.
fn assert_too_large(got: (u16, Value)) {
    if got.0 == 0 {
        assert!(got.1["unread"].is_string(), "{:?}", got.1);
    } else {
        assert_refused(got, 413, "too_large");
    }
}

fn assert_refused(got: (u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "expected {status} {code}, got {:?}", got);
    assert_eq!(got.1["error"]["code"], code, "{:?}", got.1);
    assert!(got.1["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

async fn hostile_requests_are_refused_cleanly_and_write_nothing(backend: Backend) {
    let market = spawn_tweaked(backend, |c| {
        c.limits.max_bid_bytes = 2 << 20;
        c.limits.max_image_bytes = 1 << 20;
        c.limits.max_model_bytes = 1 << 20;
    })
    .await;
    let signer = market.funded_signer(1_000_000).await;
    let client = market.client(&signer);
    let model = model(&client).await;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let good = || json!({"model": model, "price": 100, "inputs": [b64(&png(1))]});
    let post_bid = |body: Value| {
        let m = &market;
        let s = &signer;
        async move {
            post(
                m,
                s,
                "/v1/bids",
                serde_json::to_vec(&body).unwrap(),
                Tamper::None,
            )
            .await
        }
    };

    // Malformed bids.
    let mut unknown = good();
    unknown["colour"] = json!("blue");
    assert_refused(post_bid(unknown).await, 400, "bad_json");
    assert_refused(
        post_bid(json!({"model": model, "price": 100, "inputs": ["%%%not base64"]})).await,
        400,
        "bad_base64",
    );
    assert_refused(
        post_bid(json!({"model": model, "price": 100, "inputs": [b64(b"GIF89a but not really an image")]})).await,
        422,
        "undecodable_image",
    );
    let png = png(1);
    let truncated = &png[..png.len() / 2];
    assert_refused(
        post_bid(json!({"model": model, "price": 100, "inputs": [b64(truncated)]})).await,
        422,
        "undecodable_image",
    );
    assert_refused(
        post_bid(json!({"model": model, "price": -5, "inputs": [b64(&png)]})).await,
        400,
        "bad_price",
    );
    assert_refused(
        post_bid(
            json!({"model": model, "price": 9_000_000_000_000_000_000i64, "inputs": [b64(&png)]}),
        )
        .await,
        400,
        "amount_overflow",
    );
    assert_refused(
        post_bid(json!({"model": model, "price": "100", "inputs": [b64(&png)]})).await,
        400,
        "bad_json",
    );
    assert_refused(
        post_bid(json!({"model": model, "price": 100, "replicas": 2, "quorum": 3, "inputs": [b64(&png)]})).await,
        400,
        "bad_quorum",
    );
    let unknown_model = "ab".repeat(32);
    assert_refused(
        post_bid(json!({"model": unknown_model, "price": 100, "inputs": [b64(&png)]})).await,
        404,
        "not_found",
    );
    assert_refused(
        post_bid(json!({"model": model, "price": 100, "inputs": []})).await,
        400,
        "bad_inputs",
    );
    assert_refused(
        post_bid(json!({"model": model, "price": 1_000_000, "inputs": [b64(&png)]})).await,
        402,
        "insufficient_funds",
    );
    // Size limits: one image over its limit, a body over the bid limit, a model over its limit.
    let big = vec![b'A'; (1 << 20) * 4 / 3 + 100];
    let big_image = format!(
        "{{\"model\":\"{model}\",\"price\":100,\"inputs\":[\"{}\"]}}",
        String::from_utf8(big).unwrap()
    );
    assert_refused(
        post(
            &market,
            &signer,
            "/v1/bids",
            big_image.into_bytes(),
            Tamper::None,
        )
        .await,
        413,
        "too_large",
    );
    assert_too_large(
        post(
            &market,
            &signer,
            "/v1/bids",
            vec![b' '; 3 << 20],
            Tamper::None,
        )
        .await,
    );
    assert_too_large(
        post(
            &market,
            &signer,
            "/v1/models",
            vec![0u8; 2 << 20],
            Tamper::None,
        )
        .await,
    );

    // Authentication: unsigned, bad signature, stale, replayed.
    let body = serde_json::to_vec(&good()).unwrap();
    for tamper in [
        Tamper::Unsigned,
        Tamper::BadSignature,
        Tamper::Stale,
        Tamper::Nonce("xyz".into()),
    ] {
        let got = post(&market, &signer, "/v1/bids", body.clone(), tamper).await;
        assert_refused(got, 401, "unauthorized");
    }
    // Only the operator credits accounts.
    let credit = serde_json::to_vec(&json!({"account": signer.account(), "amount": 5})).unwrap();
    assert_refused(
        post(&market, &signer, "/v1/admin/credits", credit, Tamper::None).await,
        403,
        "forbidden",
    );
    let credit = serde_json::to_vec(&json!({"account": signer.account(), "amount": -5})).unwrap();
    assert_refused(
        post(
            &market,
            &market.operator,
            "/v1/admin/credits",
            credit,
            Tamper::None,
        )
        .await,
        400,
        "bad_amount",
    );

    // Nothing was written: no bid, no task, the balance untouched.
    let stats = market.anonymous().market().await.unwrap();
    assert_eq!(stats.open_tasks + stats.running_tasks, 0);
    let me = client.account_me().await.unwrap();
    assert_eq!((me.balance, me.reserved), (Stroops(1_000_000), Stroops(0)));

    // A good bid goes through once; the same signed request replayed is refused.
    let nonce = signing::fresh_nonce();
    let first = post(
        &market,
        &signer,
        "/v1/bids",
        body.clone(),
        Tamper::Nonce(nonce.clone()),
    )
    .await;
    assert_eq!(first.0, 201, "{first:?}");
    assert_refused(
        post(
            &market,
            &signer,
            "/v1/bids",
            body.clone(),
            Tamper::Nonce(nonce),
        )
        .await,
        409,
        "replayed_request",
    );
    let stats = market.anonymous().market().await.unwrap();
    assert_eq!(stats.open_tasks, 1, "the replay created no second bid");

    // Worker-side hostility: results for someone else's assignment, garbage results.
    let w = market.worker(&model).await;
    let a = w.claim(1, 1_000).await.unwrap().assignments.remove(0);
    let thief = market.worker(&model).await;
    assert_eq!(
        refused_status(thief.submit_result(a.assignment, &honest()).await),
        403
    );
    let path = format!("/v1/assignments/{}/result", a.assignment);
    let inverted = json!({"detections": [{"class_id": 1, "label": "x", "score": 0.5, "box": [10, 10, 0, 0]}], "elapsed_ms": 1});
    let worker_refusals: [(&str, Vec<u8>, u16, &str); 4] = [
        (
            &path,
            serde_json::to_vec(&inverted).unwrap(),
            400,
            "bad_result",
        ),
        (&path, b"{not json".to_vec(), 400, "bad_json"),
        ("/v1/assignments/abc/result", b"{}".to_vec(), 400, "bad_id"),
        (
            "/v1/claims",
            br#"{"max_tasks": 0}"#.to_vec(),
            400,
            "bad_claim",
        ),
    ];
    for (path, body, status, code) in worker_refusals {
        let got = post(&market, w.signer().unwrap(), path, body, Tamper::None).await;
        assert_refused(got, status, code);
    }
    // Claiming without an offer.
    let stranger = Signer::generate();
    assert_refused(
        post(
            &market,
            &stranger,
            "/v1/claims",
            br#"{"max_tasks": 1}"#.to_vec(),
            Tamper::None,
        )
        .await,
        409,
        "no_offer",
    );
    // Inputs are private to their client and assigned workers.
    let input = format!("/v1/inputs/{}", a.input);
    assert_refused(
        raw(
            &market,
            &stranger,
            Method::GET,
            &input,
            vec![],
            Tamper::None,
        )
        .await,
        403,
        "forbidden",
    );
    // Unknown endpoints and bad hashes.
    for (path, status) in [("/v1/nope", 404), ("/v1/models/XYZ", 400)] {
        let got = reqwest::get(format!("{}{path}", market.url)).await.unwrap();
        assert_eq!(got.status().as_u16(), status);
    }

    // Still serving, and the assignment is still the worker's to finish.
    market.anonymous().healthz().await.unwrap();
    assert_eq!(
        w.submit_result(a.assignment, &honest())
            .await
            .unwrap()
            .status,
        "submitted"
    );
    market.finish().await;
}
both!(hostile_requests_are_refused_cleanly_and_write_nothing);
