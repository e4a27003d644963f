//! The life of a bid over real HTTP: claims, results, the vote, payment,
//! extra replicas, lease expiry, refunds — on SQLite and on PostgreSQL.

mod common;

use std::time::Duration;

use common::*;
use tally_market::db::{int, query, text};
use tally_protocol::wire::{BidState, TaskState};
use tally_protocol::Stroops;

/// Three workers, one wrong: verified, the two honest ones paid price - fee,
/// the wrong one unpaid, the unused reservation refunded.
async fn a_bid_is_verified_by_three_workers_and_the_wrong_one_is_not_paid(backend: Backend) {
    let market = spawn_market(backend).await;
    let (client, model) = market.client_with_model(1_000_000).await;
    let price = 10_000;
    let created = client
        .bid_images(bid_request(&model, price), &[png(1)])
        .await
        .expect("bid accepted");
    assert_eq!(created.tasks.len(), 1);
    assert_eq!(created.reserved, Stroops(price * 5));
    assert_eq!(
        client.account_me().await.unwrap().reserved,
        Stroops(price * 5)
    );

    let workers = market.workers::<3>(&model).await;
    let mut held = Vec::new();
    for w in &workers {
        let got = w.claim(4, 2_000).await.unwrap();
        assert_eq!(got.assignments.len(), 1, "each worker gets one replica");
        assert_eq!(got.assignments[0].task, created.tasks[0]);
        assert_eq!(got.assignments[0].price, Stroops(price));
        // The input is readable by the assigned worker, in its canonical form.
        assert_eq!(got.assignments[0].input, created.inputs[0]);
        assert_eq!(
            w.input(&got.assignments[0].input).await.unwrap(),
            canonical(&png(1))
        );
        held.push(got.assignments[0].clone());
    }
    // All three replicas are out: a fourth worker gets nothing.
    let fourth = market.worker(&model).await;
    assert!(fourth.claim(1, 0).await.unwrap().assignments.is_empty());

    let wrong_outcome = submit(&workers[2], held[2].assignment, &wrong()).await;
    assert_eq!(wrong_outcome.task_status, TaskState::Running);
    submit(&workers[0], held[0].assignment, &honest()).await;
    let last = submit(&workers[1], held[1].assignment, &honest_noisy()).await;
    assert_eq!(last.task_status, TaskState::Verified);
    assert_eq!(last.status, "agreed");

    let status = client.bid(created.bid).await.unwrap();
    assert_eq!(status.status, BidState::Done);
    assert_eq!(status.tasks[0].status, TaskState::Verified);
    let consensus = status.tasks[0].consensus.clone().expect("consensus");
    let labels: Vec<&str> = consensus.iter().map(|d| d.label.as_str()).collect();
    assert!(
        labels.contains(&"dog") && labels.contains(&"car"),
        "{labels:?}"
    );

    let fee = price * 250 / 10_000;
    for (i, w) in workers.iter().enumerate() {
        let me = w.account_me().await.unwrap();
        if i < 2 {
            assert_eq!(me.earned_unpaid, Stroops(price - fee));
            assert_eq!(me.fees_paid, Stroops(fee));
            assert_eq!(me.reputation.agreed, 1);
        } else {
            assert_eq!(me.earned_unpaid, Stroops(0));
            assert_eq!(me.reputation.disagreed, 1);
        }
    }
    let me = client.account_me().await.unwrap();
    assert_eq!(me.reserved, Stroops(0));
    assert_eq!(me.balance, Stroops(1_000_000 - 2 * price));

    let ev = market.anonymous().evidence(created.tasks[0]).await.unwrap();
    assert_eq!(ev.results.len(), 3);
    let verdict = ev.verdict.expect("verdict");
    assert_eq!(verdict.agree.len(), 2);
    assert_eq!(verdict.disagree, vec![held[2].assignment]);
    let stats = market.anonymous().market().await.unwrap();
    assert_eq!(stats.verified_tasks, 1);
    assert_eq!(stats.recent_clearing_prices, vec![Stroops(price)]);
    market.finish().await;
}
both!(a_bid_is_verified_by_three_workers_and_the_wrong_one_is_not_paid);

