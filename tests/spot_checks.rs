//! Spot checks over real HTTP: a claim may get a task whose answer the
//! market knows, a fresh variant of a golden image (never its pixels) in
//! the canonical encoding, answered by the market's own detector; nothing
//! in the assignment or the answer to its result tells it from client work.
//! It is paid for by the bid whose claim it displaced, at that task's
//! price; a worker that answers it right is counted, one that answers it
//! wrong is caught, gets no more work and forfeits what it earned; its
//! evidence is public like any task's, and the audit checks it. On SQLite
//! and PostgreSQL.

mod common;

use common::golden::*;
use common::*;
use tally_protocol::wire::{BidRequest, TaskState};
use tally_protocol::{Client, Stroops};

/// The chunk types of a PNG file, in order.
fn png_chunks(bytes: &[u8]) -> Vec<String> {
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let (mut at, mut out) = (8, Vec::new());
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        out.push(String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned());
        at += 12 + len;
    }
    out
}

async fn a_check_is_paid_when_right_and_catches_a_liar(backend: Backend) {
    let market = spawn_market_with(
        backend,
        Options {
            fee_bps: 5_000,
            tweak: |c| {
                with_check_rates(c, 1.0, 1.0, 1.0);
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
    checks_ready(&market, &model, 3).await;

    // A bid of four tasks reserves, beside its replicas, one execution per
    // task for the checks that displace its claims.
    let bid = client
        .bid_images(
            BidRequest::new(model.clone(), Stroops(5_000)),
            &vec![dog.clone(); 4],
        )
        .await
        .unwrap();
    let before = client.bid(bid.bid).await.unwrap();
    assert_eq!(before.spent, Stroops(0));
    let honest = market.worker(&model).await;
    let check = claim_one(&honest).await;
    assert!(
        !bid.tasks.contains(&check.task),
        "a check, not a client task"
    );
    assert_eq!(check.model, model);
    assert_eq!(
        check.price,
        Stroops(5_000),
        "priced like the work it displaced"
    );
    // The client's bid paid for it, from its verification share.
    assert_eq!(client.bid(bid.bid).await.unwrap().spent, Stroops(5_000));
    // Its picture: the canonical encoding (pixels only), and pixels that
    // are no golden image's, nor a public sample's.
    let input = honest.input(&check.input).await.unwrap();
    assert_eq!(png_chunks(&input), ["IHDR", "IDAT", "IEND"]);
    let pixels = image::load_from_memory(&input).unwrap().into_rgb8();
    for item in &golden().items {
        assert_ne!(
            item.pixels.as_raw(),
            pixels.as_raw(),
            "a golden image's pixels"
        );
    }
    let second_variant = {
        let other = market.worker(&model).await;
        checks_ready(&market, &model, 1).await;
        let a = claim_one(&other).await;
        let bytes = other.input(&a.input).await.unwrap();
        submit(&other, a.assignment, &answer_for(&bytes).unwrap()).await;
        bytes
    };
    assert_ne!(second_variant, input, "no two checks share their bytes");
    // While it runs, its evidence is not public (nor is any running task's).
    assert!(market.anonymous().evidence(check.task).await.is_err());
    let answer = answer_for(&input).unwrap();
    let outcome = submit(&honest, check.assignment, &answer).await;
    // The answer says what it says to every result: nothing of the judgement.
    assert_eq!(
        (outcome.status.as_str(), outcome.task_status),
        ("submitted", TaskState::Running)
    );
    let me = honest.account_me().await.unwrap();
    assert_eq!(me.checks.passed, 1);
    assert_eq!(me.earned_unpaid, Stroops(2_500), "price less the 50 % fee");
    assert!(me.credibility > 0.6, "{}", me.credibility);
    // Decided and public (this market publishes at once): whole, the
    // market's own answer as the consensus.
    let ev = market.anonymous().evidence(check.task).await.unwrap();
    assert!(ev.check && !ev.withheld);
    assert_eq!(ev.results.len(), 1);
    assert_eq!(ev.verdict.as_ref().unwrap().agree, vec![check.assignment]);

    let liar = market.worker(&model).await;
    checks_ready(&market, &model, 1).await;
    let check = claim_one(&liar).await;
    assert!(!bid.tasks.contains(&check.task));
    let outcome = submit(&liar, check.assignment, &wrong()).await;
    assert_eq!(
        (outcome.status.as_str(), outcome.task_status),
        ("submitted", TaskState::Running)
    );
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

    // The public record by the hour lists ended hours only.
    let id = honest.signer().unwrap().account().clone();
    let now = market.anonymous().worker_record(&id).await.unwrap();
    assert!(now.known && now.online && !now.caught);
    assert_eq!((now.checks.passed, now.agreed), (1, 1));
    assert!(
        now.hours.is_empty(),
        "the running hour is not listed: {:?}",
        now.hours
    );
    age_results(&market, 7_200_000).await;
    let later = market.anonymous().worker_record(&id).await.unwrap();
    assert_eq!(later.hours.len(), 1, "{:?}", later.hours);
    let h = &later.hours[0];
    assert_eq!((h.agreed, h.disagreed, h.checks_passed), (1, 0, 1));
    let liar_id = liar.signer().unwrap().account().clone();
    let caught = market.anonymous().worker_record(&liar_id).await.unwrap();
    assert!(caught.caught);
    assert_eq!(
        (caught.hours[0].disagreed, caught.hours[0].credibility),
        (1, 0.0)
    );

    // A worker that earned before it was caught is never settled: it passes
    // a check, then fails the next; what it earned goes back to the payer.
    let w1 = market.worker(&model).await;
    checks_ready(&market, &model, 1).await;
    let a = claim_one(&w1).await;
    let bytes = w1.input(&a.input).await.unwrap();
    w1.submit_result(a.assignment, &answer_for(&bytes).unwrap())
        .await
        .unwrap();
    assert_eq!(w1.account_me().await.unwrap().earned_unpaid, Stroops(2_500));
    checks_ready(&market, &model, 1).await;
    let check = claim_one(&w1).await;
    assert!(!bid.tasks.contains(&check.task));
    w1.submit_result(check.assignment, &wrong()).await.unwrap();
    let caught = w1.account_me().await.unwrap();
    assert_eq!(caught.checks.failed, 1);
    assert_eq!(caught.earned_unpaid, Stroops(0));

    // The client's own tasks were left for others, untouched by the checks.
    let status = client.bid(bid.bid).await.unwrap();
    assert!(status.tasks.iter().all(|t| t.consensus.is_none()));

    let report = market.settle_and_audit_ok().await;
    assert!(report.payouts >= 1, "{}", report.summary());
    market.finish().await;
}
both!(a_check_is_paid_when_right_and_catches_a_liar);

/// A bid buys a confidence: two checked workers agreeing verify a task
/// (their weights and the group's credibility are in the evidence, and the
/// audit re-runs them); two new identities agreeing do not, however many
/// they are; a rewritten weight makes the audit fail.
async fn verdicts_weigh_results_by_credibility(backend: Backend) {
    let market = spawn_tweaked(backend, |c| {
        with_check_rates(c, 0.0, 0.0, 0.0);
        c.holdback = std::time::Duration::ZERO;
    })
    .await;
    let (client, model) = market.client_with_model(1_000_000).await;
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

    // Two fresh identities agree: 0.6 each is far from three nines. The
    // first passes 30 checks after sending its result: that result keeps
    // the weight it was sent with (had it risen, the pair would verify).
    let newcomers = [market.worker(&model).await, market.worker(&model).await];
    let bid = client.bid_images(req, &[png(2)]).await.unwrap();
    for (i, w) in newcomers.iter().enumerate() {
        let a = claim_one(w).await;
        w.submit_result(a.assignment, &honest()).await.unwrap();
        if i == 0 {
            set_checks(&market, w, 30).await;
        }
    }
    let status = client.bid(bid.bid).await.unwrap();
    assert_eq!(
        status.tasks[0].status,
        tally_protocol::wire::TaskState::Failed
    );
    for w in &newcomers {
        assert_eq!(w.account_me().await.unwrap().earned_unpaid, Stroops(0));
    }

    market.settle_and_audit_ok().await;

    // Rewrite one weight in the stored verdict: the audit names it.
    let task = ev.task;
    let row = market
        .read_one(tally_market::db::query("SELECT verdict FROM tasks WHERE id = $1").bind(task.0))
        .await;
    let mut verdict: serde_json::Value =
        serde_json::from_str(&row.try_get::<String>("verdict").unwrap()).unwrap();
    verdict["weights"][0]["credibility"] = serde_json::json!(0.99999);
    market
        .write(
            tally_market::db::query("UPDATE tasks SET verdict = $1 WHERE id = $2")
                .bind(verdict.to_string())
                .bind(task.0),
        )
        .await;
    market.audit_finds("bad_weight").await;
    market.finish().await;
}
both!(verdicts_weigh_results_by_credibility);

/// A worker checked on every claim takes no more than the market's budget
/// per worker from check prices in a day: past it, its claims get client
/// work, whatever the bids would fund.
async fn checks_stop_at_the_budget_per_worker(backend: Backend) {
    let market = spawn_tweaked(backend, |c| {
        with_check_rates(c, 1.0, 1.0, 1.0);
        c.check_budget = Stroops(5_000);
    })
    .await;
    let client = market.funded_client(1_000_000).await;
    let sample = std::fs::read(golden_dir().join("models/yolox_nano.onnx")).unwrap();
    let model = client.upload_model(sample).await.unwrap().model;
    checks_ready(&market, &model, 2).await;
    let bid = client
        .bid_images(
            BidRequest::new(model.clone(), Stroops(5_000)),
            &[png(7), png(8)],
        )
        .await
        .unwrap();
    let w = market.worker(&model).await;
    let check = claim_one(&w).await;
    assert!(
        !bid.tasks.contains(&check.task),
        "the first claim is a check"
    );
    let answer = tally_protocol::wire::ResultRequest {
        detections: detect(&w.input(&check.input).await.unwrap()),
        elapsed_ms: 5.0,
    };
    w.submit_result(check.assignment, &answer).await.unwrap();
    // One check at 5,000 stroops spends the budget: client work from now.
    let next = claim_one(&w).await;
    assert!(
        bid.tasks.contains(&next.task),
        "past the budget: client work"
    );
    market.finish().await;
}
both!(checks_stop_at_the_budget_per_worker);
