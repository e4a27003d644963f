//! The review checks on evidence built and signed here.

use super::*;
use base64::Engine as _;
use tally_protocol::vote::VoteParams;
use tally_protocol::wire::{
    ResultRequest, ReviewRequest, ReviewerMarkRequest, SignedResult, SignedReview, TaskState,
};
use tally_protocol::{BidId, Detection, Sha256Hex, Signer, Stroops, TaskId};

const NONCE: &str = "0123456789abcdef0123456789abcdef";
const T0: i64 = 1_700_000_000_000;

/// The market the evidence here is signed for.
pub(in crate::audit) fn domain() -> Domain {
    Domain::new(
        "Test SDF Network ; September 2015",
        Signer::from_seed([42; 32]).account().clone(),
    )
}

/// How long after its signed time a review arrives here.
const TRANSIT: i64 = 5;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn det(class_id: u32, x: f64) -> Detection {
    Detection {
        class_id,
        label: tally_protocol::labels::label(class_id).to_string(),
        score: 0.9,
        bbox: [x, 10.0, x + 50.0, 80.0],
    }
}

fn honest() -> Vec<Detection> {
    vec![det(16, 100.0)]
}

fn wrong() -> Vec<Detection> {
    vec![det(17, 300.0)]
}

/// A result of assignment `id` signed by `worker` (the evidence tests use it too).
pub(in crate::audit) fn result(
    worker: &Signer,
    id: i64,
    detections: Vec<Detection>,
) -> SignedResult {
    let body = serde_json::to_vec(&ResultRequest {
        detections,
        elapsed_ms: 1.0,
    })
    .unwrap();
    let path = format!("/v1/assignments/{id}/result");
    let h = worker.sign_at(&domain(), "POST", &path, &body, T0, NONCE);
    SignedResult {
        assignment: AssignmentId(id),
        worker: worker.account().clone(),
        body: b64(&body),
        timestamp: T0,
        nonce: NONCE.into(),
        signature: h.signature,
    }
}

fn signed_review(reviewer: &Signer, id: i64, detections: Vec<Detection>, at: i64) -> SignedReview {
    let body = serde_json::to_vec(&ReviewRequest { detections }).unwrap();
    let h = reviewer.sign_at(
        &domain(),
        "POST",
        &format!("/v1/reviews/{id}"),
        &body,
        at,
        NONCE,
    );
    SignedReview {
        review: AssignmentId(id),
        reviewer: reviewer.account().clone(),
        body: b64(&body),
        timestamp: at,
        nonce: NONCE.into(),
        signature: h.signature,
        received_at: at + TRANSIT,
    }
}

fn mark(operator: &Signer, id: i64, account: &Signer, verified: bool, at: i64) -> ReviewerMark {
    let body = serde_json::to_vec(&ReviewerMarkRequest {
        account: account.account().clone(),
        verified,
    })
    .unwrap();
    let h = operator.sign_at(&domain(), "POST", ReviewerMark::PATH, &body, at, NONCE);
    ReviewerMark {
        id,
        account: account.account().clone(),
        verified,
        signer: operator.account().clone(),
        body: b64(&body),
        timestamp: at,
        nonce: NONCE.into(),
        signature: h.signature,
    }
}

/// Verified task 7 of bid 1 (10,000 stroops at a 2.5 % fee) whose results
/// 1 and 2 were voted on with `params` and decided `verdict`; no weights,
/// revisions or reviews (the evidence tests use it too).
pub(in crate::audit) fn task_evidence(
    params: VoteParams,
    results: Vec<SignedResult>,
    verdict: Verdict,
) -> Evidence {
    Evidence {
        task: TaskId(7),
        bid: BidId(1),
        status: TaskState::Verified,
        model: Sha256Hex::of(b"model"),
        input: Sha256Hex::of(b"image"),
        price: Stroops(10_000),
        fee_bps: 250,
        params,
        results,
        voted: vec![AssignmentId(1), AssignmentId(2)],
        verdict: Some(verdict),
        weights: vec![],
        credibility: None,
        withheld: false,
        check: false,
        published_at: None,
        excluded: vec![],
        revisions: vec![],
        review_price: None,
        reviews: vec![],
        review: None,
    }
}

