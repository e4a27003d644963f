//! Trust after the fact, over real HTTP on SQLite and PostgreSQL: a worker
//! caught by a spot check has every task it helped verify decided again
//! (a verdict that still holds without it stands, one that does not is
//! undone, the task runs again and the client sees the revision); earnings
//! of workers not yet trusted wait out a probation before settlement; an
//! untrusted worker does not join another on a task while a trusted one
//! waits; and a trusted worker's single result verifies a default bid.

mod common;

use std::time::Duration;

use common::golden::*;
use common::*;
use tally_protocol::wire::{BidRequest, BidState, TaskState};
use tally_protocol::Stroops;

/// A market checking untrusted workers only (once the test lets checks
/// go: they start paused), with no probation.
async fn checked_market(backend: Backend) -> TestMarket {
    let market = spawn_tweaked(backend, |c| {
        with_check_rates(c, 1.0, 1.0, 0.0);
        c.holdback = Duration::ZERO;
    })
    .await;
    market.market.check_pool.pause(true);
    market
}

/// The sum of every ledger balance: zero while the books balance.
async fn ledger_sum(market: &TestMarket) -> i64 {
    let row = market
        .read_one(tally_market::db::query(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total FROM ledger_entries",
        ))
        .await;
    row.try_get::<i64>("total").unwrap()
}

