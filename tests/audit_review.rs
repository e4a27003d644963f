//! `tally audit` on a task decided by human review, against a stand-in
//! market built here: its evidence (two workers' signed results that
//! disagree, two signed reviews that pick the honest one), the operator's
//! signed reviewer marks, and a signed settlement record paying the honest
//! worker and both reviewers. As published it passes; each alteration a
//! dishonest market could make is caught with its finding kind and a
//! non-zero exit status. `cli`: reviews through the reviewer's and the
//! operator's commands against a real market, and `tally demo --review`,
//! each audited.

#[path = "audit_review/cli.rs"]
mod cli;
mod common;
mod stand_in;

use std::sync::Arc;

use common::audit_cli;

use base64::Engine as _;
use serde_json::{json, Value};
use tally_protocol::review;
use tally_protocol::vote::{Ballot, Verdict, VoteParams};
use tally_protocol::wire::{
    Evidence, MarketStats, ResultRequest, ReviewRequest, ReviewVerdict, ReviewerMark,
    ReviewerMarkRequest, SignedResult, SignedReview, TaskState,
};
use tally_protocol::{AssignmentId, BidId, Detection, Domain, Sha256Hex, Signer, Stroops, TaskId};
use tally_settlement::{
    Asset, Keypair, Network, Payout, PublicKey, RecordBody, TimeBounds, GENESIS_PREV_HASH,
};

const NETWORK: &str = "Test SDF Network ; September 2015";
const PRICE: i64 = 10_000;
const REVIEW_PRICE: i64 = 4_000;
const FEE_BPS: u32 = 250;
const TASK: TaskId = TaskId(7);
/// When the reviews were signed (unix ms).
const REVIEWED_AT: i64 = 1_750_000_000_000;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn nonce() -> String {
    tally_protocol::signing::fresh_nonce()
}

fn det(class_id: u32, label: &str, x: f64) -> Detection {
    Detection {
        class_id,
        label: label.into(),
        score: 0.85,
        bbox: [x, 40.0, x + 120.0, 300.0],
    }
}

fn honest() -> Vec<Detection> {
    vec![det(16, "dog", 100.0)]
}

fn wrong() -> Vec<Detection> {
    vec![det(17, "horse", 300.0)]
}

/// The market the stand-in's evidence is signed for: its network and the
/// operator's account.
fn domain(operator: &Signer) -> Domain {
    Domain::new(NETWORK, operator.account().clone())
}

fn result(d: &Domain, worker: &Signer, id: i64, detections: Vec<Detection>) -> SignedResult {
    let body = serde_json::to_vec(&ResultRequest {
        detections,
        elapsed_ms: 12.0,
    })
    .unwrap();
    let (at, nonce) = (REVIEWED_AT - 60_000, nonce());
    let path = format!("/v1/assignments/{id}/result");
    SignedResult {
        assignment: AssignmentId(id),
        worker: worker.account().clone(),
        body: b64(&body),
        timestamp: at,
        signature: worker
            .sign_at(d, "POST", &path, &body, at, &nonce)
            .signature,
        nonce,
    }
}

fn signed_review(
    d: &Domain,
    reviewer: &Signer,
    id: i64,
    detections: Vec<Detection>,
) -> SignedReview {
    let body = serde_json::to_vec(&ReviewRequest { detections }).unwrap();
    let nonce = nonce();
    let path = format!("/v1/reviews/{id}");
    SignedReview {
        review: AssignmentId(id),
        reviewer: reviewer.account().clone(),
        body: b64(&body),
        timestamp: REVIEWED_AT,
        signature: reviewer
            .sign_at(d, "POST", &path, &body, REVIEWED_AT, &nonce)
            .signature,
        nonce,
        received_at: REVIEWED_AT + 40,
    }
}

fn mark(d: &Domain, operator: &Signer, id: i64, who: &Signer, at: i64) -> ReviewerMark {
    let body = serde_json::to_vec(&ReviewerMarkRequest {
        account: who.account().clone(),
        verified: true,
    })
    .unwrap();
    let nonce = nonce();
    ReviewerMark {
        id,
        account: who.account().clone(),
        verified: true,
        signer: operator.account().clone(),
        body: b64(&body),
        timestamp: at,
        signature: operator
            .sign_at(d, "POST", ReviewerMark::PATH, &body, at, &nonce)
            .signature,
        nonce,
    }
}

/// A reviewed market as published: `GET` path -> JSON.
#[derive(Clone)]
struct Published {
    market: Value,
    settlements: Value,
    evidence: Value,
    marks: Value,
}

struct Parties {
    operator: Signer,
    reviewers: [Signer; 2],
}

