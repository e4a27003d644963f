//! The trust layer against workers and clients who look, over real HTTP on
//! SQLite and PostgreSQL. Each scenario is written as the attacker would
//! play it: a worker that inspects the bytes and pixels it is sent, every
//! answer, its account, its public record, the market page and the
//! evidence, and answers honestly only where it recognises a possible
//! check; a ring of such workers pooling what they met; a worker that
//! copies a published answer; a client that prices a bait bid to drain the
//! operator. The market's detector here is the tests' simulated one
//! (`common::golden::detect`), which honest workers run too.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::golden::*;
use common::*;
use tally_protocol::wire::{BidRequest, BidState, ResultRequest, TaskState};
use tally_protocol::{AccountId, BidId, Client, Detection, Sha256Hex, Stroops, TaskId};

/// A market with spot checks, decisions published in batches of a second,
/// probation of an hour, and nobody crediting the operator.
async fn checked_market(backend: Backend) -> TestMarket {
    spawn_tweaked(backend, |c| {
        with_checks(c);
        c.publish_every = Duration::from_secs(1);
        c.holdback = Duration::from_secs(3600);
    })
    .await
}

/// A wrong answer the ring agrees on: the truth's boxes moved and relabelled.
fn lie(bytes: &[u8]) -> Vec<Detection> {
    detect(bytes)
        .into_iter()
        .map(|d| {
            let [x1, y1, x2, y2] = d.bbox;
            let w = (x2 - x1).max(4.0);
            det((d.class_id + 7) % 80, d.score, [x1 + w, y1, x2 + w, y2])
        })
        .collect()
}

/// The golden set's model (checks cover it), uploaded by `client`.
async fn checked_model(client: &Client) -> Sha256Hex {
    let sample = std::fs::read(golden_dir().join("models/yolox_nano.onnx")).unwrap();
    client.upload_model(sample).await.unwrap().model
}

/// The pixels of the repository's public sample images.
fn public_pixels() -> HashSet<Sha256Hex> {
    std::fs::read_dir(golden_dir().join("images"))
        .unwrap()
        .map(|e| {
            let bytes = std::fs::read(e.unwrap().path()).unwrap();
            Sha256Hex::of(image::load_from_memory(&bytes).unwrap().to_rgb8().as_raw())
        })
        .collect()
}

/// Whether bytes carry anything but pixels: a JPEG comment, PNG text.
fn has_marker(bytes: &[u8]) -> bool {
    (bytes.starts_with(&[0xFF, 0xD8]) && bytes.windows(2).any(|w| w == [0xFF, 0xFE]))
        || [b"tEXt", b"zTXt", b"iTXt"]
            .iter()
            .any(|t| bytes.windows(4).any(|w| w == *t))
}

/// What a ring of aware workers pools: pixels met, by task.
type Ring = Arc<Mutex<HashMap<Sha256Hex, TaskId>>>;

/// How a simulated worker answers.
#[derive(Clone)]
enum Kind {
    Honest,
    /// Honest only where it recognises a possible check, lying elsewhere.
    Aware(Ring),
}

/// What a worker saw and did.
#[derive(Default, Debug)]
struct Log {
    caught: bool,
    /// Tasks it lied on.
    lied: Vec<TaskId>,
    /// Every task it was assigned.
    seen: Vec<TaskId>,
    /// Every answer to its results, as (status, task status).
    answers: HashSet<(String, TaskState)>,
}

/// Claim and answer until `done` or caught.
async fn run_worker(w: Client, kind: Kind, done: Arc<AtomicBool>) -> Log {
    let public = public_pixels();
    let mut log = Log::default();
    let mut taken = 0u64;
    while !done.load(Ordering::Relaxed) {
        let got = match w.claim(4, 200).await {
            Ok(got) => got.assignments,
            Err(tally_protocol::Error::Api { status: 403, .. }) => {
                log.caught = true;
                break;
            }
            Err(e) => panic!("claim: {e}"),
        };
        for a in got {
            log.seen.push(a.task);
            let first = taken == 0;
            taken += 1;
            let bytes = match w.input(&a.input).await {
                Ok(b) => b,
                Err(tally_protocol::Error::Api { status: 403, .. }) => continue,
                Err(e) => panic!("input: {e}"),
            };
            let detections = match &kind {
                Kind::Honest => {
                    // Computing takes a while; a lie does not.
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    detect(&bytes)
                }
                Kind::Aware(ring) => {
                    let pixels =
                        Sha256Hex::of(image::load_from_memory(&bytes).unwrap().to_rgb8().as_raw());
                    let met_elsewhere = {
                        let mut ring = ring.lock().unwrap();
                        let before = ring.get(&pixels).copied();
                        ring.entry(pixels.clone()).or_insert(a.task);
                        before.is_some_and(|t| t != a.task)
                    };
                    let looks_checked =
                        first || met_elsewhere || has_marker(&bytes) || public.contains(&pixels);
                    if looks_checked {
                        tokio::time::sleep(Duration::from_millis(30)).await;
                        detect(&bytes)
                    } else {
                        log.lied.push(a.task);
                        lie(&bytes)
                    }
                }
            };
            let answer = ResultRequest {
                detections,
                elapsed_ms: 5.0,
            };
            match w.submit_result(a.assignment, &answer).await {
                Ok(o) => {
                    log.answers.insert((o.status, o.task_status));
                }
                Err(tally_protocol::Error::Api { status: 409, .. }) => {}
                Err(tally_protocol::Error::Api { status: 403, .. }) => {
                    log.caught = true;
                }
                Err(e) => panic!("result: {e}"),
            }
        }
        if log.caught {
            break;
        }
    }
    log
}