/// A task whose two workers disagreed (results 1 honest, 2 wrong), decided
/// by reviews 3 and 4 (both picking the honest answer) against review 5
/// (the wrong one).
struct Case {
    ev: Evidence,
    reviewers: [Signer; 3],
}

fn case() -> Case {
    let params = VoteParams::default();
    let (w1, w2) = (Signer::generate(), Signer::generate());
    let reviewers = [Signer::generate(), Signer::generate(), Signer::generate()];
    let reviews = vec![
        signed_review(&reviewers[0], 3, honest(), T0 + 10),
        signed_review(&reviewers[1], 4, honest(), T0 + 20),
        signed_review(&reviewers[2], 5, wrong(), T0 + 30),
    ];
    let ballots: Vec<Ballot> = [(3, honest()), (4, honest()), (5, wrong())]
        .into_iter()
        .map(|(id, detections)| Ballot {
            assignment: AssignmentId(id),
            detections,
        })
        .collect();
    let verdict = review::review_vote(&params, &ballots);
    assert_eq!(verdict.agree, vec![AssignmentId(3), AssignmentId(4)]);
    let results = vec![result(&w1, 1, honest()), result(&w2, 2, wrong())];
    let workers_verdict = Verdict {
        consensus: verdict.consensus.clone(),
        agree: vec![AssignmentId(1)],
        disagree: vec![AssignmentId(2)],
        numbers: verdict.numbers,
    };
    let ev = Evidence {
        review_price: Some(Stroops(4_000)),
        reviews,
        review: Some(ReviewVerdict {
            voted: vec![AssignmentId(3), AssignmentId(4), AssignmentId(5)],
            verdict,
        }),
        ..task_evidence(params, results, workers_verdict)
    };
    Case { ev, reviewers }
}

/// The workers' results as the audit reads them.
fn results(ev: &Evidence) -> Vec<Ballot> {
    ev.results
        .iter()
        .map(|r| Ballot {
            assignment: r.assignment,
            detections: r.request().unwrap().detections,
        })
        .collect()
}

fn check(ev: &Evidence) -> (ReviewFacts, HashSet<AssignmentId>, Vec<Finding>) {
    let rv = ev.review.clone().unwrap();
    let published = ev.verdict.clone().unwrap();
    check_reviewed("task 7", &domain(), ev, &rv, &published, &results(ev))
}

fn kinds(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.kind.as_str()).collect()
}

#[test]
fn honest_reviews_pass_and_decide_for_the_honest_result() {
    let c = case();
    let (facts, agree, findings) = check(&c.ev);
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(facts.agree, [AssignmentId(3), AssignmentId(4)].into());
    assert_eq!(agree, [AssignmentId(1)].into());
    assert_eq!(facts.net, Some(3_900), "review_price - 2.5 %");
    assert_eq!(facts.reviews.len(), 3);
    assert!(facts.reviews.values().all(|r| r.signed));
}

#[test]
fn a_tampered_review_signature_is_caught_and_no_longer_decides() {
    let mut c = case();
    let engine = base64::engine::general_purpose::STANDARD;
    let mut sig = engine.decode(&c.ev.reviews[1].signature).unwrap();
    sig[63] ^= 1;
    c.ev.reviews[1].signature = b64(&sig);
    let (facts, _, findings) = check(&c.ev);
    let k = kinds(&findings);
    assert!(k.contains(&"review_signature"), "{findings:?}");
    assert!(k.contains(&"review_vote"), "{findings:?}");
    assert!(!facts.reviews[&AssignmentId(4)].signed);
    // A review whose body was changed after signing is caught the same way.
    let mut c = case();
    let other = serde_json::to_vec(&ReviewRequest {
        detections: wrong(),
    })
    .unwrap();
    c.ev.reviews[0].body = b64(&other);
    assert!(kinds(&check(&c.ev).2).contains(&"review_signature"));
}

