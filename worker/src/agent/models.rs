//! The models a worker offers: named or discovered, fetched on first use,
//! admitted before any runtime sees them.
//!
//! With no models named, the worker offers every model the market hosts
//! (`GET /v1/models`) up to `max_bytes`, and looks again from time to time
//! to pick up new ones. A model is fetched into the cache when a task first
//! needs it, its hash checked, then admitted (`tally-model`): the market may
//! be hostile too. A refused model, or one the runtime cannot load, is
//! remembered and leaves the offer.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tally_protocol::{Client, Sha256Hex};
use tokio::sync::OnceCell;

use super::retry::is_transient;
use crate::cache::{CacheError, ModelCache};
use crate::one_line;

/// Why a model cannot be had for a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Unusable {
    /// It will never run here (refused, corrupt, missing); it leaves the offer.
    Refused(String),
    /// It could not be fetched just now.
    Unavailable(String),
}

type Admitted = Result<Arc<Vec<u8>>, String>;

pub(super) struct Models {
    cache: ModelCache,
    policy: tally_model::Policy,
    /// The models named on the command line; `None`: whatever the market hosts.
    named: Option<Vec<Sha256Hex>>,
    max_bytes: u64,
    listed: Mutex<Vec<Sha256Hex>>,
    refused: Mutex<HashSet<Sha256Hex>>,
    admitted: Mutex<HashMap<Sha256Hex, Arc<OnceCell<Admitted>>>>,
}

impl Models {
    pub(super) fn new(cache: ModelCache, named: Vec<Sha256Hex>, max_bytes: u64) -> Self {
        let policy = tally_model::Policy {
            max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
            ..tally_model::Policy::default()
        };
        Models {
            cache,
            policy,
            named: (!named.is_empty()).then_some(named),
            max_bytes,
            listed: Mutex::new(Vec::new()),
            refused: Mutex::new(HashSet::new()),
            admitted: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the offer follows what the market hosts.
    pub(super) fn discovers(&self) -> bool {
        self.named.is_none()
    }

    /// What to offer now: named or listed, less what was refused; sorted.
    pub(super) fn offer(&self) -> Vec<Sha256Hex> {
        let refused = lock(&self.refused);
        let mut out: Vec<Sha256Hex> = match &self.named {
            Some(named) => named.clone(),
            None => lock(&self.listed).clone(),
        };
        out.retain(|m| !refused.contains(m));
        out.sort();
        out.dedup();
        out
    }

    /// Asks the market what it hosts (discovery only).
    pub(super) async fn refresh(&self, client: &Client) -> Result<(), tally_protocol::Error> {
        if !self.discovers() {
            return Ok(());
        }
        let hosted = client.models().await?;
        let mut fits = Vec::new();
        for m in hosted.models {
            if m.bytes <= self.max_bytes {
                fits.push(m.model);
            } else if !lock(&self.refused).contains(&m.model) {
                tracing::info!(model = %m.model, bytes = m.bytes, max = self.max_bytes, "not offering a model over --max-model-mb");
            }
        }
        fits.truncate(64);
        *lock(&self.listed) = fits;
        Ok(())
    }

    /// Takes `model` out of the offer for good.
    pub(super) fn refuse(&self, model: &Sha256Hex, why: &str) {
        if lock(&self.refused).insert(model.clone()) {
            tracing::warn!(%model, "no longer offering this model: {why}");
        }
    }

    /// The admitted bytes of `model`, fetching it first if need be.
    pub(super) async fn get(
        &self,
        client: &Client,
        model: &Sha256Hex,
    ) -> Result<Arc<Vec<u8>>, Unusable> {
        let cell = Arc::clone(lock(&self.admitted).entry(model.clone()).or_default());
        let admitted = cell
            .get_or_try_init(|| self.fetch_and_admit(client, model))
            .await
            .map_err(Unusable::Unavailable)?;
        admitted.clone().map_err(|why| {
            self.refuse(model, &why);
            Unusable::Refused(why)
        })
    }

    /// `Err` only for what may pass (the market unreachable); a refusal is
    /// an `Ok(Err(..))`, kept so the model is never fetched again.
    async fn fetch_and_admit(
        &self,
        client: &Client,
        model: &Sha256Hex,
    ) -> Result<Admitted, String> {
        let path = match self.cache.get_or_fetch(client, model).await {
            Ok(path) => path,
            Err(CacheError::Fetch { source, .. }) if is_transient(&source) => {
                return Err(format!("cannot fetch model {model}: {}", one_line(&source)))
            }
            Err(e) => return Ok(Err(one_line(&e))),
        };
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let policy = self.policy.clone();
        let (verdict, bytes) =
            tokio::task::spawn_blocking(move || (tally_model::admit(&bytes, &policy), bytes))
                .await
                .map_err(|e| format!("admission crashed: {e}"))?;
        match verdict {
            Ok(info) => {
                tracing::info!(%model, bytes = bytes.len(), input = info.input_size, "model admitted");
                Ok(Ok(Arc::new(bytes)))
            }
            Err(refusal) => {
                // Never keep a refused model where a later run would offer it.
                let _ = tokio::fs::remove_file(&path).await;
                Ok(Err(format!("model refused: {refusal}")))
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain sets and maps: a panic elsewhere cannot leave them half-written.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
