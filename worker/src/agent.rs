//! The claim loop: offer, claim, fetch, infer, heartbeat, submit, get paid.
//!
//! [`run`] posts the worker's offer and long-polls claims for as many tasks
//! as it has free slots (`capacity` inferences at once, a [`Semaphore`](tokio::sync::Semaphore)).
//! Each assignment runs as a task of its own: fetch the model (first use
//! only, admitted before use) and the input, run the model in a confined
//! child process ([`crate::sandbox`]; this process holds the key and never
//! runs a model), check the detections ([`crate::sanity`]), heartbeat every
//! third of the lease meanwhile, then submit the signed result — or report
//! a failure when the input or the model cannot be run.
//!
//! With no models named, the worker offers what the market hosts and looks
//! again every [`DISCOVER_EVERY`] for new models ([`models`]).
//!
//! While the market is unreachable every call is retried with exponential
//! backoff (100 ms doubling to 5 s); only a refusal the worker cannot fix
//! (a bad signature, a model the market does not have) ends the loop. When
//! the shutdown future resolves the loop stops claiming and lets in-flight
//! tasks finish; those still running after the grace period are reported
//! as failed, so their slots go back to the pool at once. (A claim cut short
//! by the shutdown may have been granted anyway; such slots return to the
//! pool when their lease expires.)

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tally_protocol::wire::AccountView;
use tally_protocol::{Client, Sha256Hex, Stroops};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::cache::{CacheError, ModelCache};
use crate::sandbox::{Sandbox, SandboxConfig};

mod claimer;
mod job;
mod models;
mod retry;

pub use job::sabotage;
pub use retry::is_transient;

use claimer::Claimer;
use job::Shared;
use models::Models;
use retry::{retry, Backoff};

/// The longest a claim may wait on the market (its limit is 60 s).
const CLAIM_WAIT_MS: u64 = 20_000;
/// The most assignments one claim may take (the market's limit).
const MAX_CLAIM: u32 = 64;
/// How often a worker that offers what the market hosts looks for new models.
pub const DISCOVER_EVERY: Duration = Duration::from_secs(30);
/// How often it looks while the market hosts nothing it can run.
const DISCOVER_IDLE_EVERY: Duration = Duration::from_secs(5);

/// How a worker runs: what it offers, at what price, how much at once.
#[derive(Debug, Clone)]
pub struct Agent {
    /// Inferences run at once (and slots held at once).
    pub capacity: u32,
    /// The lowest price per result this worker takes.
    pub min_price: Stroops,
    /// The models offered; empty: every model the market hosts (up to
    /// `max_model_bytes`). Fetched into the cache when first needed.
    pub models: Vec<Sha256Hex>,
    /// Models of `models` the market may lack: uploaded from the cache at start.
    pub publish: Vec<Sha256Hex>,
    pub models_dir: PathBuf,
    /// The largest model this worker fetches and runs.
    pub max_model_bytes: u64,
    /// How inference children are started and limited (backend and threads included).
    pub sandbox: SandboxConfig,
    /// Answer with deliberately wrong detections, so demos show the vote catching them.
    pub faulty: bool,
    /// Stop after this many submitted results.
    pub max_results: Option<u64>,
    /// After shutdown, how long in-flight tasks may take before they are reported failed.
    pub grace: Duration,
    /// Test hook: wait this long after each claim, as a long job would.
    pub pause_after_claim: Option<Duration>,
}

impl Agent {
    /// One slot, any price, models up to 64 MiB, 30 s of grace.
    pub fn new(
        models: Vec<Sha256Hex>,
        models_dir: impl Into<PathBuf>,
        sandbox: SandboxConfig,
    ) -> Self {
        Agent {
            capacity: 1,
            min_price: Stroops::ZERO,
            models,
            publish: Vec::new(),
            models_dir: models_dir.into(),
            max_model_bytes: 64 << 20,
            sandbox,
            faulty: false,
            max_results: None,
            grace: Duration::from_secs(30),
            pause_after_claim: None,
        }
    }
}

/// What a worker did before it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AgentReport {
    /// Results submitted.
    pub results: u64,
    /// Assignments reported as failed (bad input, model error, shutdown).
    pub failures: u64,
    /// The account's earnings (unpaid plus paid) as last seen.
    pub earned: Stroops,
}

/// Why a worker stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("none of the models named can be offered")]
    NothingToOffer,
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("cannot start inference")]
    Sandbox(#[source] crate::sandbox::InferError),
    #[error("{what}")]
    Market {
        what: &'static str,
        #[source]
        source: tally_protocol::Error,
    },
}

/// Runs the worker until `shutdown` resolves, `max_results` are in, or the
/// market refuses it for good.
pub async fn run(
    client: Client,
    agent: Agent,
    shutdown: impl Future<Output = ()>,
) -> Result<AgentReport, AgentError> {
    let (stop_tx, stop) = watch::channel(false);
    let body = run_until_stopped(client, agent, stop);
    tokio::pin!(body);
    tokio::select! {
        report = &mut body => return report,
        () = shutdown => {
            tracing::info!("shutting down: no new claims; finishing the tasks in hand");
            stop_tx.send_replace(true);
        }
    }
    body.await
}

