//! Submission against a local stand-in Horizon server (port 0) that answers
//! with the documented Horizon response bodies (the fixtures of
//! `settlement/tests/fixtures`): success, timeout then success with the same
//! bytes resent, `tx_bad_seq` and the resync, `op_no_destination` leaving
//! that worker's payout pending with a reason.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tally_market::settle::submit::{holds, submit_round, EXPIRY_MARGIN_SECS};
use tally_market::settle::{next_tx_seq, settle_with, VALIDITY_SECS};
use tally_protocol::wire::SettlementRecord;
use tally_protocol::{Client, Stroops};
use tally_settlement::{decode_envelope, Endpoint, Submitter};

use super::{all_records, work_all};
use crate::both;
use crate::common::*;
use crate::stand_in;

const SUCCESS: &str = include_str!("../../settlement/tests/fixtures/horizon_submit_success.json");
const TIMEOUT: &str = include_str!("../../settlement/tests/fixtures/horizon_timeout.json");
const BAD_SEQ: &str =
    include_str!("../../settlement/tests/fixtures/horizon_submit_tx_bad_seq.json");
const OP_FAILED: &str =
    include_str!("../../settlement/tests/fixtures/horizon_submit_op_failed.json");
const NOT_FOUND: &str = include_str!("../../settlement/tests/fixtures/horizon_not_found.json");
const ACCOUNT: &str = include_str!("../../settlement/tests/fixtures/horizon_account.json");

/// The stand-in: `POST /transactions` answers `replies` in order (the last
/// one repeats); `GET /transactions/{hash}` does not know the hash;
/// `GET /accounts/{id}` reports `sequence`.
struct Horizon {
    submitter: Submitter,
    posted: Arc<Mutex<Vec<String>>>,
    sequence: Arc<AtomicI64>,
}

impl Horizon {
    async fn start(replies: Vec<(u16, String)>, sequence: i64) -> Horizon {
        let posted = Arc::new(Mutex::new(Vec::new()));
        let seq = Arc::new(AtomicI64::new(sequence));
        let (log, current) = (Arc::clone(&posted), Arc::clone(&seq));
        let url = stand_in::serve(move |req: stand_in::Request| {
            let answer = if req.method == "POST" && req.path == "/transactions" {
                let mut log = log.lock().unwrap();
                log.push(req.form("tx").expect("form field tx"));
                replies[(log.len() - 1).min(replies.len() - 1)].clone()
            } else if req.path.starts_with("/transactions/") {
                (404, NOT_FOUND.to_string())
            } else if req.path.starts_with("/accounts/") {
                let s = current.load(Ordering::SeqCst);
                let body = ACCOUNT.replace("\"4294967296\"", &format!("\"{s}\""));
                (200, body)
            } else {
                (404, NOT_FOUND.to_string())
            };
            async move { answer }
        })
        .await;
        let submitter =
            Submitter::with_timeout(Endpoint::Horizon(url), Duration::from_secs(5)).unwrap();
        Horizon {
            submitter,
            posted,
            sequence: seq,
        }
    }

    fn posted(&self) -> Vec<String> {
        self.posted.lock().unwrap().clone()
    }
}

fn now_secs() -> u64 {
    (chrono::Utc::now().timestamp_millis() / 1000) as u64
}

/// A market without a server of its own (the test drives submission), and
/// three workers who each earned one agreeing result.
async fn paid_work(backend: Backend) -> (TestMarket, Vec<Client>) {
    let market = spawn_tweaked(backend, |c| {
        c.settle_every = Duration::from_secs(3600);
        // A market that submits (the tests hand it their own
        // Horizon): its records read pending until sent.
        c.horizon = Some("http://127.0.0.1:9".into());
    })
    .await;
    let (client, model) = market.client_with_model(10_000_000).await;
    let workers = market.workers::<3>(&model).await;
    client
        .bid_images(bid_request(&model, 10_000), &[png(7)])
        .await
        .unwrap();
    assert_eq!(work_all(&workers).await, 3);
    (market, workers.into())
}

async fn record(market: &TestMarket, seq: u64) -> SettlementRecord {
    let records = all_records(&market.anonymous()).await;
    records.into_iter().find(|r| r.seq == seq).expect("record")
}