async fn a_caught_workers_verdicts_are_decided_again(backend: Backend) {
    let market = checked_market(backend).await;
    let client = market.funded_client(1_000_000).await;
    let sample = std::fs::read(golden_dir().join("models/yolox_nano.onnx")).unwrap();
    let model = client.upload_model(sample).await.unwrap().model;
    let liar = market.worker(&model).await;
    let (h1, h2) = (market.worker(&model).await, market.worker(&model).await);
    set_checks(&market, &h1, 30).await;
    set_checks(&market, &h2, 30).await;

    // Task A: the liar alone, on a bid that asks little confidence: its
    // wrong answer is verified. Task B: the liar and h1 agree on the truth.
    let lax = BidRequest {
        confidence: Some(0.6),
        max_replicas: Some(3),
        ..BidRequest::new(model.clone(), Stroops(10_000))
    };
    let bid_a = client.bid_images(lax.clone(), &[png(1)]).await.unwrap();
    let a = claim_one(&liar).await;
    assert_eq!(a.task, bid_a.tasks[0]);
    liar.submit_result(a.assignment, &wrong()).await.unwrap();
    let status = client.bid(bid_a.bid).await.unwrap();
    assert_eq!(status.tasks[0].status, TaskState::Verified);
    // On a bid asking 0.9 the liar alone (0.6) is not enough: one more
    // replica, which h1 takes.
    let firmer = BidRequest {
        confidence: Some(0.9),
        ..lax.clone()
    };
    let bid_b = client.bid_images(firmer, &[png(2)]).await.unwrap();
    let b1 = claim_one(&liar).await;
    assert_eq!(b1.task, bid_b.tasks[0]);
    liar.submit_result(b1.assignment, &honest()).await.unwrap();
    let b2 = claim_one(&h1).await;
    assert_eq!(b2.task, bid_b.tasks[0]);
    h1.submit_result(b2.assignment, &honest()).await.unwrap();
    assert_eq!(
        client.bid(bid_b.bid).await.unwrap().tasks[0].status,
        TaskState::Verified
    );
    assert_eq!(client.bid(bid_a.bid).await.unwrap().status, BidState::Done);
    assert_eq!(client.bid(bid_b.bid).await.unwrap().status, BidState::Done);
    let liar_earned = liar.account_me().await.unwrap().earned_unpaid;
    assert!(liar_earned.0 > 0);

    // Checks go out, and more client work comes in; the liar's next claim
    // is a check in its place, and it lies.
    market.market.check_pool.pause(false);
    checks_ready(&market, &model, 1).await;
    let bid_c = client.bid_images(lax.clone(), &[png(3)]).await.unwrap();
    let before = client.account_me().await.unwrap();
    let check = claim_one(&liar).await;
    assert!(![bid_a.tasks[0], bid_b.tasks[0], bid_c.tasks[0]].contains(&check.task));
    let input = liar.input(&check.input).await.unwrap();
    assert!(answer_for(&input).is_some(), "a golden image");
    let mut events = market.market.events.subscribe();
    liar.submit_result(check.assignment, &wrong())
        .await
        .unwrap();
    assert_eq!(liar.account_me().await.unwrap().checks.failed, 1);
    // Listeners are told of the undone verdict (task A), not of B's.
    let mut revised = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let tally_protocol::wire::MarketEvent::TaskRevised { task } = e {
            revised.push(task);
        }
    }
    assert_eq!(revised, vec![bid_a.tasks[0]]);

    // Task B stands on h1 alone; the liar's result no longer votes.
    let b = client.bid(bid_b.bid).await.unwrap();
    assert_eq!(
        (b.status, b.tasks[0].status, b.tasks[0].revisions),
        (BidState::Done, TaskState::Verified, 0)
    );
    let ev_b = market.anonymous().evidence(bid_b.tasks[0]).await.unwrap();
    assert_eq!(ev_b.voted, vec![b2.assignment]);
    assert!(ev_b.credibility.unwrap() >= 0.999);

    // Task A is undone: running again, its bid open, the revision counted,
    // and its price reserved again from what the forfeit gave back.
    let a_now = client.bid(bid_a.bid).await.unwrap();
    assert_eq!(a_now.status, BidState::Open);
    assert_eq!(a_now.tasks[0].status, TaskState::Running);
    assert_eq!(a_now.tasks[0].revisions, 1);
    assert!(a_now.tasks[0].consensus.is_none());
    let after = client.account_me().await.unwrap();
    assert_eq!(
        after.balance.0,
        before.balance.0 + liar_earned.0 - 2 * 10_000,
        "forfeit back, two replicas reserved again"
    );
    assert_eq!(liar.account_me().await.unwrap().earned_unpaid, Stroops(0));

    // A trusted worker takes the new replica (the older of the two open
    // tasks) and decides it alone.
    let again = claim_one(&h2).await;
    assert_eq!(again.task, bid_a.tasks[0]);
    h2.submit_result(again.assignment, &honest()).await.unwrap();
    let a_done = client.bid(bid_a.bid).await.unwrap();
    assert_eq!(a_done.status, BidState::Done);
    assert_eq!(a_done.tasks[0].revisions, 1);
    assert_eq!(
        a_done.tasks[0].consensus.as_ref().unwrap().len(),
        honest().detections.len()
    );
    let ev_a = market.anonymous().evidence(bid_a.tasks[0]).await.unwrap();
    assert_eq!(ev_a.voted, vec![again.assignment]);
    assert_eq!(ev_a.excluded, vec![a.assignment]);
    assert_eq!(ev_a.revisions.len(), 1);
    assert_eq!(&ev_a.revisions[0].caught, liar.signer().unwrap().account());
    assert_eq!(ev_a.revisions[0].verdict.agree, vec![a.assignment]);
    // The unspent reservation came back when the bid closed again.
    let closed = client.account_me().await.unwrap();
    assert_eq!(closed.reserved.0, after.reserved.0 - 20_000);
    assert_eq!(closed.balance.0, after.balance.0 + 10_000);
    assert_eq!(ledger_sum(&market).await, 0, "the books balance");

    // Settled: the honest workers, never the liar; the audit passes.
    tally_market::settle::settle_now(&market.market)
        .await
        .unwrap();
    assert_eq!(liar.account_me().await.unwrap().paid_total, Stroops(0));
    assert!(h2.account_me().await.unwrap().paid_total.0 > 0);
    market.audit_ok().await;
    market.finish().await;
}
both!(a_caught_workers_verdicts_are_decided_again);

