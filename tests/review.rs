//! Human review over HTTP: two workers disagree on
//! a task of a bid that pays for review, the task goes to review, verified
//! reviewers answer through the API, and the market decides, pays and
//! publishes as the rules say. The same scenarios on SQLite and PostgreSQL.

mod common;

use common::*;
use tally_market::db::query;
use tally_protocol::review::MAX_REVIEWS;
use tally_protocol::wire::{ResultRequest, ReviewRequest, TaskState};
use tally_protocol::{AssignmentId, Client, Signer, Stroops, TaskId};

const PRICE: i64 = 1_000;
const REVIEW_PRICE: i64 = 40_000;
const FEE_BPS: i64 = 250;
/// What [`TestMarket::disputed`] credits the client with.
const FUNDS: i64 = 100_000_000;

/// A disputed task (see [`TestMarket::disputed`]) whose client starts
/// with 100,000,000 stroops: the task, the bid, the client, the workers.
async fn disputed(
    market: &TestMarket,
    a: ResultRequest,
    b: ResultRequest,
) -> (TaskId, tally_protocol::BidId, Client, Vec<Client>) {
    let d = market.disputed(png(7), PRICE, REVIEW_PRICE, [a, b]).await;
    (d.bid.tasks[0], d.bid.bid, d.client, d.workers)
}

/// A reviewer the operator has marked verified.
async fn reviewer(market: &TestMarket) -> Client {
    let signer = Signer::generate();
    let mark = market
        .client(&market.operator)
        .mark_reviewer(signer.account(), true)
        .await
        .expect("mark");
    assert!(mark.verified);
    mark.verify(&market.domain())
        .expect("the mark verifies against the operator's key");
    market.client(&signer)
}

/// `r` answers review `id` with `detections` and is refused with `status`
/// (`why` says why it must be).
async fn review_refused(
    r: &Client,
    id: AssignmentId,
    detections: Vec<tally_protocol::Detection>,
    status: u16,
    why: &str,
) {
    let e = r
        .submit_review(id, &ReviewRequest { detections })
        .await
        .expect_err(why);
    assert_eq!(e.status().map(|s| s.as_u16()), Some(status), "{e}");
}

async fn task_state(client: &Client, bid: tally_protocol::BidId) -> TaskState {
    client.bid(bid).await.expect("bid status").tasks[0].status
}

async fn balance(who: &Client) -> tally_protocol::wire::AccountView {
    who.account_me().await.expect("account")
}