async fn audit_passes(market: &TestMarket) {
    let report = tally::audit::audit(&market.anonymous()).await.unwrap();
    assert!(report.ok, "{:?}", report.findings);
}

async fn a_stored_envelope_is_submitted_and_confirmed(backend: Backend) {
    let (market, _) = paid_work(backend).await;
    let h = Horizon::start(vec![(200, SUCCESS.into())], 4294967296).await;
    let m = &market.market;
    assert_eq!(settle_with(m, Some(&h.submitter)).await.unwrap(), 1);
    let r = record(&market, 1).await;
    assert_eq!(decode_envelope(&r.envelope_xdr).unwrap().seq, 4294967297);
    // Stored pending (this market has no --horizon of its own, so its API
    // calls the record not submitted; the test submits it by hand).
    let stored = tally_market::db::query("SELECT status FROM settlements WHERE seq = 1")
        .fetch_one(&m.db)
        .await
        .unwrap();
    assert_eq!(
        tally_market::db::text(&stored, "status").unwrap(),
        "pending"
    );
    submit_round(m, &h.submitter, now_secs()).await.unwrap();
    assert_eq!(h.posted(), [r.envelope_xdr.as_str()]);
    assert_eq!(record(&market, 1).await.status, "confirmed");
    assert_eq!(next_tx_seq(m).await.unwrap(), Some(4294967298));
    audit_passes(&market).await;
    market.finish().await;
}
both!(a_stored_envelope_is_submitted_and_confirmed);

async fn a_timeout_resends_the_same_bytes(backend: Backend) {
    let (market, _) = paid_work(backend).await;
    let replies = vec![(504, TIMEOUT.into()), (200, SUCCESS.into())];
    let h = Horizon::start(replies, 100).await;
    let m = &market.market;
    settle_with(m, Some(&h.submitter)).await.unwrap();
    submit_round(m, &h.submitter, now_secs()).await.unwrap();
    assert_eq!(record(&market, 1).await.status, "submitted");
    // In flight: no new record meanwhile.
    assert_eq!(settle_with(m, Some(&h.submitter)).await.unwrap(), 0);
    submit_round(m, &h.submitter, now_secs()).await.unwrap();
    let r = record(&market, 1).await;
    assert_eq!(r.status, "confirmed");
    assert_eq!(h.posted(), [r.envelope_xdr.clone(), r.envelope_xdr.clone()]);
    audit_passes(&market).await;
    market.finish().await;
}
both!(a_timeout_resends_the_same_bytes);

async fn a_bad_sequence_resyncs_and_replaces_only_after_max_time(backend: Backend) {
    let (market, workers) = paid_work(backend).await;
    let h = Horizon::start(vec![(400, BAD_SEQ.into()), (200, SUCCESS.into())], 100).await;
    let m = &market.market;
    settle_with(m, Some(&h.submitter)).await.unwrap();
    let first = record(&market, 1).await;
    assert_eq!(decode_envelope(&first.envelope_xdr).unwrap().seq, 101);
    // Someone else used the operator account meanwhile.
    h.sequence.store(9000, Ordering::SeqCst);
    submit_round(m, &h.submitter, now_secs()).await.unwrap();
    assert_eq!(
        next_tx_seq(m).await.unwrap(),
        Some(9001),
        "resynced for future records"
    );
    assert_eq!(record(&market, 1).await.status, "submitted");
    // Still valid: neither resent nor replaced.
    submit_round(m, &h.submitter, now_secs()).await.unwrap();
    assert_eq!(settle_with(m, Some(&h.submitter)).await.unwrap(), 0);
    assert_eq!(h.posted().len(), 1);
    let paid_before: Vec<Stroops> = futures::future::join_all(
        workers
            .iter()
            .map(|w| async { w.account_me().await.unwrap().paid_total }),
    )
    .await;
    assert!(paid_before.iter().all(|p| p.0 > 0));

    // Past max time, hash unknown: expired, its payouts due again.
    let later = now_secs() + VALIDITY_SECS + EXPIRY_MARGIN_SECS + 1;
    submit_round(m, &h.submitter, later).await.unwrap();
    assert_eq!(record(&market, 1).await.status, "expired");
    for (w, paid) in workers.iter().zip(&paid_before) {
        let me = w.account_me().await.unwrap();
        assert_eq!((me.paid_total, me.earned_unpaid), (Stroops(0), *paid));
    }
    assert_eq!(settle_with(m, Some(&h.submitter)).await.unwrap(), 1);
    let second = record(&market, 2).await;
    assert_eq!(decode_envelope(&second.envelope_xdr).unwrap().seq, 9001);
    let ids = |r: &SettlementRecord| {
        let mut v: Vec<_> = r
            .payouts
            .iter()
            .flat_map(|p| p.assignments.clone())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        ids(&second),
        ids(&first),
        "the replacement pays the same results"
    );
    submit_round(m, &h.submitter, now_secs()).await.unwrap();
    assert_eq!(record(&market, 2).await.status, "confirmed");
    audit_passes(&market).await;
    market.finish().await;
}
both!(a_bad_sequence_resyncs_and_replaces_only_after_max_time);

