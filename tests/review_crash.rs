//! A market killed (SIGKILL) while reviewers answer loses no review and
//! pays nothing twice: `tally serve` runs as a child process on a SQLite
//! file; for each disputed task the second, deciding review is sent while
//! the process is killed at a different moment; after a restart the
//! reviewer sends its answer again, which either applies now or is refused
//! as already answered (409) — never both, never neither. Every task ends
//! verified, every agreeing result and review is paid exactly once, the
//! ledger balances and the audit passes.

mod common;

use std::time::Duration;

use common::*;
use tally_protocol::wire::{BidRequest, OfferRequest, ReviewRequest, TaskState};
use tally_protocol::{Client, Signer, Stroops};

async fn serve(dir: &std::path::Path, db: &str, addr: &str) -> tokio::process::Child {
    serve_process(dir, db, addr, "serve", &["--settle-every", "50ms"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_market_killed_while_reviewers_answer_loses_nothing_and_pays_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("market.db").display());
    let operator = Signer::generate();
    std::fs::write(dir.path().join("operator.key"), operator.secret()).unwrap();
    let addr = free_addr();
    let url = format!("http://{addr}");
    let mut child = serve(dir.path(), &db, &addr).await;
    let anon = Client::new(&url, None);
    let operator = Client::new(&url, Some(operator));
    let client = Client::new(&url, Some(Signer::generate()));
    operator
        .credit(client.signer().unwrap().account(), Stroops(100_000_000))
        .await
        .unwrap();
    let model = model(&client).await;
    let tasks = 8u8;
    let images: Vec<Vec<u8>> = (0..tasks).map(png).collect();
    let bid = client
        .bid_images(
            BidRequest {
                replicas: Some(2),
                quorum: Some(2),
                max_replicas: Some(2),
                review_price: Some(Stroops(30_000)),
                ..bid_request(&model, 1_000)
            },
            &images,
        )
        .await
        .unwrap();
    for answer in [honest(), wrong()] {
        let w = Client::new(&url, Some(Signer::generate()));
        w.post_offer(&OfferRequest {
            models: vec![model.clone()],
            min_price: Stroops(0),
            capacity: 64,
        })
        .await
        .unwrap();
        let got = w.claim(u32::from(tasks), 5_000).await.unwrap().assignments;
        assert_eq!(got.len(), usize::from(tasks));
        for a in got {
            w.submit_result(a.assignment, &answer).await.unwrap();
        }
    }
    let reviewers: Vec<Client> = (0..2)
        .map(|_| Client::new(&url, Some(Signer::generate())))
        .collect();
    for r in &reviewers {
        operator
            .mark_reviewer(r.signer().unwrap().account(), true)
            .await
            .unwrap();
    }
    let pick = ReviewRequest {
        detections: honest().detections,
    };
    let (mut applied_before_kill, mut applied_after) = (0, 0);
    for round in 0..tasks {
        let first = reviewers[0].next_review().await.unwrap().expect("a ticket");
        let out = reviewers[0]
            .submit_review(first.review, &pick)
            .await
            .unwrap();
        assert_eq!(out.task_status, TaskState::Review);
        let second = reviewers[1].next_review().await.unwrap().expect("a ticket");
        assert_eq!(second.task, first.task);
        // Send the deciding review and kill the market while it may be
        // anywhere in it: before, during or after its transaction.
        let sender = reviewers[1].clone();
        let (review, body) = (second.review, pick.clone());
        let sent = tokio::spawn(async move { sender.submit_review(review, &body).await });
        tokio::time::sleep(Duration::from_micros(u64::from(round) * 700)).await;
        child.kill().await.unwrap();
        let first_try = sent.await.unwrap();
        child = serve(dir.path(), &db, &addr).await;
        match reviewers[1].submit_review(second.review, &pick).await {
            Ok(o) => {
                assert_eq!(o.task_status, TaskState::Verified);
                assert!(first_try.is_err(), "applied twice: {first_try:?}");
                applied_after += 1;
            }
            Err(e) => {
                assert_eq!(e.status().map(|s| s.as_u16()), Some(409), "{e}");
                applied_before_kill += 1;
            }
        }
    }
    println!("{applied_before_kill} reviews committed before the kill, {applied_after} after the restart");
    let status = client.bid(bid.bid).await.unwrap();
    assert!(
        status.tasks.iter().all(|t| t.status == TaskState::Verified),
        "{status:?}"
    );
    // Each task paid one result and two reviews; settlement pays them all.
    let due = usize::from(tasks) * 3;
    let records = records_paying(&anon, due, Duration::from_secs(30)).await;
    audit_cli_passes(&url).await;
    child.kill().await.unwrap();
    let store = tally_market::db::Db::connect(&db).await.unwrap();
    assert_eq!(assert_paid_exactly_once(&store, &records).await, due);
    store.close().await;
}
