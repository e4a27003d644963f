//! The first stage of a decision: the task and its results, loaded once
//! and carried through the rest (vote, judge and pay, announce) as one
//! value.

use tally_protocol::trust::CheckRecord;
use tally_protocol::wire::ResultRequest;
use tally_protocol::{AccountId, AssignmentId};

use crate::db::{int, parse, query, text, WriteTx};
use crate::error::{MarketError, Result};
use crate::lifecycle::AssignmentState;
use crate::task::TaskRow;

/// A result as loaded for the vote; its body is parsed only once a vote
/// needs it.
pub(crate) struct Submitted {
    pub id: AssignmentId,
    pub worker: AccountId,
    pub state: AssignmentState,
    /// Its worker's spot-check record, read with the result.
    pub checks: CheckRecord,
    /// Its worker has failed a spot check.
    pub caught: bool,
    pub body: Vec<u8>,
}

impl Submitted {
    pub fn parse(&self) -> Result<ResultRequest> {
        serde_json::from_slice(&self.body)
            .map_err(|e| MarketError::Corrupt(format!("stored result body: {e}")))
    }

    /// Whether it takes part in a vote: in, judged or not, and its worker not caught.
    pub fn votes(&self) -> bool {
        !self.caught
            && matches!(
                self.state,
                AssignmentState::Submitted | AssignmentState::Agreed | AssignmentState::Disagreed
            )
    }
}

/// A task as a decision sees it: its row (read under its lock), every
/// result with a body, with its worker's standing, and how many replicas
/// are still out.
pub(crate) struct Case {
    pub task: TaskRow,
    pub results: Vec<Submitted>,
    pub outstanding: usize,
}

impl Case {
    /// Load the results of `task`, a row read in this transaction.
    pub async fn load(tx: &mut WriteTx<'_>, task: TaskRow) -> Result<Case> {
        let rows = query(
            "SELECT a.id, a.worker, a.status, a.body,
               COALESCE(a.checks_at_submit, w.checks_passed, 0) AS passed, COALESCE(w.checks_failed, 0) AS failed
             FROM assignments a LEFT JOIN workers w ON w.account = a.worker
             WHERE a.task_id = $1 AND a.kind = 'result' ORDER BY a.id",
        )
        .bind(task.id.0)
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
        Ok(Case {
            task,
            results,
            outstanding,
        })
    }

    /// The results that vote (see [`Submitted::votes`]).
    pub fn voters(&self) -> Vec<&Submitted> {
        self.results.iter().filter(|s| s.votes()).collect()
    }

    /// Caught workers' results, which count for nothing.
    pub fn caught(&self) -> Vec<&Submitted> {
        self.results.iter().filter(|s| s.caught).collect()
    }

    /// Results not judged yet.
    pub fn unjudged(&self) -> Vec<&Submitted> {
        self.results
            .iter()
            .filter(|s| s.state == AssignmentState::Submitted)
            .collect()
    }
}