async fn untrusted_earnings_wait_out_their_probation(backend: Backend) {
    let market = spawn_tweaked(backend, |c| {
        with_check_rates(c, 0.0, 0.0, 0.0);
        c.holdback = Duration::from_secs(3600);
    })
    .await;
    let (client, model) = market.client_with_model(1_000_000).await;
    let (newcomer, trusted) = (market.worker(&model).await, market.worker(&model).await);
    set_checks(&market, &trusted, 24).await;

    // A default bid: one replica; the trusted worker's result alone
    // reaches the default confidence of 0.999.
    let bid = client
        .bid_images(BidRequest::new(model.clone(), Stroops(10_000)), &[png(3)])
        .await
        .unwrap();
    let a = claim_one(&trusted).await;
    submit(&trusted, a.assignment, &honest()).await;
    assert_eq!(
        client.bid(bid.bid).await.unwrap().tasks[0].status,
        TaskState::Verified
    );
    let ev = market.anonymous().evidence(bid.tasks[0]).await.unwrap();
    assert_eq!(ev.results.len(), 1, "one execution");
    assert!(ev.credibility.unwrap() >= 0.999);

    // A newcomer's result verifies only where the bid asks little.
    let lax = BidRequest {
        confidence: Some(0.5),
        ..BidRequest::new(model.clone(), Stroops(10_000))
    };
    client.bid_images(lax, &[png(4)]).await.unwrap();
    let n = claim_one(&newcomer).await;
    submit(&newcomer, n.assignment, &honest()).await;

    tally_market::settle::settle_now(&market.market)
        .await
        .unwrap();
    let net = 10_000 - 250;
    let t = trusted.account_me().await.unwrap();
    assert_eq!((t.paid_total.0, t.held.0, t.earned_unpaid.0), (net, 0, 0));
    let w = newcomer.account_me().await.unwrap();
    assert_eq!(
        (w.paid_total.0, w.held.0, w.earned_unpaid.0),
        (0, net, net),
        "held on probation"
    );
    // Trusted since: what it earned on probation still waits.
    set_checks(&market, &newcomer, 30).await;
    tally_market::settle::settle_now(&market.market)
        .await
        .unwrap();
    let w = newcomer.account_me().await.unwrap();
    assert_eq!(
        (w.paid_total.0, w.held.0),
        (0, net),
        "still held once trusted"
    );

    // Two hours later the probation is over.
    market
        .write(
            tally_market::db::query(
                "UPDATE assignments SET finished_at = finished_at - 7200000 WHERE id = $1",
            )
            .bind(n.assignment.0),
        )
        .await;
    assert_eq!(newcomer.account_me().await.unwrap().held, Stroops(0));
    tally_market::settle::settle_now(&market.market)
        .await
        .unwrap();
    let w = newcomer.account_me().await.unwrap();
    assert_eq!((w.paid_total.0, w.earned_unpaid.0), (net, 0));
    market.audit_ok().await;
    market.finish().await;
}
both!(untrusted_earnings_wait_out_their_probation);

