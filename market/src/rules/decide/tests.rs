//! The decision's stages that need no database: which results vote, the
//! vote with and without a confidence, and how judged results are grouped
//! into the statements that move them.

use tally_protocol::trust::CheckRecord;
use tally_protocol::vote::VoteParams;
use tally_protocol::wire::{ResultRequest, TaskState};
use tally_protocol::{AccountId, AssignmentId, BidId, Detection, Sha256Hex, Stroops, TaskId};

use super::case::{Case, Submitted};
use super::judge::moves;
use super::voting::run_vote;
use crate::lifecycle::AssignmentState;
use crate::task::TaskRow;

fn account(n: u8) -> AccountId {
    tally_protocol::Signer::from_seed([n; 32]).account().clone()
}

fn task(params: VoteParams) -> TaskRow {
    TaskRow {
        id: TaskId(1),
        model: Sha256Hex::of(b"model"),
        bid: BidId(1),
        client: account(200),
        state: TaskState::Running,
        price: Stroops(100),
        fee_bps: 0,
        wanted: 3,
        taken: 3,
        max_replicas: 5,
        params,
        verdict: None,
        is_check: false,
        review_price: None,
    }
}

fn dog(x: f64) -> Detection {
    Detection {
        class_id: 16,
        label: "dog".into(),
        score: 0.9,
        bbox: [x, 10.0, x + 100.0, 110.0],
    }
}

/// A result of worker `n` finding a dog at `x`, its worker with `passed` checks.
fn result(n: u8, state: AssignmentState, x: f64, passed: u64) -> Submitted {
    let body = ResultRequest {
        detections: vec![dog(x)],
        elapsed_ms: 1.0,
    };
    Submitted {
        id: AssignmentId(i64::from(n)),
        worker: account(n),
        state,
        checks: CheckRecord { passed, failed: 0 },
        caught: false,
        body: serde_json::to_vec(&body).unwrap(),
    }
}

fn params(quorum: u32, confidence: Option<f64>) -> VoteParams {
    VoteParams {
        quorum,
        confidence,
        ..VoteParams::default()
    }
}

#[test]
fn caught_results_and_results_without_a_state_that_votes_do_not_vote() {
    let mut caught = result(1, AssignmentState::Submitted, 0.0, 0);
    caught.caught = true;
    let case = Case {
        task: task(params(2, None)),
        results: vec![
            caught,
            result(2, AssignmentState::Submitted, 0.0, 0),
            result(3, AssignmentState::Agreed, 0.0, 0),
            result(4, AssignmentState::Rejected, 0.0, 0),
        ],
        outstanding: 0,
    };
    let ids = |v: Vec<&Submitted>| v.iter().map(|s| s.id.0).collect::<Vec<_>>();
    assert_eq!(ids(case.voters()), vec![2, 3]);
    assert_eq!(ids(case.caught()), vec![1]);
    assert_eq!(ids(case.unjudged()), vec![1, 2]);
}

#[test]
fn below_the_quorum_there_is_no_vote() {
    let t = task(params(2, None));
    let one = result(1, AssignmentState::Submitted, 0.0, 0);
    let vote = run_vote(&t, &[&one]).unwrap();
    assert!(vote.verdict.is_none());
    assert!(!vote.verified);
    assert!(vote.ballots.is_empty());
}

#[test]
fn two_agreeing_results_verify_and_an_outlier_disagrees() {
    let t = task(params(2, None));
    let (a, b) = (
        result(1, AssignmentState::Submitted, 0.0, 0),
        result(2, AssignmentState::Submitted, 1.0, 0),
    );
    let liar = result(3, AssignmentState::Submitted, 300.0, 0);
    let vote = run_vote(&t, &[&a, &b, &liar]).unwrap();
    assert!(vote.verified);
    let verdict = vote.verdict.unwrap();
    assert_eq!(verdict.agree, vec![AssignmentId(1), AssignmentId(2)]);
    assert_eq!(verdict.disagree, vec![AssignmentId(3)]);
    // Without a confidence nothing is weighed.
    assert!(vote.weights.is_empty() && vote.credibility.is_none());
}

#[test]
fn with_a_confidence_the_agreeing_group_must_be_credible_enough() {
    let t = task(params(1, Some(0.95)));
    let fresh = result(1, AssignmentState::Submitted, 0.0, 0);
    let vote = run_vote(&t, &[&fresh]).unwrap();
    assert!(
        !vote.verified,
        "one result of an unchecked worker is not credible"
    );
    assert!(vote.credibility.unwrap() < 0.95);
    assert_eq!(vote.weights.len(), 1);

    let trusted = result(2, AssignmentState::Submitted, 0.0, 1_000);
    let vote = run_vote(&t, &[&trusted]).unwrap();
    assert!(vote.verified, "credibility {:?}", vote.credibility);
    assert!(vote.credibility.unwrap() >= 0.95);
}

#[test]
fn judged_results_move_in_groups_by_where_they_come_from() {
    let a = result(1, AssignmentState::Submitted, 0.0, 0);
    let b = result(2, AssignmentState::Submitted, 0.0, 0);
    let was_paid = result(3, AssignmentState::Agreed, 0.0, 0);
    let unchanged = result(4, AssignmentState::Agreed, 0.0, 0);
    let unjudged = result(5, AssignmentState::Submitted, 0.0, 0);
    let judged = [
        (AssignmentId(1), true),
        (AssignmentId(2), true),
        (AssignmentId(3), false),
        (AssignmentId(4), true),
    ];
    let groups = moves(&[&a, &b, &was_paid, &unchanged, &unjudged], &judged);
    let summary: Vec<(&str, bool, Vec<i64>)> = groups
        .iter()
        .map(|((from, agreed), g)| (*from, *agreed, g.iter().map(|s| s.id.0).collect()))
        .collect();
    assert_eq!(
        summary,
        vec![("agreed", false, vec![3]), ("submitted", true, vec![1, 2])]
    );
}
