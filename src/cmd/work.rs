//! `tally work`: sell this computer's spare cycles to a market.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tally_protocol::{Client, Sha256Hex, Signer, Stroops};
use tally_worker::agent::{self, Agent};
use tally_worker::backend::locate_onnxruntime;
use tally_worker::cache::ModelCache;
use tally_worker::sandbox::{self, SandboxConfig};
use tally_worker::BackendChoice;

use crate::cli::{InferChildArgs, WorkArgs};

pub async fn run(args: WorkArgs) -> anyhow::Result<ExitCode> {
    check_key_file(&args.to.key)?;
    let signer = Signer::load(&args.to.key).context("--key")?;
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
    // With neither, `models` stays empty: the agent offers what the market hosts.
    models.sort();
    models.dedup();
    log_backend_choice(backend);
    anyhow::ensure!(args.max_model_mb > 0, "--max-model-mb must be at least 1");

    let mut agent = Agent::new(models, &args.models_dir, sandbox_config(backend, &args)?);
    agent.capacity = args.capacity;
    agent.min_price = Stroops(args.min_price);
    agent.max_model_bytes = args.max_model_mb.saturating_mul(1 << 20);
    agent.publish = publish;
    agent.faulty = args.faulty;
    agent.max_results = args.max_results;
    agent.grace = Duration::from_secs(args.grace_secs);
    agent.pause_after_claim = args.pause_after_claim_ms.map(Duration::from_millis);

    tracing::info!(
        market = %args.to.market,
        worker = %signer.account(),
        "starting the worker"
    );
    let client = Client::new(&args.to.market, Some(signer));
    let report = agent::run(client, agent, super::shutdown_signal()).await?;
    tracing::info!(
        results = report.results,
        failures = report.failures,
        "worker stopped; earned {} stroops in all",
        report.earned.0
    );
    Ok(ExitCode::SUCCESS)
}

/// Inference children: this same binary, started as `tally __infer`.
fn sandbox_config(backend: BackendChoice, args: &WorkArgs) -> anyhow::Result<SandboxConfig> {
    let exe =
        std::env::current_exe().context("finding this program to start inference children")?;
    let mut config = SandboxConfig::new(exe, &["__infer"]);
    config.backend = backend;
    config.threads = args.threads.max(1);
    config.memory_mb = args.max_memory_mb.max(256);
    config.timeout = Duration::from_secs(args.task_timeout_secs.max(1));
    config.cpu_secs = args.task_timeout_secs.max(1) * config.threads as u64;
    Ok(config)
}

/// `tally __infer`: the confined child of a worker (see `tally_worker::sandbox`).
pub fn infer_child(args: InferChildArgs) -> ExitCode {
    let backend = match args.backend.parse::<BackendChoice>() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("tally __infer: --backend: {e}");
            return ExitCode::FAILURE;
        }
    };
    sandbox::child::main(sandbox::child::ChildOptions {
        backend,
        ort_dylib: args.ort_dylib,
        threads: args.threads,
        memory_mb: args.memory_mb,
    })
}

/// A worker's key file must be readable by its owner alone: the seed
/// spends the worker's earnings.
pub fn check_key_file(key: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if key.starts_with("env:") {
        return Ok(());
    }
    let meta = std::fs::metadata(key).with_context(|| format!("--key {key}"))?;
    let mode = meta.permissions().mode() & 0o777;
    anyhow::ensure!(
        mode & 0o077 == 0,
        "--key {key}: the key file can be read by others (mode {mode:o}); \
         run `chmod 600 {key}` (it holds the seed that spends your earnings)"
    );
    Ok(())
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
