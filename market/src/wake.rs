//! Waking waiting claims. Work that arrives wakes only as many waiting
//! claims as it has slots, oldest first, among those whose offer covers it:
//! a bid for one task with three replicas wakes three of a thousand waiting
//! workers, not all of them.
//!
//! A claim registers *before* it looks for work, so work that arrives
//! between its look and its wait is not missed (each waiter has its own
//! [`Notify`], which keeps a wake-up that comes early). A woken claim that
//! finds nothing it may take (the slot went to another claim, or it already
//! holds a replica of that task) passes its wake-up on to the next waiter,
//! at most once per waiter that was there, so a slot someone may take is
//! never left waiting.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tally_protocol::Sha256Hex;
use tokio::sync::Notify;

/// Work that arrived: `slots` replicas of tasks of `model` at `price`.
#[derive(Debug, Clone)]
pub struct Work {
    pub model: Sha256Hex,
    pub price: i64,
    pub slots: usize,
}

/// Why a waiter was woken.
#[derive(Debug, Clone)]
enum Reason {
    /// Work of this kind; pass it on at most `hops` more times.
    Work {
        model: Sha256Hex,
        price: i64,
        hops: usize,
    },
    /// Anything may have changed (another market process, expiry, shutdown).
    Anything,
}

struct Waiter {
    id: u64,
    models: Arc<[Sha256Hex]>,
    min_price: i64,
    /// A trusted worker's claim (see [`Waiters::trusted_waiting`]).
    trusted: bool,
    slot: Arc<Slot>,
}

struct Slot {
    notify: Notify,
    reason: Mutex<Option<Reason>>,
}

impl Waiter {
    fn covers(&self, model: &Sha256Hex, price: i64) -> bool {
        price >= self.min_price && self.models.contains(model)
    }

    fn wake(self, reason: Reason) {
        *self.slot.reason.lock().expect("slot") = Some(reason);
        self.slot.notify.notify_one();
    }
}

/// The claims waiting for work, oldest first.
#[derive(Default)]
pub struct Waiters {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    queue: VecDeque<Waiter>,
    /// Trusted workers' claims still long-polling, woken or not: between
    /// two looks a claim is out of the queue but still waits for work.
    trusted_claims: Vec<(u64, Arc<[Sha256Hex]>)>,
}

/// A trusted worker's claim, counted as waiting until dropped (see
/// [`Waiters::trusted_claim`]).
pub struct TrustedClaim<'a> {
    waiters: &'a Waiters,
    id: u64,
}

impl Drop for TrustedClaim<'_> {
    fn drop(&mut self) {
        let mut inner = self.waiters.inner.lock().expect("waiters");
        inner.trusted_claims.retain(|(id, _)| *id != self.id);
    }
}

