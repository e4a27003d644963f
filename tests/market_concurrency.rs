//! Claims are exclusive under concurrency: 50 workers claiming at once never
//! get a slot twice, and no worker holds two replicas of one task.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use common::*;
use tally_protocol::wire::{BidRequest, BidState, TaskState};
use tally_protocol::Stroops;

async fn metrics(market: &TestMarket) -> String {
    reqwest::get(format!("{}/metrics", market.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn fifty_workers_claiming_at_once_never_share_a_slot(backend: Backend) {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let market = spawn_market(backend).await;
    let (client, model) = market.client_with_model(100_000_000).await;
    // 20 tasks x 3 replicas = 60 slots for 50 workers asking for 4 each.
    let images: Vec<Vec<u8>> = (0..20).map(|i| png(100 + i)).collect();
    let created = client
        .bid_images(bid_request(&model, 500), &images)
        .await
        .unwrap();
    let workers = market.workers::<50>(&model).await;
    let claims = futures::future::join_all(workers.iter().map(|w| async move {
        let got = w.claim(4, 0).await.expect("claim");
        (w.signer().unwrap().account().clone(), got.assignments)
    }))
    .await;
    let mut slots = HashSet::new();
    let mut per_task: HashMap<_, Vec<_>> = HashMap::new();
    for (worker, assignments) in &claims {
        for a in assignments {
            assert!(
                slots.insert(a.assignment),
                "assignment {} handed out twice",
                a.assignment
            );
            per_task.entry(a.task).or_default().push(worker.clone());
        }
    }
    assert_eq!(slots.len(), 60, "every slot is handed out exactly once");
    for (task, holders) in &per_task {
        assert_eq!(holders.len(), 3, "task {task} has exactly its replicas out");
        let distinct: HashSet<_> = holders.iter().collect();
        assert_eq!(distinct.len(), 3, "task {task} went twice to one worker");
    }
    assert_eq!(per_task.len(), created.tasks.len());
    // Nothing is left to claim.
    assert!(market
        .worker(&model)
        .await
        .claim(4, 0)
        .await
        .unwrap()
        .assignments
        .is_empty());
    // Every result at once: each task is voted on once, none fails.
    let by_account: HashMap<_, _> = workers
        .iter()
        .map(|w| (w.signer().unwrap().account().clone(), w))
        .collect();
    let answer = honest();
    let answer = &answer;
    let submits = claims.iter().flat_map(|(worker, assignments)| {
        let w = by_account[worker];
        assignments
            .iter()
            .map(move |a| w.submit_result(a.assignment, answer))
    });
    for r in futures::future::join_all(submits).await {
        r.expect("every concurrent result is accepted");
    }
    let stats = market.anonymous().market().await.unwrap();
    assert_eq!(stats.verified_tasks, 20);
    for w in &workers {
        let me = w.account_me().await.unwrap();
        assert_eq!(me.reputation.disagreed, 0);
        // The settlement job may already have paid some of it out.
        assert_eq!(
            me.earned_unpaid.0 + me.paid_total.0,
            me.reputation.agreed as i64 * (500 - 12)
        );
    }
    market.finish().await;
}
both!(fifty_workers_claiming_at_once_never_share_a_slot);

/// A waiting claim is woken by a new bid; it does not wait out its timeout.
async fn a_waiting_claim_is_woken_by_new_work(backend: Backend) {
    let market = spawn_market(backend).await;
    let (client, model) = market.client_with_model(1_000_000).await;
    let w = market.worker(&model).await;
    let waiting = tokio::spawn(async move { w.claim(1, 60_000).await });
    // Post the bid once the market reports the claim waiting.
    while !metrics(&market).await.contains("tally_claims_waiting 1") {
        tokio::task::yield_now().await;
    }
    let started = std::time::Instant::now();
    client
        .bid_images(bid_request(&model, 10), &[png(9)])
        .await
        .unwrap();
    let got = waiting.await.unwrap().unwrap();
    assert_eq!(got.assignments.len(), 1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "woken by the bid, not by the timeout"
    );
    market.finish().await;
}
both!(a_waiting_claim_is_woken_by_new_work);

/// Wait until `n` claims are registered as waiting.
async fn until_waiting(market: &TestMarket, n: usize) {
    while market.market.waiters.len() != n {
        tokio::task::yield_now().await;
    }
}

/// The market shuts down: each claim still `waiting` comes back empty; the
/// market is finished.
async fn shut_down(
    market: TestMarket,
    waiting: Vec<
        tokio::task::JoinHandle<Result<tally_protocol::wire::Claimed, tally_protocol::Error>>,
    >,
) {
    market.market.begin_shutdown();
    for h in waiting {
        assert!(h.await.unwrap().unwrap().assignments.is_empty());
    }
    market.finish().await;
}

/// `n` workers' claims for one task each, waiting (up to a minute) in the
/// order they were made.
async fn waiting_claims(
    market: &TestMarket,
    model: &tally_protocol::Sha256Hex,
    n: usize,
) -> Vec<tokio::task::JoinHandle<Result<tally_protocol::wire::Claimed, tally_protocol::Error>>> {
    let mut waiting = Vec::new();
    for i in 0..n {
        let w = market.worker(model).await;
        waiting.push(tokio::spawn(async move { w.claim(1, 60_000).await }));
        until_waiting(market, i + 1).await;
    }
    waiting
}

/// A task with one replica wakes one of several waiting claims, the oldest;
/// the others keep waiting (they are not all woken to find nothing).
async fn one_slot_wakes_one_waiting_claim(backend: Backend) {
    let market = spawn_market(backend).await;
    let (client, model) = market.client_with_model(1_000_000).await;
    let mut waiting = waiting_claims(&market, &model, 3).await;
    let req = BidRequest {
        replicas: Some(1),
        quorum: Some(1),
        max_replicas: Some(1),
        ..bid_request(&model, 10)
    };
    client.bid_images(req, &[png(3)]).await.unwrap();
    let first = waiting.remove(0).await.unwrap().unwrap();
    assert_eq!(first.assignments.len(), 1, "the oldest claim took the slot");
    // The two others were not woken: still registered.
    assert_eq!(market.market.waiters.len(), 2);
    for h in &waiting {
        assert!(!h.is_finished());
    }
    shut_down(market, waiting).await;
}
both!(one_slot_wakes_one_waiting_claim);

/// A claim woken for a slot it may not take (its own worker failed that
/// task) passes the wake-up on to the next waiting claim, which takes it.
async fn a_woken_claim_that_cannot_take_the_slot_passes_it_on(backend: Backend) {
    let market = spawn_market(backend).await;
    let (client, model) = market.client_with_model(1_000_000).await;
    let x = market.worker(&model).await;
    let y = market.worker(&model).await;
    let req = BidRequest {
        replicas: Some(1),
        quorum: Some(1),
        max_replicas: Some(2),
        ..bid_request(&model, 10)
    };
    let bid = client.bid_images(req, &[png(4)]).await.unwrap();
    let held = x.claim(1, 0).await.unwrap().assignments;
    assert_eq!(held.len(), 1);
    // X waits first (oldest), then Y.
    let x2 = x.clone();
    let x_waiting = tokio::spawn(async move { x2.claim(1, 60_000).await });
    until_waiting(&market, 1).await;
    let y_waiting = tokio::spawn(async move { y.claim(1, 20_000).await });
    until_waiting(&market, 2).await;
    // X gives the task back: its slot wakes X's claim first, which may not
    // take a task it already held, and hands the wake-up to Y.
    let started = std::time::Instant::now();
    x.report_failure(held[0].assignment, "out of memory")
        .await
        .unwrap();
    let got = y_waiting.await.unwrap().unwrap();
    // Without the hand-over Y would only find the slot when its wait ends.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "Y was woken, not timed out"
    );
    assert_eq!(got.assignments.len(), 1, "Y was woken and took the slot");
    assert_eq!(got.assignments[0].task, bid.tasks[0]);
    shut_down(market, vec![x_waiting]).await;
}
both!(a_woken_claim_that_cannot_take_the_slot_passes_it_on);

/// Workers claiming many tasks at a time, over and over, from one pool
/// (each claim competing with the others for the same best tasks) never
/// get an error, and every task is verified: concurrent claims lock the
/// tasks they take in one order (on PostgreSQL, where the locks are rows).
async fn batch_claims_racing_for_one_pool_never_fail(backend: Backend) {
    let market = spawn_market(backend).await;
    let (client, model) = market.client_with_model(100_000_000).await;
    let mut images: Vec<Vec<u8>> = (0..200).map(|i| png(i as u8)).collect();
    for (i, img) in images.iter_mut().enumerate() {
        img.extend_from_slice(&(i as u32).to_le_bytes());
    }
    for chunk in images.chunks(50) {
        client
            .bid_images(bid_request(&model, 500), chunk)
            .await
            .unwrap();
    }
    let workers = market.workers::<12>(&model).await;
    let answer = honest();
    let answer = &answer;
    let verified = || market.market.metrics.verified.load(Ordering::Relaxed);
    let taken = futures::future::join_all(workers.iter().map(|w| async move {
        let mut taken = 0;
        // Until every task is verified (a claim that finds nothing waits a
        // little for work instead of returning at once).
        while verified() < 200 {
            let got = w.claim(32, 50).await.expect("a claim never fails");
            taken += got.assignments.len();
            for a in &got.assignments {
                w.submit_result(a.assignment, answer).await.unwrap();
            }
        }
        taken
    }))
    .await;
    // 200 tasks: quorum 2 of 3 replicas verifies each; every slot was taken
    // by someone (the third replica of a verified task may be retired).
    assert!(taken.iter().sum::<usize>() >= 400, "{taken:?}");
    let stats = market.anonymous().market().await.unwrap();
    assert_eq!(stats.verified_tasks, 200);
    market.finish().await;
}
both!(batch_claims_racing_for_one_pool_never_fail);

/// A wake-up for work whose slots are already gone (taken by claims in
/// another process, say) stops at the claim it woke: that claim finds the
/// slot taken and does not wake the next waiter to look for nothing.
async fn a_wake_up_for_work_already_taken_goes_no_further(backend: Backend) {
    let market = spawn_market(backend).await;
    let (client, model) = market.client_with_model(1_000_000).await;
    let looks = || market.market.metrics.claim_looks.load(Ordering::Relaxed);
    let mut waiting = waiting_claims(&market, &model, 4).await;
    // Each claim looked once when it came in.
    while looks() < 4 {
        tokio::task::yield_now().await;
    }
    // Work announced that no open task backs any more.
    market
        .market
        .work_arrived(tally_market::wake::Work {
            model: model.clone(),
            price: 10,
            slots: 1,
        })
        .await;
    while looks() < 5 {
        tokio::task::yield_now().await;
    }
    // A real slot now: one claim takes it.
    let req = BidRequest {
        replicas: Some(1),
        quorum: Some(1),
        max_replicas: Some(1),
        ..bid_request(&model, 10)
    };
    let bid = client.bid_images(req, &[png(5)]).await.unwrap();
    let mut took = None;
    while took.is_none() {
        for (i, h) in waiting.iter().enumerate() {
            if h.is_finished() {
                took = Some(i);
            }
        }
        tokio::task::yield_now().await;
    }
    let got = waiting.remove(took.unwrap()).await.unwrap().unwrap();
    assert_eq!(got.assignments[0].task, bid.tasks[0]);
    // One look for the stale wake-up, one for the slot: no chain of looks
    // passed from waiter to waiter after the first found nothing.
    assert_eq!(looks(), 6, "{}", metrics(&market).await);
    assert!(metrics(&market).await.contains("tally_claim_looks_total 6"));
    shut_down(market, waiting).await;
}
both!(a_wake_up_for_work_already_taken_goes_no_further);

/// The last two tasks of a bid failing at the same moment (each the only
/// replica of its task, each failure in its own transaction) still close
/// the bid and refund it: whichever decision ends second sees the first.
async fn tasks_of_one_bid_failing_at_once_still_close_it(backend: Backend) {
    let market = spawn_market(backend).await;
    let (client, model) = market.client_with_model(10_000_000).await;
    let (x, y) = (market.worker(&model).await, market.worker(&model).await);
    let req = BidRequest {
        replicas: Some(1),
        quorum: Some(1),
        max_replicas: Some(1),
        ..bid_request(&model, 10)
    };
    let mut bids = Vec::new();
    for round in 0..100u8 {
        let bid = client
            .bid_images(req.clone(), &[png(2 * round), png(2 * round + 1)])
            .await
            .unwrap();
        let a = x.claim(1, 0).await.unwrap().assignments;
        let b = y.claim(1, 0).await.unwrap().assignments;
        assert_eq!((a.len(), b.len()), (1, 1), "round {round}: one task each");
        let (fa, fb) = tokio::join!(
            x.report_failure(a[0].assignment, "out of memory"),
            y.report_failure(b[0].assignment, "out of memory"),
        );
        fa.unwrap();
        fb.unwrap();
        bids.push(bid.bid);
    }
    for bid in bids {
        let status = client.bid(bid).await.unwrap();
        assert!(
            status.tasks.iter().all(|t| t.status == TaskState::Failed),
            "bid {bid}: {status:?}"
        );
        assert_eq!(status.status, BidState::Done, "bid {bid} was left open");
    }
    // Every reservation came back: nothing was spent.
    let me = client.account_me().await.unwrap();
    assert_eq!(
        (me.balance, me.reserved),
        (Stroops(10_000_000), Stroops(0)),
        "{me:?}"
    );
    market.finish().await;
}
both!(tasks_of_one_bid_failing_at_once_still_close_it);

/// Several market processes on one PostgreSQL database still hand out each
/// slot once (here: two markets in one test process, each with its own pool).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_markets_on_one_postgres_database_never_share_a_slot() {
    let Some((first, second)) = two_markets_on_postgres().await else {
        return;
    };
    let (client, model) = first.client_with_model(100_000_000).await;
    let images: Vec<Vec<u8>> = (0..10).map(|i| png(200 + i)).collect();
    client
        .bid_images(bid_request(&model, 500), &images)
        .await
        .unwrap();
    let mut workers = Vec::new();
    for i in 0..20 {
        let m = if i % 2 == 0 { &first } else { &second };
        workers.push(m.worker(&model).await);
    }
    let claims = futures::future::join_all(workers.iter().map(|w| w.claim(4, 0))).await;
    let mut slots = HashSet::new();
    for c in claims {
        for a in c.unwrap().assignments {
            assert!(slots.insert(a.assignment));
        }
    }
    assert_eq!(slots.len(), 30);
    let _ = Stroops(0);
    second.finish().await;
    first.finish().await;
}

/// A bid placed in one market process wakes a claim waiting in another on
/// the same database (NOTIFY naming the work): of three claims waiting
/// there, one gets the one-slot task and the other two keep waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_placed_in_one_process_wakes_claims_waiting_in_another() {
    let Some((first, second)) = two_markets_on_postgres().await else {
        return;
    };
    let (client, model) = first.client_with_model(1_000_000).await;
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let w = second.worker(&model).await;
        waiting.push(tokio::spawn(async move { w.claim(1, 60_000).await }));
    }
    until_waiting(&second, 3).await;
    let started = std::time::Instant::now();
    let req = tally_protocol::wire::BidRequest {
        replicas: Some(1),
        quorum: Some(1),
        max_replicas: Some(1),
        ..bid_request(&model, 10)
    };
    client.bid_images(req, &[png(11)]).await.unwrap();
    let (got, _, rest) = futures::future::select_all(waiting).await;
    let got = got.unwrap().unwrap();
    assert_eq!(got.assignments.len(), 1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "woken by the bid placed in the other process, not by the timeout"
    );
    // The other two are still waiting, not answered empty.
    until_waiting(&second, 2).await;
    for r in rest {
        r.abort();
    }
    second.finish().await;
    first.finish().await;
}
