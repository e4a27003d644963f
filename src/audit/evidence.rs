//! One task's evidence (`GET /v1/tasks/{id}/evidence`): the signed
//! results, the vote re-run (or, for a task decided by review, the
//! reviews' vote: [`super::review`]), the weights where credibility decided.

use std::collections::{HashMap, HashSet};

use tally_protocol::vote::{self, Ballot};
use tally_protocol::wire::{Evidence, TaskState};
use tally_protocol::{AccountId, AssignmentId, Client, Domain, TaskId};
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
    /// A paid task whose evidence the market withholds (a finding).
    pub withheld: bool,
    /// When the evidence became public.
    pub published_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The check record of each voted result's worker when it was sent
    /// (its weight), for its probation.
    pub passed_at_submit: HashMap<AssignmentId, u64>,
    /// The signed time of each valid result (ms).
    pub signed_at: HashMap<AssignmentId, i64>,
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

/// Every revision names a worker that is publicly caught: a spot check
/// whose evidence shows its result disagreeing with the market's answer,
/// and whose result was in the agreeing group of the verdict it undid. A
/// catching check not public yet is not a finding (it is once public).
async fn check_revisions(
    client: &Client,
    domain: &Domain,
    at: &str,
    ev: &Evidence,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let workers: HashMap<AssignmentId, &AccountId> = ev
        .results
        .iter()
        .map(|r| (r.assignment, &r.worker))
        .collect();
    for (i, r) in ev.revisions.iter().enumerate() {
        let at = format!("{at}, revision {}", i + 1);
        let agreed = r
            .verdict
            .agree
            .iter()
            .any(|a| workers.get(a).is_some_and(|w| *w == &r.caught));
        if !agreed {
            findings.push(Finding::new(
                "unproven_revision",
                format!(
                    "{at}: names {} as caught, but no result of it agreed with the undone verdict",
                    r.caught
                ),
            ));
        }
        let Some(check) = r.caught_by else {
            findings.push(Finding::new(
                "unproven_revision",
                format!(
                    "{at}: names {} as caught, but no spot check shows it",
                    r.caught
                ),
            ));
            continue;
        };
        let proof = match client.evidence(check).await {
            Ok(p) => p,
            Err(e) if e.to_string().contains("not public yet") => continue,
            Err(e) => {
                findings.push(Finding::new(
                    "unproven_revision",
                    format!("{at}: the check {check} that caught {}: {e}", r.caught),
                ));
                continue;
            }
        };
        if !shows_caught(domain, &proof, &r.caught) {
            findings.push(Finding::new(
                "unproven_revision",
                format!(
                    "{at}: task {check} does not show {} failing a spot check or out-voted by a credible majority",
                    r.caught
                ),
            ));
        }
    }
    findings
}

/// Whether public evidence `proof` shows `worker` caught: a signed result
/// of it that does not agree with the answer, on a spot check (the
/// market's answer), or on client work whose verdict a credible majority
/// of two or more other results agreed on (voting as spot-checking).
fn shows_caught(domain: &Domain, proof: &Evidence, worker: &AccountId) -> bool {
    let Some(v) = proof.verdict.as_ref() else {
        return false;
    };
    let credible = proof.check
        || (v.agree.len() >= 2
            && proof.review.is_none()
            && matches!((proof.params.confidence, proof.credibility), (Some(c), Some(p)) if p >= c));
    credible
        && proof.results.iter().any(|res| {
            res.worker == *worker
                && res.verify(domain).is_ok()
                && !v.agree.contains(&res.assignment)
                && (v.disagree.contains(&res.assignment)
                    || proof.excluded.contains(&res.assignment))
                && res
                    .request()
                    .is_ok_and(|req| !vote::agrees(&proof.params, &v.consensus, &req.detections))
        })
}

/// A re-run verdict as the market's would read once published: on the
/// grid, itself; a verdict of the float rule (written before the grid) has
/// its consensus written as JSON and read back, as the published one was
/// (a float of 17 digits may come back a unit in the last place off), so
/// old evidence is checked as exactly as it was written.
pub(crate) fn as_published(rerun: &mut vote::Verdict) {
    if rerun.numbers == vote::Numbers::Float {
        let written = serde_json::to_string(&rerun.consensus).expect("detections serialize");
        rerun.consensus = serde_json::from_str(&written).expect("detections read back");
    }
}

/// Read and check one task's evidence: signatures, then the vote re-run.
pub(crate) async fn check_task(
    client: &Client,
    domain: &Domain,
    task: TaskId,
) -> (TaskFacts, Vec<Finding>) {
    let missing = |detail: String| {
        let finding = Finding::new("missing_evidence", format!("task {task}: {detail}"));
        (TaskFacts::default(), vec![finding])
    };
    match client.evidence(task).await {
        Ok(ev) if ev.task == task => {
            let (facts, mut findings) = check_evidence(&ev, domain);
            if !ev.withheld {
                findings
                    .extend(check_revisions(client, domain, &format!("task {task}"), &ev).await);
            }
            (facts, findings)
        }
        Ok(ev) => missing(format!("the evidence is for task {}", ev.task)),
        Err(e) => missing(e.to_string()),
    }
}