/// Waits until `n` claims wait for work (the claims below register at once).
async fn until_waiting(market: &TestMarket, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while market.market.waiters.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} claims never waited"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn an_untrusted_worker_does_not_join_another_while_a_trusted_one_waits(backend: Backend) {
    let market = spawn_tweaked(backend, |c| {
        with_check_rates(c, 0.0, 0.0, 0.0);
    })
    .await;
    let (client, model) = market.client_with_model(1_000_000).await;
    let [n1, n2, trusted] = market.workers(&model).await;
    set_checks(&market, &trusted, 30).await;

    let bid = client
        .bid_images(BidRequest::new(model.clone(), Stroops(1_000)), &[png(5)])
        .await
        .unwrap();
    let first = claim_one(&n1).await;
    // The second newcomer waits first, the trusted worker after it.
    let n2_claim = {
        let n2 = n2.clone();
        tokio::spawn(async move { n2.claim(1, 3_000).await.unwrap().assignments })
    };
    until_waiting(&market, 1).await;
    let t_claim = {
        let t = trusted.clone();
        tokio::spawn(async move { t.claim(1, 10_000).await.unwrap().assignments })
    };
    until_waiting(&market, 2).await;
    // A newcomer's result cannot verify at 0.999: one more replica. It wakes
    // the oldest waiter, the newcomer, which leaves it to the trusted one.
    n1.submit_result(first.assignment, &honest()).await.unwrap();
    let got = t_claim.await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].task, bid.tasks[0]);
    assert!(n2_claim.await.unwrap().is_empty());
    submit(&trusted, got[0].assignment, &honest()).await;
    assert_eq!(
        client.bid(bid.bid).await.unwrap().tasks[0].status,
        TaskState::Verified
    );

    // With no trusted worker waiting, the second newcomer may join.
    let bid = client
        .bid_images(BidRequest::new(model.clone(), Stroops(1_000)), &[png(6)])
        .await
        .unwrap();
    let first = claim_one(&n1).await;
    n1.submit_result(first.assignment, &honest()).await.unwrap();
    let joined = claim_one(&n2).await;
    assert_eq!(joined.task, bid.tasks[0]);
    market.finish().await;
}
both!(an_untrusted_worker_does_not_join_another_while_a_trusted_one_waits);

/// Two market processes on one PostgreSQL database: a task verified in one
/// is undone when its worker fails a spot check answered through the
/// other; the first process sees the revision pushed, the worker caught,
/// its earnings forfeit, and the books still balance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_failed_in_another_process_undoes_verdicts_here() {
    if postgres_url().is_none() {
        return;
    }
    let market = checked_market(Backend::Postgres).await;
    let other = spawn_second_market(&market).await;
    market.market.relaying().await;
    let client = market.funded_client(1_000_000).await;
    let sample = std::fs::read(golden_dir().join("models/yolox_nano.onnx")).unwrap();
    let model = client.upload_model(sample).await.unwrap().model;
    let liar = market.worker(&model).await;
    let lax = BidRequest {
        confidence: Some(0.6),
        max_replicas: Some(3),
        ..BidRequest::new(model.clone(), Stroops(10_000))
    };
    let bid = client.bid_images(lax.clone(), &[png(1)]).await.unwrap();
    let a = claim_one(&liar).await;
    liar.submit_result(a.assignment, &wrong()).await.unwrap();
    assert_eq!(
        client.bid(bid.bid).await.unwrap().tasks[0].status,
        TaskState::Verified
    );
    let earned = liar.account_me().await.unwrap().earned_unpaid;
    assert!(earned.0 > 0);

    market.market.check_pool.pause(false);
    checks_ready(&market, &model, 1).await;
    client.bid_images(lax, &[png(3)]).await.unwrap();
    let check = claim_one(&liar).await;
    assert_ne!(check.task, bid.tasks[0]);
    // The lie reaches the other process, which judges it.
    let mut events = market.market.events.subscribe();
    let through_other = other.client(liar.signer().unwrap());
    submit(&through_other, check.assignment, &wrong()).await;
    // This process hears the revision of the task it verified.
    let revised = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(tally_protocol::wire::MarketEvent::TaskRevised { task }) = events.recv().await
            {
                return task;
            }
        }
    })
    .await
    .expect("the revision is pushed from the other process");
    assert_eq!(revised, bid.tasks[0]);
    let now = client.bid(bid.bid).await.unwrap();
    assert_eq!(
        (now.status, now.tasks[0].status, now.tasks[0].revisions),
        (BidState::Open, TaskState::Running, 1)
    );
    let caught = liar.claim(1, 0).await.unwrap_err();
    assert!(caught.to_string().contains("spot check"), "{caught}");
    assert_eq!(liar.account_me().await.unwrap().earned_unpaid, Stroops(0));
    assert_eq!(ledger_sum(&market).await, 0, "the books balance");
    other.finish().await;
    market.finish().await;
}
