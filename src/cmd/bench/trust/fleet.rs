//! The simulated fleet: the kinds of worker, how each answers an
//! assignment, and the loop a worker runs until the bids are done or a spot
//! check catches it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tally_protocol::wire::{Assignment, ResultRequest};
use tally_protocol::{Client, Sha256Hex};

use super::images::{colluding, honest, pixels_key, random};
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
    /// Looks at everything it is given and answers honestly only where it
    /// recognises a possible check: its first assignment (a new identity is
    /// checked first), bytes carrying a comment or text chunk, pixels any
    /// member of its ring met before under another task, and an input
    /// whose submission was answered as judged at once; colluding elsewhere.
    Aware,
}

impl Kind {
    pub(super) fn parse(s: &str) -> anyhow::Result<Kind> {
        Ok(match s.trim() {
            "random" => Kind::Random,
            "lazy" => Kind::Lazy,
            "colluding" => Kind::Colluding,
            "farming" => Kind::Farming,
            "intermittent" => Kind::Intermittent,
            "aware" => Kind::Aware,
            other => bail!(
                "--mix: {other:?} is not a saboteur kind (random, lazy, colluding, farming, intermittent, aware)"
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
            Kind::Aware => "aware",
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
    /// Decided after looking at the input ([`Kind::Aware`]).
    Looking {
        first: bool,
    },
}

/// What a ring of aware saboteurs pools: the pixels each member met, by the
/// task it met them under.
pub(super) type Ring =
    Arc<std::sync::Mutex<std::collections::HashMap<u64, tally_protocol::TaskId>>>;

/// Whether image bytes carry anything beyond pixels: a JPEG comment
/// segment, or a PNG text chunk.
fn has_marker(bytes: &[u8]) -> bool {
    let jpeg_comment =
        bytes.starts_with(&[0xFF, 0xD8]) && bytes.windows(2).any(|w| w == [0xFF, 0xFE]);
    let png_text = bytes.starts_with(b"\x89PNG")
        && [b"tEXt", b"zTXt", b"iTXt"]
            .iter()
            .any(|t| bytes.windows(4).any(|w| w == *t));
    jpeg_comment || png_text
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
    pub(super) ring: Ring,
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
            Kind::Aware => Answer::Looking { first: n == 0 },
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
            Answer::Looking { first } => {
                let bytes = w.input(&a.input).await.context("input")?;
                let pixels = pixels_key(&bytes);
                let met_elsewhere = {
                    let mut ring = self.ring.lock().expect("ring");
                    let before = ring.get(&pixels).copied();
                    ring.entry(pixels).or_insert(a.task);
                    before.is_some_and(|t| t != a.task)
                };
                if first || met_elsewhere || has_marker(&bytes) {
                    let ms = 20 + r.below(41);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    (honest(&bytes, &mut r), ms as f64)
                } else {
                    (colluding(&bytes), 0.0)
                }
            }
        };
        let outcome = w
            .submit_result(
                a.assignment,
                &ResultRequest {
                    detections,
                    elapsed_ms,
                },
            )
            .await
            .context("result")?;
        if matches!(answer, Answer::Looking { .. }) {
            // An answer that says the result was judged at once marks a
            // check; the ring remembers its pixels under another task id,
            // so a repeat of them is answered honestly.
            let judged = outcome.status != "submitted"
                || outcome.task_status != tally_protocol::wire::TaskState::Running;
            if judged {
                let bytes = w.input(&a.input).await.ok();
                if let Some(bytes) = bytes {
                    self.ring
                        .lock()
                        .expect("ring")
                        .insert(pixels_key(&bytes), tally_protocol::TaskId(-1));
                }
            }
        }
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
