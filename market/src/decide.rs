//! The vote on a task and what follows from it: verification with payment
//! of the agreeing results, judging late results against the consensus, an
//! extra replica, or failure. Runs inside the transaction that stored the
//! result (or the failure, or the expiry) that made it due.

use std::sync::atomic::Ordering;

use tally_protocol::trust::{self, weighed_credibility, CheckRecord, Weight, ASSUMED_SABOTEURS};
use tally_protocol::vote::{self, Ballot};
use tally_protocol::wire::{ResultRequest, TaskState};
use tally_protocol::{AccountId, AssignmentId, TaskId};

use crate::db::{int, parse, placeholders, query, text, WriteTx};
use crate::error::{MarketError, Result};
use crate::lifecycle::{assignment_transition, task_transition, AssignmentState};
use crate::payment::{close_bid_if_done, fail_task, pay};
use crate::task::{load_task, set_assignment, StoredVerdict, TaskRow};
use crate::wake::Work;
use crate::{now_ms, Market};

mod outcome;

pub use outcome::{outcome, Outcome, Replicas};

/// What a decision did.
pub struct Decision {
    pub task_state: TaskState,
    /// Work for waiting claims (a replica was added).
    pub wake: Option<Work>,
    /// The results judged now, and whether each agreed.
    pub judged: Vec<(AssignmentId, bool)>,
}

/// A submitted result as loaded for the vote; its body is parsed only once
/// a vote needs it.
struct Submitted {
    id: AssignmentId,
    worker: AccountId,
    body: Vec<u8>,
}

impl Submitted {
    fn parse(&self) -> Result<ResultRequest> {
        serde_json::from_slice(&self.body)
            .map_err(|e| MarketError::Corrupt(format!("stored result body: {e}")))
    }
}

