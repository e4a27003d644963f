//! The market's own detector: the worker's confined inference (the same
//! sandbox every `tally work` runs models in), run by `tally serve --golden`
//! and the demo to answer the spot checks the market makes.

use std::sync::Arc;

use futures::future::BoxFuture;
use tally_market::checks::{Oracle, OracleRef};
use tally_protocol::{Detection, Sha256Hex};
use tally_worker::sandbox::{Sandbox, SandboxConfig};
use tally_worker::BackendChoice;

/// Inference in confined children of this program.
pub struct SandboxOracle {
    sandbox: Arc<Sandbox>,
}

impl SandboxOracle {
    /// Starts a confined child on `backend`.
    pub async fn start(backend: BackendChoice) -> anyhow::Result<OracleRef> {
        let exe = std::env::current_exe()?;
        let mut config = SandboxConfig::new(exe, &["__infer"]);
        config.backend = backend;
        let sandbox = Sandbox::start(config)
            .await
            .map_err(|e| anyhow::anyhow!("the market's detector: {e}"))?;
        tracing::info!(
            backend = %sandbox.hello().backend,
            "spot checks are answered by the market's own confined detector"
        );
        Ok(OracleRef(Arc::new(SandboxOracle {
            sandbox: Arc::new(sandbox),
        })))
    }
}

impl Oracle for SandboxOracle {
    fn detect(
        &self,
        model: &Sha256Hex,
        model_bytes: Arc<Vec<u8>>,
        image: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<Detection>, String>> {
        let sandbox = Arc::clone(&self.sandbox);
        let model = model.clone();
        Box::pin(async move {
            sandbox
                .detect(&model, &model_bytes, &image)
                .await
                .map(|d| d.detections)
                .map_err(|e| e.to_string())
        })
    }
}
