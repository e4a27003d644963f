//! The audit of human review: a task decided by
//! review is checked from its signed reviews and the operator's signed
//! reviewer marks, with the rules of [`tally_protocol::review`].
//!
//! - every review's `tally-v2` signature verifies for its reviewer on this
//!   market (its network and operator);
//! - re-running the reviews' vote on the reviews it says were voted gives
//!   exactly the published review verdict, and that verdict decides;
//! - the task's consensus is the reviews' consensus, and the results are
//!   judged against it alone ([`vote::agrees`]);
//! - a paid review was written by the payee, agrees with the decision, is
//!   paid `review_price - fee`, and its reviewer was verified at the
//!   review's signed time and at its arrival (`received_at`, which must be
//!   within the 60 s window of the signed time) by marks that verify and
//!   that the operator (the paying record's source account) signed: the
//!   rule the market applies when the answer arrives.

use std::collections::{HashMap, HashSet};

use tally_protocol::review;
use tally_protocol::signing::MAX_SKEW_MS;
use tally_protocol::vote::{self, Ballot, Verdict};
use tally_protocol::wire::{Evidence, ReviewVerdict, ReviewerMark};
use tally_protocol::{AccountId, AssignmentId, Domain};
use tally_settlement::Finding;

/// One review of a task's evidence, as the auditor read it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReviewFact {
    pub reviewer: AccountId,
    /// The signed timestamp (unix ms).
    pub timestamp: i64,
    /// When the market says it took the review (unix ms).
    pub received_at: i64,
    /// Whether the reviewer's signature verifies (a `review_signature`
    /// finding was made for the task otherwise).
    pub signed: bool,
}

/// What the reviews of one task establish.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ReviewFacts {
    /// Every published review by id.
    pub reviews: HashMap<AssignmentId, ReviewFact>,
    /// The agreeing reviews by the auditor's own re-run of the reviews' vote.
    pub agree: HashSet<AssignmentId>,
    /// `review_price - fee` of one agreeing review, when the bid had a
    /// review price.
    pub net: Option<i64>,
}

/// Check a task decided by review: the reviews' signatures, their vote
/// re-run, and the workers' `results` (valid, not excluded) judged against
/// its consensus. Returns the review facts, the agreeing results, and the
/// findings.
pub(crate) fn check_reviewed(
    at: &str,
    domain: &Domain,
    ev: &Evidence,
    rv: &ReviewVerdict,
    published: &Verdict,
    results: &[Ballot],
) -> (ReviewFacts, HashSet<AssignmentId>, Vec<Finding>) {
    let mut findings = Vec::new();
    let mut facts = ReviewFacts {
        net: ev
            .review_price
            .and_then(|p| p.fee_bps(ev.fee_bps).and_then(|fee| p.checked_sub(fee)))
            .map(|net| net.0),
        ..ReviewFacts::default()
    };
    let (reviews, bad) = read_reviews(at, domain, ev);
    findings.extend(bad);
    facts.reviews = reviews
        .iter()
        .map(|(id, (f, _))| (*id, f.clone()))
        .collect();
    let voted = voted_reviews(at, rv, &reviews, &mut findings);
    let mut rerun = review::review_vote_as(rv.verdict.numbers, &ev.params, &voted);
    super::evidence::as_published(&mut rerun);
    for (what, same) in [
        ("consensus", rerun.consensus == rv.verdict.consensus),
        ("agree list", rerun.agree == rv.verdict.agree),
        ("disagree list", rerun.disagree == rv.verdict.disagree),
    ] {
        if !same {
            findings.push(Finding::new(
                "review_vote",
                format!("{at}: the reviews' published {what} is not what their vote gives"),
            ));
        }
    }
    if !review::decides(&ev.params, &rerun) {
        findings.push(Finding::new(
            "review_vote",
            format!(
                "{at}: the reviews' vote has {} agreeing reviews, {} needed to decide",
                rerun.agree.len(),
                review::REVIEW_QUORUM
            ),
        ));
    }
    let agree = judge_results(at, ev, published, &rerun, results, &mut findings);
    facts.agree = rerun.agree.into_iter().collect();
    (facts, agree, findings)
}