impl Waiters {
    /// Register a claim that may wait for tasks of `models` paying at least
    /// `min_price`. It stays registered until woken or dropped.
    pub fn register(&self, models: Arc<[Sha256Hex]>, min_price: i64) -> Waiting<'_> {
        self.register_as(models, min_price, false)
    }

    /// [`Waiters::register`], saying whether the claim is a trusted worker's.
    pub fn register_as(
        &self,
        models: Arc<[Sha256Hex]>,
        min_price: i64,
        trusted: bool,
    ) -> Waiting<'_> {
        let slot = Arc::new(Slot {
            notify: Notify::new(),
            reason: Mutex::new(None),
        });
        let mut inner = self.inner.lock().expect("waiters");
        inner.next_id += 1;
        let id = inner.next_id;
        inner.queue.push_back(Waiter {
            id,
            models,
            min_price,
            trusted,
            slot: Arc::clone(&slot),
        });
        Waiting {
            waiters: self,
            id,
            slot,
        }
    }

    /// Count a trusted worker's claim on `models` as waiting for as long
    /// as it long-polls, including the moments between its looks.
    pub fn trusted_claim(&self, models: Arc<[Sha256Hex]>) -> TrustedClaim<'_> {
        let mut inner = self.inner.lock().expect("waiters");
        inner.next_id += 1;
        let id = inner.next_id;
        inner.trusted_claims.push((id, models));
        TrustedClaim { waiters: self, id }
    }

    /// Whether a trusted worker's claim waits for work of any of `models`:
    /// registered, or long-polling between two looks.
    pub fn trusted_waiting(&self, models: &[Sha256Hex]) -> bool {
        let inner = self.inner.lock().expect("waiters");
        let covers = |ms: &Arc<[Sha256Hex]>| ms.iter().any(|m| models.contains(m));
        inner.queue.iter().any(|w| w.trusted && covers(&w.models))
            || inner.trusted_claims.iter().any(|(_, ms)| covers(ms))
    }

    /// How many claims are waiting.
    pub fn len(&self) -> usize {
        self.inner.lock().expect("waiters").queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wake up to `work.slots` waiters whose offers cover the work.
    pub fn arrived(&self, work: &Work) {
        let hops = self.len();
        self.wake_for(work, hops);
    }

    /// Work another market process on the database took in: wake as many
    /// claims here as it has slots, passing a slot on only a few times (the
    /// claims of the process that took it in are racing for it too, and
    /// usually win; a long chain of futile looks here would only add load).
    pub fn arrived_elsewhere(&self, work: &Work) {
        self.wake_for(work, work.slots);
    }

    fn wake_for(&self, work: &Work, hops: usize) {
        let mut inner = self.inner.lock().expect("waiters");
        let woken = take_matching(&mut inner.queue, &work.model, work.price, work.slots);
        drop(inner);
        for w in woken {
            w.wake(Reason::Work {
                model: work.model.clone(),
                price: work.price,
                hops,
            });
        }
    }

    /// Wake every waiter: anything may have changed.
    pub fn wake_all(&self) {
        let woken: Vec<Waiter> = self
            .inner
            .lock()
            .expect("waiters")
            .queue
            .drain(..)
            .collect();
        for w in woken {
            w.wake(Reason::Anything);
        }
    }

    fn pass_on(&self, model: Sha256Hex, price: i64, hops: usize) {
        if hops == 0 {
            return;
        }
        let woken = take_matching(
            &mut self.inner.lock().expect("waiters").queue,
            &model,
            price,
            1,
        );
        for w in woken {
            w.wake(Reason::Work {
                model: model.clone(),
                price,
                hops: hops - 1,
            });
        }
    }
}

fn take_matching(
    queue: &mut VecDeque<Waiter>,
    model: &Sha256Hex,
    price: i64,
    n: usize,
) -> Vec<Waiter> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < queue.len() && out.len() < n {
        if queue[i].covers(model, price) {
            out.extend(queue.remove(i));
        } else {
            i += 1;
        }
    }
    out
}

/// A registered claim; dropping it unregisters.
pub struct Waiting<'a> {
    waiters: &'a Waiters,
    id: u64,
    slot: Arc<Slot>,
}

/// What a woken claim holds: pass it on if it found nothing.
pub struct WakeUp<'a> {
    waiters: &'a Waiters,
    reason: Option<Reason>,
}

impl<'a> Waiting<'a> {
    /// Wait until woken.
    pub async fn woken(self) -> WakeUp<'a> {
        self.slot.notify.notified().await;
        let reason = self.slot.reason.lock().expect("slot").take();
        WakeUp {
            waiters: self.waiters,
            reason,
        }
    }
}

