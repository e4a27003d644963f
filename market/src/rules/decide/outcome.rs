//! What a task's decision does next, as one pure function: verify, wait for
//! the replicas already asked for, ask for one more, or fail.
//!
//! The rule that matters: a task never fails, and never grows, while a
//! replica it already asked for is unclaimed or out. A single wrong answer
//! arriving early can therefore never fail a task whose other replicas
//! have not spoken.

/// Where a task's replicas stand when its decision runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replicas {
    /// Leased to a worker now.
    pub out: u64,
    /// Asked for but not claimed (`wanted - taken`).
    pub unclaimed: u64,
    /// Replicas asked for so far.
    pub wanted: u64,
    /// The most the bid allows.
    pub max: u64,
}

/// The next step for an undecided task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The results in are enough: the task is verified.
    Verify,
    /// Replicas already asked for may still answer.
    Wait,
    /// Every replica asked for has answered without a decision; ask for one more.
    AddReplica,
    /// Every replica the bid allows has answered without a decision.
    Fail,
}

/// The next step, given whether the results in verify the task.
pub fn outcome(verified: bool, r: Replicas) -> Outcome {
    if verified {
        Outcome::Verify
    } else if r.out > 0 || r.unclaimed > 0 {
        Outcome::Wait
    } else if r.wanted < r.max {
        Outcome::AddReplica
    } else {
        Outcome::Fail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(out: u64, unclaimed: u64, wanted: u64, max: u64) -> Replicas {
        Replicas {
            out,
            unclaimed,
            wanted,
            max,
        }
    }

    #[test]
    fn verified_results_verify_whatever_is_still_out() {
        for replicas in [r(0, 0, 3, 3), r(2, 0, 3, 5), r(0, 1, 3, 3), r(1, 1, 5, 5)] {
            assert_eq!(outcome(true, replicas), Outcome::Verify, "{replicas:?}");
        }
    }

    #[test]
    fn an_unclaimed_replica_is_waited_for_even_at_the_maximum() {
        // replicas 3, quorum 2, max 3: a wrong and a right answer in, the third never claimed.
        assert_eq!(outcome(false, r(0, 1, 3, 3)), Outcome::Wait);
        assert_eq!(outcome(false, r(0, 2, 3, 5)), Outcome::Wait);
    }

    #[test]
    fn a_replica_out_is_waited_for() {
        assert_eq!(outcome(false, r(1, 0, 3, 3)), Outcome::Wait);
        assert_eq!(outcome(false, r(1, 0, 3, 5)), Outcome::Wait);
    }

    #[test]
    fn a_replica_is_added_only_once_every_one_asked_for_has_answered() {
        assert_eq!(outcome(false, r(0, 0, 3, 5)), Outcome::AddReplica);
        assert_eq!(outcome(false, r(0, 0, 4, 5)), Outcome::AddReplica);
    }

    #[test]
    fn a_task_fails_only_with_every_allowed_replica_answered() {
        assert_eq!(outcome(false, r(0, 0, 5, 5)), Outcome::Fail);
        assert_eq!(outcome(false, r(0, 0, 3, 3)), Outcome::Fail);
    }
}
