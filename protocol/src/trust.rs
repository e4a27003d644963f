//! Credibility: how far the market trusts a worker, and a group of agreeing
//! results, to be right. Pure functions, so every auditor re-runs them.
//!
//! A worker's credibility comes from its check record (spot checks, tasks
//! whose answer the market knows, and credible votes), after Sarmenta
//! ("Sabotage-tolerance mechanisms for volunteer computing systems", 2002)
//! with a Bayesian estimate in place of his worst case. `f` is the fraction of saboteurs the market assumes.
//!
//! - An identity that has passed no check may be a saboteur that always
//!   lies (identities cost nothing): `Cr = 1 - f`.
//! - One that has passed `k >= 1` checks and failed none is no always-liar;
//!   if it is a saboteur, it lies on each task with a rate `s` the market
//!   does not know, taken uniform on (0, 1). The chance that its next answer
//!   is wrong is then
//!   `P = f ∫ s (1-s)^k ds / (f ∫ (1-s)^k ds + 1 - f)
//!      = [f / ((k+1)(k+2))] / [f / (k+1) + 1 - f]`, and `Cr = 1 - P`.
//! - One failed check and it is never trusted again: `Cr = 0`.
//!
//! A vote counts as a check only where it is credible without the worker
//! judged: the market counts a result agreeing with a verdict credible at
//! the bid's confidence and agreed by two results or more as a passed
//! check, and one such a verdict out-voted as a failed one. Colluders who
//! agree with each other gain nothing unless their verdict is already
//! credible, which needs the checks they would be farming.
//! A saboteur lying rarely on purpose (`s` near `1/k`) is wrong more often
//! than `P` says; the market's answer to it is backtracking: once caught,
//! every task it helped verify is decided again without it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The fraction of saboteurs the market assumes when nothing is known.
pub const ASSUMED_SABOTEURS: f64 = 0.4;

/// A worker's spot-check record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CheckRecord {
    pub passed: u64,
    pub failed: u64,
}

/// The credibility of a worker with `record`, assuming a saboteur fraction `f`
/// (the formula in the module's documentation).
pub fn credibility(f: f64, record: CheckRecord) -> f64 {
    let f = f.clamp(0.0, 0.999_999);
    if record.failed > 0 {
        return 0.0;
    }
    if record.passed == 0 {
        return 1.0 - f;
    }
    let k = record.passed as f64;
    let wrong = (f / ((k + 1.0) * (k + 2.0))) / (f / (k + 1.0) + 1.0 - f);
    1.0 - wrong
}

/// The fewest passed checks that give a credibility of at least `level`
/// under a saboteur fraction `f` (`u64::MAX` when `level` is out of reach).
pub fn checks_for(f: f64, level: f64) -> u64 {
    if level <= 0.0 {
        return 0;
    }
    if level >= 1.0 {
        return u64::MAX;
    }
    // Credibility rises with k and its error falls like 1/k^2: the loop is short.
    (0..10_000_000)
        .find(|&k| {
            credibility(
                f,
                CheckRecord {
                    passed: k,
                    failed: 0,
                },
            ) >= level
        })
        .unwrap_or(u64::MAX)
}

/// The probability that each group of agreeing results is the right one.
///
/// `groups[g]` holds the credibilities of the workers whose results form
/// group `g` (every result in exactly one group). With saboteurs assumed to
/// agree with each other, group `a` is right when all its members are good
/// and every other result is bad:
/// `P(a) = prod_{i in a} Cr_i prod_{j not in a} (1 - Cr_j) / Z`, where `Z`
/// sums that over every group plus the case "every result is bad".
pub fn group_credibility(groups: &[Vec<f64>]) -> Vec<f64> {
    let bad_all: f64 = groups.iter().flatten().map(|c| 1.0 - c).product();
    let right: Vec<f64> = groups
        .iter()
        .enumerate()
        .map(|(a, members)| {
            let good: f64 = members.iter().product();
            let others_bad: f64 = groups
                .iter()
                .enumerate()
                .filter(|(g, _)| *g != a)
                .flat_map(|(_, m)| m.iter())
                .map(|c| 1.0 - c)
                .product();
            good * others_bad
        })
        .collect();
    let z = bad_all + right.iter().sum::<f64>();
    if z <= 0.0 {
        return vec![0.0; groups.len()];
    }
    right.into_iter().map(|r| r / z).collect()
}

/// The default confidence a bid buys.
pub const DEFAULT_CONFIDENCE: f64 = 0.999;

/// One result's weight in a decision, as the evidence records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Weight {
    pub assignment: crate::AssignmentId,
    /// The worker's check record when the task was decided.
    pub checks: CheckRecord,
    pub credibility: f64,
}

/// The credibility of a verdict's agreeing group: the agreeing results form
/// one group, each disagreeing result a group of its own (so saboteurs who
/// disagree with each other cannot pool their weight).
pub fn verdict_credibility(agree: &[f64], disagree: &[f64]) -> f64 {
    let mut groups = vec![agree.to_vec()];
    groups.extend(disagree.iter().map(|c| vec![*c]));
    group_credibility(&groups)[0]
}