#[test]
fn an_altered_review_verdict_or_task_verdict_is_caught() {
    let mut c = case();
    let rv = c.ev.review.as_mut().unwrap();
    let moved = rv.verdict.agree.remove(0);
    rv.verdict.disagree.push(moved);
    assert!(kinds(&check(&c.ev).2).contains(&"review_vote"));

    let mut c = case();
    c.ev.review.as_mut().unwrap().voted.push(AssignmentId(99));
    assert!(kinds(&check(&c.ev).2).contains(&"review_vote"));

    // The task's consensus must be the reviews'.
    let mut c = case();
    c.ev.verdict.as_mut().unwrap().consensus = wrong();
    assert_eq!(kinds(&check(&c.ev).2), vec!["verdict_mismatch"]);

    // The wrong result is not paid by claiming it agreed.
    let mut c = case();
    let v = c.ev.verdict.as_mut().unwrap();
    v.agree.push(AssignmentId(2));
    v.disagree.clear();
    let (_, agree, findings) = check(&c.ev);
    assert!(kinds(&findings).contains(&"verdict_mismatch"));
    assert_eq!(agree, [AssignmentId(1)].into());
}

#[test]
fn reviews_that_do_not_agree_do_not_decide() {
    let mut c = case();
    let rv = c.ev.review.as_mut().unwrap();
    rv.voted = vec![AssignmentId(3), AssignmentId(5)];
    let ballots: Vec<Ballot> = [(3, honest()), (5, wrong())]
        .into_iter()
        .map(|(id, detections)| Ballot {
            assignment: AssignmentId(id),
            detections,
        })
        .collect();
    rv.verdict = review::review_vote(&c.ev.params, &ballots);
    let findings = check(&c.ev).2;
    assert!(
        findings
            .iter()
            .any(|f| f.kind == "review_vote" && f.detail.contains("needed to decide")),
        "{findings:?}"
    );
}

#[test]
fn a_reviewer_counts_from_its_operator_mark_on() {
    let operator = Signer::generate();
    let who = Signer::generate();
    let op = operator.account().clone();
    let at = T0 + 1_000;
    let standing = |marks: Vec<ReviewerMark>| {
        Marks::new(marks, domain()).standing("r", &op, who.account(), at)
    };
    assert!(standing(vec![mark(&operator, 1, &who, true, T0)]).is_empty());
    // Marked after the review was signed.
    let late = standing(vec![mark(&operator, 1, &who, true, at + 1)]);
    assert_eq!(kinds(&late), vec!["reviewer_not_verified"]);
    // Verified, then taken back before the review.
    let revoked = standing(vec![
        mark(&operator, 1, &who, true, T0),
        mark(&operator, 2, &who, false, T0 + 500),
    ]);
    assert_eq!(kinds(&revoked), vec!["reviewer_not_verified"]);
    // Taken back only after it: still counts.
    assert!(standing(vec![
        mark(&operator, 1, &who, true, T0),
        mark(&operator, 2, &who, false, at + 1),
    ])
    .is_empty());
    // A mark someone else signed does not count, and is reported.
    let stranger = Signer::generate();
    let forged = standing(vec![mark(&stranger, 1, &who, true, T0)]);
    assert_eq!(
        kinds(&forged),
        vec!["bad_reviewer_mark", "reviewer_not_verified"]
    );
    // Nor does one whose signed body says otherwise than the mark.
    let mut flipped = mark(&operator, 1, &who, false, T0);
    flipped.verified = true;
    assert_eq!(
        kinds(&standing(vec![flipped])),
        vec!["bad_reviewer_mark", "reviewer_not_verified"]
    );
}

