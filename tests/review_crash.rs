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
use tally_protocol::wire::TaskState;
use tally_protocol::{Client, Signer};

async fn serve(at: &ServeDir) -> tokio::process::Child {
    at.serve(&["--settle-every", "50ms"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_market_killed_while_reviewers_answer_loses_nothing_and_pays_once() {
    let at = ServeDir::new();
    let url = at.url.clone();
    let mut child = serve(&at).await;
    let anon = Client::new(&url, None);
    let operator = Client::new(&url, Some(at.operator.clone()));
    let (client, model) = at.client_with_model(100_000_000).await;
    let tasks = 8u8;
    let images: Vec<Vec<u8>> = (0..tasks).map(png).collect();
    let bid = client
        .bid_images(review_bid(&model, 1_000, 30_000), &images)
        .await
        .unwrap();
    for answer in [honest(), wrong()] {
        let w = at.worker(&model).await;
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
    let pick = honest_review();
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
        child = serve(&at).await;
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
    let store = tally_market::db::Db::connect(&at.db).await.unwrap();
    assert_eq!(assert_paid_exactly_once(&store, &records).await, due);
    store.close().await;
}
