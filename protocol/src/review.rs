//! Human review: the rules the market decides a
//! reviewed task by and every auditor re-runs, kept here once.
//!
//! - Reviews vote like results, with the bid's tolerances and a quorum of
//!   [`REVIEW_QUORUM`]: two reviews that agree decide.
//! - Reviewers are asked two at a time at first, then one more each time
//!   the reviews in do not decide, up to [`MAX_REVIEWS`]; then the task
//!   fails and its reservation is refunded.
//! - The task's consensus is the reviews' consensus; a worker's result is
//!   paid when it agrees with it ([`vote::agrees`]), a review when it is in
//!   the reviews' agreeing group.
//! - A review counts only from an account whose latest operator mark at
//!   the review's signed time is "verified" ([`verified_at`]).

use crate::vote::{self, Ballot, Verdict, VoteParams};
use crate::wire::{ReviewCandidate, ReviewerMark};
use crate::AccountId;

/// Agreeing reviews needed to decide.
pub const REVIEW_QUORUM: u32 = 2;

/// Reviews asked for in all before a task without agreement fails.
pub const MAX_REVIEWS: u32 = 4;

/// The bid's voting parameters as reviews are voted with: its tolerances,
/// a quorum of [`REVIEW_QUORUM`], no credibility (reviewers are verified
/// people, not weighed workers).
pub fn review_params(params: &VoteParams) -> VoteParams {
    VoteParams {
        quorum: REVIEW_QUORUM,
        confidence: None,
        ..*params
    }
}

/// The vote on a task's reviews; it decides when [`decides`].
pub fn review_vote(params: &VoteParams, reviews: &[Ballot]) -> Verdict {
    review_vote_as(vote::Numbers::CURRENT, params, reviews)
}

/// [`review_vote`] with the given number rule (auditors re-running a
/// review verdict written before the grid).
pub fn review_vote_as(numbers: vote::Numbers, params: &VoteParams, reviews: &[Ballot]) -> Verdict {
    vote::vote_as(numbers, &review_params(params), reviews)
}

/// Whether a vote on reviews decides the task.
pub fn decides(params: &VoteParams, verdict: &Verdict) -> bool {
    verdict.is_verified(&review_params(params))
}

/// What to do with a task under review that has `answered` reviews and
/// `out` reviews handed out and not yet answered (and not expired): how
/// many more reviewers to ask now.
pub fn reviewers_wanted(answered: u32, out: u32) -> u32 {
    let target = if answered < REVIEW_QUORUM {
        REVIEW_QUORUM
    } else {
        (answered + 1).min(MAX_REVIEWS)
    };
    target.saturating_sub(answered + out)
}

/// Whether the answered reviews, which did not decide, are all a task may
/// have: then it fails.
pub fn exhausted(answered: u32) -> bool {
    answered >= MAX_REVIEWS
}

/// The candidates shown to a reviewer: the results grouped so that each
/// agrees with the group's first result both ways (in assignment order);
/// garbage results are left out. Deterministic: ballots in any order give
/// the same groups.
pub fn candidates(params: &VoteParams, results: &[Ballot]) -> Vec<ReviewCandidate> {
    let mut order: Vec<&Ballot> = results
        .iter()
        .filter(|b| !vote::is_garbage(&b.detections))
        .collect();
    order.sort_by_key(|b| b.assignment);
    let mut groups: Vec<(&Ballot, Vec<crate::AssignmentId>)> = Vec::new();
    for b in order {
        let same = |first: &Ballot| {
            vote::agrees(params, &first.detections, &b.detections)
                && vote::agrees(params, &b.detections, &first.detections)
        };
        match groups.iter_mut().find(|(first, _)| same(first)) {
            Some((_, members)) => members.push(b.assignment),
            None => groups.push((b, vec![b.assignment])),
        }
    }
    groups
        .into_iter()
        .map(|(first, assignments)| ReviewCandidate {
            detections: first.detections.clone(),
            assignments,
        })
        .collect()
}