/// Check one task's published evidence (what [`check_task`] read).
pub(crate) fn check_evidence(ev: &Evidence, domain: &Domain) -> (TaskFacts, Vec<Finding>) {
    let task = ev.task;
    let mut findings = Vec::new();
    let mut facts = TaskFacts::default();
    let at = format!("task {task}");
    facts.net = ev
        .price
        .fee_bps(ev.fee_bps)
        .and_then(|fee| ev.price.checked_sub(fee))
        .map(|net| net.0);
    facts.published_at = ev.published_at;
    if ev.withheld {
        // Nothing is paid before its evidence is public.
        findings.push(Finding::new(
            "withheld_evidence",
            format!("{at}: results of it are paid, but its evidence is withheld"),
        ));
        facts.withheld = true;
        return (facts, findings);
    }
    facts.revised_agree = ev
        .revisions
        .iter()
        .flat_map(|r| r.verdict.agree.iter().copied())
        .collect();
    for w in &ev.weights {
        facts.passed_at_submit.insert(w.assignment, w.checks.passed);
    }
    let reopened = !ev.status.is_final() && !ev.revisions.is_empty();
    if ev.status != TaskState::Verified && !reopened {
        findings.push(Finding::new(
            "unverified_task",
            format!("{at} is {}", ev.status.as_str()),
        ));
    }
    let (ballots, late) = read_results(ev, domain, &at, &mut facts, &mut findings);
    if reopened {
        // Re-opened by backtracking and running again: what it paid before
        // agreed with a verdict since undone (checked above); nothing new
        // is paid until it is decided again.
        return (facts, findings);
    }
    let Some(published) = ev.verdict.clone() else {
        findings.push(Finding::new(
            "unverified_task",
            format!("{at} has no verdict"),
        ));
        return (facts, findings);
    };
    let decided = Decided {
        ev,
        at: &at,
        published: &published,
        ballots: &ballots,
        late: &late,
    };
    if ev.check {
        facts.agree = decided.judge_check(&mut findings);
        return (facts, findings);
    }
    if let Some(rv) = &ev.review {
        // Decided by review: the reviews' vote decides, and every result
        // is judged against its consensus (the workers' vote did not decide).
        let results: Vec<Ballot> = ballots.into_iter().chain(late).collect();
        let (reviews, agree, found) =
            review::check_reviewed(&at, domain, ev, rv, &published, &results);
        findings.extend(found);
        facts.reviews = reviews;
        facts.agree = agree;
        return (facts, findings);
    }
    if !ev.reviews.is_empty() {
        let (reviews, found) = review::undecided_reviews(&at, domain, ev);
        findings.extend(found);
        facts.reviews = reviews;
    }
    facts.agree = decided.rerun_vote(&mut findings);
    (facts, findings)
}

/// The task's signed results whose signatures verify, recorded in `facts`
/// (worker, signed time); the ballots that voted and the later ones (a
/// worker's excluded before the decision in neither).
fn read_results(
    ev: &Evidence,
    domain: &Domain,
    at: &str,
    facts: &mut TaskFacts,
    findings: &mut Vec<Finding>,
) -> (Vec<Ballot>, Vec<Ballot>) {
    let mut ballots = Vec::new();
    let mut late = Vec::new();
    for r in &ev.results {
        if let Err(e) = r.verify(domain) {
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
        facts.signed_at.insert(r.assignment, r.timestamp);
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
    (ballots, late)
}

/// A decided task's evidence under check: where it is (for findings), its
/// published verdict, and its valid results (voted, and later ones).
#[derive(Clone, Copy)]
struct Decided<'a> {
    ev: &'a Evidence,
    at: &'a str,
    published: &'a vote::Verdict,
    ballots: &'a [Ballot],
    late: &'a [Ballot],
}

impl Decided<'_> {
    /// A spot check: its one result judged against the market's answer; the
    /// agreeing results.
    fn judge_check(&self, findings: &mut Vec<Finding>) -> HashSet<AssignmentId> {
        let (ev, at) = (self.ev, self.at);
        let (mut agree, mut disagree) = (Vec::new(), Vec::new());
        for b in self.ballots.iter().chain(self.late) {
            if vote::agrees(&ev.params, &self.published.consensus, &b.detections) {
                agree.push(b.assignment);
            } else {
                disagree.push(b.assignment);
            }
        }
        agree.sort();
        disagree.sort();
        if agree != self.published.agree || disagree != self.published.disagree {
            findings.push(Finding::new(
                "verdict_mismatch",
                format!(
                    "{at}: a spot check whose published judgement is not what its answer gives"
                ),
            ));
        }
        agree.into_iter().collect()
    }

    /// The market's rule, re-run: the vote on the voted `ballots`, the `late`
    /// results judged against its consensus alone, compared with the published
    /// verdict (and the weights, where the bid bought a confidence); the
    /// agreeing results.
    fn rerun_vote(&self, findings: &mut Vec<Finding>) -> HashSet<AssignmentId> {
        let (ev, at) = (self.ev, self.at);
        if self.ballots.len() != ev.voted.len() {
            findings.push(Finding::new(
                "verdict_mismatch",
                format!(
                    "{at}: {} results voted but {} valid ones are published",
                    ev.voted.len(),
                    self.ballots.len()
                ),
            ));
        }
        // By the number rule the verdict says it was formed by: the grid, or
        // (evidence written before it) floats, compared as written.
        let mut rerun = vote::vote_as(self.published.numbers, &ev.params, self.ballots);
        as_published(&mut rerun);
        if let Some(confidence) = ev.params.confidence {
            findings.extend(check_weights(
                at,
                confidence,
                &rerun,
                &ev.weights,
                ev.credibility,
            ));
        }
        for b in self.late {
            if vote::agrees_as(rerun.numbers, &ev.params, &rerun.consensus, &b.detections) {
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
            ("consensus", rerun.consensus == self.published.consensus),
            ("agree list", rerun.agree == self.published.agree),
            ("disagree list", rerun.disagree == self.published.disagree),
        ] {
            if !same {
                findings.push(Finding::new(
                    "verdict_mismatch",
                    format!("{at}: the published {what} is not what the vote gives"),
                ));
            }
        }
        rerun.agree.into_iter().collect()
    }
}

#[cfg(test)]
#[path = "evidence_tests.rs"]
mod tests;
