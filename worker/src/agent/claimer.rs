//! The claim loop's rounds: look for new models, post the offer when it
//! changed, claim as many assignments as there are free slots, start a job
//! for each; transient errors back off, a refusal for good ends the loop.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tally_protocol::wire::OfferRequest;
use tally_protocol::{Client, Sha256Hex};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::job::{work_on, Shared};
use super::retry::{is_transient, retry, Backoff};
use super::{
    api_code, log_panic, Agent, AgentError, CLAIM_WAIT_MS, DISCOVER_EVERY, DISCOVER_IDLE_EVERY,
    MAX_CLAIM,
};

/// Why a round of the claim loop ended early.
enum Halt {
    /// Start the next round.
    Again,
    /// Stopped: claim no more.
    Stop,
    /// The market refused the worker for good.
    Fatal(AgentError),
}

/// The claim loop and what it keeps between rounds.
pub(super) struct Claimer {
    client: Client,
    pub(super) agent: Agent,
    shared: Arc<Shared>,
    /// Inferences run at once (at least one).
    capacity: u32,
    stop: watch::Receiver<bool>,
    /// Tells the jobs in hand to report failure (after the grace period).
    abort: watch::Receiver<bool>,
    slots: Arc<Semaphore>,
    pub(super) jobs: JoinSet<()>,
    backoff: Backoff,
    /// What the market was last told we offer; `None`: nothing posted yet.
    posted: Option<Vec<Sha256Hex>>,
    discovered_at: Option<Instant>,
}

impl Claimer {
    /// A claim loop for `agent`, not started yet.
    pub(super) fn new(
        client: Client,
        agent: Agent,
        shared: Arc<Shared>,
        stop: watch::Receiver<bool>,
        abort: watch::Receiver<bool>,
    ) -> Claimer {
        let capacity = agent.capacity.max(1);
        Claimer {
            client,
            shared,
            capacity,
            stop,
            abort,
            slots: Arc::new(Semaphore::new(capacity as usize)),
            jobs: JoinSet::new(),
            backoff: Backoff::new(),
            posted: None,
            discovered_at: None,
            agent,
        }
    }

    /// Claims round after round until stopped; the error that ended it, if any.
    pub(super) async fn run(&mut self) -> Option<AgentError> {
        loop {
            match self.round().await {
                Ok(()) | Err(Halt::Again) => {}
                Err(Halt::Stop) => return None,
                Err(Halt::Fatal(e)) => return Some(e),
            }
        }
    }

    /// One round: reap finished jobs, look for new models, post the offer,
    /// claim and start the assignments.
    async fn round(&mut self) -> Result<(), Halt> {
        while let Some(done) = self.jobs.try_join_next() {
            log_panic(done);
        }
        if *self.stop.borrow() {
            return Err(Halt::Stop);
        }
        self.discover().await?;
        self.post_offer().await?;
        let budget = self.budget().await?;
        self.claim(budget).await
    }

    /// Waits out the backoff after a transient error (`Again`), or `Stop`
    /// when stopped first.
    async fn back_off(&mut self, what: &str, e: &tally_protocol::Error) -> Halt {
        tokio::select! {
            () = self.backoff.wait(what, e) => Halt::Again,
            _ = self.stop.wait_for(|s| *s) => Halt::Stop,
        }
    }

    /// Lists the market's models when due (a worker that offers what the
    /// market hosts).
    async fn discover(&mut self) -> Result<(), Halt> {
        // Nothing offered yet: look more often, so a first model is picked up soon.
        let every = if self.posted.as_ref().is_some_and(|p| p.is_empty()) {
            DISCOVER_IDLE_EVERY
        } else {
            DISCOVER_EVERY
        };
        if !self.shared.models.discovers()
            || self.discovered_at.is_some_and(|t| t.elapsed() < every)
        {
            return Ok(());
        }
        match self.shared.models.refresh(&self.client).await {
            Ok(()) => {
                self.discovered_at = Some(Instant::now());
                Ok(())
            }
            Err(e) if is_transient(&e) => {
                Err(self.back_off("listing the market's models", &e).await)
            }
            Err(source) => Err(Halt::Fatal(AgentError::Market {
                what: "listing the market's models",
                source,
            })),
        }
    }

