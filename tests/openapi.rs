//! The API document cannot drift from the API, on SQLite and PostgreSQL:
//! `GET /openapi.json` is a valid OpenAPI 3.1 document (checked against the
//! published 3.1 schema, vendored under `tests/fixtures/`), every `$ref`
//! resolves, it names exactly the routes of `market/src/http/api.rs`, each
//! documented operation is routed, and every answer of a scenario driving
//! every endpoint for real (its status, media type and JSON body) is the
//! one the document gives for that path, method and status.

#[path = "openapi/check.rs"]
mod check;
mod common;
#[path = "openapi/reviews.rs"]
mod reviews;

use std::collections::BTreeSet;

use base64::Engine as _;
use check::{check_document, every_operation_is_routed, operations, Answer, Api};
use common::*;
use serde_json::{json, Value};
use tally_protocol::signing;
use tally_protocol::wire::*;
use tally_protocol::Signer;

async fn document_and_api_agree(backend: Backend) {
    let market = spawn_market(backend).await;
    let mut api = Api::new(&market.url).await;
    check_document(&api.doc);
    every_operation_is_routed(&mut api).await;
    // ... and so is an answer that is not what the document says.
    let models = json!({ "$ref": "#/components/schemas/ModelList" });
    let wrong = json!({ "models": [{ "model": "ABC", "bytes": -1 }] });
    assert_eq!(api.errors(&models, &wrong, "a wrong answer").len(), 2);
    let operator = market.operator.clone();
    let client = Signer::generate();
    let (w1, w2, w3) = (Signer::generate(), Signer::generate(), Signer::generate());

    // Admin: credit, with the operator's key only.
    let credit = json!({ "account": client.account(), "amount": 1_000_000 });
    api.post_to(&operator, "/v1/admin/credits", credit.clone(), 200)
        .await;
    let e = api.post_to(&client, "/v1/admin/credits", credit, 403).await;
    assert_eq!(e["error"]["code"], "forbidden");

    // Models.
    let onnx = tally_model::build::tiny_yolox("tests");
    let up = api
        .call(Some(&client), "post", "/v1/models", "/v1/models", onnx)
        .await;
    assert_eq!(up.status, 200);
    let model = up.json()["model"].as_str().unwrap().to_string();
    api.get(None, "/v1/models", "/v1/models", 200).await;
    let got = api
        .call(
            None,
            "get",
            "/v1/models/{hash}",
            &format!("/v1/models/{model}"),
            vec![],
        )
        .await;
    assert_eq!(got.status, 200);
    let bad = api
        .call(None, "get", "/v1/models/{hash}", "/v1/models/nope", vec![])
        .await;
    assert_eq!(bad.status, 400);

    // Offers, a bid, the event stream opened before anything is decided.
    for w in [&w1, &w2, &w3] {
        let offer = json!({ "models": [model], "min_price": 0, "capacity": 8 });
        api.post(w, "/v1/offers", "/v1/offers", Some(offer), 200)
            .await;
    }
    let mut sse = api
        .http
        .get(format!("{}/v1/events", market.url))
        .send()
        .await
        .unwrap();
    let inputs: Vec<String> = [png(1), png(2)]
        .iter()
        .map(|p| base64::engine::general_purpose::STANDARD.encode(p))
        .collect();
    let bid_req =
        json!({ "model": model, "price": 1000, "replicas": 2, "quorum": 2, "inputs": inputs });
    let bid = api.post_to(&client, "/v1/bids", bid_req.clone(), 201).await;
    let bid_id = bid["bid"].as_i64().unwrap();
    let mut wrong = bid_req.clone();
    wrong["colour"] = json!("blue");
    let e = api.post_to(&client, "/v1/bids", wrong, 400).await;
    assert_eq!(e["error"]["code"], "bad_json");
    let e = api.post_to(&w1, "/v1/bids", bid_req, 402).await;
    assert_eq!(e["error"]["code"], "insufficient_funds");
    let bid_path = format!("/v1/bids/{bid_id}");
    api.get(Some(&client), "/v1/bids/{id}", &bid_path, 200)
        .await;
    api.get(Some(&client), "/v1/bids/{id}", "/v1/bids/abc", 400)
        .await;
    api.get(Some(&client), "/v1/bids/{id}", "/v1/bids/999999", 404)
        .await;
    api.get(Some(&w1), "/v1/bids/{id}", &bid_path, 403).await;

    // Claims, an input, a heartbeat, results and a failure.
    let claim = json!({ "max_tasks": 2, "wait_ms": 5000 });
    let mut claimed = Vec::new();
    for w in [&w1, &w2] {
        let c = api
            .post(w, "/v1/claims", "/v1/claims", Some(claim.clone()), 200)
            .await;
        let got: Claimed = serde_json::from_value(c).unwrap();
        assert_eq!(got.assignments.len(), 2);
        claimed.push(got.assignments);
    }
    let a1 = &claimed[0];
    let input = format!("/v1/inputs/{}", a1[0].input);
    assert_eq!(
        api.call(Some(&w1), "get", "/v1/inputs/{hash}", &input, vec![])
            .await
            .status,
        200
    );
    assert_eq!(
        api.call(Some(&w3), "get", "/v1/inputs/{hash}", &input, vec![])
            .await
            .status,
        403
    );
    let hb = |a: &Assignment| format!("/v1/assignments/{}/heartbeat", a.assignment);
    let result = |a: &Assignment| format!("/v1/assignments/{}/result", a.assignment);
    api.post(
        &w1,
        "/v1/assignments/{id}/heartbeat",
        &hb(&a1[0]),
        None,
        200,
    )
    .await;
    let honest = serde_json::to_value(honest()).unwrap();
    let tmpl = "/v1/assignments/{id}/result";
    // Task A: both agree; task B: w1 fails, w2 and then w3 agree.
    let task_a = a1[0].task;
    let pick = |v: &[Assignment], on_a: bool| {
        v.iter()
            .find(|a| (a.task == task_a) == on_a)
            .unwrap()
            .clone()
    };
    let (w1a, w2a) = (pick(&claimed[0], true), pick(&claimed[1], true));
    let (w1b, w2b) = (pick(&claimed[0], false), pick(&claimed[1], false));
    api.post(&w1, tmpl, &result(&w1a), Some(honest.clone()), 200)
        .await;
    let done = api
        .post(&w2, tmpl, &result(&w2a), Some(honest.clone()), 200)
        .await;
    assert_eq!(done["task_status"], "verified");
    let e = api
        .post(&w2, tmpl, &result(&w2a), Some(honest.clone()), 409)
        .await;
    assert_eq!(e["error"]["code"], "already_finished");
    api.post(&w2, "/v1/assignments/{id}/heartbeat", &hb(&w1b), None, 403)
        .await;
    let failure = format!("/v1/assignments/{}/failure", w1b.assignment);
    let why = json!({ "reason": "out of memory" });
    api.post(
        &w1,
        "/v1/assignments/{id}/failure",
        &failure,
        Some(why),
        200,
    )
    .await;
    api.post(&w2, tmpl, &result(&w2b), Some(honest.clone()), 200)
        .await;
    let c = api.post_to(&w3, "/v1/claims", claim, 200).await;
    let got: Claimed = serde_json::from_value(c).unwrap();
    assert_eq!(got.assignments.len(), 1);
    api.post(&w3, tmpl, &result(&got.assignments[0]), Some(honest), 200)
        .await;
    let status: BidStatus = serde_json::from_value(
        api.get(Some(&client), "/v1/bids/{id}", &bid_path, 200)
            .await,
    )
    .unwrap();
    assert_eq!(status.status, BidState::Done);

    // Evidence, accounts, withdrawals, a settlement record.
    for t in &status.tasks {
        let path = format!("/v1/tasks/{}/evidence", t.task);
        api.get(None, "/v1/tasks/{id}/evidence", &path, 200).await;
    }
    api.get(
        None,
        "/v1/tasks/{id}/evidence",
        "/v1/tasks/999999/evidence",
        404,
    )
    .await;
    for who in [&client, &w1] {
        api.get(Some(who), "/v1/accounts/me", "/v1/accounts/me", 200)
            .await;
        api.get(Some(who), "/v1/deposits", "/v1/deposits", 200)
            .await;
    }
    let w = api
        .post_to(&client, "/v1/withdrawals", json!({ "amount": 5000 }), 200)
        .await;
    let e = api
        .post_to(&client, "/v1/withdrawals", json!({ "amount": 0 }), 400)
        .await;
    assert_eq!(e["error"]["code"], "bad_amount");
    api.get(Some(&client), "/v1/withdrawals", "/v1/withdrawals", 200)
        .await;
    let ev = format!("/v1/withdrawals/{}/evidence", w["id"]);
    api.get(None, "/v1/withdrawals/{id}/evidence", &ev, 200)
        .await;
    tally_market::settle::settle_now(&market.market)
        .await
        .expect("settles");
    let page = api
        .get(
            None,
            "/v1/settlements",
            "/v1/settlements?after=0&limit=10",
            200,
        )
        .await;
    assert!(
        !page["records"].as_array().unwrap().is_empty(),
        "a record to check"
    );
    api.get(None, "/v1/settlements", "/v1/settlements?after=x", 400)
        .await;
    api.get(None, "/v1/market", "/v1/market", 200).await;
    let record = format!("/v1/workers/{}", w1.account());
    api.get(None, "/v1/workers/{account}", &record, 200).await;
    api.get(None, "/v1/workers/{account}", "/v1/workers/GNOPE", 400)
        .await;
    // The market's own audit: 404 until it has run, then its report (the
    // real checks of `tally audit`, run here as `tally serve` runs them).
    api.get(None, "/v1/audit", "/v1/audit", 404).await;
    let report = tally::audit::audit(&market.anonymous()).await.unwrap();
    *market.market.audit.lock().unwrap() = Some(report.to_wire());
    api.get(None, "/v1/audit", "/v1/audit", 200).await;
    for admin in ["/v1/admin/accounts", "/v1/admin/workers", "/v1/admin/bids"] {
        api.get(Some(&operator), admin, admin, 200).await;
        api.get(Some(&client), admin, admin, 403).await;
    }

    // A replayed request is refused with the documented 409.
    let h = client.sign(&api.domain, "GET", "/v1/accounts/me", b"");
    for expect in [200, 409] {
        let resp = api
            .http
            .get(format!("{}/v1/accounts/me", market.url))
            .header(signing::HEADER_ACCOUNT, h.account.as_str())
            .header(signing::HEADER_TIMESTAMP, h.timestamp_ms.to_string())
            .header(signing::HEADER_NONCE, h.nonce.clone())
            .header(signing::HEADER_SIGNATURE, h.signature.clone())
            .send()
            .await
            .unwrap();
        let a = Answer {
            status: resp.status().as_u16(),
            media: "application/json".into(),
            body: resp.bytes().await.unwrap().to_vec(),
        };
        assert_eq!(a.status, expect);
        api.check("get", "/v1/accounts/me", &a);
    }

    // The stream's events match the document's item schema.
    let stream = &api.doc["paths"]["/v1/events"]["get"]["responses"]["200"]["content"];
    let item = stream["text/event-stream"]["x-item-schema"].clone();
    assert_eq!(sse.headers()["content-type"], "text/event-stream");
    let mut kinds = BTreeSet::new();
    let mut buf = String::new();
    while !kinds.contains("settlement_written") {
        for data in sse_data(&mut sse, &mut buf).await {
            let event: Value = serde_json::from_str(&data).unwrap();
            api.validate(&item, &event, "an event of GET /v1/events");
            kinds.insert(event["type"].as_str().unwrap().to_string());
        }
    }
    assert!(
        kinds.contains("task_decided") && kinds.contains("bid_done"),
        "{kinds:?}"
    );

    reviews::exercise_reviews(&mut api, &market).await;

    // Every operation's success answer was checked.
    for (method, path) in operations(&api.doc) {
        let ok = api.doc["paths"][&path][&method]["responses"]
            .as_object()
            .unwrap()
            .keys()
            .find(|s| s.starts_with('2'))
            .unwrap()
            .parse::<u16>()
            .unwrap();
        if path == "/v1/events" {
            continue; // checked above, as a stream
        }
        assert!(
            api.seen.contains(&(method.clone(), path.clone(), ok)),
            "{method} {path} {ok} was never exercised"
        );
    }
    market.finish().await;
}
both!(document_and_api_agree);
