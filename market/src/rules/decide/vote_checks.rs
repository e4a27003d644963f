//! Voting as spot-checking (Sarmenta): a credible verdict on client work,
//! agreed by two results or more, counts as a passed check for each result
//! that agrees and a failed one for each it out-voted; late results are
//! voted again with the rest; a task a lone trusted result would verify
//! gets one more ordinary replica first, now and then.

use tally_protocol::vote;
use tally_protocol::wire::MarketEvent;
use tally_protocol::AccountId;

use super::case::{Case, Submitted};
use super::voting::{run_vote, Vote};
use super::{backtrack, Replicas};
use crate::db::WriteTx;
use crate::error::Result;
use crate::task::{StoredVerdict, TaskRow};
use crate::wake::Work;
use crate::Market;

/// Whether a task a lone result would verify gets one more replica first:
/// on a market with spot checks, at the re-run rate, once per task (only
/// while it has asked for one replica), where the bid allows another.
pub(super) fn rerun_due(m: &Market, task: &TaskRow, vote: &Vote, r: Replicas) -> bool {
    !m.config.golden.items.is_empty()
        && task.params.confidence.is_some()
        && vote.verdict.as_ref().is_some_and(|v| v.agree.len() == 1)
        && r.wanted == 1
        && r.wanted < r.max
        && crate::checks::draw() < m.config.check_rates.rerun
}

/// Whether a verdict on client work counts as a check of the workers who
/// voted in it (voting as spot-checking): voted by workers on a market with
/// spot checks, credible at the bid's confidence, and agreed by at least
/// two results, so no worker checks itself.
pub(super) fn checks_voters(m: &Market, task: &TaskRow, stored: &StoredVerdict) -> bool {
    !m.config.golden.items.is_empty()
        && !task.is_check
        && stored.review.is_none()
        && stored.verdict.agree.len() >= 2
        && matches!(
            (task.params.confidence, stored.credibility),
            (Some(c), Some(p)) if p >= c
        )
}

/// Count a credible verdict on client work in its voters' check records:
/// each result that agrees passes, each that a credible majority out-voted
/// fails, its worker caught (`task` shows it) and every task it helped
/// verify decided again. Returns the work and events that follow.
pub(super) async fn count_votes(
    m: &Market,
    tx: &mut WriteTx<'_>,
    task: &TaskRow,
    passed: &[&AccountId],
    failed: &[&AccountId],
) -> Result<(Vec<Work>, Vec<MarketEvent>)> {
    crate::checks::record_passes(tx, passed).await?;
    let (mut wake, mut events) = (Vec::new(), Vec::new());
    for w in failed {
        crate::checks::record(tx, w, false, task.id).await?;
        let (more, revised) = backtrack(m, tx, w).await?;
        wake.extend(more);
        events.extend(
            revised
                .into_iter()
                .map(|task| MarketEvent::TaskRevised { task }),
        );
    }
    Ok((wake, events))
}

/// Late results on a verified task, as voting as spot-checking counts them:
/// the task's results are voted on again, all of them. A verdict that
/// stands credibly passes each late result that agrees and catches each
/// result that disagrees (an earlier one too, judged when no vote could); a credible vote for another answer catches the workers
/// of the old one (backtracking then decides the task again); no credible
/// answer changes nothing.
pub(super) async fn vote_again(
    m: &Market,
    tx: &mut WriteTx<'_>,
    case: &Case,
    stored: &StoredVerdict,
    late: &[&Submitted],
) -> Result<(Vec<Work>, Vec<MarketEvent>)> {
    let task = &case.task;
    if m.config.golden.items.is_empty()
        || task.params.confidence.is_none()
        || stored.review.is_some()
    {
        return Ok((Vec::new(), Vec::new()));
    }
    let voters = case.voters();
    let again = run_vote(task, &voters)?;
    let Some(verdict) = again.verdict.filter(|_| again.verified) else {
        // No credible answer either way: the verdict stands and the late
        // result is judged against it (unpaid where it disagrees); a
        // replica still out, or the next check, decides about its worker.
        return Ok((Vec::new(), Vec::new()));
    };
    if verdict.agree.len() < 2 {
        return Ok((Vec::new(), Vec::new()));
    }
    let agrees = |s: &Submitted| verdict.agree.contains(&s.id);
    if vote::agrees(&task.params, &stored.verdict.consensus, &verdict.consensus) {
        let passed: Vec<&AccountId> = late
            .iter()
            .filter(|s| agrees(s))
            .map(|s| &s.worker)
            .collect();
        // Out-voted now: a late result, or an earlier one no credible
        // vote could judge before (its worker is not caught yet).
        let failed: Vec<&AccountId> = voters
            .iter()
            .filter(|s| !agrees(s))
            .map(|s| &s.worker)
            .collect();
        count_votes(m, tx, task, &passed, &failed).await
    } else {
        // The verdict is out-voted: whoever voted for it is caught.
        let failed: Vec<&AccountId> = voters
            .iter()
            .filter(|s| !agrees(s) && stored.verdict.agree.contains(&s.id))
            .map(|s| &s.worker)
            .collect();
        count_votes(m, tx, task, &[], &failed).await
    }
}
