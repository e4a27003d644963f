//! Checks made ahead of time: for each model of the golden set, a few fresh
//! variants ([`super::variant`]) already in canonical bytes with the
//! market's own answer, so a claim that draws a check takes one at once
//! and never waits on inference. A background job keeps each model's queue
//! full; a claim that finds it empty gets client work.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tally_protocol::{Detection, Sha256Hex};
use tokio::sync::Notify;

use super::{draw, variant, Golden};
use crate::Market;

/// Checks kept ready per model.
pub const READY: usize = 16;

/// A check ready to hand out: its picture in canonical bytes and its answer.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub model: Sha256Hex,
    /// The golden image it was made from.
    pub source: String,
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub reference: Vec<Detection>,
}

/// The ready checks of every model.
#[derive(Default)]
pub struct Pool {
    ready: Mutex<HashMap<Sha256Hex, VecDeque<Prepared>>>,
    /// Rung when a check is taken (the job makes another).
    taken: Notify,
    /// Rung when a check is made.
    made: Notify,
    /// While set, no check is handed out (claims get client work).
    paused: std::sync::atomic::AtomicBool,
}

impl Pool {
    /// A ready check of `model`, if there is one (and checks are not paused).
    pub fn take(&self, model: &Sha256Hex) -> Option<Prepared> {
        if self.paused.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        let got = self
            .ready
            .lock()
            .expect("check pool")
            .get_mut(model)
            .and_then(VecDeque::pop_front);
        if got.is_some() {
            self.taken.notify_one();
        }
        got
    }

    /// Hold checks back (claims get client work only) or let them go again.
    pub fn pause(&self, paused: bool) {
        self.paused
            .store(paused, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many checks of `model` are ready.
    pub fn ready(&self, model: &Sha256Hex) -> usize {
        self.ready
            .lock()
            .expect("check pool")
            .get(model)
            .map_or(0, VecDeque::len)
    }

    /// A check taken but not handed out (nothing could pay for it) goes back.
    pub(crate) fn put_back(&self, p: Prepared) {
        self.ready
            .lock()
            .expect("check pool")
            .entry(p.model.clone())
            .or_default()
            .push_front(p);
    }

    fn put(&self, p: Prepared) {
        self.ready
            .lock()
            .expect("check pool")
            .entry(p.model.clone())
            .or_default()
            .push_back(p);
        self.made.notify_waiters();
    }

    /// Waits until at least `n` checks of `model` are ready (`n` at most [`READY`]).
    pub async fn wait_ready(&self, model: &Sha256Hex, n: usize) {
        loop {
            let made = self.made.notified();
            if self.ready(model) >= n.min(READY) {
                return;
            }
            made.await;
        }
    }

    /// The model that most needs a check made, if any is short.
    fn shortest(&self, golden: &Golden) -> Option<Sha256Hex> {
        let ready = self.ready.lock().expect("check pool");
        golden
            .model_hashes()
            .into_iter()
            .map(|h| (ready.get(&h).map_or(0, VecDeque::len), h))
            .filter(|(n, _)| *n < READY)
            .min_by_key(|(n, _)| *n)
            .map(|(_, h)| h)
    }
}

/// Make one check of `model`: a fresh variant of a random golden image,
/// answered by the market's detector.
pub async fn make(m: &Market, model: &Sha256Hex) -> Result<Prepared, String> {
    let oracle = m
        .config
        .oracle
        .clone()
        .ok_or("spot checks need the market's own detector (none configured)")?;
    let items: Vec<&super::GoldenItem> = m
        .config
        .golden
        .items
        .iter()
        .filter(|i| &i.model == model)
        .collect();
    if items.is_empty() {
        return Err(format!("the golden set has no image for model {model}"));
    }
    let item = items[((draw() * items.len() as f64) as usize).min(items.len() - 1)].clone();
    let pixels = Arc::clone(&item.pixels);
    let (bytes, width, height) = tokio::task::spawn_blocking(move || {
        let v = variant::fresh(&pixels, &mut || draw());
        let (w, h) = v.dimensions();
        (crate::canonical::encode_rgb(&v), w, h)
    })
    .await
    .map_err(|e| format!("making a check variant: {e}"))?;
    let model_bytes = m
        .config
        .golden
        .model_bytes(model)
        .ok_or_else(|| format!("model {model} is not in the golden set"))?;
    let reference = oracle.0.detect(model, model_bytes, bytes.clone()).await?;
    Ok(Prepared {
        model: model.clone(),
        source: item.name.clone(),
        bytes,
        width,
        height,
        reference,
    })
}

/// Keep every model's queue full until the market stops. A detector that
/// fails is logged and tried again after a pause that grows to a minute.
pub fn spawn(m: &Arc<Market>) {
    if m.config.golden.items.is_empty() {
        return;
    }
    let m = Arc::clone(m);
    tokio::spawn(async move {
        let mut shutdown = m.shutdown_signal();
        let mut pause = std::time::Duration::from_millis(500);
        loop {
            let Some(model) = m.check_pool.shortest(&m.config.golden) else {
                tokio::select! {
                    _ = m.check_pool.taken.notified() => continue,
                    _ = shutdown.changed() => return,
                }
            };
            let made = tokio::select! {
                made = make(&m, &model) => made,
                _ = shutdown.changed() => return,
            };
            match made {
                Ok(p) => {
                    m.check_pool.put(p);
                    // Claims of workers that get only checks may be waiting.
                    m.waiters.wake_all();
                    pause = std::time::Duration::from_millis(500);
                }
                Err(e) => {
                    tracing::warn!(%model, error = %e, "could not make a spot check; trying again");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.changed() => return,
                    }
                    pause = (pause * 2).min(std::time::Duration::from_secs(60));
                }
            }
        }
    });
}
