//! One task's evidence (`GET /v1/tasks/{id}/evidence`): the signed
//! results, the vote re-run (or, for a task decided by review, the
//! reviews' vote: [`super::review`]), the weights where credibility decided.

use std::collections::{HashMap, HashSet};

use tally_protocol::vote::{self, Ballot};
use tally_protocol::wire::{Evidence, TaskState};
use tally_protocol::{AccountId, AssignmentId, Client, TaskId};
use tally_settlement::Finding;

use super::review::{self, ReviewFacts};

/// What the evidence of one task establishes.
#[derive(Default)]
pub(crate) struct TaskFacts {
    /// Worker of each signed result whose signature verifies.
    pub workers: HashMap<AssignmentId, AccountId>,
    /// Agreeing results by the auditor's own re-run of the vote (for a
    /// task decided by review: judged against the reviews' consensus).
    pub agree: HashSet<AssignmentId>,
    /// `price - fee` of one agreeing result, when the evidence was read.
    pub net: Option<i64>,
    /// A spot check whose evidence the market withholds.
    pub withheld: bool,
    /// Results that agreed with an earlier verdict, undone since.
    pub revised_agree: HashSet<AssignmentId>,
    /// The task's human reviews, where it had any.
    pub reviews: ReviewFacts,
}

/// Where the bid bought a confidence: every voted result's weight is the
/// credibility its recorded check record gives, and the agreeing group's
/// credibility under those weights is the recorded one and reaches the bid's.
fn check_weights(
    at: &str,
    confidence: f64,
    voted: &vote::Verdict,
    weights: &[tally_protocol::trust::Weight],
    recorded: Option<f64>,
) -> Vec<Finding> {
    use tally_protocol::trust::{credibility, weighed_credibility, ASSUMED_SABOTEURS};
    let mut findings = Vec::new();
    for w in weights {
        let expected = credibility(ASSUMED_SABOTEURS, w.checks);
        if (expected - w.credibility).abs() > 1e-9 {
            findings.push(Finding::new(
                "bad_weight",
                format!(
                    "{at}: assignment {} weighs {} but its check record ({} passed, {} failed) gives {expected}",
                    w.assignment, w.credibility, w.checks.passed, w.checks.failed
                ),
            ));
        }
    }
    for id in voted.agree.iter().chain(&voted.disagree) {
        if !weights.iter().any(|w| &w.assignment == id) {
            findings.push(Finding::new(
                "bad_weight",
                format!("{at}: voted assignment {id} has no recorded weight"),
            ));
        }
    }
    let fair: Vec<_> = weights
        .iter()
        .map(|w| tally_protocol::trust::Weight {
            credibility: credibility(ASSUMED_SABOTEURS, w.checks),
            ..w.clone()
        })
        .collect();
    let p = weighed_credibility(voted, &fair);
    match recorded {
        Some(r) if (r - p).abs() <= 1e-9 => {}
        other => findings.push(Finding::new(
            "bad_credibility",
            format!("{at}: the agreeing group's credibility is {p}, the evidence says {other:?}"),
        )),
    }
    if p < confidence {
        findings.push(Finding::new(
            "below_confidence",
            format!("{at}: verified at credibility {p}, below the bid's {confidence}"),
        ));
    }
    findings
}