/// The ballots of the reviews the review verdict says voted; a voted review
/// that is not published, or not validly signed, is a finding.
fn voted_reviews(
    at: &str,
    rv: &ReviewVerdict,
    reviews: &ReadReviews,
    findings: &mut Vec<Finding>,
) -> Vec<Ballot> {
    let mut voted = Vec::new();
    for id in &rv.voted {
        match reviews.get(id) {
            Some((_, Some(detections))) => voted.push(Ballot {
                assignment: *id,
                detections: detections.clone(),
            }),
            Some((_, None)) => findings.push(Finding::new(
                "review_vote",
                format!("{at}: voted review {id} has no valid signed review"),
            )),
            None => findings.push(Finding::new(
                "review_vote",
                format!("{at}: voted review {id} is not among the published reviews"),
            )),
        }
    }
    voted
}

/// The task's verdict: the reviews' consensus, every result judged against
/// it alone and compared with the published verdict; the agreeing results.
fn judge_results(
    at: &str,
    ev: &Evidence,
    published: &Verdict,
    rerun: &Verdict,
    results: &[Ballot],
    findings: &mut Vec<Finding>,
) -> HashSet<AssignmentId> {
    let mut agree = Vec::new();
    let mut disagree = Vec::new();
    for b in results {
        if vote::agrees_as(rerun.numbers, &ev.params, &rerun.consensus, &b.detections) {
            agree.push(b.assignment);
        } else {
            disagree.push(b.assignment);
        }
    }
    agree.sort();
    disagree.sort();
    for (what, same) in [
        ("consensus", published.consensus == rerun.consensus),
        ("agree list", published.agree == agree),
        ("disagree list", published.disagree == disagree),
    ] {
        if !same {
            findings.push(Finding::new(
                "verdict_mismatch",
                format!(
                    "{at}: the published {what} is not what judging the results against the reviews' consensus gives"
                ),
            ));
        }
    }
    agree.into_iter().collect()
}

/// Reviews published without a review verdict: known (so a paid one is
/// not an unknown assignment), and a finding.
pub(crate) fn undecided_reviews(
    at: &str,
    domain: &Domain,
    ev: &Evidence,
) -> (ReviewFacts, Vec<Finding>) {
    let (reviews, mut findings) = read_reviews(at, domain, ev);
    findings.push(Finding::new(
        "review_vote",
        format!(
            "{at} publishes {} reviews but no review verdict",
            ev.reviews.len()
        ),
    ));
    let facts = ReviewFacts {
        reviews: reviews.into_iter().map(|(id, (f, _))| (id, f)).collect(),
        ..ReviewFacts::default()
    };
    (facts, findings)
}

type ReadReviews = HashMap<AssignmentId, (ReviewFact, Option<Vec<tally_protocol::Detection>>)>;

/// Every published review with its detections when its signature verifies.
fn read_reviews(at: &str, domain: &Domain, ev: &Evidence) -> (ReadReviews, Vec<Finding>) {
    let mut findings = Vec::new();
    let mut out = HashMap::new();
    for r in &ev.reviews {
        let detections = match r.verify(domain) {
            Ok(req) => Some(req.detections),
            Err(e) => {
                findings.push(Finding::new(
                    "review_signature",
                    format!("{at}: review {} by {}: {e}", r.review, r.reviewer),
                ));
                None
            }
        };
        let fact = ReviewFact {
            reviewer: r.reviewer.clone(),
            timestamp: r.timestamp,
            received_at: r.received_at,
            signed: detections.is_some(),
        };
        if out.insert(r.review, (fact, detections)).is_some() {
            findings.push(Finding::new(
                "review_vote",
                format!("{at}: review {} is published twice", r.review),
            ));
        }
    }
    (out, findings)
}

