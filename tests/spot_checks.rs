//! Spot checks over real HTTP: a claim may get a task whose answer the
//! market knows (from the golden set, here the repository's assets), in a
//! form no field tells from client work; a worker that answers it right is
//! paid from the operator's fees and counted; one that answers it wrong is
//! caught and gets no more work; the check's evidence stays withheld and
//! the audit still passes. On SQLite and PostgreSQL.

mod common;

use common::golden::*;
use common::*;
use tally_protocol::wire::BidRequest;
use tally_protocol::{Client, Stroops};

async fn a_check_is_paid_when_right_and_catches_a_liar(backend: Backend) {
    let market = spawn_market_with(
        backend,
        Options {
            fee_bps: 5_000,
            tweak: |c| {
                c.golden = tally_market::checks::load_golden(&golden_dir()).unwrap();
                c.check_rates.new = 1.0;
                c.check_rates.trusted = 1.0;
                // No probation: what is earned settles at once.
                c.holdback = std::time::Duration::ZERO;
            },
            ..Options::default()
        },
    )
    .await;
    let client = market.funded_client(1_000_000).await;
    let sample = std::fs::read(golden_dir().join("models/yolox_nano.onnx")).unwrap();
    let model = client.upload_model(sample).await.unwrap().model;
    let dog = std::fs::read(golden_dir().join("images/dog.jpg")).unwrap();
    let honest_dog = answer_for(&dog).expect("dog.jpg is in the golden set");

    // No fee income yet: nothing pays for a check, so claims get client work.
    // Two new identities are credible enough for this bid's modest confidence.
    let first = BidRequest {
        replicas: Some(2),
        max_replicas: Some(2),
        confidence: Some(0.6),
        ..BidRequest::new(model.clone(), Stroops(10_000))
    };
    let bid = client
        .bid_images(first, std::slice::from_ref(&dog))
        .await
        .unwrap();
    let (w1, w2) = (market.worker(&model).await, market.worker(&model).await);
    let (a1, a2) = (claim_one(&w1).await, claim_one(&w2).await);
    assert_eq!((a1.task, a2.task), (bid.tasks[0], bid.tasks[0]));
    w1.submit_result(a1.assignment, &honest_dog).await.unwrap();
    w2.submit_result(a2.assignment, &honest_dog).await.unwrap();
    // 2 x 5,000 stroops of fees now pay for two checks of 5,000.

    let second = BidRequest::new(model.clone(), Stroops(5_000));
    let bid = client
        .bid_images(second, &[dog.clone(), dog.clone()])
        .await
        .unwrap();
    let honest = market.worker(&model).await;
    let check = claim_one(&honest).await;
    assert!(
        !bid.tasks.contains(&check.task),
        "a check, not a client task"
    );
    // Nothing in the assignment tells it from client work.
    let client_like = serde_json::to_value(&a1).unwrap();
    let check_json = serde_json::to_value(&check).unwrap();
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&check_json), keys(&client_like));
    assert_eq!(check.model, model);
    assert_eq!(
        check.price,
        Stroops(5_000),
        "priced like the work it replaced"
    );
    // A fresh byte variant of a golden image: same pixels, new bytes.
    let input = honest.input(&check.input).await.unwrap();
    let golden = tally_market::checks::load_golden(&golden_dir()).unwrap();
    assert!(golden.items.iter().all(|i| i.bytes != input));
    let answer = answer_for(&input).expect("the check's pixels are a golden image's");
    // While it runs, its evidence is not public (nor is any running task's).
    assert!(market.anonymous().evidence(check.task).await.is_err());
    let outcome = honest
        .submit_result(check.assignment, &answer)
        .await
        .unwrap();
    assert_eq!(outcome.status, "agreed");
    let me = honest.account_me().await.unwrap();
    assert_eq!(me.checks.passed, 1);
    assert_eq!(me.earned_unpaid, Stroops(2_500), "price less the 50 % fee");
    assert!(me.credibility > 0.6, "{}", me.credibility);
    // Decided, its evidence is withheld: the image may be used again.
    let ev = market.anonymous().evidence(check.task).await.unwrap();
    assert!(ev.withheld && ev.results.is_empty() && ev.verdict.is_none());

    let liar = market.worker(&model).await;
    let check = claim_one(&liar).await;
    assert!(!bid.tasks.contains(&check.task));
    let outcome = liar
        .submit_result(check.assignment, &wrong())
        .await
        .unwrap();
    assert_eq!(outcome.status, "disagreed");
    let me = liar.account_me().await.unwrap();
    assert_eq!((me.checks.passed, me.checks.failed), (0, 1));
    assert_eq!(me.credibility, 0.0);
    assert_eq!(me.earned_unpaid, Stroops(0));
    let refused = liar.claim(1, 0).await.unwrap_err();
    assert!(refused.to_string().contains("spot check"), "{refused}");
    // The market's public view lists both, the checked one first.
    let stats = market.anonymous().market().await.unwrap();
    let seen = |w: &Client| {
        stats
            .workers
            .iter()
            .find(|s| &s.account == w.signer().unwrap().account())
            .cloned()
            .expect("worker listed")
    };
    assert_eq!(seen(&liar).credibility, 0.0);
    assert_eq!(seen(&honest).checks.passed, 1);
    assert_eq!(
        stats.workers[0].account,
        *honest.signer().unwrap().account()
    );

    // The public record by the hour lists ended hours only: the check just
    // passed shows in the totals, not yet in any hour.
    let id = honest.signer().unwrap().account().clone();
    let now = market.anonymous().worker_record(&id).await.unwrap();
    assert!(now.known && now.online && !now.caught);
    assert_eq!((now.checks.passed, now.agreed), (1, 1));
    assert!(
        now.hours.is_empty(),
        "the running hour is not listed: {:?}",
        now.hours
    );
    // Two hours on, that hour has ended: it shows the check and the
    // credibility it gave. The liar's hour shows its failure.
    age_results(&market, 7_200_000).await;
    let later = market.anonymous().worker_record(&id).await.unwrap();
    assert_eq!(later.hours.len(), 1, "{:?}", later.hours);
    let h = &later.hours[0];
    assert_eq!((h.agreed, h.disagreed, h.checks_passed), (1, 0, 1));
    assert_eq!(h.credibility, later.credibility);
    assert!(
        h.hour.timestamp() % 3600 == 0 && h.hour < chrono::Utc::now() - chrono::Duration::hours(1)
    );
    let liar_id = liar.signer().unwrap().account().clone();
    let caught = market.anonymous().worker_record(&liar_id).await.unwrap();
    assert!(caught.caught);
    assert_eq!(
        (caught.hours[0].disagreed, caught.hours[0].credibility),
        (1, 0.0)
    );
    let nobody = tally_protocol::Signer::generate();
    let unknown = market
        .anonymous()
        .worker_record(nobody.account())
        .await
        .unwrap();
    assert!(!unknown.known && unknown.hours.is_empty());

    // A worker that earned before it was caught is never settled: w1 was
    // paid for the first bid; its next claim is a check (paid for by the
    // operator's own balance now that fees ran short), which it fails.
    market
        .client(&market.operator)
        .credit(market.operator.account(), Stroops(100_000))
        .await
        .unwrap();
    let check = claim_one(&w1).await;
    assert!(!bid.tasks.contains(&check.task));
    let before = client.account_me().await.unwrap().balance;
    assert_eq!(w1.account_me().await.unwrap().earned_unpaid, Stroops(5_000));
    w1.submit_result(check.assignment, &wrong()).await.unwrap();
    let caught = w1.account_me().await.unwrap();
    assert_eq!(caught.checks.failed, 1);
    // Its unsettled earnings went back to the client whose task paid them.
    assert_eq!(caught.earned_unpaid, Stroops(0));
    assert_eq!(
        client.account_me().await.unwrap().balance,
        Stroops(before.0 + 5_000)
    );

    // The client's own tasks were left for others, untouched by the checks.
    let status = client.bid(bid.bid).await.unwrap();
    assert!(status.tasks.iter().all(|t| t.consensus.is_none()));

    tally_market::settle::settle_now(&market.market)
        .await
        .unwrap();
    let report = tally::audit::audit(&market.anonymous()).await.unwrap();
    assert!(report.ok, "{}", report.summary());
    assert_eq!(report.withheld_checks, 1, "{}", report.summary());
    market.finish().await;
}
both!(a_check_is_paid_when_right_and_catches_a_liar);

