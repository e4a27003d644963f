//! The task and assignment lifecycles: every state change goes through one
//! exhaustive transition check, so a forbidden move is a bug caught at once.

use tally_protocol::wire::TaskState;

use crate::error::{MarketError, Result};

/// Is `from -> to` an allowed move of a task?
pub fn task_transition(from: TaskState, to: TaskState) -> Result<()> {
    use TaskState::*;
    let ok = match (from, to) {
        (Open, Running) | (Running, Open) => true,
        (Open | Running, Verified | Failed) => true,
        // No consensus on a bid that pays for review: people decide.
        (Open | Running, Review) | (Review, Verified | Failed) => true,
        (Review, _) => false,
        // Backtracking re-opens a verdict a caught worker helped reach.
        (Verified, Running) => true,
        (Verified | Failed, _) => false,
        (Open, Open) | (Running, Running) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(MarketError::Corrupt(format!(
            "task may not move from {from:?} to {to:?}"
        )))
    }
}

/// Where one replica of a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssignmentState {
    /// Held by a worker under a lease.
    Leased,
    /// Result in; waiting for the vote.
    Submitted,
    /// Voted with the consensus: paid.
    Agreed,
    /// Voted against the consensus: not paid.
    Disagreed,
    /// The task failed without a verdict: not paid.
    Rejected,
    /// The worker reported it could not run it.
    Failed,
    /// The lease ran out.
    Expired,
    /// The bid's deadline passed while it was leased.
    Cancelled,
}

impl AssignmentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentState::Leased => "leased",
            AssignmentState::Submitted => "submitted",
            AssignmentState::Agreed => "agreed",
            AssignmentState::Disagreed => "disagreed",
            AssignmentState::Rejected => "rejected",
            AssignmentState::Failed => "failed",
            AssignmentState::Expired => "expired",
            AssignmentState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        use AssignmentState::*;
        Ok(match s {
            "leased" => Leased,
            "submitted" => Submitted,
            "agreed" => Agreed,
            "disagreed" => Disagreed,
            "rejected" => Rejected,
            "failed" => Failed,
            "expired" => Expired,
            "cancelled" => Cancelled,
            other => return Err(MarketError::Corrupt(format!("assignment state {other:?}"))),
        })
    }

    /// Does it still hold one of the task's replica slots?
    pub fn holds_slot(self) -> bool {
        !matches!(
            self,
            AssignmentState::Failed | AssignmentState::Expired | AssignmentState::Cancelled
        )
    }
}

/// Is `from -> to` an allowed move of an assignment?
pub fn assignment_transition(from: AssignmentState, to: AssignmentState) -> Result<()> {
    use AssignmentState::*;
    let ok = match (from, to) {
        (Leased, Submitted | Failed | Expired | Cancelled) => true,
        // A late result is judged against the consensus at once.
        (Leased, Agreed | Disagreed) => true,
        (Submitted, Agreed | Disagreed | Rejected) => true,
        // Backtracking decided the task again without a caught worker.
        (Agreed, Disagreed) | (Disagreed, Agreed) => true,
        (Agreed | Disagreed, Rejected) => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(MarketError::Corrupt(format!(
            "assignment may not move from {from:?} to {to:?}"
        )))
    }
}

pub fn parse_task_state(s: &str) -> Result<TaskState> {
    Ok(match s {
        "open" => TaskState::Open,
        "running" => TaskState::Running,
        "verified" => TaskState::Verified,
        "failed" => TaskState::Failed,
        "review" => TaskState::Review,
        other => return Err(MarketError::Corrupt(format!("task state {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use AssignmentState::*;

    const TASKS: [TaskState; 4] = [
        TaskState::Open,
        TaskState::Running,
        TaskState::Verified,
        TaskState::Failed,
    ];
    const ASSIGNMENTS: [AssignmentState; 8] = [
        Leased, Submitted, Agreed, Disagreed, Rejected, Failed, Expired, Cancelled,
    ];

    #[test]
    fn every_task_move_is_allowed_or_forbidden_as_designed() {
        let allowed = [
            (TaskState::Open, TaskState::Running),
            (TaskState::Running, TaskState::Open),
            (TaskState::Open, TaskState::Verified),
            (TaskState::Open, TaskState::Failed),
            (TaskState::Running, TaskState::Verified),
            (TaskState::Running, TaskState::Failed),
            (TaskState::Verified, TaskState::Running),
        ];
        for from in TASKS {
            for to in TASKS {
                assert_eq!(
                    task_transition(from, to).is_ok(),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn every_assignment_move_is_allowed_or_forbidden_as_designed() {
        let allowed = [
            (Leased, Submitted),
            (Leased, Failed),
            (Leased, Expired),
            (Leased, Cancelled),
            (Leased, Agreed),
            (Leased, Disagreed),
            (Submitted, Agreed),
            (Submitted, Disagreed),
            (Submitted, Rejected),
            (Agreed, Disagreed),
            (Disagreed, Agreed),
            (Agreed, Rejected),
            (Disagreed, Rejected),
        ];
        for from in ASSIGNMENTS {
            for to in ASSIGNMENTS {
                assert_eq!(
                    assignment_transition(from, to).is_ok(),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for s in ASSIGNMENTS {
            assert_eq!(AssignmentState::parse(s.as_str()).unwrap(), s);
        }
        for t in TASKS {
            assert_eq!(parse_task_state(t.as_str()).unwrap(), t);
        }
        assert!(AssignmentState::parse("paid").is_err());
    }
}