async fn two_reviewers_agree_and_decide(backend: Backend) {
    let market = spawn_market(backend).await;
    let (task, bid, client, workers) = disputed(&market, honest(), wrong()).await;
    assert_eq!(task_state(&client, bid).await, TaskState::Review);

    // Nobody but a marked reviewer sees the queue.
    let stranger = market.client(&Signer::generate());
    let refused = stranger
        .next_review()
        .await
        .expect_err("an unmarked account is refused");
    assert_eq!(refused.status().map(|s| s.as_u16()), Some(403), "{refused}");
    assert!(refused.to_string().contains("not_a_reviewer"), "{refused}");

    let r1 = reviewer(&market).await;
    let t1 = r1.next_review().await.expect("next").expect("a ticket");
    assert_eq!(t1.task, task);
    assert_eq!(t1.price, Stroops(REVIEW_PRICE));
    assert_eq!(t1.candidates.len(), 2, "two groups: {:?}", t1.candidates);
    // Asking again gives the same review, not a second one.
    let again = r1.next_review().await.expect("next").expect("a ticket");
    assert_eq!(again.review, t1.review);
    // The reviewer may read the image it reviews.
    assert_eq!(
        r1.input(&t1.input).await.expect("input"),
        canonical(&png(7))
    );
    let honest_pick = t1
        .candidates
        .iter()
        .position(|c| c.detections == honest().detections)
        .expect("the honest answer is a candidate");
    let pick = ReviewRequest {
        detections: t1.candidates[honest_pick].detections.clone(),
    };
    let first = r1.submit_review(t1.review, &pick).await.expect("review");
    assert_eq!(
        first.task_status,
        TaskState::Review,
        "one review decides nothing"
    );
    let twice = r1
        .submit_review(t1.review, &pick)
        .await
        .expect_err("answered already");
    assert_eq!(twice.status().map(|s| s.as_u16()), Some(409), "{twice}");
    // No evidence while reviewers still answer.
    assert!(market.anonymous().evidence(task).await.is_err());

    let r2 = reviewer(&market).await;
    let t2 = r2.next_review().await.expect("next").expect("a ticket");
    assert_eq!(t2.task, task);
    assert_ne!(t2.review, t1.review);
    let second = r2.submit_review(t2.review, &pick).await.expect("review");
    assert_eq!(second.task_status, TaskState::Verified);

    // A third reviewer finds nothing left.
    let r3 = reviewer(&market).await;
    assert!(r3.next_review().await.expect("next").is_none());

    let status = client.bid(bid).await.expect("bid");
    assert_eq!(status.tasks[0].status, TaskState::Verified);
    assert_eq!(
        status.tasks[0].consensus.as_ref().map(|c| c.len()),
        Some(honest().detections.len())
    );
    assert_eq!(status.status, tally_protocol::wire::BidState::Done);

    // Paid: the agreeing worker the price, each reviewer the review price, fees kept.
    let fee = |p: i64| p * FEE_BPS / 10_000;
    let honest_worker = balance(&workers[0]).await;
    let wrong_worker = balance(&workers[1]).await;
    assert_eq!(honest_worker.earned_unpaid.0, PRICE - fee(PRICE));
    assert_eq!(wrong_worker.earned_unpaid.0, 0);
    for r in [&r1, &r2] {
        let v = balance(r).await;
        assert_eq!(v.earned_unpaid.0, REVIEW_PRICE - fee(REVIEW_PRICE));
    }
    assert_eq!(balance(&r3).await.earned_unpaid.0, 0);
    // The client paid exactly one result and two reviews.
    let c = balance(&client).await;
    assert_eq!(c.reserved.0, 0);
    assert_eq!(c.balance.0, FUNDS - PRICE - 2 * REVIEW_PRICE);

    // The evidence carries the signed reviews and how they decided.
    let ev = market.anonymous().evidence(task).await.expect("evidence");
    assert_eq!(ev.review_price, Some(Stroops(REVIEW_PRICE)));
    assert_eq!(ev.reviews.len(), 2);
    for r in &ev.reviews {
        let req = r
            .verify(&market.domain())
            .expect("each review's signature verifies");
        assert_eq!(req.detections, pick.detections);
    }
    let review = ev.review.as_ref().expect("decided by review");
    assert_eq!(review.verdict.agree.len(), 2);
    let verdict = ev.verdict.as_ref().expect("verdict");
    assert_eq!(verdict.consensus, review.verdict.consensus);
    assert_eq!(verdict.agree.len(), 1);
    assert_eq!(verdict.disagree.len(), 1);

    // Settlement pays the reviews with the results, each exactly once.
    tally_market::settle::settle_now(&market.market)
        .await
        .expect("settle");
    let records = all_records(&market.anonymous()).await;
    let paid = assert_paid_exactly_once(&market.market.db, &records).await;
    assert_eq!(paid, 3, "one result and two reviews");
    let reviews_paid: Vec<_> = records
        .iter()
        .flat_map(|r| &r.payouts)
        .filter(|p| {
            p.assignments
                .iter()
                .any(|a| *a == t1.review || *a == t2.review)
        })
        .collect();
    assert_eq!(reviews_paid.len(), 2);
    for p in reviews_paid {
        assert_eq!(p.amount.0, REVIEW_PRICE - fee(REVIEW_PRICE));
    }
    market.finish().await;
}
both!(two_reviewers_agree_and_decide);

async fn reviewers_who_never_agree_fail_the_task_and_refund(backend: Backend) {
    let market = spawn_market(backend).await;
    let (task, bid, client, _) = disputed(&market, honest(), wrong()).await;
    let answers = [
        honest().detections,
        wrong().detections,
        ResultBody::other().detections,
        vec![det(3, 0.6, [5.0, 5.0, 20.0, 20.0])],
    ];
    assert_eq!(answers.len() as u32, MAX_REVIEWS);
    let mut last = None;
    for detections in answers {
        let r = reviewer(&market).await;
        let t = r.next_review().await.expect("next").expect("a ticket");
        assert_eq!(t.task, task);
        last = Some(
            r.submit_review(t.review, &ReviewRequest { detections })
                .await
                .expect("review")
                .task_status,
        );
    }
    assert_eq!(last, Some(TaskState::Failed));
    let extra = reviewer(&market).await;
    assert!(extra.next_review().await.expect("next").is_none());
    let status = client.bid(bid).await.expect("bid");
    assert_eq!(status.tasks[0].status, TaskState::Failed);
    assert_eq!(status.status, tally_protocol::wire::BidState::Done);
    let c = client.account_me().await.expect("account");
    assert_eq!(c.balance.0, FUNDS, "nothing paid, everything refunded");
    assert_eq!(c.reserved.0, 0);
    let ev = market.anonymous().evidence(task).await.expect("evidence");
    assert_eq!(ev.reviews.len(), MAX_REVIEWS as usize);
    assert!(ev.review.is_none());
    market.finish().await;
}
both!(reviewers_who_never_agree_fail_the_task_and_refund);

