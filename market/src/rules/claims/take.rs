//! Taking slots on the candidate tasks a claim found: now and then a spot
//! check in a candidate's place, the rest taken in a few statements for
//! the lot, whatever their number.

use std::collections::{HashMap, HashSet};

use tally_protocol::wire::Assignment;
use tally_protocol::{AccountId, AssignmentId, BidId, Sha256Hex, Stroops, TaskId};

use super::Claimer;
use crate::checks;
use crate::db::{int, parse, placeholders, query, text, Row, WriteTx};
use crate::error::Result;
use crate::{now_ms, to_time};

/// When the slots taken now were leased and when their leases end.
struct Lease {
    now: i64,
    ms: i64,
    expires: i64,
}

/// A client task to take a slot on.
struct Plain {
    task: TaskId,
    model: Sha256Hex,
    input: Sha256Hex,
    price: Stroops,
}

/// Take a slot on each candidate task; how many were lost to concurrent
/// claims (slots gone, or this worker already on the task).
pub(super) async fn take(
    tx: &mut WriteTx<'_>,
    c: &Claimer<'_>,
    candidates: &[Row],
    out: &mut Vec<Assignment>,
) -> Result<usize> {
    let (m, worker) = (c.m, c.worker);
    let now = now_ms();
    let ms = m.config.lease.as_millis() as i64;
    let lease = Lease {
        now,
        ms,
        expires: now + ms,
    };
    let plain = checks_first(tx, c, candidates, out, &lease).await?;
    if plain.is_empty() {
        return Ok(0);
    }
    let took = take_slots(tx, &plain).await?;
    if took.is_empty() {
        return Ok(plain.len());
    }
    let assignment_of = lease_slots(tx, worker, &took, &lease).await?;
    let lost = plain.len() - assignment_of.len();
    for p in plain {
        if let Some(&assignment) = assignment_of.get(&p.task.0) {
            out.push(Assignment {
                assignment,
                task: p.task,
                model: p.model,
                input: p.input,
                price: p.price,
                lease_expires_at: to_time(lease.expires),
            });
        }
    }
    Ok(lost)
}

/// Draw spot checks for the candidates (leased into `out`); the client
/// tasks left to take.
async fn checks_first(
    tx: &mut WriteTx<'_>,
    claimer: &Claimer<'_>,
    candidates: &[Row],
    out: &mut Vec<Assignment>,
    lease: &Lease,
) -> Result<Vec<Plain>> {
    let Claimer {
        m,
        worker,
        check_rate,
        ..
    } = *claimer;
    let mut plain = Vec::with_capacity(candidates.len());
    for c in candidates {
        let task = TaskId(int(c, "id")?);
        let model: Sha256Hex = parse(&text(c, "model")?, "model hash")?;
        let price = Stroops(int(c, "price")?);
        // Now and then a spot check of the same model and price takes this
        // candidate's place; the candidate stays in the pool for others.
        if check_rate > 0.0
            && !m.check_pool.is_paused()
            && checks::draw() < check_rate
            && checks::within_budget(tx, m, worker).await?
        {
            if check_rate >= 1.0 && !out.is_empty() {
                // A worker checked on every claim takes one check at a
                // time: its next claim knows how it did.
                continue;
            }
            // A claim drawn for a check takes no client work at all when
            // none is ready (the worker claims again): a shortage of checks
            // must not become a shortage of checking.
            let Some(prepared) = checks::choose(m, &model) else {
                plain.clear();
                break;
            };
            let displaced = BidId(int(c, "bid_id")?);
            if let Some((check, input, price)) =
                checks::create(tx, m, &prepared, displaced, price, lease.ms).await?
            {
                let assignment = lease_one(tx, worker, check, lease).await?;
                out.push(Assignment {
                    assignment,
                    task: check,
                    model,
                    input,
                    price,
                    lease_expires_at: to_time(lease.expires),
                });
                continue;
            }
            // Nothing could pay for it: it waits for the next claim.
            m.check_pool.put_back(prepared);
            if check_rate >= 1.0 {
                // A worker checked on every claim (one that has passed no
                // check yet: its result would weigh next to nothing, and
                // would stay so) gets no client work until it is checked.
                continue;
            }
        }
        let input: Sha256Hex = parse(&text(c, "input")?, "input hash")?;
        plain.push(Plain {
            task,
            model,
            input,
            price,
        });
    }
    Ok(plain)
}