/// A bid buys a confidence: two checked workers agreeing verify a task
/// (their weights and the group's credibility are in the evidence, and the
/// audit re-runs them); two new identities agreeing do not, however many
/// they are; a rewritten weight makes the audit fail.
async fn verdicts_weigh_results_by_credibility(backend: Backend) {
    let market = spawn_market_with(
        backend,
        Options {
            tweak: |c| {
                c.golden = tally_market::checks::load_golden(&golden_dir()).unwrap();
                c.check_rates.new = 0.0;
                c.check_rates.trusted = 0.0;
                c.holdback = std::time::Duration::ZERO;
            },
            ..Options::default()
        },
    )
    .await;
    let client = market.funded_client(1_000_000).await;
    let model = model(&client).await;
    let req = BidRequest {
        replicas: Some(2),
        quorum: Some(2),
        max_replicas: Some(2),
        confidence: Some(0.999),
        ..BidRequest::new(model.clone(), Stroops(1_000))
    };
    let trusted = [market.worker(&model).await, market.worker(&model).await];
    for w in &trusted {
        set_checks(&market, w, 10).await;
    }
    let bid = client.bid_images(req.clone(), &[png(1)]).await.unwrap();
    for w in &trusted {
        let a = claim_one(w).await;
        w.submit_result(a.assignment, &honest()).await.unwrap();
    }
    let status = client.bid(bid.bid).await.unwrap();
    assert_eq!(
        status.tasks[0].status,
        tally_protocol::wire::TaskState::Verified
    );
    let ev = market.anonymous().evidence(bid.tasks[0]).await.unwrap();
    assert_eq!(ev.params.confidence, Some(0.999));
    assert_eq!(ev.weights.len(), 2);
    assert!(ev.weights.iter().all(|w| w.checks.passed == 10));
    let p = ev.credibility.expect("the group's credibility is recorded");
    assert!(p >= 0.999, "{p}");

    // Two fresh identities agree: 0.6 each is far from three nines.
    let newcomers = [market.worker(&model).await, market.worker(&model).await];
    let bid = client.bid_images(req, &[png(2)]).await.unwrap();
    for w in &newcomers {
        let a = claim_one(w).await;
        w.submit_result(a.assignment, &honest()).await.unwrap();
    }
    let status = client.bid(bid.bid).await.unwrap();
    assert_eq!(
        status.tasks[0].status,
        tally_protocol::wire::TaskState::Failed
    );
    for w in &newcomers {
        assert_eq!(w.account_me().await.unwrap().earned_unpaid, Stroops(0));
    }

    tally_market::settle::settle_now(&market.market)
        .await
        .unwrap();
    let report = tally::audit::audit(&market.anonymous()).await.unwrap();
    assert!(report.ok, "{}", report.summary());

    // Rewrite one weight in the stored verdict: the audit names it.
    let task = ev.task;
    let row = tally_market::db::query("SELECT verdict FROM tasks WHERE id = $1")
        .bind(task.0)
        .fetch_one(&market.market.db)
        .await
        .unwrap();
    let mut verdict: serde_json::Value =
        serde_json::from_str(&row.try_get::<String>("verdict").unwrap()).unwrap();
    verdict["weights"][0]["credibility"] = serde_json::json!(0.99999);
    let mut tx = market.market.db.begin().await.unwrap();
    tally_market::db::query("UPDATE tasks SET verdict = $1 WHERE id = $2")
        .bind(verdict.to_string())
        .bind(task.0)
        .execute(&mut tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let report = tally::audit::audit(&market.anonymous()).await.unwrap();
    assert!(!report.ok);
    assert!(
        report.findings.iter().any(|f| f.kind == "bad_weight"),
        "{}",
        report.summary()
    );
    market.finish().await;
}
both!(verdicts_weigh_results_by_credibility);