/// Run the vote on a task if it can be decided, and act on the outcome.
pub async fn decide(m: &Market, tx: &mut WriteTx<'_>, task_id: TaskId) -> Result<Decision> {
    let task = load_task(tx, task_id).await?;
    let rows =
        query("SELECT id, worker, status, body FROM assignments WHERE task_id = $1 ORDER BY id")
            .bind(task_id.0)
            .fetch_all(&mut *tx)
            .await?;
    let mut submitted = Vec::new();
    let mut outstanding = 0;
    for r in rows {
        match AssignmentState::parse(&text(&r, "status")?)? {
            AssignmentState::Leased => outstanding += 1,
            AssignmentState::Submitted => submitted.push(Submitted {
                id: AssignmentId(int(&r, "id")?),
                worker: parse(&text(&r, "worker")?, "worker")?,
                body: r.try_get("body")?,
            }),
            _ => {}
        }
    }
    let unchanged = Decision {
        task_state: task.state,
        wake: None,
        judged: vec![],
    };
    if task.state == TaskState::Verified {
        // Late results are judged against the consensus.
        let mut stored = task.verdict.clone().ok_or_else(|| {
            MarketError::Corrupt(format!("verified task {task_id} has no verdict"))
        })?;
        let mut judged = Vec::with_capacity(submitted.len());
        for s in &submitted {
            let agrees = vote::agrees(
                &task.params,
                &stored.verdict.consensus,
                &s.parse()?.detections,
            );
            judged.push((s.id, agrees));
            if agrees {
                stored.verdict.agree.push(s.id);
            } else {
                stored.verdict.disagree.push(s.id);
            }
        }
        stored.verdict.agree.sort();
        stored.verdict.disagree.sort();
        if !submitted.is_empty() {
            judge(m, tx, &task, &submitted, &judged).await?;
            save_verdict(tx, task_id, &stored).await?;
        }
        close_bid_unless_out(m, tx, &task, outstanding).await?;
        return Ok(Decision {
            judged,
            ..unchanged
        });
    }
    if task.state == TaskState::Failed {
        for s in &submitted {
            set_assignment(
                tx,
                s.id,
                AssignmentState::Submitted,
                AssignmentState::Rejected,
            )
            .await?;
        }
        close_bid_if_done(m, tx, task.bid).await?;
        return Ok(unchanged);
    }
    if task.is_check {
        return decide_check(m, tx, &task, &submitted, outstanding).await;
    }
    let replicas = Replicas {
        out: outstanding as u64,
        unclaimed: (task.wanted - task.taken).max(0) as u64,
        wanted: task.wanted.max(0) as u64,
        max: task.max_replicas.max(0) as u64,
    };
    // Too few results for a quorum: the vote cannot verify, only the replicas decide.
    let vote_due = submitted.len() as u64 >= u64::from(task.params.quorum);
    let ballots = if vote_due {
        submitted
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
            let weights = weigh(tx, &submitted).await?;
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
    match outcome(verified, replicas) {
        Outcome::Verify => {
            let verdict = verdict.expect("a verified task was voted on");
            task_transition(task.state, TaskState::Verified)?;
            let judged: Vec<(AssignmentId, bool)> = submitted
                .iter()
                .map(|s| (s.id, verdict.agree.contains(&s.id)))
                .collect();
            let stored = StoredVerdict {
                voted: ballots.iter().map(|b| b.assignment).collect(),
                verdict,
                weights,
                credibility,
            };
            query("UPDATE tasks SET status = 'verified', finished_at = $1, verdict = $2 WHERE id = $3")
                .bind(now_ms())
                .bind(serde_json::to_string(&stored).expect("verdict serializes"))
                .bind(task_id.0)
                .execute(&mut *tx)
                .await?;
            judge(m, tx, &task, &submitted, &judged).await?;
            m.metrics.verified.fetch_add(1, Ordering::Relaxed);
            close_bid_unless_out(m, tx, &task, outstanding).await?;
            Ok(Decision {
                task_state: TaskState::Verified,
                wake: None,
                judged,
            })
        }
        Outcome::Wait => Ok(unchanged),
        Outcome::AddReplica => {
            query("UPDATE tasks SET wanted = wanted + 1 WHERE id = $1")
                .bind(task_id.0)
                .execute(&mut *tx)
                .await?;
            Ok(Decision {
                wake: Some(task.one_slot()),
                ..unchanged
            })
        }
        Outcome::Fail => {
            fail_task(m, tx, &task).await?;
            Ok(Decision {
                task_state: TaskState::Failed,
                wake: None,
                judged: vec![],
            })
        }
    }
}

/// Each submitted result's weight: its worker's check record and credibility now.
async fn weigh(tx: &mut WriteTx<'_>, submitted: &[Submitted]) -> Result<Vec<Weight>> {
    let mut q = query(format!(
        "SELECT account, checks_passed, checks_failed FROM workers WHERE account IN ({})",
        placeholders(1, submitted.len())
    ));
    for s in submitted {
        q = q.bind(s.worker.as_str());
    }
    let mut records = std::collections::HashMap::new();
    for r in q.fetch_all(&mut *tx).await? {
        records.insert(
            text(&r, "account")?,
            CheckRecord {
                passed: int(&r, "checks_passed")?.max(0) as u64,
                failed: int(&r, "checks_failed")?.max(0) as u64,
            },
        );
    }
    Ok(submitted
        .iter()
        .map(|s| {
            let checks = records.get(s.worker.as_str()).copied().unwrap_or_default();
            Weight {
                assignment: s.id,
                checks,
                credibility: trust::credibility(ASSUMED_SABOTEURS, checks),
            }
        })
        .collect())
}

/// A spot check's one result, judged against the known answer: a pass is
/// paid and counted, a failure counted (and the worker caught).
async fn decide_check(
    m: &Market,
    tx: &mut WriteTx<'_>,
    task: &TaskRow,
    submitted: &[Submitted],
    outstanding: usize,
) -> Result<Decision> {
    let Some(s) = submitted.first() else {
        return Ok(Decision {
            task_state: task.state,
            wake: None,
            judged: vec![],
        });
    };
    let reference = crate::checks::reference(tx, task.id).await?;
    let passed = crate::checks::passes(&task.params, &reference, &s.parse()?.detections);
    crate::checks::record(tx, &s.worker, passed).await?;
    let judged = vec![(s.id, passed)];
    let stored = StoredVerdict {
        voted: vec![s.id],
        weights: vec![],
        credibility: None,
        verdict: vote::Verdict {
            consensus: reference,
            agree: if passed { vec![s.id] } else { vec![] },
            disagree: if passed { vec![] } else { vec![s.id] },
        },
    };
    task_transition(task.state, TaskState::Verified)?;
    query("UPDATE tasks SET status = 'verified', finished_at = $1, verdict = $2 WHERE id = $3")
        .bind(now_ms())
        .bind(serde_json::to_string(&stored).expect("verdict serializes"))
        .bind(task.id.0)
        .execute(&mut *tx)
        .await?;
    judge(m, tx, task, submitted, &judged).await?;
    close_bid_unless_out(m, tx, task, outstanding).await?;
    if passed {
        redecide_for(m, tx, &s.worker).await?;
    }
    Ok(Decision {
        task_state: TaskState::Verified,
        wake: None,
        judged,
    })
}

/// A worker's credibility just rose: the undecided tasks it has a result
/// on may now reach their bids' confidence, so they are decided again
/// (else they would wait for replicas no one is left to take).
async fn redecide_for(m: &Market, tx: &mut WriteTx<'_>, worker: &AccountId) -> Result<()> {
    let rows = query(
        "SELECT DISTINCT a.task_id FROM assignments a JOIN tasks t ON t.id = a.task_id
         WHERE a.worker = $1 AND a.status = 'submitted' AND t.status IN ('open', 'running')",
    )
    .bind(worker.as_str())
    .fetch_all(&mut *tx)
    .await?;
    for r in rows {
        let task = TaskId(int(&r, "task_id")?);
        crate::task::lock_task(tx, task).await?;
        Box::pin(decide(m, tx, task)).await?;
    }
    Ok(())
}

/// Close the task's bid if it is done. A replica of this task still out
/// means it is not: the bid is looked at again when that replica ends
/// (result, failure, expiry or cancellation all come back here or to
/// [`fail_task`]), which spares the bid-wide query on most decisions.
async fn close_bid_unless_out(
    m: &Market,
    tx: &mut WriteTx<'_>,
    task: &TaskRow,
    outstanding: usize,
) -> Result<()> {
    if outstanding > 0 {
        return Ok(());
    }
    close_bid_if_done(m, tx, task.bid).await
}

async fn save_verdict(tx: &mut WriteTx<'_>, task: TaskId, v: &StoredVerdict) -> Result<()> {
    query("UPDATE tasks SET verdict = $1 WHERE id = $2")
        .bind(serde_json::to_string(v).expect("verdict serializes"))
        .bind(task.0)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Record the verdict on submitted results, pay those that agreed, and count
/// each in its worker's reputation: a handful of statements, whatever the
/// number of results.
async fn judge(
    m: &Market,
    tx: &mut WriteTx<'_>,
    task: &TaskRow,
    submitted: &[Submitted],
    judged: &[(AssignmentId, bool)],
) -> Result<()> {
    for agreed in [true, false] {
        let group: Vec<&Submitted> = submitted
            .iter()
            .filter(|s| judged.contains(&(s.id, agreed)))
            .collect();
        if group.is_empty() {
            continue;
        }
        // Only submitted results are judged.
        let to = if agreed {
            AssignmentState::Agreed
        } else {
            AssignmentState::Disagreed
        };
        assignment_transition(AssignmentState::Submitted, to)?;
        let mut q = query(format!(
            "UPDATE assignments SET status = $1, finished_at = COALESCE(finished_at, $2)
             WHERE status = 'submitted' AND id IN ({})",
            placeholders(3, group.len())
        ))
        .bind(to.as_str())
        .bind(now_ms());
        for s in &group {
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
        }
        let column = if agreed { "agreed" } else { "disagreed" };
        let mut q = query(format!(
            "UPDATE workers SET {column} = {column} + 1 WHERE account IN ({})",
            placeholders(1, group.len())
        ));
        for s in &group {
            q = q.bind(s.worker.as_str());
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}
