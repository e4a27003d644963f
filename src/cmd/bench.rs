//! `tally bench market|claims|inference|settle|trust|latency`: throughput and latency,
//! measured on the real thing (HTTP, database, signatures), printed as JSON
//! with `--json`.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tally_protocol::wire::{BidRequest, OfferRequest, ResultRequest};
use tally_protocol::{Client, Detection, Sha256Hex, Signer, Stroops};

use crate::cli::BenchCommand;
use crate::local::LocalMarket;

pub mod latency;
pub mod markets;
pub mod trust;

pub async fn run(which: BenchCommand) -> anyhow::Result<ExitCode> {
    let (report, json) = match which {
        BenchCommand::Market {
            json,
            db,
            tasks,
            workers,
            markets,
        } => match markets {
            Some(n) => (markets::run(&db, tasks, workers, n).await?, json),
            None => (market(&db, tasks, workers).await?, json),
        },
        BenchCommand::Claims {
            json,
            workers,
            bids,
            markets,
            db,
        } => match markets {
            Some(n) => (markets::claims(&db, workers, bids, n).await?, json),
            None => (claims(workers, bids).await?, json),
        },
        BenchCommand::Inference {
            json,
            backend,
            iterations,
            threads,
        } => (inference(&backend, iterations, threads).await?, json),
        BenchCommand::Settle { json, txs } => (settle(txs), json),
        BenchCommand::Latency {
            json,
            workers,
            bids,
            backend,
        } => (latency::run(workers, bids, &backend).await?, json),
        BenchCommand::Trust {
            json,
            tasks,
            workers,
            saboteurs,
            mix,
            replicas,
            quorum,
            max_replicas,
            seed,
            checks: _,
            no_checks,
            check_rate,
            deadline,
        } => {
            let args = trust::TrustArgs {
                tasks,
                workers,
                saboteurs,
                mix,
                replicas,
                quorum,
                max_replicas,
                seed,
                checks: !no_checks,
                check_rate,
                deadline_secs: deadline,
            };
            (trust::run(args).await?, json)
        }
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// A tiny valid PNG.
pub fn tiny_png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([x as u8 * 30, y as u8 * 30, 99]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png encodes");
    out.into_inner()
}

fn fixed_result() -> ResultRequest {
    ResultRequest {
        detections: vec![Detection {
            class_id: 16,
            label: "dog".into(),
            score: 0.9,
            bbox: [10.0, 10.0, 100.0, 100.0],
        }],
        elapsed_ms: 0.0,
    }
}

async fn worker(lm: &LocalMarket, model: &Sha256Hex, capacity: u32) -> anyhow::Result<Client> {
    let c = lm.client(Signer::generate());
    c.post_offer(&OfferRequest {
        models: vec![model.clone()],
        min_price: Stroops(0),
        capacity,
    })
    .await?;
    Ok(c)
}

/// A throughput benchmark's worker: claims up to 32 tasks at a time and
/// answers them all at once with fixed detections, until `done`.
pub(crate) async fn throughput_worker(w: Client, done: Arc<AtomicBool>) {
    let result = fixed_result();
    while !done.load(Ordering::Relaxed) {
        let Ok(got) = w.claim(32, 200).await else {
            continue;
        };
        let submits = got
            .assignments
            .iter()
            .map(|a| w.submit_result(a.assignment, &result));
        for r in futures::future::join_all(submits).await {
            r.expect("result accepted");
        }
    }
}

/// Verified tasks per second end to end: bids, 3 claims, 3 results, vote,
/// ledger, settlement — workers return fixed detections over real HTTP.
async fn market(db: &str, tasks: usize, workers: usize) -> anyhow::Result<serde_json::Value> {
    let lm = LocalMarket::start(db, |c| {
        c.settle_every = Duration::from_millis(500);
        c.sweep_every = Duration::from_secs(1);
    })
    .await?;
    let client = lm.client(Signer::generate());
    let price = 100;
    lm.client(lm.operator.clone())
        .credit(
            client.signer().unwrap().account(),
            Stroops(price * 5 * tasks as i64),
        )
        .await?;
    let model = client
        .upload_model(tally_model::build::tiny_yolox("bench"))
        .await?
        .model;
    let png = tiny_png();
    let done = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for _ in 0..workers {
        let w = worker(&lm, &model, 64).await?;
        handles.push(tokio::spawn(throughput_worker(w, Arc::clone(&done))));
    }
    let verified_before = lm.market.metrics.verified.load(Ordering::Relaxed);
    let statements_before = tally_market::db::statements();
    let started = Instant::now();
    post_bids(std::slice::from_ref(&client), &model, price, tasks, &png).await?;
    while lm.market.metrics.verified.load(Ordering::Relaxed) - verified_before < tasks as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let verified_secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.await;
    }
    let settled = tally_market::settle::settle_now(&lm.market).await?;
    let secs = started.elapsed().as_secs_f64();
    let statements = tally_market::db::statements() - statements_before;
    let dialect = lm.market.db.engine();
    lm.finish().await?;
    Ok(json!({
        "bench": "market",
        "tasks_per_sec": tasks as f64 / secs,
        "tasks": tasks,
        "workers": workers,
        "replicas": 3,
        "db": dialect,
        "seconds": secs,
        "verified_seconds": verified_secs,
        "settlement_records": settled,
        "statements_per_task": statements as f64 / tasks as f64,
    }))
}

/// Bid `tasks` copies of `png` at `price`, at most 100 to a bid, the bids
/// posted at once from the `clients` in turn; waits until all are accepted.
async fn post_bids(
    clients: &[Client],
    model: &Sha256Hex,
    price: i64,
    tasks: usize,
    png: &[u8],
) -> anyhow::Result<()> {
    let per_bid = 100.min(tasks);
    let mut posted = 0;
    let mut bids = Vec::new();
    while posted < tasks {
        let n = per_bid.min(tasks - posted);
        let req = BidRequest {
            max_replicas: Some(5),
            ..BidRequest::new(model.clone(), Stroops(price))
        };
        let c = clients[bids.len() % clients.len()].clone();
        let images = vec![png.to_vec(); n];
        bids.push(tokio::spawn(
            async move { c.bid_images(req, &images).await },
        ));
        posted += n;
    }
    for b in bids {
        b.await?.context("bid")?;
    }
    Ok(())
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i]
}