    /// Posts the offer when it is not the one last posted; with nothing to
    /// offer, waits to look again (or ends, when the models were named).
    async fn post_offer(&mut self) -> Result<(), Halt> {
        let offer = OfferRequest {
            models: self.shared.models.offer(),
            min_price: self.agent.min_price,
            capacity: self.capacity,
        };
        if offer.models.is_empty() {
            if !self.shared.models.discovers() {
                return Err(Halt::Fatal(AgentError::NothingToOffer));
            }
            if self.posted.is_none() {
                tracing::info!(
                    "the market hosts no model this worker can run yet; looking again every {} s",
                    DISCOVER_IDLE_EVERY.as_secs()
                );
                self.posted = Some(Vec::new());
            }
            let wait = DISCOVER_IDLE_EVERY
                .saturating_sub(self.discovered_at.map_or(Duration::ZERO, |t| t.elapsed()));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = self.stop.wait_for(|s| *s) => return Err(Halt::Stop),
            }
            return Err(Halt::Again);
        }
        if self.posted.as_ref() == Some(&offer.models) {
            return Ok(());
        }
        let client = &self.client;
        match retry("posting the offer", &self.stop, || {
            client.post_offer(&offer)
        })
        .await
        {
            Ok(Some(_)) => {}
            Ok(None) => return Err(Halt::Stop),
            Err(source) => {
                return Err(Halt::Fatal(AgentError::Market {
                    what: "posting the offer",
                    source,
                }))
            }
        }
        tracing::info!(
            worker = %client.signer().map(|s| s.account().to_string()).unwrap_or_default(),
            models = offer.models.len(),
            min_price = self.agent.min_price.0,
            capacity = self.capacity,
            faulty = self.agent.faulty,
            "offer posted; waiting for tasks"
        );
        self.posted = Some(offer.models);
        Ok(())
    }

    /// How many more assignments `max_results` allows; when none, waits for
    /// a job to finish (`Again`), or stops once all are in.
    async fn budget(&mut self) -> Result<u64, Halt> {
        let budget = match self.agent.max_results {
            Some(max) => max.saturating_sub(
                self.shared.results.load(Ordering::SeqCst) + self.jobs.len() as u64,
            ),
            None => u64::MAX,
        };
        if budget > 0 {
            return Ok(budget);
        }
        if self.jobs.is_empty() {
            tracing::info!("reached --max-results; stopping");
            return Err(Halt::Stop);
        }
        tokio::select! {
            Some(done) = self.jobs.join_next() => log_panic(done),
            _ = self.stop.wait_for(|s| *s) => {}
        }
        Err(Halt::Again)
    }

    /// Waits for a free slot, claims up to as many assignments as there are
    /// free slots (within `budget`) and starts a job for each.
    async fn claim(&mut self, budget: u64) -> Result<(), Halt> {
        let first = tokio::select! {
            permit = Arc::clone(&self.slots).acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = self.stop.wait_for(|s| *s) => return Err(Halt::Stop),
        };
        let free = 1 + self.slots.available_permits() as u64;
        let want = free.min(budget).min(u64::from(MAX_CLAIM)) as u32;
        // A discovering worker comes back in time to look for new models.
        let wait_ms = if self.shared.models.discovers() {
            CLAIM_WAIT_MS.min(DISCOVER_EVERY.as_millis() as u64)
        } else {
            CLAIM_WAIT_MS
        };
        let claimed = tokio::select! {
            r = self.client.claim(want, wait_ms) => r,
            _ = self.stop.wait_for(|s| *s) => return Err(Halt::Stop),
        };
        let assignments = match claimed {
            Ok(c) => {
                self.backoff.reset();
                c.assignments
            }
            Err(e) if is_transient(&e) => {
                drop(first);
                return Err(self.back_off("claiming", &e).await);
            }
            Err(e) if api_code(&e) == Some("no_offer") => {
                // The market forgot our offer (a fresh database, say): post it again.
                tracing::warn!("the market has no offer from us ({e}); posting it again");
                self.posted = None;
                return Err(Halt::Again);
            }
            Err(source) => {
                return Err(Halt::Fatal(AgentError::Market {
                    what: "claiming",
                    source,
                }))
            }
        };
        let mut permit = Some(first);
        for a in assignments {
            let permit = match permit.take() {
                Some(p) => p,
                None => Arc::clone(&self.slots)
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed"),
            };
            let (shared, abort) = (Arc::clone(&self.shared), self.abort.clone());
            self.jobs.spawn(async move {
                work_on(&shared, a, abort).await;
                drop(permit);
            });
        }
        Ok(())
    }
}
