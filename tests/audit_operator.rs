//! `tally audit` against an operator that edits its own database: a
//! revision naming a worker nobody caught (hiding a payout to a result that
//! disagreed), and an agreeing result the verdict lists but no record pays.
//! Each makes the audit fail, naming it.

mod common;

use std::time::Duration;

use common::*;
use tally_protocol::wire::ResultRequest;
use tally_protocol::{Client, Signer, TaskId};

/// A market of four honest workers that verified and settled `tasks`
/// tasks, one payout per record; `before_settling` edits the database
/// first. The verified tasks, in order.
async fn settled(
    tasks: u8,
    before_settling: impl AsyncFnOnce(&TestMarket, &[TaskId]),
) -> (TestMarket, Vec<TaskId>) {
    let market = spawn_tweaked(Backend::Sqlite, |c| {
        c.settle_every = Duration::from_secs(3600);
        c.settle_max_ops = 1;
    })
    .await;
    let (client, model) = market.client_with_model(100_000_000).await;
    let workers: Vec<(Client, ResultRequest)> = vec![
        (market.worker(&model).await, honest()),
        (market.worker(&model).await, honest_noisy()),
        (market.worker(&model).await, honest()),
        (market.worker(&model).await, honest_noisy()),
    ];
    let images: Vec<Vec<u8>> = (0..tasks).map(|i| png(i + 100)).collect();
    let created = client
        .bid_images(bid_request(&model, 10_000), &images)
        .await
        .unwrap();
    // One assignment at a time, round the workers, so each task is done
    // by its own pair.
    loop {
        let mut any = false;
        for (w, answer) in &workers {
            for a in w.claim(1, 0).await.unwrap().assignments {
                w.submit_result(a.assignment, answer).await.unwrap();
                any = true;
            }
        }
        if !any {
            break;
        }
    }
    before_settling(&market, &created.tasks).await;
    while tally_market::settle::settle_now(&market.market)
        .await
        .unwrap()
        > 0
    {}
    (market, created.tasks)
}