/// Results 1 (honest) and 2 (wrong) disagree; reviews 3 and 4 pick the
/// honest answer; record 1 pays result 1 and both reviews.
fn reviewed_market() -> (Published, Parties) {
    let operator = Signer::generate();
    let d = domain(&operator);
    let (honest_worker, wrong_worker) = (Signer::generate(), Signer::generate());
    let reviewers = [Signer::generate(), Signer::generate()];
    let params = VoteParams::default();
    let reviews = vec![
        signed_review(&d, &reviewers[0], 3, honest()),
        signed_review(&d, &reviewers[1], 4, honest()),
    ];
    let ballots: Vec<Ballot> = [3, 4]
        .map(|id| Ballot {
            assignment: AssignmentId(id),
            detections: honest(),
        })
        .into();
    let decision = review::review_vote(&params, &ballots);
    assert!(review::decides(&params, &decision));
    let evidence = Evidence {
        task: TASK,
        bid: BidId(1),
        status: TaskState::Verified,
        model: Sha256Hex::of(b"model"),
        input: Sha256Hex::of(b"image"),
        price: Stroops(PRICE),
        fee_bps: FEE_BPS,
        params,
        results: vec![
            result(&d, &honest_worker, 1, honest()),
            result(&d, &wrong_worker, 2, wrong()),
        ],
        voted: vec![AssignmentId(1), AssignmentId(2)],
        verdict: Some(Verdict {
            consensus: decision.consensus.clone(),
            agree: vec![AssignmentId(1)],
            disagree: vec![AssignmentId(2)],
            numbers: decision.numbers,
        }),
        weights: vec![],
        credibility: None,
        withheld: false,
        check: false,
        published_at: None,
        excluded: vec![],
        revisions: vec![],
        review_price: Some(Stroops(REVIEW_PRICE)),
        reviews,
        review: Some(ReviewVerdict {
            voted: vec![AssignmentId(3), AssignmentId(4)],
            verdict: decision,
        }),
    };
    let net = |p: i64| p - p * i64::from(FEE_BPS) / 10_000;
    let pay = |who: &Signer, amount: i64, id: i64| {
        Payout::new(
            PublicKey::parse(who.account().as_str()).unwrap(),
            tally_settlement::Stroops(amount),
            vec![id],
        )
    };
    let keypair = Keypair::from_seed(&operator.seed());
    let record = RecordBody::new(
        1,
        GENESIS_PREV_HASH,
        Network::from_passphrase(NETWORK).unwrap(),
        keypair.public_key(),
        Asset::Native,
        vec![
            pay(&honest_worker, net(PRICE), 1),
            pay(&reviewers[0], net(REVIEW_PRICE), 3),
            pay(&reviewers[1], net(REVIEW_PRICE), 4),
        ],
    )
    .unwrap()
    .sign(
        &keypair,
        1,
        100,
        TimeBounds {
            min_time: 0,
            max_time: 2_000_000_000,
        },
    )
    .unwrap();
    let mut record = serde_json::to_value(&record).unwrap();
    for p in record["payouts"].as_array_mut().unwrap() {
        let tasks = vec![TASK; p["assignments"].as_array().unwrap().len()];
        p["tasks"] = json!(tasks);
    }
    record["status"] = "confirmed".into();
    let market = MarketStats {
        open_tasks: 0,
        running_tasks: 0,
        verified_tasks: 1,
        failed_tasks: 0,
        review_tasks: 0,
        price_levels: vec![],
        workers_online: 0,
        workers: vec![],
        recent_clearing_prices: vec![Stroops(PRICE)],
        fee_bps: FEE_BPS,
        asset: "native".into(),
        network: NETWORK.into(),
        operator: operator.account().clone(),
        holdback_secs: 0,
        trusted_after: 24,
    };
    let marks = vec![
        mark(&d, &operator, 1, &reviewers[0], REVIEWED_AT - 3_600_000),
        mark(&d, &operator, 2, &reviewers[1], REVIEWED_AT - 1_000),
    ];
    let published = Published {
        market: serde_json::to_value(market).unwrap(),
        settlements: json!({ "records": [record] }),
        evidence: serde_json::to_value(evidence).unwrap(),
        marks: json!({ "marks": marks }),
    };
    (
        published,
        Parties {
            operator,
            reviewers,
        },
    )
}

/// Serve `p` as a market would (every other path: 404).
async fn serve(p: Published) -> String {
    let p = Arc::new(p);
    stand_in::serve(move |req: stand_in::Request| {
        let p = Arc::clone(&p);
        async move {
            let path = req.path.as_str();
            let found = match path {
                "/v1/market" => Some(p.market.clone()),
                "/v1/settlements?after=0" => Some(p.settlements.clone()),
                _ if path.starts_with("/v1/settlements?after=") => Some(json!({ "records": [] })),
                _ if path == format!("/v1/tasks/{TASK}/evidence") => Some(p.evidence.clone()),
                "/v1/reviewers" => Some(p.marks.clone()),
                _ => None,
            };
            match found {
                Some(v) => (200, v.to_string()),
                None => (
                    404,
                    json!({ "error": { "code": "not_found", "message": path } }).to_string(),
                ),
            }
        }
    })
    .await
}

