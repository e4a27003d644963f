//! The vote on a task and what follows from it: verification with payment
//! of the agreeing results, judging late results against the consensus, an
//! extra replica, or failure; and, when a spot check catches a worker,
//! deciding again every task it helped verify ([`backtrack`]). Runs inside
//! the transaction that stored the result (or the failure, or the expiry)
//! that made it due.
//!
//! Results of workers caught by a spot check never vote and are never
//! paid: they are listed as excluded in the evidence.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use tally_protocol::trust::{self, weighed_credibility, CheckRecord, Weight, ASSUMED_SABOTEURS};
use tally_protocol::vote::{self, Ballot, Verdict};
use tally_protocol::wire::{MarketEvent, ResultRequest, TaskState};
use tally_protocol::{AccountId, AssignmentId, TaskId};

use crate::db::{int, parse, placeholders, query, text, WriteTx};
use crate::error::{MarketError, Result};
use crate::ledger::Posting;
use crate::lifecycle::{assignment_transition, task_transition, AssignmentState};
use crate::payment::{close_bid_if_done, fail_task, give_back, pay};
use crate::task::{load_task, StoredVerdict, TaskRow};
use crate::wake::Work;
use crate::{now_ms, Market};

mod backtrack;
mod outcome;
mod review;
mod vote_checks;

pub(crate) use backtrack::backtrack;
pub use outcome::{outcome, Outcome, Replicas};
use vote_checks::{checks_voters, count_votes, rerun_due, vote_again};

/// What a decision did.
pub struct Decision {
    pub task_state: TaskState,
    /// Work for waiting claims (replicas added or re-opened).
    pub wake: Vec<Work>,
    /// The results judged now, and whether each agreed.
    pub judged: Vec<(AssignmentId, bool)>,
    /// What to tell listeners once the transaction commits.
    pub events: Vec<MarketEvent>,
}

impl Decision {
    /// The task moved to `state`, which listeners hear of; `judged`: the
    /// results judged now.
    fn moved(task: &TaskRow, state: TaskState, judged: Vec<(AssignmentId, bool)>) -> Decision {
        Decision {
            task_state: state,
            wake: vec![],
            judged,
            events: vec![decided(task, state)],
        }
    }

    fn unchanged(task: &TaskRow) -> Decision {
        Decision {
            task_state: task.state,
            wake: vec![],
            judged: vec![],
            events: vec![],
        }
    }
}

/// A result as loaded for the vote; its body is parsed only once a vote
/// needs it.
struct Submitted {
    id: AssignmentId,
    worker: AccountId,
    state: AssignmentState,
    /// Its worker's spot-check record, read with the result.
    checks: CheckRecord,
    /// Its worker has failed a spot check.
    caught: bool,
    body: Vec<u8>,
}

impl Submitted {
    fn parse(&self) -> Result<ResultRequest> {
        serde_json::from_slice(&self.body)
            .map_err(|e| MarketError::Corrupt(format!("stored result body: {e}")))
    }

    /// Whether it takes part in a vote: in, judged or not, and its worker not caught.
    fn votes(&self) -> bool {
        !self.caught
            && matches!(
                self.state,
                AssignmentState::Submitted | AssignmentState::Agreed | AssignmentState::Disagreed
            )
    }
}

/// A task's results (every assignment with a body, with its worker's
/// standing), and how many replicas are still out.
async fn load_results(tx: &mut WriteTx<'_>, task: TaskId) -> Result<(Vec<Submitted>, usize)> {
    let rows = query(
        "SELECT a.id, a.worker, a.status, a.body,
           COALESCE(a.checks_at_submit, w.checks_passed, 0) AS passed, COALESCE(w.checks_failed, 0) AS failed
         FROM assignments a LEFT JOIN workers w ON w.account = a.worker
         WHERE a.task_id = $1 AND a.kind = 'result' ORDER BY a.id",
    )
    .bind(task.0)
    .fetch_all(&mut *tx)
    .await?;
    let mut results = Vec::new();
    let mut outstanding = 0;
    for r in rows {
        let state = AssignmentState::parse(&text(&r, "status")?)?;
        if state == AssignmentState::Leased {
            outstanding += 1;
            continue;
        }
        let body: Option<Vec<u8>> = r.try_get("body")?;
        let Some(body) = body else { continue };
        results.push(Submitted {
            id: AssignmentId(int(&r, "id")?),
            worker: parse(&text(&r, "worker")?, "worker")?,
            state,
            checks: CheckRecord {
                passed: int(&r, "passed")?.max(0) as u64,
                failed: int(&r, "failed")?.max(0) as u64,
            },
            caught: int(&r, "failed")? > 0,
            body,
        });
    }
    Ok((results, outstanding))
}