/// The credibility of `verdict`'s agreeing group under `weights` (a result
/// without a weight counts as a caught worker's: 0). The market verifies
/// with it; auditors re-run it on the evidence.
pub fn weighed_credibility(verdict: &crate::vote::Verdict, weights: &[Weight]) -> f64 {
    let of = |id: &crate::AssignmentId| {
        weights
            .iter()
            .find(|w| &w.assignment == id)
            .map_or(0.0, |w| w.credibility)
    };
    let agree: Vec<f64> = verdict.agree.iter().map(of).collect();
    let disagree: Vec<f64> = verdict.disagree.iter().map(of).collect();
    verdict_credibility(&agree, &disagree)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(passed: u64, failed: u64) -> CheckRecord {
        CheckRecord { passed, failed }
    }

    #[test]
    fn new_identities_start_at_one_minus_f_and_checks_raise_it() {
        assert!((credibility(0.4, rec(0, 0)) - 0.6).abs() < 1e-12);
        // k = 10: [0.4 / (11 * 12)] / [0.4 / 11 + 0.6] = 1 / 210.
        let ten = credibility(0.4, rec(10, 0));
        assert!((ten - (1.0 - 1.0 / 210.0)).abs() < 1e-12, "{ten}");
        // k = 1: (0.4 / 6) / (0.2 + 0.6) = 1 / 12.
        assert!((credibility(0.4, rec(1, 0)) - 11.0 / 12.0).abs() < 1e-12);
        let mut last = 0.0;
        for k in [1, 2, 5, 10, 100, 1000] {
            let c = credibility(0.4, rec(k, 0));
            assert!(c >= last && c < 1.0, "k={k}: {c}");
            last = c;
        }
    }

    #[test]
    fn a_single_result_reaches_three_nines_after_24_checks() {
        assert_eq!(checks_for(ASSUMED_SABOTEURS, DEFAULT_CONFIDENCE), 24);
        assert!(credibility(0.4, rec(23, 0)) < DEFAULT_CONFIDENCE);
        assert!(credibility(0.4, rec(24, 0)) >= DEFAULT_CONFIDENCE);
        assert_eq!(checks_for(0.4, 0.6), 0);
        assert_eq!(checks_for(0.4, 1.0), u64::MAX);
    }

    #[test]
    fn one_failed_check_is_the_end_of_trust() {
        assert_eq!(credibility(0.4, rec(10_000, 1)), 0.0);
        assert_eq!(credibility(0.4, rec(0, 3)), 0.0);
    }

    #[test]
    fn two_new_identities_agreeing_are_far_from_three_nines() {
        let p = group_credibility(&[vec![0.6, 0.6]]);
        // Both good (0.36) against both bad and colluding (0.16).
        assert!((p[0] - 0.36 / 0.52).abs() < 1e-12, "{p:?}");
        assert!(p[0] < 0.999);
    }

    #[test]
    fn two_checked_workers_agreeing_reach_three_nines() {
        let c = credibility(ASSUMED_SABOTEURS, rec(3, 0));
        let p = group_credibility(&[vec![c, c]]);
        assert!(p[0] >= 0.999, "{p:?}");
        // Alone, one of them does not; two with two checks each do not either.
        assert!(group_credibility(&[vec![c]])[0] < 0.999);
        let two = credibility(ASSUMED_SABOTEURS, rec(2, 0));
        assert!(group_credibility(&[vec![two, two]])[0] < 0.999);
    }

    #[test]
    fn a_dissenting_group_takes_credibility_from_the_other() {
        let c = credibility(ASSUMED_SABOTEURS, rec(10, 0));
        let alone = group_credibility(&[vec![c, c]])[0];
        let p = group_credibility(&[vec![c, c], vec![0.6]]);
        assert!(p[0] < alone && p[1] < 0.01, "{p:?}");
        assert!(p.iter().sum::<f64>() < 1.0);
        // A caught worker's results weigh nothing either way.
        let q = group_credibility(&[vec![c, c], vec![0.0]]);
        assert!((q[0] - alone).abs() < 1e-12 && q[1] == 0.0, "{q:?}");
    }

    #[test]
    fn a_verdict_weighs_its_agreeing_group_against_each_dissenter() {
        let c = credibility(ASSUMED_SABOTEURS, rec(10, 0));
        assert_eq!(
            verdict_credibility(&[c, c], &[]),
            group_credibility(&[vec![c, c]])[0]
        );
        let with_dissent = verdict_credibility(&[c, c], &[0.6]);
        assert_eq!(with_dissent, group_credibility(&[vec![c, c], vec![0.6]])[0]);
        assert!(with_dissent < verdict_credibility(&[c, c], &[]));
    }

    #[test]
    fn groups_of_caught_workers_are_never_credible() {
        assert_eq!(group_credibility(&[vec![0.0, 0.0]]), vec![0.0]);
        assert!(group_credibility(&[]).is_empty());
    }
}