/// A claims benchmark's worker: claims one task at a time (waiting up to
/// 30 s), reports when it got it, answers, until `done`.
pub(crate) async fn claims_worker(
    w: Client,
    claimed: tokio::sync::mpsc::UnboundedSender<(tally_protocol::TaskId, Instant)>,
    done: Arc<AtomicBool>,
) {
    let result = fixed_result();
    while !done.load(Ordering::Relaxed) {
        let Ok(got) = w.claim(1, 30_000).await else {
            continue;
        };
        let now = Instant::now();
        for a in &got.assignments {
            let _ = claimed.send((a.task, now));
        }
        for a in got.assignments {
            if let Err(e) = w.submit_result(a.assignment, &result).await {
                eprintln!(
                    "bench worker: result for assignment {} refused: {e}",
                    a.assignment
                );
            }
        }
    }
}

/// Place bid `i` (one distinct image) through `client`; milliseconds until
/// its first replica and its third were claimed.
pub(crate) async fn time_claims(
    client: &Client,
    model: &Sha256Hex,
    i: usize,
    claimed: &mut tokio::sync::mpsc::UnboundedReceiver<(tally_protocol::TaskId, Instant)>,
) -> anyhow::Result<(f64, f64)> {
    // Quorum 3: the task stays open until every replica is claimed (with
    // quorum 2 two fast results would verify it and retire the third).
    let req = BidRequest {
        quorum: Some(3),
        max_replicas: Some(3),
        ..BidRequest::new(model.clone(), Stroops(100))
    };
    let mut img = tiny_png();
    img.extend_from_slice(&(i as u64).to_le_bytes()); // a distinct input per bid
    let t0 = Instant::now();
    let task = client.bid_images(req, &[img]).await?.tasks[0];
    let mut got = Vec::new();
    while got.len() < 3 {
        let (t, at) = claimed.recv().await.context("workers stopped")?;
        if t == task {
            got.push(at.duration_since(t0).as_secs_f64() * 1000.0);
        }
    }
    got.sort_by(|a, b| a.total_cmp(b));
    Ok((got[0], got[2]))
}

