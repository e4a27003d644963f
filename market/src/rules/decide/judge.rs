//! The third stage of a decision: results judged against a verdict, those
//! that now agree paid, what was paid to those that no longer do given
//! back, each counted in its worker's reputation; the verdict saved.

use std::collections::BTreeMap;

use tally_protocol::wire::TaskState;
use tally_protocol::{AccountId, AssignmentId, TaskId};

use super::case::Submitted;
use crate::db::{placeholders, query, WriteTx};
use crate::error::{MarketError, Result};
use crate::ledger::Posting;
use crate::lifecycle::{assignment_transition, task_transition, AssignmentState};
use crate::payment::{give_back, pay};
use crate::task::{StoredVerdict, TaskRow};
use crate::{now_ms, Market};

/// Record the verdict on results, pay those that now agree, give back what
/// was paid to those that no longer do (a verdict decided again), and count
/// each in its worker's reputation: a handful of statements per change,
/// whatever the number of results.
pub(crate) async fn judge(
    m: &Market,
    tx: &mut WriteTx<'_>,
    task: &TaskRow,
    results: &[&Submitted],
    judged: &[(AssignmentId, bool)],
) -> Result<()> {
    // Reputation comes last, after every posting (see `lock_workers`).
    let mut reputation = Vec::new();
    for ((_, agreed), group) in moves(results, judged) {
        let from = group[0].state;
        move_group(m, tx, task, from, agreed, &group).await?;
        reputation.push((from, agreed, group));
    }
    lock_workers(tx, &reputation).await?;
    for (from, agreed, group) in reputation {
        let column = if agreed { "agreed" } else { "disagreed" };
        let undo = match from {
            AssignmentState::Agreed => ", agreed = agreed - 1",
            AssignmentState::Disagreed => ", disagreed = disagreed - 1",
            _ => "",
        };
        let mut q = query(format!(
            "UPDATE workers SET {column} = {column} + 1{undo} WHERE account IN ({})",
            placeholders(1, group.len())
        ));
        for s in &group {
            q = q.bind(s.worker.as_str());
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

/// The results whose judgement changes, grouped by the state they leave
/// and whether they now agree.
pub(super) fn moves<'r>(
    results: &[&'r Submitted],
    judged: &[(AssignmentId, bool)],
) -> BTreeMap<(&'static str, bool), Vec<&'r Submitted>> {
    let mut moves: BTreeMap<(&'static str, bool), Vec<&Submitted>> = BTreeMap::new();
    for s in results {
        let Some((_, agreed)) = judged.iter().find(|(id, _)| *id == s.id) else {
            continue;
        };
        if s.state != judged_state(*agreed) {
            moves
                .entry((s.state.as_str(), *agreed))
                .or_default()
                .push(*s);
        }
    }
    moves
}

fn judged_state(agreed: bool) -> AssignmentState {
    if agreed {
        AssignmentState::Agreed
    } else {
        AssignmentState::Disagreed
    }
}

/// Move one group of results from `from` to agreed or disagreed, in one
/// statement, and pay them or give back what they were paid.
async fn move_group(
    m: &Market,
    tx: &mut WriteTx<'_>,
    task: &TaskRow,
    from: AssignmentState,
    agreed: bool,
    group: &[&Submitted],
) -> Result<()> {
    let to = judged_state(agreed);
    assignment_transition(from, to)?;
    let mut q = query(format!(
        "UPDATE assignments SET status = $1, finished_at = COALESCE(finished_at, $2)
         WHERE status = $3 AND id IN ({})",
        placeholders(4, group.len())
    ))
    .bind(to.as_str())
    .bind(now_ms())
    .bind(from.as_str());
    for s in group {
        q = q.bind(s.id.0);
    }
    if q.execute(&mut *tx).await? != group.len() as u64 {
        return Err(MarketError::conflict(
            "state_changed",
            format!("a result on task {} changed state meanwhile", task.id),
        ));
    }
    if agreed {
        let paid: Vec<(AssignmentId, &AccountId)> =
            group.iter().map(|s| (s.id, &s.worker)).collect();
        pay(m, tx, task, &paid).await?;
    } else if from == AssignmentState::Agreed {
        for s in group {
            give_back(tx, Posting::Revise, &s.worker, Some(&[s.id])).await?;
        }
    }
    Ok(())
}

/// The workers' rows after every balance, and in account order: a
/// decision never holds a worker's row while it waits for a balance
/// another decision holds, nor two workers' rows in another order
/// (PostgreSQL would break either cycle by aborting one of them).
async fn lock_workers(
    tx: &mut WriteTx<'_>,
    groups: &[(AssignmentState, bool, Vec<&Submitted>)],
) -> Result<()> {
    if !tx.is_postgres() || groups.is_empty() {
        return Ok(());
    }
    let mut accounts: Vec<&str> = groups
        .iter()
        .flat_map(|(_, _, group)| group.iter().map(|s| s.worker.as_str()))
        .collect();
    accounts.sort_unstable();
    accounts.dedup();
    let mut q = query(format!(
        "SELECT 1 AS one FROM workers WHERE account IN ({}) ORDER BY account FOR NO KEY UPDATE",
        placeholders(1, accounts.len())
    ));
    for a in &accounts {
        q = q.bind(*a);
    }
    q.fetch_all(&mut *tx).await?;
    Ok(())
}

/// Mark the task verified with `stored` as its verdict.
pub(crate) async fn mark_verified(
    tx: &mut WriteTx<'_>,
    task: &TaskRow,
    stored: &StoredVerdict,
) -> Result<()> {
    task_transition(task.state, TaskState::Verified)?;
    query("UPDATE tasks SET status = 'verified', finished_at = $1, decided_at = COALESCE(decided_at, $1), verdict = $2 WHERE id = $3")
        .bind(now_ms())
        .bind(serde_json::to_string(stored).expect("verdict serializes"))
        .bind(task.id.0)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Store `v` again as the verdict of a task that stays verified.
pub(crate) async fn save_verdict(
    tx: &mut WriteTx<'_>,
    task: TaskId,
    v: &StoredVerdict,
) -> Result<()> {
    query("UPDATE tasks SET verdict = $1 WHERE id = $2")
        .bind(serde_json::to_string(v).expect("verdict serializes"))
        .bind(task.0)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Results that count for nothing (a caught worker's, or those of a task
/// that failed) move to `rejected`, whatever they were.
pub(crate) async fn reject(tx: &mut WriteTx<'_>, results: &[&Submitted]) -> Result<()> {
    for s in results {
        if s.state == AssignmentState::Rejected {
            continue;
        }
        crate::task::set_assignment(tx, s.id, s.state, AssignmentState::Rejected).await?;
    }
    Ok(())
}
