//! The second stage of a decision: the vote on a task's results, weighed
//! by its workers' credibility where the bid buys a confidence.

use tally_protocol::trust::{self, weighed_credibility, Weight, ASSUMED_SABOTEURS};
use tally_protocol::vote::{self, Ballot, Verdict};
use tally_protocol::AssignmentId;

use super::case::Submitted;
use crate::error::Result;
use crate::task::{StoredVerdict, TaskRow};

/// A vote on an undecided task's results.
pub(crate) struct Vote {
    pub ballots: Vec<AssignmentId>,
    pub verdict: Option<Verdict>,
    pub weights: Vec<Weight>,
    pub credibility: Option<f64>,
    /// The results in verify the task.
    pub verified: bool,
}

impl Vote {
    /// The verdict of a vote that verified the task, as it is stored.
    pub fn into_stored(mut self, excluded: Vec<AssignmentId>) -> StoredVerdict {
        let verdict = self.verdict.take().expect("a verified task was voted on");
        self.stored(verdict, excluded)
    }

    /// The vote as it is stored and published, with `verdict` (the vote's
    /// own, or one judged further) and the caught results it left out.
    pub fn stored(self, verdict: Verdict, excluded: Vec<AssignmentId>) -> StoredVerdict {
        StoredVerdict {
            voted: self.ballots,
            verdict,
            weights: self.weights,
            credibility: self.credibility,
            excluded,
            review: None,
        }
    }
}

/// Vote on `voters`' results by the task's parameters.
pub(crate) fn run_vote(task: &TaskRow, voters: &[&Submitted]) -> Result<Vote> {
    // Too few results for a quorum: the vote cannot verify, only the replicas decide.
    let vote_due = voters.len() as u64 >= u64::from(task.params.quorum);
    let ballots = if vote_due {
        voters
            .iter()
            .map(|s| {
                Ok(Ballot {
                    assignment: s.id,
                    detections: s.parse()?.detections,
                })
            })
            .collect::<Result<Vec<Ballot>>>()?
    } else {
        Vec::new()
    };
    let verdict = vote_due.then(|| vote::vote(&task.params, &ballots));
    let quorum_met = verdict
        .as_ref()
        .is_some_and(|v| v.is_verified(&task.params));
    // Where the bid buys a confidence, the agreeing group's credibility must reach it too.
    let (weights, credibility) = match (&verdict, task.params.confidence) {
        (Some(v), Some(_)) if quorum_met => {
            let weights = weigh(voters);
            let p = weighed_credibility(v, &weights);
            (weights, Some(p))
        }
        _ => (Vec::new(), None),
    };
    let verified = quorum_met
        && match (task.params.confidence, credibility) {
            (Some(c), Some(p)) => p >= c,
            _ => true,
        };
    Ok(Vote {
        ballots: ballots.iter().map(|b| b.assignment).collect(),
        verdict,
        weights,
        credibility,
        verified,
    })
}

/// Each voting result's weight: its worker's check record (read with the
/// results) and the credibility it gives.
fn weigh(voters: &[&Submitted]) -> Vec<Weight> {
    voters
        .iter()
        .map(|s| Weight {
            assignment: s.id,
            checks: s.checks,
            credibility: trust::credibility(ASSUMED_SABOTEURS, s.checks),
        })
        .collect()
}
