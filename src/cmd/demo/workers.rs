//! The demo's workers: real inference in this process's confined
//! children, over loopback HTTP, some answering wrong on purpose, all
//! stopped together.

use std::time::Duration;

use anyhow::Context;
use tally_protocol::Signer;
use tally_worker::agent::{self, Agent};
use tally_worker::sandbox::SandboxConfig;

use super::Sample;
use crate::local::LocalMarket;

type WorkerHandle = tokio::task::JoinHandle<Result<agent::AgentReport, agent::AgentError>>;

/// A worker running real inference in this process's confined children,
/// over loopback HTTP, until `stop` says so; `faulty` answers wrong.
fn spawn_worker(
    lm: &LocalMarket,
    model: &tally_protocol::Sha256Hex,
    sample: &Sample,
    dir: std::path::PathBuf,
    faulty: bool,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(Signer, WorkerHandle)> {
    let signer = Signer::generate();
    let exe = std::env::current_exe().context("finding this program")?;
    let mut sandbox = SandboxConfig::new(exe, &["__infer"]);
    sandbox.backend = sample.backend;
    let mut a = Agent::new(vec![model.clone()], dir, sandbox);
    a.faulty = faulty;
    let c = lm.client(signer.clone());
    let handle = tokio::spawn(async move {
        agent::run(c, a, async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
    });
    Ok((signer, handle))
}

/// Workers running on the local market until [`Workers::stop`], each with
/// its key and whether it answers wrong.
pub(crate) struct Workers {
    pub(super) list: Vec<(Signer, bool, WorkerHandle)>,
    stop: tokio::sync::watch::Sender<bool>,
    /// Their model caches.
    _dirs: tempfile::TempDir,
}

impl Workers {
    /// One worker per entry of `faulty` (whether it answers wrong).
    pub(crate) fn start(
        lm: &LocalMarket,
        model: &tally_protocol::Sha256Hex,
        sample: &Sample,
        faulty: impl IntoIterator<Item = bool>,
    ) -> anyhow::Result<Workers> {
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let dirs = tempfile::tempdir()?;
        let mut list = Vec::new();
        for (i, faulty) in faulty.into_iter().enumerate() {
            let dir = dirs.path().join(format!("worker-{i}"));
            let (signer, handle) = spawn_worker(lm, model, sample, dir, faulty, stop_rx.clone())?;
            list.push((signer, faulty, handle));
        }
        Ok(Workers {
            list,
            stop,
            _dirs: dirs,
        })
    }

    /// Wait until every worker has a claim waiting at the market, so the
    /// bid that follows reaches them all (a worker slow to start would
    /// otherwise find the work done, and a faulty one never be checked).
    pub(crate) async fn ready(&mut self, lm: &LocalMarket) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while lm.market.waiters.len() < self.list.len() {
            if let Some((_, _, h)) = self.list.iter_mut().find(|(_, _, h)| h.is_finished()) {
                let outcome = h.await;
                anyhow::bail!("a worker stopped before it claimed any work: {outcome:?}");
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the workers did not all claim work within 120 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// What says stop to the workers, for others to stop with them.
    pub(super) fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Tell the workers to stop and wait for them.
    pub(crate) async fn stop(&mut self) {
        self.stop.send_replace(true);
        for (_, _, h) in self.list.iter_mut() {
            let _ = h.await;
        }
    }

    /// Whether `account` is a faulty worker's.
    pub(super) fn is_faulty(&self, account: &tally_protocol::AccountId) -> bool {
        self.list
            .iter()
            .any(|(s, f, _)| *f && s.account() == account)
    }
}
