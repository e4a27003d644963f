//! Deciding a spot check: its one result judged against the known answer.

use tally_protocol::vote::{self, Verdict};
use tally_protocol::wire::{MarketEvent, TaskState};

use super::case::Case;
use super::judge::{judge, mark_verified};
use super::{backtrack, close_bid_unless_out, Decision};
use crate::db::WriteTx;
use crate::error::Result;
use crate::task::StoredVerdict;
use crate::Market;

/// A spot check's one result, judged against the known answer: a pass is
/// paid and counted, a failure counted, the worker caught, and every task
/// it helped verify decided again without it.
pub(super) async fn decide_check(
    m: &Market,
    tx: &mut WriteTx<'_>,
    case: &Case,
) -> Result<Decision> {
    let task = &case.task;
    let Some(s) = case.unjudged().first().copied() else {
        return Ok(Decision::unchanged(task));
    };
    let reference = crate::checks::reference(tx, task.id).await?;
    let passed = crate::checks::passes(&task.params, &reference, &s.parse()?.detections);
    let judged = vec![(s.id, passed)];
    let stored = StoredVerdict {
        voted: vec![s.id],
        weights: vec![],
        credibility: None,
        excluded: vec![],
        review: None,
        verdict: Verdict {
            consensus: reference,
            agree: if passed { vec![s.id] } else { vec![] },
            disagree: if passed { vec![] } else { vec![s.id] },
            numbers: vote::Numbers::CURRENT,
        },
    };
    mark_verified(tx, task, &stored).await?;
    judge(m, tx, task, &[s], &judged).await?;
    close_bid_unless_out(m, tx, case).await?;
    // The worker's row after the balances, as in `judge`.
    crate::checks::record(tx, &s.worker, passed, task.id).await?;
    // A pass raises the worker's credibility for results it submits from
    // now on; results already in keep the weight they were submitted with.
    let (wake, events) = if passed {
        (Vec::new(), Vec::new())
    } else {
        let (wake, revised) = backtrack(m, tx, &s.worker).await?;
        let events = revised
            .into_iter()
            .map(|task| MarketEvent::TaskRevised { task })
            .collect();
        (wake, events)
    };
    Ok(Decision {
        task_state: TaskState::Verified,
        wake,
        judged,
        events,
    })
}
