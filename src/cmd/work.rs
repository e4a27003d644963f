//! `tally work`: sell this computer's spare cycles to a market.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tally_protocol::{Client, Sha256Hex, Signer, Stroops};
use tally_worker::agent::{self, Agent};
use tally_worker::backend::locate_onnxruntime;
use tally_worker::cache::ModelCache;
use tally_worker::BackendChoice;

use crate::cli::WorkArgs;

pub async fn run(args: WorkArgs) -> anyhow::Result<ExitCode> {
    let signer = Signer::load(&args.key).context("--key")?;
    let backend: BackendChoice = args
        .backend
        .parse()
        .map_err(anyhow::Error::msg)
        .context("--backend")?;
    anyhow::ensure!(args.min_price >= 0, "--min-price must not be negative");
    anyhow::ensure!(
        (1..=1024).contains(&args.capacity),
        "--capacity must be between 1 and 1024"
    );

    // Models given as files go into the cache and are published to the
    // market; --offer names models the market already has.
    let cache = ModelCache::new(&args.models_dir);
    let mut models = Vec::new();
    let mut publish = Vec::new();
    for file in &args.model {
        let bytes = tokio::fs::read(file)
            .await
            .with_context(|| format!("--model {}", file.display()))?;
        let (hash, _) = cache
            .insert(bytes)
            .await
            .with_context(|| format!("--model {}", file.display()))?;
        tracing::info!(model = %hash, file = %file.display(), "offering a model file");
        publish.push(hash.clone());
        models.push(hash);
    }
    for raw in &args.offer {
        models.push(Sha256Hex::parse(raw.trim()).context("--offer")?);
    }
    if args.model.is_empty() && args.offer.is_empty() {
        models = cache.list().await.context("reading the models folder")?;
        anyhow::ensure!(
            !models.is_empty(),
            "nothing to offer: {} holds no model; give --model FILE or --offer SHA256",
            args.models_dir.display()
        );
    }
    models.sort();
    models.dedup();
    log_backend_choice(backend);

    let mut agent = Agent::new(models, &args.models_dir);
    agent.capacity = args.capacity;
    agent.min_price = Stroops(args.min_price);
    agent.backend = backend;
    agent.threads = args.threads.max(1);
    agent.publish = publish;
    agent.faulty = args.faulty;
    agent.max_results = args.max_results;
    agent.grace = Duration::from_secs(args.grace_secs);
    agent.pause_after_claim = args.pause_after_claim_ms.map(Duration::from_millis);

    tracing::info!(
        market = %args.market,
        worker = %signer.account(),
        "starting the worker"
    );
    let client = Client::new(&args.market, Some(signer));
    let report = agent::run(client, agent, super::shutdown_signal()).await?;
    tracing::info!(
        results = report.results,
        failures = report.failures,
        "worker stopped; earned {} stroops in all",
        report.earned.0
    );
    Ok(ExitCode::SUCCESS)
}

/// Says which backend will run the models, and why.
fn log_backend_choice(choice: BackendChoice) {
    match (choice, locate_onnxruntime()) {
        (BackendChoice::Auto, Ok(path)) => tracing::info!(
            "backend auto: ONNX Runtime found at {}; using it",
            path.display()
        ),
        (BackendChoice::Auto, Err(why)) => {
            tracing::info!("backend auto: {why}; using tract (pure Rust)")
        }
        (BackendChoice::OnnxRuntime, Ok(path)) => {
            tracing::info!("backend onnxruntime (asked for): {}", path.display())
        }
        (BackendChoice::OnnxRuntime, Err(why)) => {
            tracing::warn!("backend onnxruntime (asked for), but {why}")
        }
        (BackendChoice::Tract, _) => tracing::info!("backend tract (asked for): pure Rust"),
    }
}