/// Lease `task` (a check just made for this worker) to `worker`.
async fn lease_one(
    tx: &mut WriteTx<'_>,
    worker: &AccountId,
    task: TaskId,
    lease: &Lease,
) -> Result<AssignmentId> {
    let row = query(
        "INSERT INTO assignments (task_id, worker, status, lease_expires_at, created_at)
         VALUES ($1, $2, 'leased', $3, $4) RETURNING id",
    )
    .bind(task.0)
    .bind(worker.as_str())
    .bind(lease.expires)
    .bind(lease.now)
    .fetch_one(&mut *tx)
    .await?;
    Ok(AssignmentId(row.try_get("id")?))
}

/// Take a slot on each task that still has one, in one statement; the
/// tasks taken, in the candidates' order. The row locks this takes order
/// concurrent claims. On PostgreSQL they are taken in id order (one
/// statement locks rows in whatever order its plan meets them, and two
/// claims meeting shared tasks in different orders would deadlock).
async fn take_slots(tx: &mut WriteTx<'_>, plain: &[Plain]) -> Result<Vec<i64>> {
    let ids: Vec<i64> = plain.iter().map(|p| p.task.0).collect();
    let ordered = if tx.is_postgres() {
        format!(
            "SELECT id FROM tasks WHERE id IN ({}) ORDER BY id FOR NO KEY UPDATE",
            placeholders(1, ids.len())
        )
    } else {
        placeholders(1, ids.len())
    };
    let mut q = query(format!(
        "UPDATE tasks SET taken = taken + 1, status = 'running'
         WHERE taken < wanted AND status IN ('open', 'running') AND id IN ({ordered}) RETURNING id"
    ));
    for id in &ids {
        q = q.bind(*id);
    }
    let took = q
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| int(r, "id"))
        .collect::<Result<HashSet<i64>>>()?;
    Ok(ids.into_iter().filter(|id| took.contains(id)).collect())
}

/// Lease the slots taken to `worker`: each task's assignment. Tasks the
/// same worker took through a concurrent claim get their slot back.
async fn lease_slots(
    tx: &mut WriteTx<'_>,
    worker: &AccountId,
    took: &[i64],
    lease: &Lease,
) -> Result<HashMap<i64, AssignmentId>> {
    let values = (0..took.len())
        .map(|i| format!("(${}, $1, 'leased', $2, $3)", i + 4))
        .collect::<Vec<_>>()
        .join(", ");
    let mut q = query(format!(
        "INSERT INTO assignments (task_id, worker, status, lease_expires_at, created_at)
         VALUES {values} ON CONFLICT (task_id, worker) DO NOTHING RETURNING id, task_id"
    ))
    .bind(worker.as_str())
    .bind(lease.expires)
    .bind(lease.now);
    for id in took {
        q = q.bind(*id);
    }
    let mut assignment_of = HashMap::with_capacity(took.len());
    for r in q.fetch_all(&mut *tx).await? {
        assignment_of.insert(int(&r, "task_id")?, AssignmentId(int(&r, "id")?));
    }
    let doubled: Vec<i64> = took
        .iter()
        .copied()
        .filter(|id| !assignment_of.contains_key(id))
        .collect();
    if !doubled.is_empty() {
        let mut q = query(format!(
            "UPDATE tasks SET taken = taken - 1 WHERE id IN ({})",
            placeholders(1, doubled.len())
        ));
        for id in &doubled {
            q = q.bind(*id);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(assignment_of)
}