/// Read and check one task's evidence: signatures, then the vote re-run.
pub(crate) async fn check_task(client: &Client, task: TaskId) -> (TaskFacts, Vec<Finding>) {
    let mut findings = Vec::new();
    let mut facts = TaskFacts::default();
    let ev: Evidence = match client.evidence(task).await {
        Ok(ev) if ev.task == task => ev,
        Ok(ev) => {
            findings.push(Finding::new(
                "missing_evidence",
                format!("task {task}: the evidence is for task {}", ev.task),
            ));
            return (facts, findings);
        }
        Err(e) => {
            findings.push(Finding::new(
                "missing_evidence",
                format!("task {task}: {e}"),
            ));
            return (facts, findings);
        }
    };
    let at = format!("task {task}");
    if ev.status != TaskState::Verified {
        findings.push(Finding::new(
            "unverified_task",
            format!("{at} is {}", ev.status.as_str()),
        ));
    }
    facts.net = ev
        .price
        .fee_bps(ev.fee_bps)
        .and_then(|fee| ev.price.checked_sub(fee))
        .map(|net| net.0);
    if ev.withheld {
        facts.withheld = true;
        return (facts, findings);
    }
    facts.revised_agree = ev
        .revisions
        .iter()
        .flat_map(|r| r.verdict.agree.iter().copied())
        .collect();
    let mut ballots = Vec::new();
    let mut late = Vec::new();
    for r in &ev.results {
        if let Err(e) = r.verify() {
            findings.push(Finding::new(
                "bad_result_signature",
                format!(
                    "{at}: result of assignment {} by {}: {e}",
                    r.assignment, r.worker
                ),
            ));
            continue;
        }
        let request = match r.request() {
            Ok(req) => req,
            Err(e) => {
                findings.push(Finding::new(
                    "bad_result",
                    format!("{at}: result of assignment {}: {e}", r.assignment),
                ));
                continue;
            }
        };
        facts.workers.insert(r.assignment, r.worker.clone());
        if ev.excluded.contains(&r.assignment) {
            // A worker caught before the decision: neither voted nor judged.
            continue;
        }
        let ballot = Ballot {
            assignment: r.assignment,
            detections: request.detections,
        };
        if ev.voted.contains(&r.assignment) {
            ballots.push(ballot);
        } else {
            late.push(ballot);
        }
    }
    let Some(published) = ev.verdict.clone() else {
        findings.push(Finding::new(
            "unverified_task",
            format!("{at} has no verdict"),
        ));
        return (facts, findings);
    };
    if let Some(rv) = &ev.review {
        // Decided by review: the reviews' vote decides, and every result
        // is judged against its consensus (the workers' vote did not decide).
        let results: Vec<Ballot> = ballots.into_iter().chain(late).collect();
        let (reviews, agree, found) = review::check_reviewed(&at, &ev, rv, &published, &results);
        findings.extend(found);
        facts.reviews = reviews;
        facts.agree = agree;
        return (facts, findings);
    }
    if !ev.reviews.is_empty() {
        let (reviews, found) = review::undecided_reviews(&at, &ev);
        findings.extend(found);
        facts.reviews = reviews;
    }
    if ballots.len() != ev.voted.len() {
        findings.push(Finding::new(
            "verdict_mismatch",
            format!(
                "{at}: {} results voted but {} valid ones are published",
                ev.voted.len(),
                ballots.len()
            ),
        ));
    }
    // The market's rule, re-run: the vote on `voted`, later results judged
    // against its consensus alone.
    let mut rerun = vote::vote(&ev.params, &ballots);
    if let Some(confidence) = ev.params.confidence {
        findings.extend(check_weights(
            &at,
            confidence,
            &rerun,
            &ev.weights,
            ev.credibility,
        ));
    }
    for b in &late {
        if vote::agrees(&ev.params, &rerun.consensus, &b.detections) {
            rerun.agree.push(b.assignment);
        } else {
            rerun.disagree.push(b.assignment);
        }
    }
    rerun.agree.sort();
    rerun.disagree.sort();
    if !rerun.is_verified(&ev.params) {
        findings.push(Finding::new(
            "unverified_task",
            format!(
                "{at}: the re-run vote has {} agreeing results, quorum {}",
                rerun.agree.len(),
                ev.params.quorum
            ),
        ));
    }
    for (what, same) in [
        ("consensus", rerun.consensus == published.consensus),
        ("agree list", rerun.agree == published.agree),
        ("disagree list", rerun.disagree == published.disagree),
    ] {
        if !same {
            findings.push(Finding::new(
                "verdict_mismatch",
                format!("{at}: the published {what} is not what the vote gives"),
            ));
        }
    }
    facts.agree = rerun.agree.into_iter().collect();
    (facts, findings)
}