async fn edit(market: &TestMarket, sql: &str, binds: &[i64]) {
    let mut tx = market.market.db.begin().await.unwrap();
    let mut q = tally_market::db::query(sql.to_string());
    for b in binds {
        q = q.bind(*b);
    }
    q.execute(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
}

/// The first agreeing assignment of `task`.
async fn an_agreeing_result(market: &TestMarket, task: TaskId) -> i64 {
    let ev = market.anonymous().evidence(task).await.unwrap();
    ev.verdict.unwrap().agree[0].0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_naming_a_worker_nobody_caught_is_a_finding() {
    let (market, tasks) = settled(2, async |_, _| {}).await;
    market.audit_ok().await;
    // The operator writes an "undone" verdict that names a made-up caught
    // worker, so a payout to a result that did not agree would pass as a
    // payout for a verdict since undone.
    let fake = Signer::generate().account().clone();
    // The task's own stored verdict, passed off as an undone one.
    let row = market
        .read_one(
            tally_market::db::query("SELECT verdict FROM tasks WHERE id = $1").bind(tasks[0].0),
        )
        .await;
    let verdict: String = row.try_get("verdict").unwrap();
    let revision = tally_market::db::query(
        "INSERT INTO task_revisions (task_id, revision, verdict, caught, revised_at) VALUES ($1, 1, $2, $3, $4)",
    )
    .bind(tasks[0].0)
    .bind(verdict)
    .bind(fake.as_str())
    .bind(tally_market::now_ms());
    market.write(revision).await;
    market.audit_finds("unproven_revision").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agreeing_result_no_record_pays_is_a_finding() {
    // Before settling, the operator keeps one agreeing result out of every
    // payout (its verdict still lists it).
    let (market, _) = settled(2, async |market, tasks| {
        let skipped = an_agreeing_result(market, tasks[0]).await;
        edit(
            market,
            "UPDATE assignments SET status = 'rejected' WHERE id = $1",
            &[skipped],
        )
        .await;
    })
    .await;
    let records = market.anonymous().settlements(0).await.unwrap().records;
    assert!(records.len() >= 3, "{} records", records.len());
    market.audit_finds("missing_payout").await;
}

/// The operator pays a result that failed its spot check, as if it had
/// passed: the check's evidence is public whole, so the audit judges the
/// paid result against the market's own answer and names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_result_that_failed_its_check_is_a_finding() {
    use common::golden::*;
    use tally_market::ledger::{self, Book, Cause, Leg};
    let market = spawn_tweaked(Backend::Sqlite, |c| {
        with_checks(c);
        c.holdback = Duration::ZERO;
        c.settle_every = Duration::from_secs(3600);
    })
    .await;
    let client = market.funded_client(100_000_000).await;
    let sample = std::fs::read(golden_dir().join("models/yolox_nano.onnx")).unwrap();
    let model = client.upload_model(sample).await.unwrap().model;
    checks_ready(&market, &model, 1).await;
    let dog = std::fs::read(golden_dir().join("images/dog.jpg")).unwrap();
    let bid = client
        .bid_images(
            tally_protocol::wire::BidRequest::new(model.clone(), tally_protocol::Stroops(10_000)),
            &[dog],
        )
        .await
        .unwrap();
    let liar = market.worker(&model).await;
    let check = claim_one(&liar).await;
    assert!(
        !bid.tasks.contains(&check.task),
        "a new worker's first claim is a check"
    );
    liar.submit_result(check.assignment, &wrong())
        .await
        .unwrap();
    let ev = market.anonymous().evidence(check.task).await.unwrap();
    assert!(ev.check && ev.verdict.as_ref().unwrap().disagree == vec![check.assignment]);
    let net = ev.price.0 - ev.price.fee_bps(ev.fee_bps).unwrap().0;

    // The edit: the result marked agreeing, the worker un-caught, its pay
    // booked from the operator's own balance, then settled.
    let op = market.operator.account().clone();
    market.credit(&op, net).await;
    let who = liar.signer().unwrap().account().as_str().to_string();
    let mut tx = market.market.db.begin().await.unwrap();
    tally_market::db::query("UPDATE assignments SET status = 'agreed' WHERE id = $1")
        .bind(check.assignment.0)
        .execute(&mut tx)
        .await
        .unwrap();
    tally_market::db::query(
        "UPDATE workers SET caught_at = NULL, checks_failed = 0 WHERE account = $1",
    )
    .bind(who.as_str())
    .execute(&mut tx)
    .await
    .unwrap();
    ledger::post(
        &mut tx,
        ledger::Posting::Earn,
        Cause {
            assignment: Some(check.assignment),
            task: Some(check.task),
            ..Cause::default()
        },
        &[
            Leg {
                book: Book::Available,
                owner: op.as_str(),
                amount: -net,
            },
            Leg {
                book: Book::Earned,
                owner: who.as_str(),
                amount: net,
            },
        ],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    tally_market::settle::settle_now(&market.market)
        .await
        .unwrap();
    let paid = market.anonymous().settlements(0).await.unwrap().records;
    assert!(paid.iter().any(|r| r
        .payouts
        .iter()
        .any(|p| p.assignments.contains(&check.assignment))));
    market.audit_finds("not_agreeing").await;
}

/// The operator writes five made-up workers onto a verified task and pays
/// them: none has a signed result in the task's evidence, and the audit
/// names each payout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_accounts_paid_for_a_task_are_a_finding() {
    use tally_market::ledger::{self, Book, Cause, Leg};
    let (market, _) = settled(1, async |market, tasks| {
        let op = market.operator.account().clone();
        market.credit(&op, 1_000_000).await;
        let mut tx = market.market.db.begin().await.unwrap();
        for _ in 0..5 {
            let fake = Signer::generate().account().as_str().to_string();
            let now = tally_market::now_ms();
            let row = tally_market::db::query(
                "INSERT INTO assignments (task_id, worker, status, lease_expires_at, created_at, finished_at)
                 VALUES ($1, $2, 'agreed', $3, $3, $3) RETURNING id",
            )
            .bind(tasks[0].0)
            .bind(fake.as_str())
            .bind(now)
            .fetch_one(&mut tx)
            .await
            .unwrap();
            let id = tally_protocol::AssignmentId(row.try_get::<i64>("id").unwrap());
            ledger::post(
                &mut tx,
                ledger::Posting::Earn,
                Cause {
                    assignment: Some(id),
                    task: Some(tasks[0]),
                    ..Cause::default()
                },
                &[
                    Leg { book: Book::Available, owner: op.as_str(), amount: -9_750 },
                    Leg { book: Book::Earned, owner: fake.as_str(), amount: 9_750 },
                ],
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    })
    .await;
    let report = tally::audit::audit(&market.anonymous()).await.unwrap();
    assert!(!report.ok);
    let named = report
        .findings
        .iter()
        .filter(|f| f.kind == "unknown_assignment")
        .count();
    assert_eq!(named, 5, "{}", report.summary());
}
