//! The simulated fleet: the kinds of worker, how each answers an
//! assignment, and the loop a worker runs until the bids are done or a spot
//! check catches it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tally_protocol::wire::{Assignment, ResultRequest};
use tally_protocol::{Client, Sha256Hex};

use super::images::{colluding, honest, random};
use super::rng::{key, Rng};

/// Assignments a simulated worker holds at once (its offer's capacity).
pub(super) const CAPACITY: u32 = 4;
/// Results a farming saboteur answers honestly before it starts lying.
const FARMING_HONEST: u64 = 15;
/// Share of its tasks (in percent) an intermittent saboteur lies on.
const INTERMITTENT_PERCENT: u64 = 30;

/// What a simulated worker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    Honest,
    /// 1-3 random boxes, random classes and scores.
    Random,
    /// Always the empty list.
    Lazy,
    /// The same wrong answer as every other colluder: [`colluding`].
    Colluding,
    /// Honest for its first [`FARMING_HONEST`] results, then colluding.
    Farming,
    /// Colluding on a seeded [`INTERMITTENT_PERCENT`] of its tasks.
    Intermittent,
}

impl Kind {
    pub(super) fn parse(s: &str) -> anyhow::Result<Kind> {
        Ok(match s.trim() {
            "random" => Kind::Random,
            "lazy" => Kind::Lazy,
            "colluding" => Kind::Colluding,
            "farming" => Kind::Farming,
            "intermittent" => Kind::Intermittent,
            other => bail!(
                "--mix: {other:?} is not a saboteur kind (random, lazy, colluding, farming, intermittent)"
            ),
        })
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Honest => "honest",
            Kind::Random => "random",
            Kind::Lazy => "lazy",
            Kind::Colluding => "colluding",
            Kind::Farming => "farming",
            Kind::Intermittent => "intermittent",
        }
    }
}

/// How one assignment is answered.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Honest,
    Colluding,
    Random,
    Lazy,
}

/// Whether the market answered 403: this worker was caught by a spot check.
fn is_forbidden(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<tally_protocol::Error>(),
            Some(tally_protocol::Error::Api { status: 403, .. })
        )
    })
}

/// What a simulated worker did.
#[derive(Debug, Default)]
pub(super) struct WorkerLog {
    /// The input of each result the market accepted.
    pub(super) inputs: Vec<Sha256Hex>,
    /// Results or input fetches the market refused.
    pub(super) refused: u64,
    pub(super) claim_errors: u64,
    pub(super) first_error: Option<String>,
    /// Seconds into the run when the market first answered this worker 403
    /// (caught by a spot check); it stopped then.
    pub(super) caught_at: Option<f64>,
}

/// One simulated worker.
pub(super) struct Sim {
    pub(super) index: u64,
    pub(super) kind: Kind,
    pub(super) seed: u64,
}

impl Sim {
    /// How the `n`th assignment this worker takes (from 0) is answered.
    fn answer(&self, n: u64, a: &Assignment) -> Answer {
        match self.kind {
            Kind::Honest => Answer::Honest,
            Kind::Random => Answer::Random,
            Kind::Lazy => Answer::Lazy,
            Kind::Colluding => Answer::Colluding,
            Kind::Farming if n < FARMING_HONEST => Answer::Honest,
            Kind::Farming => Answer::Colluding,
            Kind::Intermittent => {
                let mut r = Rng::new(&[self.seed, self.index, key(&a.input), 0x1e]);
                if r.below(100) < INTERMITTENT_PERCENT {
                    Answer::Colluding
                } else {
                    Answer::Honest
                }
            }
        }
    }

    /// Answer one assignment: fetch the input when the answer needs it,
    /// compute (honest answers take 20-60 ms), submit.
    async fn handle(&self, w: &Client, a: &Assignment, answer: Answer) -> anyhow::Result<()> {
        let mut r = Rng::new(&[self.seed, self.index, a.assignment.0 as u64]);
        let (detections, elapsed_ms) = match answer {
            Answer::Lazy => (vec![], 0.0),
            Answer::Random => (random(&mut r), 0.0),
            Answer::Colluding => {
                let bytes = w.input(&a.input).await.context("input")?;
                (colluding(&bytes), 0.0)
            }
            Answer::Honest => {
                let bytes = w.input(&a.input).await.context("input")?;
                let ms = 20 + r.below(41);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                (honest(&bytes, &mut r), ms as f64)
            }
        };
        w.submit_result(
            a.assignment,
            &ResultRequest {
                detections,
                elapsed_ms,
            },
        )
        .await
        .context("result")?;
        Ok(())
    }

    /// Claim and answer until `done`, or until the market refuses this
    /// worker (403: caught by a spot check).
    pub(super) async fn run(self, w: Client, done: Arc<AtomicBool>, started: Instant) -> WorkerLog {
        let mut log = WorkerLog::default();
        let mut taken = 0u64;
        while !done.load(Ordering::Relaxed) && log.caught_at.is_none() {
            let got = match w.claim(CAPACITY, 200).await {
                Ok(got) => got,
                Err(tally_protocol::Error::Api { status: 403, .. }) => {
                    log.caught_at = Some(started.elapsed().as_secs_f64());
                    break;
                }
                Err(e) => {
                    log.claim_errors += 1;
                    log.first_error.get_or_insert_with(|| format!("claim: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (sim, w) = (&self, &w);
            let jobs = got.assignments.iter().map(|a| {
                let answer = sim.answer(taken, a);
                taken += 1;
                async move { (a, sim.handle(w, a, answer).await) }
            });
            for (a, outcome) in futures::future::join_all(jobs).await {
                match outcome {
                    Ok(()) => log.inputs.push(a.input.clone()),
                    Err(e) if is_forbidden(&e) => {
                        log.caught_at
                            .get_or_insert_with(|| started.elapsed().as_secs_f64());
                    }
                    Err(e) => {
                        log.refused += 1;
                        log.first_error
                            .get_or_insert_with(|| format!("assignment {}: {e:#}", a.assignment));
                    }
                }
            }
        }
        log
    }
}
