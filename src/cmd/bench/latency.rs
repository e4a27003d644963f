//! `tally bench latency`: image to verified answer, one bid at a time, on
//! the real market (SQLite, HTTP, signatures) with real workers running the
//! sample detector in their confined children. The client waits the way
//! `tally bid --wait` does: a long-poll the market answers when the task is
//! decided. The first bid warms up (model fetch, child start) and is not
//! counted.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tally_protocol::wire::{BidRequest, TaskState};
use tally_protocol::{Signer, Stroops};
use tally_worker::agent::{self, Agent};
use tally_worker::sandbox::SandboxConfig;

use crate::local::LocalMarket;

const PRICE: i64 = 10_000;

/// Run `bids` bids of one sample image each against `workers` workers.
pub async fn run(workers: usize, bids: usize, backend: &str) -> anyhow::Result<serde_json::Value> {
    anyhow::ensure!(workers >= 2, "--workers must be at least 2 (a quorum of 2)");
    anyhow::ensure!(bids >= 1, "--bids must be at least 1");
    let Some(assets) = crate::assets::find() else {
        anyhow::bail!(crate::assets::missing_message());
    };
    let choice: tally_worker::BackendChoice = backend
        .parse()
        .map_err(|e| anyhow::anyhow!("--backend: {e}"))?;
    let model_bytes = std::fs::read(assets.join(crate::assets::MODEL_FILE))
        .context("reading the sample model")?;
    let images: Vec<Vec<u8>> = crate::assets::images(&assets)?
        .iter()
        .map(std::fs::read)
        .collect::<Result<_, _>>()?;

    let lm = LocalMarket::start("sqlite", |c| {
        c.settle_every = Duration::from_secs(3600);
    })
    .await?;
    let operator = lm.client(lm.operator.clone());
    let client = lm.client(Signer::generate());
    operator
        .credit(
            client.signer().unwrap().account(),
            Stroops(PRICE * 8 * (bids as i64 + 1)),
        )
        .await?;
    let model = client.upload_model(model_bytes).await?.model;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let dirs = tempfile::tempdir()?;
    let exe = std::env::current_exe().context("finding this program")?;
    let mut handles = Vec::new();
    for i in 0..workers {
        let mut sandbox = SandboxConfig::new(exe.clone(), &["__infer"]);
        sandbox.backend = choice;
        let a = Agent::new(
            vec![model.clone()],
            dirs.path().join(format!("worker-{i}")),
            sandbox,
        );
        let c = lm.client(Signer::generate());
        let mut stop = stop_rx.clone();
        handles.push(tokio::spawn(async move {
            agent::run(c, a, async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
        }));
    }

    let mut samples = Vec::with_capacity(bids);
    for i in 0..=bids {
        let image = &images[i % images.len()];
        let started = Instant::now();
        let req = BidRequest {
            deadline_secs: 600,
            ..BidRequest::new(model.clone(), Stroops(PRICE))
        };
        let created = client.bid_images(req, std::slice::from_ref(image)).await?;
        let status = client.bid_wait(created.bid, 0, 60_000).await?;
        let elapsed = started.elapsed();
        anyhow::ensure!(
            status.tasks[0].status == TaskState::Verified,
            "bid {} was not verified within 60 s: {:?}",
            created.bid,
            status.tasks[0].status
        );
        if i > 0 {
            samples.push(elapsed.as_secs_f64() * 1000.0);
        }
    }
    stop_tx.send_replace(true);
    for h in handles {
        let _ = h.await;
    }
    lm.finish().await?;

    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Ok(json!({
        "bench": "latency",
        "p50_ms": at(0.5),
        "p99_ms": at(0.99),
        "min_ms": samples[0],
        "max_ms": samples[samples.len() - 1],
        "mean_ms": samples.iter().sum::<f64>() / samples.len() as f64,
        "workers": workers,
        "bids": bids,
        "backend": backend,
        "replicas": 3,
        "quorum": 2,
    }))
}