#[test]
fn a_bad_mark_is_reported_once() {
    let (operator, who) = (Signer::generate(), Signer::generate());
    let mut m = mark(&operator, 1, &who, true, T0);
    m.signature = mark(&operator, 1, &who, true, T0 + 1).signature;
    let mut marks = Marks::new(vec![m], domain());
    let op = operator.account();
    assert_eq!(marks.standing("a", op, who.account(), T0 + 5).len(), 2);
    assert_eq!(
        kinds(&marks.standing("b", op, who.account(), T0 + 6)),
        vec!["reviewer_not_verified"]
    );
}

#[test]
fn a_paid_review_is_the_payees_and_decided_the_task() {
    let c = case();
    let operator = Signer::generate();
    let (facts, _, _) = check(&c.ev);
    let marks = || {
        Marks::new(
            c.reviewers
                .iter()
                .enumerate()
                .map(|(i, r)| mark(&operator, i as i64 + 1, r, true, T0))
                .collect(),
            domain(),
        )
    };
    let paid = |id: i64, payee: &Signer| {
        let review = facts.reviews[&AssignmentId(id)].clone();
        check_paid_review(
            "p",
            AssignmentId(id),
            payee.account(),
            &review,
            &facts,
            &mut marks(),
            operator.account(),
        )
    };
    assert!(paid(3, &c.reviewers[0]).is_empty());
    assert!(paid(4, &c.reviewers[1]).is_empty());
    assert_eq!(kinds(&paid(3, &c.reviewers[1])), vec!["wrong_reviewer"]);
    assert_eq!(
        kinds(&paid(5, &c.reviewers[2])),
        vec!["review_not_agreeing"]
    );
    // Marks the record's source did not sign do not make a reviewer.
    let review = facts.reviews[&AssignmentId(3)].clone();
    let other = Signer::generate();
    let found = check_paid_review(
        "p",
        AssignmentId(3),
        c.reviewers[0].account(),
        &review,
        &facts,
        &mut marks(),
        other.account(),
    );
    assert_eq!(
        kinds(&found),
        vec!["bad_reviewer_mark", "reviewer_not_verified"]
    );
}

#[test]
fn a_review_counts_only_if_its_reviewer_is_verified_when_it_arrives_too() {
    let c = case();
    let operator = Signer::generate();
    let (facts, _, _) = check(&c.ev);
    let reviewer = &c.reviewers[0];
    let review = facts.reviews[&AssignmentId(3)].clone();
    let signed_at = review.timestamp;
    let paid = |review: &ReviewFact, marks: Vec<ReviewerMark>| {
        check_paid_review(
            "p",
            AssignmentId(3),
            reviewer.account(),
            review,
            &facts,
            &mut Marks::new(marks, domain()),
            operator.account(),
        )
    };
    let verified = mark(&operator, 1, reviewer, true, T0);
    // Revoked after the signed time but before the review arrived: the
    // back-dated signature does not count.
    let revoked = mark(&operator, 2, reviewer, false, signed_at + 1);
    assert_eq!(
        kinds(&paid(&review, vec![verified.clone(), revoked])),
        vec!["reviewer_not_verified"]
    );
    // Revoked after it arrived: it counts.
    let later = mark(&operator, 2, reviewer, false, signed_at + TRANSIT + 1);
    assert!(paid(&review, vec![verified.clone(), later]).is_empty());
    // An arrival outside the window of the signed time is a finding.
    let mut late = review.clone();
    late.received_at = signed_at + 61_000;
    assert_eq!(kinds(&paid(&late, vec![verified])), vec!["review_time"]);
}

#[test]
fn evidence_signed_for_another_market_does_not_verify() {
    let c = case();
    let elsewhere = Domain::new(
        "Public Global Stellar Network ; September 2015",
        domain().operator,
    );
    let rv = c.ev.review.clone().unwrap();
    let published = c.ev.verdict.clone().unwrap();
    let findings = check_reviewed(
        "task 7",
        &elsewhere,
        &c.ev,
        &rv,
        &published,
        &results(&c.ev),
    )
    .2;
    assert!(
        kinds(&findings).contains(&"review_signature"),
        "{findings:?}"
    );
}