/// A lease that runs out returns its slot; the next worker gets the task,
/// and the worker that let it expire loses reputation.
async fn an_expired_lease_is_reassigned(backend: Backend) {
    let market = spawn_leased(backend, Duration::from_millis(400)).await;
    let (client, model) = market.client_with_model(1_000_000).await;
    let mut req = bid_request(&model, 100);
    req.replicas = Some(1);
    req.quorum = Some(1);
    req.max_replicas = Some(1);
    let created = client.bid_images(req, &[png(2)]).await.unwrap();
    let sleepy = market.worker(&model).await;
    let first = sleepy.claim(1, 1_000).await.unwrap().assignments.remove(0);
    let other = market.worker(&model).await;
    // Waits on the market's wake-up when the lease expires, not on a timer of ours.
    let second = other.claim(1, 10_000).await.unwrap().assignments;
    assert_eq!(second.len(), 1, "the expired slot is handed out again");
    assert_eq!(second[0].task, created.tasks[0]);
    let late = sleepy
        .submit_result(first.assignment, &honest())
        .await
        .unwrap_err();
    assert_eq!(late.status().map(|s| s.as_u16()), Some(409), "{late}");
    assert_eq!(sleepy.account_me().await.unwrap().reputation.timed_out, 1);
    let done = submit(&other, second[0].assignment, &honest()).await;
    assert_eq!(done.task_status, TaskState::Verified);
    market.finish().await;
}
both!(an_expired_lease_is_reassigned);

/// A heartbeat keeps a lease alive past its first expiry.
async fn a_heartbeat_extends_the_lease(backend: Backend) {
    let market = spawn_leased(backend, Duration::from_millis(1_500)).await;
    let (client, model) = market.client_with_model(1_000_000).await;
    client
        .bid_images(bid_request(&model, 100), &[png(3)])
        .await
        .unwrap();
    let w = market.worker(&model).await;
    let a = w.claim(1, 1_000).await.unwrap().assignments.remove(0);
    let lease = w.heartbeat(a.assignment).await.unwrap();
    assert!(lease.lease_expires_at >= a.lease_expires_at);
    let other = market.worker(&model).await;
    assert_eq!(refused_status(other.heartbeat(a.assignment).await), 403);
    market.finish().await;
}
both!(a_heartbeat_extends_the_lease);

/// Without a quorum the market asks for more replicas up to max_replicas,
/// then fails the task and refunds the whole reservation.
async fn no_quorum_adds_replicas_then_fails_and_refunds(backend: Backend) {
    let market = spawn_market(backend).await;
    let (client, model) = market.client_with_model(1_000_000).await;
    let mut req = bid_request(&model, 1_000);
    req.replicas = Some(2);
    req.quorum = Some(2);
    req.max_replicas = Some(3);
    let created = client.bid_images(req, &[png(4)]).await.unwrap();
    let answers = [honest(), wrong(), common::ResultBody::other()];
    for (i, answer) in answers.iter().enumerate() {
        let w = market.worker(&model).await;
        let got = w.claim(1, 2_000).await.unwrap().assignments;
        assert_eq!(got.len(), 1, "replica {i} is offered");
        let outcome = w.submit_result(got[0].assignment, answer).await.unwrap();
        if i < 2 {
            assert_ne!(outcome.task_status, TaskState::Failed);
        } else {
            assert_eq!(outcome.task_status, TaskState::Failed);
        }
    }
    let extra = market.worker(&model).await;
    assert!(
        extra.claim(1, 0).await.unwrap().assignments.is_empty(),
        "no replica beyond max_replicas"
    );
    let status = client.bid(created.bid).await.unwrap();
    assert_eq!(status.status, BidState::Done);
    assert_eq!(status.tasks[0].status, TaskState::Failed);
    let me = client.account_me().await.unwrap();
    assert_eq!(
        me.balance,
        Stroops(1_000_000),
        "the whole reservation is refunded"
    );
    assert_eq!(me.reserved, Stroops(0));
    market.finish().await;
}
both!(no_quorum_adds_replicas_then_fails_and_refunds);