/// Waits until the bid is done (every task final, none re-opened).
async fn until_done(client: &Client, bid: BidId) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut seen = 0;
    loop {
        let s = client.bid_wait(bid, seen, 2_000).await.unwrap();
        if s.status == BidState::Done {
            return;
        }
        seen = s.tasks.iter().filter(|t| t.status.is_final()).count();
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bid is not done after 90 s: {:?}",
            s.tasks.iter().map(|t| t.status).collect::<Vec<_>>()
        );
    }
}

/// Every verified task's consensus against the truth: how many are wrong.
async fn wrong_verified(client: &Client, bid: BidId, truth: &HashMap<TaskId, Vec<u8>>) -> usize {
    let s = client.bid(bid).await.unwrap();
    let p = tally_protocol::vote::VoteParams::default();
    s.tasks
        .iter()
        .filter(|t| t.status == TaskState::Verified)
        .filter(|t| {
            let consensus = t.consensus.clone().unwrap_or_default();
            !tally_protocol::vote::agrees(&p, &detect(&truth[&t.task]), &consensus)
        })
        .count()
}

/// The client's inputs: generated pictures and the public samples.
fn inputs(n: usize) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = (0..n).map(|i| png(i as u8 + 40)).collect();
    for e in std::fs::read_dir(golden_dir().join("images")).unwrap() {
        v.push(std::fs::read(e.unwrap().path()).unwrap());
    }
    v
}

