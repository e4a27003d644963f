//! Counting a `tally bench trust` run: the bids' verdicts against the truth,
//! and per kind of worker its results, reputation, pay and spot checks, and
//! which workers were caught.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use tally_protocol::vote::{agrees, VoteParams};
use tally_protocol::wire::{BidStatus, TaskState};
use tally_protocol::{Client, Sha256Hex};

use super::fleet::{Kind, WorkerLog};
use super::images::{colluding, truth};

/// The bids' tasks, by verdict, and the verified ones the truth disagrees
/// with.
#[derive(Debug, Default)]
pub(super) struct Verdicts {
    pub(super) verified: u64,
    pub(super) failed: u64,
    pub(super) undecided: u64,
    /// Verified tasks whose consensus is not the truth.
    pub(super) wrong: u64,
    /// The wrong ones by what the consensus looks like: "empty",
    /// "colluding" or "other".
    pub(super) wrong_as: BTreeMap<&'static str, u64>,
    /// What the client spent, in stroops.
    pub(super) spent: i64,
}

/// Judge the bids' verdicts against the [`truth`] of the client's `images`
/// (`by_hash`: an input's address to its index in `images`).
pub(super) fn verdicts(
    statuses: &[BidStatus],
    images: &[Vec<u8>],
    by_hash: &HashMap<Sha256Hex, usize>,
) -> anyhow::Result<Verdicts> {
    let params = VoteParams::default();
    let mut v = Verdicts::default();
    for s in statuses {
        v.spent += s.spent.0;
        for t in &s.tasks {
            match t.status {
                TaskState::Verified => v.verified += 1,
                TaskState::Failed => {
                    v.failed += 1;
                    continue;
                }
                _ => {
                    v.undecided += 1;
                    continue;
                }
            }
            let i = *by_hash
                .get(&t.input)
                .with_context(|| format!("task {} has an input the client never sent", t.task))?;
            let consensus = t.consensus.clone().unwrap_or_default();
            if !agrees(&params, &truth(&images[i]), &consensus) {
                v.wrong += 1;
                let like = if consensus.is_empty() {
                    "empty"
                } else if agrees(&params, &colluding(&images[i]), &consensus) {
                    "colluding"
                } else {
                    "other"
                };
                *v.wrong_as.entry(like).or_default() += 1;
            }
        }
    }
    Ok(v)
}

/// Results, pay and reputation of one kind of worker (as the report shows it).
#[derive(Debug, Default, serde::Serialize)]
pub(super) struct PerKind {
    pub(super) workers: u64,
    pub(super) results: u64,
    pub(super) agreed: u64,
    pub(super) disagreed: u64,
    pub(super) paid: i64,
    pub(super) checks_passed: u64,
    pub(super) checks_failed: u64,
    pub(super) caught: u64,
}

/// What the fleet did, in all and per kind.
#[derive(Debug, Default)]
pub(super) struct FleetTally {
    pub(super) per_kind: BTreeMap<Kind, PerKind>,
    /// Results the market accepted.
    pub(super) results: u64,
    /// Of them, results on inputs that are no client's (spot checks).
    pub(super) off_client: u64,
    pub(super) refused: u64,
    pub(super) claim_errors: u64,
    /// Earned, paid or not, by every worker and by the saboteurs.
    pub(super) paid_all: i64,
    pub(super) paid_saboteurs: i64,
    /// Settled (paid out), by every worker and by the saboteurs.
    pub(super) settled_all: i64,
    pub(super) settled_saboteurs: i64,
    /// Earned but kept back by the probation holdback at the end.
    pub(super) held_all: i64,
    /// The first worker's first error, in fleet order.
    pub(super) first_error: Option<String>,
    /// Saboteurs caught, and honest workers caught.
    pub(super) caught: u64,
    pub(super) honest_caught: u64,
    /// When each caught saboteur was caught, in seconds into the run, sorted.
    pub(super) caught_seconds: Vec<f64>,
}

/// Count the fleet's `logs`, with each worker's account as the market sees
/// it (`by_hash`: the client's inputs by address).
pub(super) async fn fleet(
    logs: &[(Kind, Client, WorkerLog)],
    by_hash: &HashMap<Sha256Hex, usize>,
) -> anyhow::Result<FleetTally> {
    let mut f = FleetTally::default();
    for (kind, w, log) in logs {
        let me = w.account_me().await?;
        let paid = me.earned_unpaid.0 + me.paid_total.0;
        let is_caught = log.caught_at.is_some() || me.checks.failed > 0;
        let k = f.per_kind.entry(*kind).or_default();
        k.workers += 1;
        k.results += log.inputs.len() as u64;
        k.agreed += me.reputation.agreed;
        k.disagreed += me.reputation.disagreed;
        k.paid += paid;
        k.checks_passed += me.checks.passed;
        k.checks_failed += me.checks.failed;
        if is_caught {
            k.caught += 1;
            if *kind == Kind::Honest {
                f.honest_caught += 1;
            } else {
                f.caught += 1;
                f.caught_seconds.extend(log.caught_at);
            }
        }
        f.results += log.inputs.len() as u64;
        f.off_client += log
            .inputs
            .iter()
            .filter(|h| !by_hash.contains_key(*h))
            .count() as u64;
        f.refused += log.refused;
        f.claim_errors += log.claim_errors;
        if f.first_error.is_none() {
            f.first_error.clone_from(&log.first_error);
        }
        f.paid_all += paid;
        f.settled_all += me.paid_total.0;
        f.held_all += me.held.0;
        if *kind != Kind::Honest {
            f.paid_saboteurs += paid;
            f.settled_saboteurs += me.paid_total.0;
        }
    }
    f.caught_seconds.sort_by(f64::total_cmp);
    Ok(f)
}