fn kinds(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect()
}

/// Audit `p`: it must fail with a finding of `kind`.
async fn caught(what: &str, p: Published, kind: &str) {
    let url = serve(p).await;
    let (ok, report) = audit_cli(&url).await;
    assert!(!ok, "{what}: the audit must fail: {report}");
    assert_eq!(report["ok"], false, "{what}");
    assert!(
        kinds(&report).iter().any(|k| k == kind),
        "{what}: expected {kind}, got {report}"
    );
}

/// Flip one bit of the last byte of base64 data (an ed25519 signature's).
fn flip_last_byte(v: &Value) -> Value {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut bytes = engine.decode(v.as_str().unwrap()).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    Value::String(engine.encode(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_market_that_paid_reviews_as_signed_passes_the_audit() {
    let (published, _) = reviewed_market();
    let url = serve(published).await;
    let (ok, report) = audit_cli(&url).await;
    assert!(ok, "{report}");
    assert_eq!(report["findings"], json!([]));
    assert_eq!(report["reviews"], 2, "both paid reviews were checked");
    assert_eq!(report["payouts"], 3);
    assert_eq!(report["amount"], 9_750 + 2 * 3_900);
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["audit", "--market", &url])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2 paid reviews checked"), "{text}");
    assert!(text.contains("all consistent"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_review_signature_fails_the_audit() {
    let (mut p, _) = reviewed_market();
    let sig = &mut p.evidence["reviews"][0]["signature"];
    *sig = flip_last_byte(sig);
    caught("a review's signature", p, "review_signature").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_marked_only_after_the_review_fails_the_audit() {
    let (mut p, parties) = reviewed_market();
    // The second reviewer's mark is re-signed a second after its review.
    p.marks["marks"][1] = json!(mark(
        &domain(&parties.operator),
        &parties.operator,
        2,
        &parties.reviewers[1],
        REVIEWED_AT + 1_000
    ));
    caught("a mark after the review", p, "reviewer_not_verified").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_other_alteration_of_a_review_is_caught() {
    let (published, parties) = reviewed_market();
    let stranger = Signer::generate();
    let d = domain(&parties.operator);
    type Alter = Box<dyn Fn(&mut Published)>;
    let cases: Vec<(&str, &str, Alter)> = vec![
        (
            "a mark not signed by the operator",
            "bad_reviewer_mark",
            Box::new(move |p| {
                p.marks["marks"][0] = json!(mark(
                    &d,
                    &stranger,
                    1,
                    &parties.reviewers[0],
                    REVIEWED_AT - 5_000
                ));
            }),
        ),
        (
            "a mark whose verified flag was flipped after signing",
            "bad_reviewer_mark",
            Box::new(|p| p.marks["marks"][1]["verified"] = false.into()),
        ),
        (
            "the reviews' verdict",
            "review_vote",
            Box::new(|p| {
                let v = &mut p.evidence["review"]["verdict"];
                let moved = v["agree"].as_array_mut().unwrap().remove(0);
                v["disagree"].as_array_mut().unwrap().push(moved);
            }),
        ),
        (
            "a voted review left out of the evidence",
            "review_vote",
            Box::new(|p| {
                p.evidence["reviews"].as_array_mut().unwrap().remove(1);
            }),
        ),
        (
            "the task's consensus, not the reviews'",
            "verdict_mismatch",
            Box::new(|p| p.evidence["verdict"]["consensus"] = json!(wrong())),
        ),
        (
            "a review's payout amount",
            "review_amount",
            Box::new(|p| {
                let payouts = p.settlements["records"][0]["payouts"]
                    .as_array_mut()
                    .unwrap();
                let review = payouts
                    .iter_mut()
                    .find(|x| x["assignments"] == json!([3]))
                    .unwrap();
                review["amount"] = (review["amount"].as_i64().unwrap() + 1).into();
            }),
        ),
        (
            "the review price",
            "review_amount",
            Box::new(|p| p.evidence["review_price"] = 5_000.into()),
        ),
        (
            "each reviewer paid for the other's review",
            "wrong_reviewer",
            Box::new(|p| {
                let payouts = p.settlements["records"][0]["payouts"]
                    .as_array_mut()
                    .unwrap();
                for x in payouts.iter_mut() {
                    if x["assignments"] == json!([3]) {
                        x["assignments"] = json!([4]);
                    } else if x["assignments"] == json!([4]) {
                        x["assignments"] = json!([3]);
                    }
                }
            }),
        ),
    ];
    for (what, kind, alter) in cases {
        let mut p = published.clone();
        alter(&mut p);
        caught(what, p, kind).await;
    }
}