/// Aware saboteurs (`aware` of them, a ring) among `honest` workers: every
/// one that lied is caught, no lie is verified at the end, none of their
/// earnings settles, and nothing they could read told checks apart.
async fn run_ring(backend: Backend, aware: usize, honest_workers: usize) {
    let market = checked_market(backend).await;
    let client = market.funded_client(100_000_000).await;
    let model = checked_model(&client).await;
    checks_ready(&market, &model, tally_market::checks::READY).await;
    let images = inputs(20);
    // Tasks the saboteurs keep from a verdict fail at the deadline.
    let req = BidRequest {
        deadline_secs: 45,
        ..BidRequest::new(model.clone(), Stroops(10_000))
    };
    let created = client.bid_images(req, &images).await.unwrap();
    let truth: HashMap<TaskId, Vec<u8>> = created
        .tasks
        .iter()
        .copied()
        .zip(images.iter().cloned())
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let ring: Ring = Default::default();
    let mut fleet = Vec::new();
    for i in 0..aware + honest_workers {
        let w = market.worker(&model).await;
        let kind = if i < aware {
            Kind::Aware(Arc::clone(&ring))
        } else {
            Kind::Honest
        };
        let account = w.signer().unwrap().account().clone();
        let handle = tokio::spawn(run_worker(w, kind.clone(), Arc::clone(&done)));
        fleet.push((matches!(kind, Kind::Aware(_)), account, handle));
    }
    until_done(&client, created.bid).await;
    // The market keeps running: more client work comes until every
    // saboteur has been caught (a saboteur lies on all it does not
    // recognise, so it keeps meeting checks), at most a minute.
    let saboteur_accounts: Vec<AccountId> = fleet
        .iter()
        .filter(|(aware, ..)| *aware)
        .map(|(_, a, _)| a.clone())
        .collect();
    let mut bids = vec![created.bid];
    let mut truth = truth;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for round in 0u8.. {
        let mut free = 0;
        for a in &saboteur_accounts {
            if !market.anonymous().worker_record(a).await.unwrap().caught {
                free += 1;
            }
        }
        if free == 0 || tokio::time::Instant::now() >= deadline {
            break;
        }
        let more: Vec<Vec<u8>> = (0..5).map(|i| png(150 + 5 * round.min(20) + i)).collect();
        let req = BidRequest {
            deadline_secs: 45,
            ..BidRequest::new(model.clone(), Stroops(10_000))
        };
        let next = client.bid_images(req, &more).await.unwrap();
        truth.extend(next.tasks.iter().copied().zip(more.iter().cloned()));
        until_done(&client, next.bid).await;
        bids.push(next.bid);
    }
    done.store(true, Ordering::Relaxed);
    let mut saboteurs: Vec<(AccountId, Log)> = Vec::new();
    for (aware, account, handle) in fleet {
        let log = handle.await.unwrap();
        // Every answer to a result said the same: nothing of the judgement.
        assert!(
            log.answers
                .iter()
                .all(|(s, t)| s == "submitted" && *t == TaskState::Running),
            "{:?}",
            log.answers
        );
        if aware {
            saboteurs.push((account, log));
        }
    }
    // Every saboteur that lied was caught, and no lie stands.
    for (account, log) in &saboteurs {
        if !log.lied.is_empty() {
            let record = market.anonymous().worker_record(account).await.unwrap();
            let checks = log.seen.iter().filter(|t| !truth.contains_key(t)).count();
            assert!(
                record.caught,
                "{account} lied on {} tasks and was not caught ({} assignments, {checks} of them checks, {:?})",
                log.lied.len(),
                log.seen.len(),
                record.checks
            );
        }
    }
    for bid in &bids {
        until_done(&client, *bid).await;
        assert_eq!(wrong_verified(&client, *bid, &truth).await, 0);
    }
    // Once public, settled.
    tokio::time::sleep(Duration::from_secs(2)).await;
    tally_market::settle::settle_now(&market.market)
        .await
        .unwrap();
    // A saboteur trusted before it lied may have been paid for the honest
    // answers it gave meanwhile (a trusted worker's results settle once
    // public); never for a task it lied on.
    for r in client.settlements(0).await.unwrap().records {
        for p in &r.payouts {
            let Some((_, log)) = saboteurs.iter().find(|(a, _)| a == &p.account) else {
                continue;
            };
            let lies: Vec<&TaskId> = p.tasks.iter().filter(|t| log.lied.contains(t)).collect();
            assert!(lies.is_empty(), "{} paid for lies on {lies:?}", p.account);
        }
    }
    market.audit_ok().await;
    market.finish().await;
}

async fn a_worker_that_answers_checks_honestly_and_lies_on_client_work_is_caught(backend: Backend) {
    run_ring(backend, 1, 3).await;
}
both!(a_worker_that_answers_checks_honestly_and_lies_on_client_work_is_caught);

async fn a_ring_of_four_in_ten_that_recognises_what_it_can_is_caught(backend: Backend) {
    run_ring(backend, 4, 6).await;
}
both!(a_ring_of_four_in_ten_that_recognises_what_it_can_is_caught);

/// A worker whose lease is still out when its task is decided tries to
/// read the answer instead of computing it: nothing shows it while its
/// replica is out (evidence, event stream, market page), and the task's
/// pay waits for it; once its own result is in, the evidence is public.
async fn copied_answers_are_never_paid(backend: Backend) {
    let market = spawn_market(backend).await;
    let (client, model) = market.client_with_model(10_000_000).await;
    let bid = client
        .bid_images(bid_request(&model, 10_000), &[png(9)])
        .await
        .unwrap();
    let [a, b, copier] = market.workers(&model).await;
    let (la, lb, lc) = (
        claim_one(&a).await,
        claim_one(&b).await,
        claim_one(&copier).await,
    );
    assert!(la.task == bid.tasks[0] && lb.task == la.task && lc.task == la.task);
    a.submit_result(la.assignment, &honest()).await.unwrap();
    b.submit_result(lb.assignment, &honest()).await.unwrap();
    assert_eq!(
        client.bid(bid.bid).await.unwrap().tasks[0].status,
        TaskState::Verified
    );
    // Everything public the copier can read, while its lease is out.
    let hidden = market.anonymous().evidence(bid.tasks[0]).await.unwrap_err();
    assert!(hidden.to_string().contains("still out"), "{hidden}");
    tally_market::settle::settle_now(&market.market)
        .await
        .unwrap();
    assert_eq!(
        a.account_me().await.unwrap().paid_total.0,
        0,
        "pay waits for the replica"
    );
    // It has to compute: its wrong guess is judged against the consensus.
    copier.submit_result(lc.assignment, &wrong()).await.unwrap();
    let ev = market.anonymous().evidence(bid.tasks[0]).await.unwrap();
    assert_eq!(ev.verdict.unwrap().disagree, vec![lc.assignment]);
    tally_market::settle::settle_now(&market.market)
        .await
        .unwrap();
    assert!(a.account_me().await.unwrap().paid_total.0 > 0);
    let me = copier.account_me().await.unwrap();
    assert_eq!((me.earned_unpaid.0, me.paid_total.0), (0, 0));
    market.audit_ok().await;
    market.finish().await;
}
both!(copied_answers_are_never_paid);