/// Run the vote on a task if it can be decided, and act on the outcome.
#[tracing::instrument(level = "debug", skip_all, fields(task = %task_id))]
pub async fn decide(m: &Market, tx: &mut WriteTx<'_>, task_id: TaskId) -> Result<Decision> {
    let task = load_task(tx, task_id).await?;
    decide_loaded(m, tx, task).await
}

/// [`decide`] on a task row read in this transaction under its lock.
pub(crate) async fn decide_loaded(
    m: &Market,
    tx: &mut WriteTx<'_>,
    task: TaskRow,
) -> Result<Decision> {
    let (results, outstanding) = load_results(tx, task.id).await?;
    match task.state {
        TaskState::Verified => judge_late(m, tx, &task, &results, outstanding).await,
        TaskState::Failed => {
            let submitted: Vec<&Submitted> = results
                .iter()
                .filter(|s| s.state == AssignmentState::Submitted)
                .collect();
            reject(tx, &submitted).await?;
            close_bid_if_done(m, tx, task.bid).await?;
            Ok(Decision::unchanged(&task))
        }
        TaskState::Review => review::decide_review(m, tx, &task, &results, outstanding).await,
        _ if task.is_check => decide_check(m, tx, &task, &results, outstanding).await,
        _ => decide_open(m, tx, &task, &results, outstanding).await,
    }
}

/// Late results on a verified task are judged against its consensus; a
/// caught worker's is excluded.
async fn judge_late(
    m: &Market,
    tx: &mut WriteTx<'_>,
    task: &TaskRow,
    results: &[Submitted],
    outstanding: usize,
) -> Result<Decision> {
    let mut stored = task
        .verdict
        .clone()
        .ok_or_else(|| MarketError::Corrupt(format!("verified task {} has no verdict", task.id)))?;
    let late: Vec<&Submitted> = results
        .iter()
        .filter(|s| s.state == AssignmentState::Submitted)
        .collect();
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
            let (wake, events) = vote_again(m, tx, task, &stored, results, &voters).await?;
            decision.wake = wake;
            decision.events = events;
        }
    }
    close_bid_unless_out(m, tx, task, outstanding).await?;
    Ok(decision)
}

/// A vote on an undecided task's results, weighed where the bid buys a confidence.
struct Vote {
    ballots: Vec<AssignmentId>,
    verdict: Option<Verdict>,
    weights: Vec<Weight>,
    credibility: Option<f64>,
    /// The results in verify the task.
    verified: bool,
}