/// Starts the sandbox, publishes and prefetches the models, then claims
/// until stopped; lets the tasks in hand finish and reports.
async fn run_until_stopped(
    client: Client,
    agent: Agent,
    stop: watch::Receiver<bool>,
) -> Result<AgentReport, AgentError> {
    let Some(shared) = start(&client, &agent, &stop).await? else {
        return Ok(AgentReport::default());
    };
    let (abort_tx, abort) = watch::channel(false);
    let mut claimer = Claimer::new(client.clone(), agent, Arc::clone(&shared), stop, abort);
    let fatal = claimer.run().await;
    drain(&mut claimer.jobs, claimer.agent.grace, &abort_tx).await;
    if let Some(e) = fatal {
        return Err(e);
    }
    let earned = match tokio::time::timeout(Duration::from_secs(5), client.account_me()).await {
        Ok(Ok(me)) => total_earned(&me),
        _ => Stroops(shared.earned.load(Ordering::SeqCst)),
    };
    Ok(AgentReport {
        results: shared.results.load(Ordering::SeqCst),
        failures: shared.failures.load(Ordering::SeqCst),
        earned,
    })
}

/// Starts the inference sandbox, uploads the models to publish and, for
/// named models, fetches them; what the jobs share, or `None` when stopped
/// first.
async fn start(
    client: &Client,
    agent: &Agent,
    stop: &watch::Receiver<bool>,
) -> Result<Option<Arc<Shared>>, AgentError> {
    let cache = ModelCache::new(&agent.models_dir);
    let sandbox = Sandbox::start(agent.sandbox.clone())
        .await
        .map_err(AgentError::Sandbox)?;
    let hello = sandbox.hello();
    tracing::info!(backend = %hello.backend, "inference runs in confined child processes");
    for line in &hello.confinement {
        if line.contains("NOT") {
            tracing::warn!("sandbox: {line}");
        } else {
            tracing::info!("sandbox: {line}");
        }
    }
    if publish(client, agent, &cache, stop).await?.is_none() {
        return Ok(None);
    }
    let models = Models::new(cache, agent.models.clone(), agent.max_model_bytes);
    if !models.discovers() && prefetch(client, &models, stop).await.is_none() {
        return Ok(None);
    }
    Ok(Some(Arc::new(Shared {
        client: client.clone(),
        models,
        sandbox,
        faulty: agent.faulty,
        pause_after_claim: agent.pause_after_claim,
        results: AtomicU64::new(0),
        failures: AtomicU64::new(0),
        earned: AtomicI64::new(0),
    })))
}

/// Lets the tasks in hand finish within `grace`, then has the rest report
/// failure (releasing their slots) and waits for that, briefly.
async fn drain(jobs: &mut JoinSet<()>, grace: Duration, abort: &watch::Sender<bool>) {
    if !jobs.is_empty() {
        tracing::info!(
            in_flight = jobs.len(),
            grace_secs = grace.as_secs_f64(),
            "waiting for the tasks in hand"
        );
    }
    let drained = tokio::time::timeout(grace, async {
        while let Some(done) = jobs.join_next().await {
            log_panic(done);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            in_flight = jobs.len(),
            "grace period over: reporting the unfinished tasks as failed"
        );
        abort.send_replace(true);
        let released = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(done) = jobs.join_next().await {
                log_panic(done);
            }
        })
        .await;
        if released.is_err() {
            jobs.abort_all();
        }
    }
}

/// Uploads the models the market may lack; `None` when stopped first.
async fn publish(
    client: &Client,
    agent: &Agent,
    cache: &ModelCache,
    stop: &watch::Receiver<bool>,
) -> Result<Option<()>, AgentError> {
    for hash in &agent.publish {
        let path = cache.path_of(hash);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|source| CacheError::Io { path, source })?;
        let uploaded = retry("uploading a model", stop, || {
            client.upload_model(bytes.clone())
        })
        .await
        .map_err(|source| AgentError::Market {
            what: "uploading a model",
            source,
        })?;
        match uploaded {
            Some(up) => {
                tracing::info!(model = %up.model, bytes = up.size, "model uploaded to the market")
            }
            None => return Ok(None),
        }
    }
    Ok(Some(()))
}

/// Fetches and admits the named models before the first offer, so a model
/// that cannot be had shows at start; `None` when stopped first.
async fn prefetch(client: &Client, models: &Models, stop: &watch::Receiver<bool>) -> Option<()> {
    for hash in models.offer() {
        let mut backoff = Backoff::new();
        loop {
            match models.get(client, &hash).await {
                Ok(_) | Err(models::Unusable::Refused(_)) => break,
                Err(models::Unusable::Unavailable(why)) => {
                    let mut stop = stop.clone();
                    tokio::select! {
                        () = backoff.wait_for("fetching a model", &why) => {}
                        _ = stop.wait_for(|s| *s) => return None,
                    }
                }
            }
        }
    }
    Some(())
}

fn total_earned(me: &AccountView) -> Stroops {
    me.earned_unpaid
        .checked_add(me.paid_total)
        .unwrap_or(Stroops(i64::MAX))
}

/// The market's error code, when it refused the request.
fn api_code(e: &tally_protocol::Error) -> Option<&str> {
    match e {
        tally_protocol::Error::Api { code, .. } => Some(code),
        _ => None,
    }
}

fn log_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!("an assignment task panicked: {e}");
        }
    }
}

#[cfg(test)]
mod tests;