/// A client prices a bait bid far above the market and has its own fresh
/// keys claim it, answering the checks that displace it: each check is
/// priced at the cap, and paid by the bait bid itself; the operator's
/// money is untouched and the attacker nets nothing.
async fn a_bait_bid_drains_no_one_but_its_client(backend: Backend) {
    let market = spawn_tweaked(backend, |c| {
        with_checks(c);
        c.check_rates.new = 1.0;
        c.check_rates.trusted = 1.0;
        c.holdback = Duration::ZERO;
        c.check_price_cap = Stroops(1_000_000);
    })
    .await;
    let operator = market.client(&market.operator);
    let op = market.operator.account().clone();
    operator.credit(&op, Stroops(1_000_000_000)).await.unwrap();
    let books = |a: &tally_protocol::wire::AdminAccounts, who: &AccountId| {
        a.accounts
            .iter()
            .find(|b| b.account == who.as_str())
            .cloned()
            .unwrap_or_default()
    };
    let before = books(&operator.admin_accounts().await.unwrap(), &op);
    let attacker = market.funded_client(10_000_000_000).await;
    let model = checked_model(&attacker).await;
    checks_ready(&market, &model, 4).await;
    let bait = BidRequest {
        deadline_secs: 600,
        ..BidRequest::new(model.clone(), Stroops(200_000_000))
    };
    let bid = attacker.bid_images(bait, &[png(1), png(2)]).await.unwrap();
    let mut sybils = Vec::new();
    for _ in 0..4 {
        let w = market.worker(&model).await;
        checks_ready(&market, &model, 1).await;
        let a = claim_one(&w).await;
        assert!(!bid.tasks.contains(&a.task), "a check displaced the bait");
        assert_eq!(
            a.price,
            Stroops(1_000_000),
            "checks are priced at the cap, not the bait"
        );
        let bytes = w.input(&a.input).await.unwrap();
        w.submit_result(a.assignment, &answer_for(&bytes).unwrap())
            .await
            .unwrap();
        sybils.push(w);
    }
    let after = books(&operator.admin_accounts().await.unwrap(), &op);
    assert!(
        after.available.0 >= before.available.0,
        "the operator paid for a check"
    );
    assert!(
        after.fees.0 >= before.fees.0,
        "the operator's fees paid for a check"
    );
    let mut earned = 0;
    for w in &sybils {
        earned += w.account_me().await.unwrap().earned_unpaid.0;
    }
    let spent = attacker.bid(bid.bid).await.unwrap().spent.0;
    assert!(
        earned > 0 && earned <= spent,
        "earned {earned}, spent {spent}"
    );
    market.finish().await;
}
both!(a_bait_bid_drains_no_one_but_its_client);

/// A fresh market with a golden set and three honest workers verifies a
/// client's first bid, nobody crediting the operator: the bid's own
/// verification share pays for the checks that make the workers credible.
async fn a_fresh_market_verifies_its_first_bid(backend: Backend) {
    let market = checked_market(backend).await;
    let client = market.funded_client(10_000_000).await;
    let model = checked_model(&client).await;
    let images: Vec<Vec<u8>> = (0..3).map(|i| png(i + 70)).collect();
    let created = client
        .bid_images(BidRequest::new(model.clone(), Stroops(10_000)), &images)
        .await
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let mut fleet = Vec::new();
    for _ in 0..3 {
        let w = market.worker(&model).await;
        fleet.push(tokio::spawn(run_worker(w, Kind::Honest, Arc::clone(&done))));
    }
    until_done(&client, created.bid).await;
    done.store(true, Ordering::Relaxed);
    for h in fleet {
        assert!(!h.await.unwrap().caught);
    }
    let s = client.bid(created.bid).await.unwrap();
    assert!(
        s.tasks.iter().all(|t| t.status == TaskState::Verified),
        "{:?}",
        s.tasks.iter().map(|t| t.status).collect::<Vec<_>>()
    );
    assert!(market.market.metrics.checks.load(Ordering::Relaxed) >= 3);
    let admin = market
        .client(&market.operator)
        .admin_accounts()
        .await
        .unwrap();
    let op = admin
        .accounts
        .iter()
        .find(|b| b.account == market.operator.account().as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(op.available, Stroops(0), "nobody credited the operator");
    market.finish().await;
}
both!(a_fresh_market_verifies_its_first_bid);
