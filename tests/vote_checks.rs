//! Voting as spot-checking, over HTTP on SQLite and PostgreSQL, played by
//! the attacker: a trusted worker that lies where it seems to decide alone,
//! colluders that agree with each other to farm credibility, and an
//! operator that points a revision at a task that shows nothing.
//!
//! No golden check is drawn in these markets (every check rate is 0): what
//! is counted is counted from votes on client work alone.

mod common;

use common::golden::*;
use common::*;
use tally_protocol::wire::{BidRequest, TaskState};
use tally_protocol::{Client, Sha256Hex, Stroops};

/// A market whose golden set gives credibility a meaning, but that draws
/// no golden check; re-runs at `rerun`.
async fn voting_market(backend: Backend, rerun: bool) -> TestMarket {
    let tweak: fn(&mut tally_market::Config) = if rerun {
        |c| {
            no_golden_draws(c);
            c.check_rates.rerun = 1.0;
        }
    } else {
        no_golden_draws
    };
    spawn_tweaked(backend, tweak).await
}

fn no_golden_draws(c: &mut tally_market::Config) {
    with_check_rates(c, 0.0, 0.0, 0.0);
    c.check_rates.rerun = 0.0;
    c.holdback = std::time::Duration::ZERO;
}

async fn workers(market: &TestMarket, model: &Sha256Hex, n: usize, passed: i64) -> Vec<Client> {
    let mut v = Vec::new();
    for _ in 0..n {
        let w = market.worker(model).await;
        set_checks(market, &w, passed).await;
        v.push(w);
    }
    v
}

/// A trusted liar, then two trusted honest workers (30 checks each), and a
/// client's bid for one replica at 1,000 stroops on `image`.
async fn liar_and_honest_ones(
    market: &TestMarket,
    client: &Client,
    model: &Sha256Hex,
    image: Vec<u8>,
) -> (Client, Vec<Client>, tally_protocol::wire::BidCreated) {
    let liar = workers(market, model, 1, 30).await.remove(0);
    let honest_ones = workers(market, model, 2, 30).await;
    let bid = client
        .bid_images(BidRequest::new(model.clone(), Stroops(1_000)), &[image])
        .await
        .unwrap();
    (liar, honest_ones, bid)
}

async fn record(market: &TestMarket, w: &Client) -> tally_protocol::wire::WorkerRecord {
    market
        .anonymous()
        .worker_record(w.signer().unwrap().account())
        .await
        .unwrap()
}

fn assert_honest(consensus: &[tally_protocol::Detection]) {
    let p = tally_protocol::vote::VoteParams::default();
    assert!(
        consensus.iter().all(|d| d.class_id != 0),
        "the lie's box: {consensus:?}"
    );
    assert!(
        tally_protocol::vote::agrees(&p, &honest().detections, consensus),
        "{consensus:?}"
    );
}

/// A trusted liar verifies a lie alone; on the next task two others
/// out-vote it: it is caught there, the lie it verified is decided again,
/// the voters that agreed each pass a check, and the audit accepts the
/// out-voting task as the proof (and refuses a revision pointing elsewhere).
async fn a_worker_out_voted_by_a_credible_majority_is_caught(backend: Backend) {
    let market = voting_market(backend, false).await;
    let (client, model) = market.client_with_model(10_000_000).await;
    let (liar, honest_ones, first) = liar_and_honest_ones(&market, &client, &model, png(1)).await;

    // 30 checks: the liar's lone result verifies (0.99934 >= 0.999).
    let a = claim_one(&liar).await;
    liar.submit_result(a.assignment, &wrong()).await.unwrap();
    let ev = market.anonymous().evidence(first.tasks[0]).await.unwrap();
    assert_eq!(ev.status, TaskState::Verified);
    assert_eq!(
        record(&market, &liar).await.checks.passed,
        30,
        "a lone verdict checks nobody"
    );

    // Three replicas, quorum two: the liar first, then the two honest ones.
    let req = BidRequest {
        replicas: Some(3),
        quorum: Some(2),
        ..BidRequest::new(model.clone(), Stroops(1_000))
    };
    let second = client.bid_images(req, &[png(2)]).await.unwrap();
    let a = claim_one(&liar).await;
    assert_eq!(a.task, second.tasks[0]);
    liar.submit_result(a.assignment, &wrong()).await.unwrap();
    for w in &honest_ones {
        let a = claim_one(w).await;
        assert_eq!(a.task, second.tasks[0]);
        w.submit_result(a.assignment, &honest()).await.unwrap();
    }
    let ev = market.anonymous().evidence(second.tasks[0]).await.unwrap();
    assert_eq!(ev.status, TaskState::Verified);
    let liar_record = record(&market, &liar).await;
    assert!(liar_record.caught, "{liar_record:?}");
    assert_eq!(liar_record.checks.failed, 1);
    for w in &honest_ones {
        assert_eq!(
            record(&market, w).await.checks.passed,
            31,
            "agreeing with a credible verdict is a pass"
        );
    }
    let refused = liar.claim(1, 100).await.unwrap_err();
    assert!(
        matches!(refused, tally_protocol::Error::Api { status: 403, .. }),
        "{refused}"
    );

    // The lie is decided again: re-opened, answered honestly, verified.
    let revised = market.anonymous().evidence(first.tasks[0]).await.unwrap();
    assert_eq!(revised.revisions.len(), 1);
    assert_eq!(revised.revisions[0].caught_by, Some(second.tasks[0]));
    let a = claim_one(&honest_ones[0]).await;
    assert_eq!(a.task, first.tasks[0]);
    submit(&honest_ones[0], a.assignment, &honest()).await;
    let status = client.bid(first.bid).await.unwrap();
    assert_eq!(status.tasks[0].status, TaskState::Verified);
    assert_honest(status.tasks[0].consensus.as_ref().unwrap());

    market.settle_and_audit_ok().await;

    // The operator names the lie's own task as what caught the liar: the
    // audit finds that it shows nothing of the kind.
    market
        .write(
            tally_market::db::query("UPDATE workers SET caught_by = $1 WHERE account = $2")
                .bind(first.tasks[0].0)
                .bind(liar.signer().unwrap().account().as_str()),
        )
        .await;
    market.audit_finds("unproven_revision").await;
    market.finish().await;
}
both!(a_worker_out_voted_by_a_credible_majority_is_caught);