fn run_vote(task: &TaskRow, voters: &[&Submitted]) -> Result<Vote> {
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

async fn decide_open(
    m: &Market,
    tx: &mut WriteTx<'_>,
    task: &TaskRow,
    results: &[Submitted],
    outstanding: usize,
) -> Result<Decision> {
    let voters: Vec<&Submitted> = results.iter().filter(|s| s.votes()).collect();
    let caught: Vec<&Submitted> = results.iter().filter(|s| s.caught).collect();
    let replicas = Replicas {
        out: outstanding as u64,
        unclaimed: (task.wanted - task.taken).max(0) as u64,
        wanted: task.wanted.max(0) as u64,
        max: task.max_replicas.max(0) as u64,
    };
    let vote = run_vote(task, &voters)?;
    match outcome(vote.verified, replicas) {
        Outcome::Verify if rerun_due(m, task, &vote, replicas) => {
            // Voting as spot-checking: one more ordinary replica before a
            // lone trusted result decides; the two are judged together.
            Ok(Decision {
                wake: vec![add_replica(tx, task).await?],
                ..Decision::unchanged(task)
            })
        }
        Outcome::Verify => {
            let stored = StoredVerdict {
                voted: vote.ballots,
                verdict: vote.verdict.expect("a verified task was voted on"),
                weights: vote.weights,
                credibility: vote.credibility,
                excluded: caught.iter().map(|s| s.id).collect(),
                review: None,
            };
            let verified = Verified {
                stored,
                voters,
                caught,
                outstanding,
            };
            verify(m, tx, task, verified).await
        }
        Outcome::Wait => Ok(Decision::unchanged(task)),
        Outcome::AddReplica => Ok(Decision {
            wake: vec![add_replica(tx, task).await?],
            ..Decision::unchanged(task)
        }),
        Outcome::Fail => {
            // A task re-opened by backtracking that fails pays nothing
            // either: what its earlier verdict paid goes back.
            let paid: Vec<&Submitted> = voters
                .iter()
                .copied()
                .filter(|s| s.state == AssignmentState::Agreed)
                .collect();
            if review::goes_to_review(task, paid.len()) {
                reject(tx, &caught).await?;
                return review::send_to_review(m, tx, task).await;
            }
            for s in &paid {
                give_back(tx, Posting::Revise, &s.worker, Some(&[s.id])).await?;
            }
            reject(tx, &paid).await?;
            reject(tx, &caught).await?;
            fail_task(m, tx, task).await?;
            Ok(Decision::moved(task, TaskState::Failed, vec![]))
        }
    }
}

/// Ask for one more replica of `task`: the work it makes for waiting claims.
async fn add_replica(tx: &mut WriteTx<'_>, task: &TaskRow) -> Result<Work> {
    query("UPDATE tasks SET wanted = wanted + 1 WHERE id = $1")
        .bind(task.id.0)
        .execute(&mut *tx)
        .await?;
    Ok(task.one_slot())
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

/// A spot check's one result, judged against the known answer: a pass is
/// paid and counted, a failure counted, the worker caught, and every task
/// it helped verify decided again without it.
async fn decide_check(
    m: &Market,
    tx: &mut WriteTx<'_>,
    task: &TaskRow,
    results: &[Submitted],
    outstanding: usize,
) -> Result<Decision> {
    let Some(s) = results
        .iter()
        .find(|s| s.state == AssignmentState::Submitted)
    else {
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
    task_transition(task.state, TaskState::Verified)?;
    query("UPDATE tasks SET status = 'verified', finished_at = $1, decided_at = COALESCE(decided_at, $1), verdict = $2 WHERE id = $3")
        .bind(now_ms())
        .bind(serde_json::to_string(&stored).expect("verdict serializes"))
        .bind(task.id.0)
        .execute(&mut *tx)
        .await?;
    judge(m, tx, task, &[s], &judged).await?;
    close_bid_unless_out(m, tx, task, outstanding).await?;
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

fn decided(task: &TaskRow, status: TaskState) -> MarketEvent {
    MarketEvent::TaskDecided {
        bid: task.bid,
        task: task.id,
        status,
    }
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

/// What a vote (of workers, or of reviewers) verified a task with, carried
/// through the rest of the decision: save, judge and pay, close, count the
/// votes as checks, announce.
struct Verified<'r> {
    /// The verdict as it is stored and published.
    stored: StoredVerdict,
    /// The results that voted (judged against the verdict: agreeing ones
    /// are those its `agree` lists).
    voters: Vec<&'r Submitted>,
    /// Caught workers' results, which count for nothing.
    caught: Vec<&'r Submitted>,
    /// Replicas of the task still out.
    outstanding: usize,
}

/// Verify the task: the verdict saved, the caught workers' results
/// rejected, the voters' judged (and paid where they agree), the bid
/// closed if this was its last task out, the votes counted as checks.
async fn verify(
    m: &Market,
    tx: &mut WriteTx<'_>,
    task: &TaskRow,
    v: Verified<'_>,
) -> Result<Decision> {
    let Verified {
        stored,
        voters,
        caught,
        outstanding,
    } = v;
    let stored = &stored;
    let (voters, caught) = (&voters[..], &caught[..]);
    let judged: Vec<(AssignmentId, bool)> = voters
        .iter()
        .map(|s| (s.id, stored.verdict.agree.contains(&s.id)))
        .collect();
    task_transition(task.state, TaskState::Verified)?;
    query("UPDATE tasks SET status = 'verified', finished_at = $1, decided_at = COALESCE(decided_at, $1), verdict = $2 WHERE id = $3")
        .bind(now_ms())
        .bind(serde_json::to_string(stored).expect("verdict serializes"))
        .bind(task.id.0)
        .execute(&mut *tx)
        .await?;
    reject(tx, caught).await?;
    judge(m, tx, task, voters, &judged).await?;
    m.metrics.verified.fetch_add(1, Ordering::Relaxed);
    close_bid_unless_out(m, tx, task, outstanding).await?;
    let mut decision = Decision::moved(task, TaskState::Verified, judged);
    if checks_voters(m, task, stored) {
        let of = |agreed: bool| -> Vec<&AccountId> {
            voters
                .iter()
                .filter(|s| stored.verdict.agree.contains(&s.id) == agreed)
                .map(|s| &s.worker)
                .collect()
        };
        let (wake, events) = count_votes(m, tx, task, &of(true), &of(false)).await?;
        decision.wake.extend(wake);
        decision.events.extend(events);
    }
    Ok(decision)
}

async fn save_verdict(tx: &mut WriteTx<'_>, task: TaskId, v: &StoredVerdict) -> Result<()> {
    query("UPDATE tasks SET verdict = $1 WHERE id = $2")
        .bind(serde_json::to_string(v).expect("verdict serializes"))
        .bind(task.0)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Results that count for nothing (a caught worker's, or those of a task
/// that failed) move to `rejected`, whatever they were.
async fn reject(tx: &mut WriteTx<'_>, results: &[&Submitted]) -> Result<()> {
    for s in results {
        if s.state == AssignmentState::Rejected {
            continue;
        }
        crate::task::set_assignment(tx, s.id, s.state, AssignmentState::Rejected).await?;
    }
    Ok(())
}

/// Record the verdict on results, pay those that now agree, give back what
/// was paid to those that no longer do (a verdict decided again), and count
/// each in its worker's reputation: a handful of statements per change,
/// whatever the number of results.
async fn judge(
    m: &Market,
    tx: &mut WriteTx<'_>,
    task: &TaskRow,
    results: &[&Submitted],
    judged: &[(AssignmentId, bool)],
) -> Result<()> {
    let mut moves: BTreeMap<(&'static str, bool), Vec<&Submitted>> = BTreeMap::new();
    // Reputation comes last, after every posting (see below).
    let mut reputation = Vec::new();
    for s in results {
        let Some((_, agreed)) = judged.iter().find(|(id, _)| *id == s.id) else {
            continue;
        };
        let to = if *agreed {
            AssignmentState::Agreed
        } else {
            AssignmentState::Disagreed
        };
        if s.state != to {
            moves
                .entry((s.state.as_str(), *agreed))
                .or_default()
                .push(s);
        }
    }
    for ((_, agreed), group) in moves {
        let from = group[0].state;
        let to = if agreed {
            AssignmentState::Agreed
        } else {
            AssignmentState::Disagreed
        };
        assignment_transition(from, to)?;
        let mut q = query(format!(
            "UPDATE assignments SET status = $1, finished_at = COALESCE(finished_at, $2)
             WHERE status = $3 AND id IN ({})",
            placeholders(4, group.len())
        ))
        .bind(to.as_str())
        .bind(now_ms())
        .bind(from.as_str());
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
        } else if from == AssignmentState::Agreed {
            for s in &group {
                give_back(tx, Posting::Revise, &s.worker, Some(&[s.id])).await?;
            }
        }
        let column = if agreed { "agreed" } else { "disagreed" };
        let undo = match from {
            AssignmentState::Agreed => ", agreed = agreed - 1",
            AssignmentState::Disagreed => ", disagreed = disagreed - 1",
            _ => "",
        };
        reputation.push((column, undo, group));
    }
    // The workers' rows after every balance, and in account order: a
    // decision never holds a worker's row while it waits for a balance
    // another decision holds, nor two workers' rows in another order
    // (PostgreSQL would break either cycle by aborting one of them).
    if tx.is_postgres() && !reputation.is_empty() {
        let mut accounts: Vec<&str> = reputation
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
    }
    for (column, undo, group) in reputation {
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
