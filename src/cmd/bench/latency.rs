//! `tally bench latency`: image to verified answer, one bid at a time, on
//! the real market (SQLite, HTTP, signatures) with real workers running the
//! sample detector in their confined children. The client waits the way
//! `tally bid --wait` does: a long-poll the market answers when the task is
//! decided. The first bid warms up (model fetch, child start) and is not
//! counted.

use std::time::{Duration, Instant};

use serde_json::json;
use tally_protocol::wire::{BidRequest, TaskState};
use tally_protocol::Stroops;

use crate::cmd::demo::{funded_client, Sample, Workers};
use crate::local::LocalMarket;

const PRICE: i64 = 10_000;

/// Run `bids` bids of one sample image each against `workers` workers.
pub async fn run(workers: usize, bids: usize, backend: &str) -> anyhow::Result<serde_json::Value> {
    anyhow::ensure!(workers >= 2, "--workers must be at least 2 (a quorum of 2)");
    anyhow::ensure!(bids >= 1, "--bids must be at least 1");
    let sample = Sample::load(backend)?;
    let lm = LocalMarket::start("sqlite", |c| {
        c.settle_every = Duration::from_secs(3600);
    })
    .await?;
    let stroops = PRICE * 8 * (bids as i64 + 1);
    let (client, model) = funded_client(&lm, stroops, &sample.model_bytes).await?;
    let mut fleet = Workers::start(&lm, &model, &sample, std::iter::repeat_n(false, workers))?;
    let samples = time_bids(&client, &model, &sample.images, bids).await?;
    fleet.stop().await;
    lm.finish().await?;
    Ok(report(samples, workers, bids, backend))
}

/// Bid one image at a time, `bids` times after a first that warms up; each
/// counted bid's time to its verified answer, in milliseconds.
async fn time_bids(
    client: &tally_protocol::Client,
    model: &tally_protocol::Sha256Hex,
    images: &[Vec<u8>],
    bids: usize,
) -> anyhow::Result<Vec<f64>> {
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
    Ok(samples)
}

/// The latencies' percentiles, and the run's parameters.
fn report(mut samples: Vec<f64>, workers: usize, bids: usize, backend: &str) -> serde_json::Value {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    json!({
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
    })
}