/// A bid on `image` at 2,000 stroops (default replicas), and three workers
/// that each claimed one of its replicas: the bid, the workers, their
/// assignments.
async fn three_held(
    market: &TestMarket,
    client: &tally_protocol::Client,
    model: &tally_protocol::Sha256Hex,
    image: Vec<u8>,
) -> (
    tally_protocol::wire::BidCreated,
    [tally_protocol::Client; 3],
    Vec<tally_protocol::wire::Assignment>,
) {
    let created = client
        .bid_images(bid_request(model, 2_000), &[image])
        .await
        .unwrap();
    let ws = market.workers::<3>(model).await;
    let mut held = Vec::new();
    for w in &ws {
        held.push(w.claim(1, 2_000).await.unwrap().assignments.remove(0));
    }
    (created, ws, held)
}

/// A result arriving after verification is judged against the consensus and
/// paid when it agrees.
async fn a_late_agreeing_result_is_paid(backend: Backend) {
    let market = spawn_market(backend).await;
    let (client, model) = market.client_with_model(1_000_000).await;
    let (created, ws, held) = three_held(&market, &client, &model, png(5)).await;
    submit(&ws[0], held[0].assignment, &honest()).await;
    let v = submit(&ws[1], held[1].assignment, &honest()).await;
    assert_eq!(v.task_status, TaskState::Verified);
    assert_eq!(
        client.bid(created.bid).await.unwrap().status,
        BidState::Open,
        "a replica is still out"
    );
    let late = submit(&ws[2], held[2].assignment, &honest_noisy()).await;
    assert_eq!(late.status, "agreed");
    assert_eq!(
        ws[2].account_me().await.unwrap().earned_unpaid,
        Stroops(2_000 - 50)
    );
    let status = client.bid(created.bid).await.unwrap();
    assert_eq!(status.status, BidState::Done);
    assert_eq!(
        client.account_me().await.unwrap().balance,
        Stroops(1_000_000 - 3 * 2_000)
    );
    let ev = market.anonymous().evidence(created.tasks[0]).await.unwrap();
    assert_eq!(ev.verdict.unwrap().agree.len(), 3);
    assert_eq!(ev.voted.len(), 2);

    // Every paid result is booked against its own assignment: the price
    // leaves the client's reservation, the fee goes to the operator, the
    // rest to that result's worker. The decision that verified the task paid
    // its two results in one posting; the late result's decision made one
    // more.
    let rows = query(
        "SELECT posting, assignment_id, book, owner, amount FROM ledger_entries
         WHERE kind = 'earn' ORDER BY assignment_id, book",
    )
    .fetch_all(&market.market.db)
    .await
    .unwrap();
    assert_eq!(rows.len(), 9, "three entries per paid result");
    let client_account = client.signer().unwrap().account().to_string();
    let operator = market.operator.account().to_string();
    let mut postings = Vec::new();
    for (w, a) in ws.iter().zip(&held) {
        let entries: Vec<(String, String, i64)> = rows
            .iter()
            .filter(|r| int(r, "assignment_id").unwrap() == a.assignment.0)
            .map(|r| {
                postings.push(int(r, "posting").unwrap());
                (
                    text(r, "book").unwrap(),
                    text(r, "owner").unwrap(),
                    int(r, "amount").unwrap(),
                )
            })
            .collect();
        let worker = w.signer().unwrap().account().to_string();
        assert_eq!(
            entries,
            vec![
                ("earned".to_string(), worker, 2_000 - 50),
                ("fees".to_string(), operator.clone(), 50),
                ("reserved".to_string(), client_account.clone(), -2_000),
            ],
            "the entries of assignment {}",
            a.assignment
        );
    }
    postings.dedup();
    assert_eq!(postings.len(), 2, "one posting per decision: {postings:?}");
    market.finish().await;
}
both!(a_late_agreeing_result_is_paid);