async fn who_may_review_is_on_record(backend: Backend) {
    let market = spawn_market(backend).await;
    let (task, _, _, workers) = disputed(&market, honest(), wrong()).await;
    let operator = market.client(&market.operator);

    // A worker of the task, even once marked, never reviews it.
    let worker_account = workers[0].signer().unwrap().account().clone();
    operator
        .mark_reviewer(&worker_account, true)
        .await
        .expect("mark");
    assert!(workers[0].next_review().await.expect("next").is_none());

    // Only the operator marks.
    let r = reviewer(&market).await;
    let who = r.signer().unwrap().account().clone();
    let forged = r
        .mark_reviewer(&who, true)
        .await
        .expect_err("not the operator");
    assert_eq!(forged.status().map(|s| s.as_u16()), Some(403));

    // A reviewer whose mark is taken back can answer no more.
    let t = r.next_review().await.expect("next").expect("a ticket");
    assert_eq!(t.task, task);
    operator.mark_reviewer(&who, false).await.expect("unmark");
    review_refused(&r, t.review, honest().detections, 403, "no longer verified").await;
    assert!(r.next_review().await.is_err());

    // Bad answers are refused with a reason and change nothing.
    operator
        .mark_reviewer(&who, true)
        .await
        .expect("mark again");
    for (id, detections, status, why) in [
        (
            t.review,
            vec![det(1, 1.5, [0.0, 0.0, 1.0, 1.0])],
            400,
            "a score above 1",
        ),
        (AssignmentId(999_999), vec![], 404, "no such review"),
        // A result's id is no review.
        (AssignmentId(1), vec![], 404, "a result is not a review"),
    ] {
        review_refused(&r, id, detections, status, why).await;
    }

    // The marks are public, signed by the operator, in order.
    let marks = market
        .anonymous()
        .reviewer_marks()
        .await
        .expect("marks")
        .marks;
    assert_eq!(marks.len(), 4);
    for m in &marks {
        m.verify(&market.domain()).expect("signed as stored");
        assert_eq!(&m.signer, market.operator.account());
    }
    let mine: Vec<bool> = marks
        .iter()
        .filter(|m| m.account == who)
        .map(|m| m.verified)
        .collect();
    assert_eq!(mine, vec![true, false, true]);
    assert!(tally_protocol::review::verified_at(&marks, &who, i64::MAX));
    market.finish().await;
}
both!(who_may_review_is_on_record);

async fn a_waiting_reviewer_is_woken_by_work(backend: Backend) {
    let market = spawn_market(backend).await;
    let (r1, r2, r3) = (
        reviewer(&market).await,
        reviewer(&market).await,
        reviewer(&market).await,
    );
    // Waiting before any task is in review: the task going to review wakes it.
    let waiting = {
        let r1 = r1.clone();
        tokio::spawn(async move { r1.next_review_wait(60_000).await })
    };
    let (task, _, _, _) = disputed(&market, honest(), wrong()).await;
    let t1 = waiting
        .await
        .unwrap()
        .expect("next")
        .expect("woken with a ticket, not left to time out");
    assert_eq!(t1.task, task);
    assert_eq!(
        t1.params.quorum, 2,
        "the bid's parameters come with the ticket"
    );
    let t2 = r2.next_review().await.expect("next").expect("a ticket");
    // Both reviewers hold the task: a third waits until their answers
    // disagree and the task wants one more.
    let waiting = {
        let r3 = r3.clone();
        tokio::spawn(async move { r3.next_review_wait(60_000).await })
    };
    for (r, t, answer) in [(&r1, &t1, honest()), (&r2, &t2, wrong())] {
        let out = r
            .submit_review(
                t.review,
                &ReviewRequest {
                    detections: answer.detections,
                },
            )
            .await
            .expect("review");
        assert_eq!(out.task_status, TaskState::Review);
    }
    let t3 = waiting
        .await
        .unwrap()
        .expect("next")
        .expect("woken when the reviews did not decide");
    assert_eq!(t3.task, task);
    market.finish().await;
}
both!(a_waiting_reviewer_is_woken_by_work);