/// The operator's reviewer marks as published (`GET /v1/reviewers`), and
/// the bad ones already reported (each is reported once per audit).
#[derive(Debug)]
pub(crate) struct Marks {
    pub marks: Vec<ReviewerMark>,
    /// The market the operator's marks must be signed for.
    domain: Domain,
    reported: HashSet<i64>,
}

impl Marks {
    pub fn new(marks: Vec<ReviewerMark>, domain: Domain) -> Self {
        Marks {
            marks,
            domain,
            reported: HashSet::new(),
        }
    }

    /// Whether `reviewer` was verified at `at_ms` by the marks that count:
    /// those that verify and that `operator` signed. Every mark of the
    /// reviewer up to then that does not is a `bad_reviewer_mark`.
    pub fn standing(
        &mut self,
        at: &str,
        operator: &AccountId,
        reviewer: &AccountId,
        at_ms: i64,
    ) -> Vec<Finding> {
        let mut findings = Vec::new();
        let mut valid = Vec::new();
        for m in self
            .marks
            .iter()
            .filter(|m| &m.account == reviewer && m.timestamp <= at_ms)
        {
            let problem = match m.verify(&self.domain) {
                Err(e) => Some(e.to_string()),
                Ok(_) if &m.signer != operator => Some(format!(
                    "signed by {}, not the operator {operator}",
                    m.signer
                )),
                Ok(_) => None,
            };
            match problem {
                None => valid.push(m.clone()),
                Some(why) => {
                    if self.reported.insert(m.id) {
                        findings.push(Finding::new(
                            "bad_reviewer_mark",
                            format!("reviewer mark {} of {}: {why}", m.id, m.account),
                        ));
                    }
                }
            }
        }
        if !review::verified_at(&valid, reviewer, at_ms) {
            let why = match valid.iter().max_by_key(|m| (m.timestamp, m.id)) {
                None => "no valid operator mark verified the reviewer before then".to_string(),
                Some(m) => format!(
                    "the latest valid operator mark before then (mark {}, signed at {}) says not verified",
                    m.id, m.timestamp
                ),
            };
            findings.push(Finding::new(
                "reviewer_not_verified",
                format!("{at} by {reviewer} signed at {at_ms}: {why}"),
            ));
        }
        findings
    }
}

/// A paid review: written by the payee, agreeing with the decision, and
/// its reviewer verified when it was signed ([`Marks::standing`], marks
/// signed by `operator`).
pub(crate) fn check_paid_review(
    at: &str,
    id: AssignmentId,
    payee: &AccountId,
    review: &ReviewFact,
    facts: &ReviewFacts,
    marks: &mut Marks,
    operator: &AccountId,
) -> Vec<Finding> {
    if !review.signed {
        return Vec::new(); // reported with the task: nothing it says counts
    }
    let mut findings = Vec::new();
    if &review.reviewer != payee {
        findings.push(Finding::new(
            "wrong_reviewer",
            format!("{at}: review {id} was written by {}", review.reviewer),
        ));
    }
    // Standing at the signed time, then at the arrival (the market judges
    // both; a back-dated signature does not outlive a revocation).
    let signed = marks.standing(
        &format!("{at}: review {id}"),
        operator,
        &review.reviewer,
        review.timestamp,
    );
    if signed.is_empty() {
        findings.extend(marks.standing(
            &format!("{at}: review {id} (received at {})", review.received_at),
            operator,
            &review.reviewer,
            review.received_at,
        ));
    } else {
        findings.extend(signed);
    }
    if review.received_at.abs_diff(review.timestamp) > MAX_SKEW_MS as u64 {
        findings.push(Finding::new(
            "review_time",
            format!(
                "{at}: review {id} signed at {} was received at {}, outside the 60 s window",
                review.timestamp, review.received_at
            ),
        ));
    }
    if !facts.agree.contains(&id) {
        findings.push(Finding::new(
            "review_not_agreeing",
            format!("{at}: review {id} is not among the reviews that decided its task"),
        ));
    }
    findings
}

#[cfg(test)]
#[path = "review_tests.rs"]
pub(super) mod tests;