/// Whether `account` was verified to review at `at_ms` (unix ms): its
/// latest mark signed at or before then says so. `marks` need not be
/// sorted; a mark signed at the same millisecond as another wins by id.
pub fn verified_at(marks: &[ReviewerMark], account: &AccountId, at_ms: i64) -> bool {
    marks
        .iter()
        .filter(|m| &m.account == account && m.timestamp <= at_ms)
        .max_by_key(|m| (m.timestamp, m.id))
        .is_some_and(|m| m.verified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AssignmentId, Detection};

    fn det(class_id: u32, x: f64) -> Detection {
        Detection {
            class_id,
            label: "person".into(),
            score: 0.9,
            bbox: [x, 10.0, x + 50.0, 80.0],
        }
    }

    fn ballot(id: i64, dets: Vec<Detection>) -> Ballot {
        Ballot {
            assignment: AssignmentId(id),
            detections: dets,
        }
    }

    #[test]
    fn two_agreeing_reviews_decide_and_one_alone_does_not() {
        let p = VoteParams {
            quorum: 3,
            ..VoteParams::default()
        };
        let a = vec![det(0, 10.0), det(2, 200.0)];
        let b = vec![det(7, 400.0)];
        let one = review_vote(&p, &[ballot(1, a.clone()), ballot(2, b.clone())]);
        assert!(!decides(&p, &one));
        let two = review_vote(&p, &[ballot(1, a.clone()), ballot(2, b), ballot(3, a)]);
        assert!(decides(&p, &two));
        assert_eq!(two.agree, vec![AssignmentId(1), AssignmentId(3)]);
        assert_eq!(two.disagree, vec![AssignmentId(2)]);
    }

    #[test]
    fn reviewers_are_asked_two_then_one_at_a_time_up_to_the_limit() {
        assert_eq!(reviewers_wanted(0, 0), 2);
        assert_eq!(reviewers_wanted(0, 1), 1);
        assert_eq!(reviewers_wanted(1, 1), 0);
        assert_eq!(reviewers_wanted(2, 0), 1);
        assert_eq!(reviewers_wanted(2, 1), 0);
        assert_eq!(reviewers_wanted(3, 0), 1);
        assert_eq!(reviewers_wanted(MAX_REVIEWS, 0), 0);
        assert!(!exhausted(MAX_REVIEWS - 1));
        assert!(exhausted(MAX_REVIEWS));
    }

    #[test]
    fn candidates_group_agreeing_results_whatever_their_order() {
        let p = VoteParams::default();
        let a = vec![det(0, 10.0), det(2, 200.0)];
        let b = vec![det(7, 400.0)];
        let mut ballots = vec![
            ballot(5, a.clone()),
            ballot(3, b.clone()),
            ballot(9, a.clone()),
            ballot(4, vec![det(0, f64::NAN)]),
        ];
        let groups = candidates(&p, &ballots);
        ballots.reverse();
        assert_eq!(groups, candidates(&p, &ballots));
        assert_eq!(groups.len(), 2, "the garbage result is no candidate");
        assert_eq!(groups[0].assignments, vec![AssignmentId(3)]);
        assert_eq!(groups[0].detections, b);
        assert_eq!(
            groups[1].assignments,
            vec![AssignmentId(5), AssignmentId(9)]
        );
    }

    #[test]
    fn a_mark_holds_from_its_signed_time_until_the_next() {
        let who: AccountId = "GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7"
            .parse()
            .unwrap();
        let mark = |id, verified, timestamp| ReviewerMark {
            id,
            account: who.clone(),
            verified,
            signer: who.clone(),
            body: String::new(),
            timestamp,
            nonce: String::new(),
            signature: String::new(),
        };
        let marks = vec![mark(2, false, 2_000), mark(1, true, 1_000)];
        assert!(!verified_at(&marks, &who, 999));
        assert!(verified_at(&marks, &who, 1_000));
        assert!(verified_at(&marks, &who, 1_999));
        assert!(!verified_at(&marks, &who, 2_000));
        let later = [marks.clone(), vec![mark(3, true, 2_000)]].concat();
        assert!(
            verified_at(&later, &who, 2_000),
            "same millisecond: the later mark wins"
        );
    }
}
