//! Results that arrive after their task was decided: judged against the
//! verdict of a verified task (and voted again, as checks), rejected on a
//! failed one.

use tally_protocol::vote;

use super::case::{Case, Submitted};
use super::judge::{judge, reject, save_verdict};
use super::vote_checks::vote_again;
use super::{close_bid_unless_out, Decision};
use crate::db::WriteTx;
use crate::error::{MarketError, Result};
use crate::payment::close_bid_if_done;
use crate::Market;

/// Late results on a verified task are judged against its consensus; a
/// caught worker's is excluded.
pub(super) async fn judge_late(m: &Market, tx: &mut WriteTx<'_>, case: &Case) -> Result<Decision> {
    let task = &case.task;
    let mut stored = task
        .verdict
        .clone()
        .ok_or_else(|| MarketError::Corrupt(format!("verified task {} has no verdict", task.id)))?;
    let late = case.unjudged();
    let mut judged = Vec::with_capacity(late.len());
    let mut voters = Vec::new();
    let mut caught = Vec::new();
    for s in &late {
        if s.caught {
            stored.excluded.push(s.id);
            caught.push(*s);
            continue;
        }
        // Judged by the rule the verdict was formed by (older ones: floats).
        let agrees = vote::agrees_as(
            stored.verdict.numbers,
            &task.params,
            &stored.verdict.consensus,
            &s.parse()?.detections,
        );
        judged.push((s.id, agrees));
        voters.push(*s);
        if agrees {
            stored.verdict.agree.push(s.id);
        } else {
            stored.verdict.disagree.push(s.id);
        }
    }
    stored.verdict.agree.sort();
    stored.verdict.disagree.sort();
    stored.excluded.sort();
    let mut decision = Decision {
        judged: judged.clone(),
        ..Decision::unchanged(task)
    };
    if !late.is_empty() {
        reject(tx, &caught).await?;
        judge(m, tx, task, &voters, &judged).await?;
        save_verdict(tx, task.id, &stored).await?;
        if !voters.is_empty() {
            let (wake, events) = vote_again(m, tx, case, &stored, &voters).await?;
            decision.wake = wake;
            decision.events = events;
        }
    }
    close_bid_unless_out(m, tx, case).await?;
    Ok(decision)
}

/// Results that arrive on a failed task count for nothing.
pub(super) async fn reject_late(m: &Market, tx: &mut WriteTx<'_>, case: &Case) -> Result<Decision> {
    let late: Vec<&Submitted> = case.unjudged();
    reject(tx, &late).await?;
    close_bid_if_done(m, tx, case.task.bid).await?;
    Ok(Decision::unchanged(&case.task))
}