/// A trusted worker lies only where its result would decide alone. The
/// market asks for one more ordinary replica first (re-run rate 1 here);
/// the dispute grows to a third replica, and the liar is out-voted.
async fn a_trusted_liar_meets_a_re_run_it_cannot_tell_apart(backend: Backend) {
    let market = voting_market(backend, true).await;
    let (client, model) = market.client_with_model(10_000_000).await;
    let (liar, honest_ones, bid) = liar_and_honest_ones(&market, &client, &model, png(3)).await;
    let lied = claim_one(&liar).await;
    let answer = liar.submit_result(lied.assignment, &wrong()).await.unwrap();
    // What the liar reads: its task still running, nothing decided.
    assert_eq!(answer.task_status, TaskState::Running);
    let replica = claim_one(&honest_ones[0]).await;
    assert_eq!(replica.task, lied.task);
    // The re-run is an ordinary replica: same input, model, price, fields.
    assert_eq!(
        (&replica.input, &replica.model, replica.price),
        (&lied.input, &lied.model, lied.price)
    );
    submit(&honest_ones[0], replica.assignment, &honest()).await;
    let third = claim_one(&honest_ones[1]).await;
    assert_eq!(third.task, lied.task);
    submit(&honest_ones[1], third.assignment, &honest()).await;
    let status = client.bid(bid.bid).await.unwrap();
    assert_eq!(status.tasks[0].status, TaskState::Verified);
    assert_honest(status.tasks[0].consensus.as_ref().unwrap());
    assert!(record(&market, &liar).await.caught);
    assert_eq!(liar.account_me().await.unwrap().earned_unpaid, Stroops(0));
    market.settle_and_audit_ok().await;
    market.finish().await;
}
both!(a_trusted_liar_meets_a_re_run_it_cannot_tell_apart);

/// Two new identities agree with each other on every task they share: a
/// verdict they alone make is never credible, so neither gains a check.
async fn colluders_agreeing_with_each_other_farm_nothing(backend: Backend) {
    let market = voting_market(backend, false).await;
    let (client, model) = market.client_with_model(10_000_000).await;
    let ring = workers(&market, &model, 2, 1).await;
    let req = BidRequest {
        replicas: Some(2),
        quorum: Some(2),
        max_replicas: Some(2),
        ..BidRequest::new(model.clone(), Stroops(1_000))
    };
    let bid = client.bid_images(req, &[png(4), png(5)]).await.unwrap();
    for _ in 0..2 {
        for w in &ring {
            let a = claim_one(w).await;
            w.submit_result(a.assignment, &honest()).await.unwrap();
        }
    }
    let status = client.bid(bid.bid).await.unwrap();
    assert!(status.tasks.iter().all(|t| t.status == TaskState::Failed));
    for w in &ring {
        let r = record(&market, w).await;
        assert_eq!((r.checks.passed, r.checks.failed), (1, 0), "{r:?}");
    }
    market.finish().await;
}
both!(colluders_agreeing_with_each_other_farm_nothing);

/// A late result on a verified task is voted again with the rest: a liar
/// that disagrees with a lone trusted verdict is not trusted over it, nor
/// it over the liar (nothing happens, the liar unpaid); the honest third
/// replica, late too, out-votes the liar, which is caught then.
async fn a_late_liar_is_voted_on_again_and_out_voted(backend: Backend) {
    let market = voting_market(backend, false).await;
    let (client, model) = market.client_with_model(10_000_000).await;
    let honest_ones = workers(&market, &model, 2, 30).await;
    let liar = workers(&market, &model, 1, 30).await.remove(0);
    let req = BidRequest {
        replicas: Some(3),
        ..BidRequest::new(model.clone(), Stroops(1_000))
    };
    let bid = client.bid_images(req, &[png(6)]).await.unwrap();
    let first = claim_one(&honest_ones[0]).await;
    let late = claim_one(&liar).await;
    let third = claim_one(&honest_ones[1]).await;
    assert!(first.task == late.task && late.task == third.task);
    submit(&honest_ones[0], first.assignment, &honest()).await;
    assert_eq!(
        client.bid(bid.bid).await.unwrap().tasks[0].status,
        TaskState::Verified,
        "a trusted result decides alone"
    );
    liar.submit_result(late.assignment, &wrong()).await.unwrap();
    assert!(
        !record(&market, &liar).await.caught,
        "one against one proves nothing"
    );
    submit(&honest_ones[1], third.assignment, &honest()).await;
    let r = record(&market, &liar).await;
    assert!(r.caught, "{r:?}");
    assert_eq!(liar.account_me().await.unwrap().earned_unpaid, Stroops(0));
    assert_eq!(
        record(&market, &honest_ones[1]).await.checks.passed,
        31,
        "a late result agreeing with a credible verdict passes"
    );
    assert_honest(
        client.bid(bid.bid).await.unwrap().tasks[0]
            .consensus
            .as_ref()
            .unwrap(),
    );
    market.settle_and_audit_ok().await;
    market.finish().await;
}
both!(a_late_liar_is_voted_on_again_and_out_voted);