/// The last replica of a verified task reports a failure: that ends the
/// bid, which closes and refunds what it did not spend.
async fn a_failure_on_the_last_replica_of_a_verified_task_closes_the_bid(backend: Backend) {
    let market = spawn_market(backend).await;
    let (client, model) = market.client_with_model(1_000_000).await;
    let (created, ws, held) = three_held(&market, &client, &model, png(6)).await;
    for i in 0..2 {
        submit(&ws[i], held[i].assignment, &honest()).await;
    }
    assert_eq!(
        client.bid(created.bid).await.unwrap().status,
        BidState::Open,
        "a replica is still out"
    );
    ws[2]
        .report_failure(held[2].assignment, "out of memory")
        .await
        .unwrap();
    let status = client.bid(created.bid).await.unwrap();
    assert_eq!(status.status, BidState::Done, "the last replica ended");
    let me = client.account_me().await.unwrap();
    assert_eq!(me.reserved, Stroops(0));
    assert_eq!(me.balance, Stroops(1_000_000 - 2 * 2_000));
    market.finish().await;
}
both!(a_failure_on_the_last_replica_of_a_verified_task_closes_the_bid);

/// A worker that cannot run its input reports a failure; the slot goes back.
async fn a_reported_failure_returns_the_slot(backend: Backend) {
    let market = spawn_market(backend).await;
    let (client, model) = market.client_with_model(1_000_000).await;
    let mut req = bid_request(&model, 10);
    req.replicas = Some(1);
    req.quorum = Some(1);
    client.bid_images(req, &[png(6)]).await.unwrap();
    let a = market.worker(&model).await;
    let got = a.claim(1, 1_000).await.unwrap().assignments.remove(0);
    let out = a
        .report_failure(got.assignment, "model error: out of memory")
        .await
        .unwrap();
    assert_eq!(out.status, "failed");
    let b = market.worker(&model).await;
    assert_eq!(b.claim(1, 2_000).await.unwrap().assignments.len(), 1);
    // A failed assignment cannot then be submitted.
    assert_eq!(
        refused_status(a.submit_result(got.assignment, &honest()).await),
        409
    );
    market.finish().await;
}
both!(a_reported_failure_returns_the_slot);

/// replicas 3, quorum 2, max_replicas 3: a wrong answer and a right one
/// come in first. The third replica was never claimed, so the task waits
/// for it instead of failing; the third answer verifies it.
async fn an_early_wrong_answer_cannot_fail_a_task_whose_last_replica_is_unclaimed(
    backend: Backend,
) {
    let market = spawn_market(backend).await;
    let (client, model) = market.client_with_model(1_000_000).await;
    let req = tally_protocol::wire::BidRequest {
        max_replicas: Some(3),
        ..bid_request(&model, 10_000)
    };
    let created = client.bid_images(req, &[png(7)]).await.unwrap();
    let [liar, honest_a, honest_b] = market.workers(&model).await;
    let a = liar.claim(1, 2_000).await.unwrap().assignments.remove(0);
    let b = honest_a
        .claim(1, 2_000)
        .await
        .unwrap()
        .assignments
        .remove(0);
    liar.submit_result(a.assignment, &wrong()).await.unwrap();
    let second = submit(&honest_a, b.assignment, &honest()).await;
    assert_eq!(second.status, "submitted", "judged before its peers spoke");
    assert_ne!(second.task_status, TaskState::Failed);
    // The replica asked for is still there for the taking.
    let c = honest_b
        .claim(1, 2_000)
        .await
        .unwrap()
        .assignments
        .remove(0);
    assert_eq!(c.task, created.tasks[0]);
    let third = submit(&honest_b, c.assignment, &honest_noisy()).await;
    assert_eq!(third.task_status, TaskState::Verified);
    assert_eq!(liar.account_me().await.unwrap().earned_unpaid, Stroops(0));
    assert!(honest_a.account_me().await.unwrap().earned_unpaid.0 > 0);
    market.finish().await;
}
both!(an_early_wrong_answer_cannot_fail_a_task_whose_last_replica_is_unclaimed);