/// Two market processes on one PostgreSQL database: a reviewer waiting on
/// one is woken by a task going to review on the other, the two reviewers
/// answer on different processes, and the task is decided once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_across_two_markets_on_postgres() {
    let Some((first, second)) = two_markets_on_postgres().await else {
        return;
    };
    let r1 = second.client(&Signer::generate());
    let r2 = first.client(&Signer::generate());
    for r in [&r1, &r2] {
        first
            .client(&first.operator)
            .mark_reviewer(r.signer().unwrap().account(), true)
            .await
            .expect("mark");
    }
    let waiting = {
        let r1 = r1.clone();
        tokio::spawn(async move { r1.next_review_wait(60_000).await })
    };
    let d = first
        .disputed(png(9), PRICE, REVIEW_PRICE, [honest(), wrong()])
        .await;
    let t1 = waiting
        .await
        .unwrap()
        .expect("next")
        .expect("woken on the other process");
    assert_eq!(t1.task, d.bid.tasks[0]);
    let t2 = r2.next_review().await.expect("next").expect("a ticket");
    assert_ne!(t1.review, t2.review);
    let pick = honest_review();
    let (a, b) = tokio::join!(
        r1.submit_review(t1.review, &pick),
        r2.submit_review(t2.review, &pick)
    );
    let states = [
        a.expect("review 1").task_status,
        b.expect("review 2").task_status,
    ];
    assert_eq!(
        states.iter().filter(|s| **s == TaskState::Verified).count(),
        1,
        "exactly one answer decides: {states:?}"
    );
    let ev = first
        .anonymous()
        .evidence(d.bid.tasks[0])
        .await
        .expect("evidence");
    assert_eq!(ev.review.expect("decided by review").verdict.agree.len(), 2);
    tally_market::settle::settle_now(&second.market)
        .await
        .expect("settle");
    let records = all_records(&first.anonymous()).await;
    assert_eq!(
        assert_paid_exactly_once(&first.market.db, &records).await,
        3
    );
    second.finish().await;
    first.finish().await;
}

async fn a_task_in_review_ends_at_its_bids_deadline(backend: Backend) {
    let market = spawn_market(backend).await;
    let (task, bid, client, _) = disputed(&market, honest(), wrong()).await;
    let r = reviewer(&market).await;
    let t = r.next_review().await.expect("next").expect("a ticket");
    // The bid's deadline passes while the task waits for reviewers.
    market
        .write(query("UPDATE bids SET deadline_at = 0 WHERE id = $1").bind(bid.0))
        .await;
    tally_market::sweep::expire_deadlines(&market.market)
        .await
        .expect("sweep");
    let status = client.bid(bid).await.expect("bid");
    assert_eq!(status.tasks[0].status, TaskState::Failed);
    assert_eq!(status.status, tally_protocol::wire::BidState::Done);
    let c = balance(&client).await;
    assert_eq!(
        (c.balance.0, c.reserved.0),
        (FUNDS, 0),
        "everything refunded"
    );
    review_refused(&r, t.review, honest().detections, 409, "the task is over").await;
    assert_eq!(
        market
            .anonymous()
            .evidence(task)
            .await
            .expect("evidence")
            .reviews
            .len(),
        0
    );
    market.finish().await;
}
both!(a_task_in_review_ends_at_its_bids_deadline);

async fn a_review_left_unanswered_goes_to_another_reviewer(backend: Backend) {
    let market = spawn_market(backend).await;
    let (task, _, _, _) = disputed(&market, honest(), wrong()).await;
    let (r1, r2, r3) = (
        reviewer(&market).await,
        reviewer(&market).await,
        reviewer(&market).await,
    );
    let t1 = r1.next_review().await.expect("next").expect("a ticket");
    let t2 = r2.next_review().await.expect("next").expect("a ticket");
    assert!(
        r3.next_review().await.expect("next").is_none(),
        "two reviewers are enough at first"
    );
    // Reviewer 1's lease runs out: the task wants another reviewer.
    market
        .write(
            tally_market::db::query("UPDATE assignments SET lease_expires_at = 0 WHERE id = $1")
                .bind(t1.review.0),
        )
        .await;
    let t3 = r3
        .next_review()
        .await
        .expect("next")
        .expect("the lapsed review's slot");
    assert_eq!(t3.task, task);
    // A late answer still counts while the task is undecided.
    let pick = honest_review();
    let late = r1
        .submit_review(t1.review, &pick)
        .await
        .expect("late review");
    assert_eq!(late.task_status, TaskState::Review);
    let deciding = r3.submit_review(t3.review, &pick).await.expect("review");
    assert_eq!(deciding.task_status, TaskState::Verified);
    // The review still out is cancelled: its answer comes too late.
    let over = r2
        .submit_review(t2.review, &pick)
        .await
        .expect_err("decided");
    assert_eq!(over.status().map(|s| s.as_u16()), Some(409), "{over}");
    for r in [&r1, &r3] {
        assert_eq!(
            balance(r).await.earned_unpaid.0,
            REVIEW_PRICE - REVIEW_PRICE * FEE_BPS / 10_000
        );
    }
    assert_eq!(balance(&r2).await.earned_unpaid.0, 0);
    market.finish().await;
}
both!(a_review_left_unanswered_goes_to_another_reviewer);