impl WakeUp<'_> {
    /// The work it was woken for, if any: its model and price.
    pub fn work(&self) -> Option<(&Sha256Hex, i64)> {
        match &self.reason {
            Some(Reason::Work { model, price, .. }) => Some((model, *price)),
            _ => None,
        }
    }

    /// The claim took nothing: hand the wake-up to the next waiter.
    pub fn pass_on(self) {
        if let Some(Reason::Work { model, price, hops }) = self.reason {
            self.waiters.pass_on(model, price, hops);
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut inner = self.waiters.inner.lock().expect("waiters");
        if let Some(i) = inner.queue.iter().position(|w| w.id == self.id) {
            inner.queue.remove(i);
        } else if let Some(reason) = self.slot.reason.lock().expect("slot").take() {
            // Woken, but gone before it could look (deadline, shutdown, a
            // dropped connection): the wake-up must not be lost.
            drop(inner);
            if let Reason::Work { model, price, hops } = reason {
                self.waiters.pass_on(model, price, hops);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(b: u8) -> Sha256Hex {
        Sha256Hex::of(&[b])
    }

    fn models(b: u8) -> Arc<[Sha256Hex]> {
        Arc::from(vec![model(b)])
    }

    fn work(b: u8, price: i64, slots: usize) -> Work {
        Work {
            model: model(b),
            price,
            slots,
        }
    }

    /// Whether `w` was woken: a stored wake-up makes `woken` ready at once.
    fn is_woken(w: Waiting<'_>) -> Option<WakeUp<'_>> {
        futures::FutureExt::now_or_never(w.woken())
    }

    #[test]
    fn wakes_only_as_many_as_slots_oldest_first() {
        let ws = Waiters::default();
        let a = ws.register(models(1), 0);
        let b = ws.register(models(1), 0);
        let c = ws.register(models(1), 0);
        ws.arrived(&work(1, 10, 2));
        assert_eq!(ws.len(), 1);
        assert!(is_woken(a).is_some());
        assert!(is_woken(b).is_some());
        assert!(is_woken(c).is_none());
    }

    #[test]
    fn skips_waiters_whose_offer_does_not_cover_the_work() {
        let ws = Waiters::default();
        let other_model = ws.register(models(2), 0);
        let too_cheap = ws.register(models(1), 50);
        let fits = ws.register(models(1), 10);
        ws.arrived(&work(1, 10, 5));
        assert!(is_woken(fits).is_some());
        assert!(is_woken(other_model).is_none());
        assert!(is_woken(too_cheap).is_none());
    }

    #[test]
    fn a_wake_up_that_arrives_before_the_wait_is_kept() {
        let ws = Waiters::default();
        let a = ws.register(models(1), 0);
        ws.arrived(&work(1, 1, 1));
        assert!(is_woken(a).is_some());
    }

    #[test]
    fn a_woken_claim_that_found_nothing_passes_it_on_a_bounded_number_of_times() {
        let ws = Waiters::default();
        let a = ws.register(models(1), 0);
        let b = ws.register(models(1), 0);
        ws.arrived(&work(1, 1, 1));
        let up = is_woken(a).expect("a woken");
        up.pass_on();
        let up = is_woken(b).expect("b woken in turn");
        // Two waiters were there: the wake-up has no hops left.
        let a2 = ws.register(models(1), 0);
        up.pass_on();
        let up = is_woken(a2).expect("one more hop");
        let a3 = ws.register(models(1), 0);
        up.pass_on();
        assert!(is_woken(a3).is_none(), "passed on for ever");
    }

    #[test]
    fn work_taken_in_elsewhere_wakes_its_slots_and_passes_on_only_as_often() {
        let ws = Waiters::default();
        let a = ws.register(models(1), 0);
        let b = ws.register(models(1), 0);
        let c = ws.register(models(1), 0);
        let d = ws.register(models(1), 0);
        ws.arrived_elsewhere(&work(1, 1, 1));
        let up = is_woken(a).expect("one slot: the oldest woken");
        up.pass_on();
        let up = is_woken(b).expect("passed on once");
        up.pass_on();
        // Here `arrived` would go on through every waiter; work another
        // process took in stops after as many hops as it had slots.
        assert!(is_woken(c).is_none(), "passed on more often than its slots");
        assert!(is_woken(d).is_none());
    }

    #[test]
    fn a_woken_claim_dropped_before_looking_passes_it_on() {
        let ws = Waiters::default();
        let a = ws.register(models(1), 0);
        let b = ws.register(models(1), 0);
        ws.arrived(&work(1, 1, 1));
        drop(a);
        assert!(is_woken(b).is_some());
    }

    #[test]
    fn wake_all_wakes_everyone() {
        let ws = Waiters::default();
        let a = ws.register(models(1), 0);
        let b = ws.register(models(2), 0);
        ws.wake_all();
        assert!(ws.is_empty());
        assert!(is_woken(a).is_some());
        assert!(is_woken(b).is_some());
    }

    #[test]
    fn a_trusted_claim_between_two_looks_still_waits() {
        let ws = Waiters::default();
        let claim = ws.trusted_claim(models(1));
        let first = ws.register_as(models(1), 0, true);
        ws.wake_all();
        assert!(is_woken(first).is_some());
        // Woken and out of the queue, the claim still long-polls.
        assert!(ws.is_empty());
        assert!(ws.trusted_waiting(&models(1)));
        assert!(!ws.trusted_waiting(&models(2)));
        drop(claim);
        assert!(!ws.trusted_waiting(&models(1)));
    }
}