async fn a_missing_destination_leaves_that_payout_pending_with_a_reason(backend: Backend) {
    let (market, workers) = paid_work(backend).await;
    let m = &market.market;
    // The operation results in the order of the record's payouts.
    let mut failed: serde_json::Value = serde_json::from_str(OP_FAILED).unwrap();
    failed["extras"]["result_codes"]["operations"] =
        serde_json::json!(["op_success", "op_no_destination", "op_success"]);
    let replies = vec![(400, failed.to_string()), (200, SUCCESS.into())];
    let h = Horizon::start(replies, 100).await;
    settle_with(m, Some(&h.submitter)).await.unwrap();
    let first = record(&market, 1).await;
    assert_eq!(first.payouts.len(), 3);
    let victim = first.payouts[1].account.clone();
    submit_round(m, &h.submitter, now_secs()).await.unwrap();

    let row = tally_market::db::query("SELECT status, result_code FROM settlements WHERE seq = 1")
        .fetch_one(&m.db)
        .await
        .unwrap();
    assert_eq!(row.try_get::<String>("status").unwrap(), "failed");
    let code: String = row.try_get("result_code").unwrap();
    assert_eq!(code, format!("tx_failed: op_no_destination ({victim})"));
    let held = holds(m).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].worker, victim.as_str());
    assert_eq!(held[0].reason, "op_no_destination in settlement 1");

    // The others are paid in a new record; the victim's earnings wait.
    assert_eq!(settle_with(m, Some(&h.submitter)).await.unwrap(), 1);
    let second = record(&market, 2).await;
    assert_eq!(second.payouts.len(), 2);
    assert!(second.payouts.iter().all(|p| p.account != victim));
    submit_round(m, &h.submitter, now_secs()).await.unwrap();
    assert_eq!(record(&market, 2).await.status, "confirmed");
    for w in &workers {
        let me = w.account_me().await.unwrap();
        if me.account == victim {
            assert_eq!(me.paid_total, Stroops(0));
            assert_eq!(me.earned_unpaid, first.payouts[1].amount);
        } else {
            assert!(me.paid_total.0 > 0);
            assert_eq!(me.earned_unpaid, Stroops(0));
        }
    }
    assert_eq!(
        settle_with(m, Some(&h.submitter)).await.unwrap(),
        0,
        "on hold"
    );

    // When the hold runs out, the victim is retried in a record of its own.
    tally_market::db::query("UPDATE payout_holds SET retry_at = 0")
        .execute(&m.db)
        .await
        .unwrap();
    assert_eq!(settle_with(m, Some(&h.submitter)).await.unwrap(), 1);
    let third = record(&market, 3).await;
    assert_eq!(third.payouts.len(), 1);
    assert_eq!(third.payouts[0].account, victim);
    submit_round(m, &h.submitter, now_secs()).await.unwrap();
    assert_eq!(record(&market, 3).await.status, "confirmed");
    assert!(
        holds(m).await.unwrap().is_empty(),
        "paid: the hold is lifted"
    );
    audit_passes(&market).await;
    market.finish().await;
}
both!(a_missing_destination_leaves_that_payout_pending_with_a_reason);