/// Claim latency: N workers long-polling; for each bid, the time from
/// posting it to its first claim and to all replicas claimed.
async fn claims(workers: usize, bids: usize) -> anyhow::Result<serde_json::Value> {
    let lm = LocalMarket::start("sqlite", |c| {
        c.sweep_every = Duration::from_secs(1);
        c.settle_every = Duration::from_secs(3600);
    })
    .await?;
    let client = lm.client(Signer::generate());
    lm.client(lm.operator.clone())
        .credit(client.signer().unwrap().account(), Stroops(1_000_000_000))
        .await?;
    let model = client
        .upload_model(tally_model::build::tiny_yolox("bench"))
        .await?
        .model;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tally_protocol::TaskId, Instant)>();
    let done = Arc::new(AtomicBool::new(false));
    let online = Arc::new(AtomicUsize::new(0));
    for _ in 0..workers {
        let w = worker(&lm, &model, 4).await?;
        let (tx, done, online) = (tx.clone(), Arc::clone(&done), Arc::clone(&online));
        tokio::spawn(async move {
            online.fetch_add(1, Ordering::Relaxed);
            claims_worker(w, tx, done).await;
        });
    }
    let mut ack = Vec::new();
    let mut all = Vec::new();
    for i in 0..bids {
        // Start each bid with every worker waiting.
        while lm.market.waiters.len() < workers {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let (first, last) = time_claims(&client, &model, i, &mut rx).await?;
        ack.push(first);
        all.push(last);
    }
    done.store(true, Ordering::Relaxed);
    lm.finish().await?;
    Ok(json!({
        "bench": "claims",
        "workers": workers,
        "bids": bids,
        "ack_ms_p50": percentile(&mut ack.clone(), 0.5),
        "ack_ms_p99": percentile(&mut ack, 0.99),
        "all_replicas_ms_p50": percentile(&mut all.clone(), 0.5),
        "all_replicas_ms_p99": percentile(&mut all, 0.99),
    }))
}

/// In-process latency, then the same images through a confined inference
/// child as a worker runs them: the difference is what isolation costs.
async fn inference(
    backend: &str,
    iterations: usize,
    threads: usize,
) -> anyhow::Result<serde_json::Value> {
    let assets =
        crate::assets::find().ok_or_else(|| anyhow::anyhow!(crate::assets::missing_message()))?;
    let choice: tally_worker::BackendChoice = backend
        .parse()
        .map_err(|e| anyhow::anyhow!("--backend: {e}"))?;
    let images: Vec<Vec<u8>> = crate::assets::images(&assets)?
        .iter()
        .map(std::fs::read)
        .collect::<Result<_, _>>()?;
    let model = assets.join(crate::assets::MODEL_FILE);
    let options = tally_worker::DetectorOptions {
        backend: choice,
        threads,
        sessions: 1,
    };
    let (model_path, bench_images) = (model.clone(), images.clone());
    let r = tokio::task::spawn_blocking(move || {
        tally_worker::bench::bench_inference_with(&model_path, &options, &bench_images, iterations)
    })
    .await??;
    let in_process_p50 = r.ms_p50;
    let mut v = serde_json::to_value(r)?;
    v["bench"] = json!("inference");

    let mut config =
        tally_worker::sandbox::SandboxConfig::new(std::env::current_exe()?, &["__infer"]);
    config.backend = choice;
    config.threads = threads.max(1);
    let sandbox = tally_worker::sandbox::Sandbox::start(config)
        .await
        .map_err(|e| anyhow::anyhow!("starting the inference child: {e}"))?;
    let bytes = std::sync::Arc::new(std::fs::read(&model)?);
    let hash = Sha256Hex::of(&bytes);
    let mut isolated = Vec::with_capacity(images.len() * iterations);
    for image in &images {
        // Warm-up: the child loads the model on first use.
        sandbox
            .detect(&hash, &bytes, image)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    for _ in 0..iterations {
        for image in &images {
            let started = Instant::now();
            sandbox
                .detect(&hash, &bytes, image)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            isolated.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    let p50 = tally_worker::bench::percentile(&mut isolated, 50.0);
    v["isolated_ms_p50"] = json!(p50);
    v["isolated_ms_p99"] = json!(tally_worker::bench::percentile(&mut isolated, 99.0));
    v["isolation_overhead_ms_p50"] = json!(p50 - in_process_p50);
    // Two medians measured one after the other, under whatever else the
    // machine runs meanwhile: their difference is mostly that noise.
    v["isolation_overhead_note"] = json!(
        "isolated p50 minus in-process p50, measured one after the other: the child only adds a \
         pipe round trip, so a difference within a few ms either way (negative too) is the \
         machine's load moving between the two runs, not a cost or a gain"
    );
    v["landlock"] = json!(sandbox.hello().landlock);
    Ok(v)
}

fn settle(txs: usize) -> serde_json::Value {
    let r = tally_settlement::bench_build_sign(100, txs);
    json!({ "bench": "settle", "ops_per_sec": r.ops_per_sec, "tx_per_sec": r.tx_per_sec })
}
