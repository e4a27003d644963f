//! `tally demo`: the whole market on this machine. A market on a temporary
//! SQLite file, N workers running real inference over loopback HTTP (some
//! deliberately wrong when asked), a client bidding on the sample images,
//! live progress, then the verified detections, who was paid what, the
//! settlement transactions and the audit's verdict. `--review`: the same
//! with human review deciding what the workers do not agree on ([`review`]).

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tally_protocol::wire::{BidRequest, TaskState};
use tally_protocol::{Client, Signer, Stroops};

use crate::cli::DemoArgs;
use crate::local::LocalMarket;

mod review;
mod workers;

pub(crate) use workers::Workers;

const PRICE: i64 = 10_000;

/// The sample model and images the demo bids on.
pub(crate) struct Sample {
    assets: std::path::PathBuf,
    pub(crate) model_bytes: Vec<u8>,
    paths: Vec<std::path::PathBuf>,
    pub(crate) images: Vec<Vec<u8>>,
    backend: tally_worker::BackendChoice,
}

impl Sample {
    /// The sample assets, run on `backend` (the `--backend` flag).
    pub(crate) fn load(backend: &str) -> anyhow::Result<Sample> {
        let Some(assets) = crate::assets::find() else {
            anyhow::bail!(crate::assets::missing_message());
        };
        let backend: tally_worker::BackendChoice = backend
            .parse()
            .map_err(|e| anyhow::anyhow!("--backend: {e}"))?;
        let model_bytes = std::fs::read(assets.join(crate::assets::MODEL_FILE))
            .context("reading the sample model")?;
        let paths = crate::assets::images(&assets)?;
        let images: Vec<Vec<u8>> = paths.iter().map(std::fs::read).collect::<Result<_, _>>()?;
        Ok(Sample {
            assets,
            model_bytes,
            paths,
            images,
            backend,
        })
    }

    /// The file name of the `i`th image.
    fn name(&self, i: usize) -> &str {
        self.paths[i]
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
    }
}

/// A new client credited with `stroops` by the operator, and the sample
/// model it uploaded.
pub(crate) async fn funded_client(
    lm: &LocalMarket,
    stroops: i64,
    model_bytes: &[u8],
) -> anyhow::Result<(Client, tally_protocol::Sha256Hex)> {
    let operator = lm.client(lm.operator.clone());
    let client = lm.client(Signer::generate());
    operator
        .credit(client.signer().unwrap().account(), Stroops(stroops))
        .await?;
    let model = client.upload_model(model_bytes.to_vec()).await?.model;
    Ok((client, model))
}

/// What the settlement records paid: payouts, stroops in all, and stroops
/// to the faulty workers.
#[derive(Debug, Default)]
struct Paid {
    payouts: usize,
    paid: i64,
    faulty_paid: i64,
}

impl Paid {
    /// Count the payouts of `records`.
    fn count(records: &[tally_protocol::wire::SettlementRecord], workers: &Workers) -> Paid {
        let mut p = Paid::default();
        for payout in records.iter().flat_map(|r| &r.payouts) {
            p.payouts += 1;
            p.paid += payout.amount.0;
            if workers.is_faulty(&payout.account) {
                p.faulty_paid += payout.amount.0;
            }
        }
        p
    }
}

/// Success when `ok`, else failure.
fn exit_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The plain demo: checks catch the faulty workers, the vote decides.
/// Post `req` on the sample images, follow it until every task is decided
/// (a progress bar when `show`), then stop the workers.
pub(crate) async fn bid_until_done(
    lm: &LocalMarket,
    client: &tally_protocol::Client,
    req: BidRequest,
    sample: &Sample,
    show: bool,
    workers: &mut Workers,
) -> anyhow::Result<tally_protocol::wire::BidStatus> {
    let created = client
        .bid_images(req, &sample.images)
        .await
        .context("posting the bid")?;
    let status = progress(lm, client, created.bid, show).await?;
    workers.stop().await;
    Ok(status)
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    if args.review {
        return review::run(args, started).await;
    }
    anyhow::ensure!(
        args.workers >= 3,
        "--workers must be at least 3 (each task runs on 3 workers)"
    );
    anyhow::ensure!(
        args.faulty <= args.workers.saturating_sub(2),
        "--faulty must leave at least 2 honest workers, so the vote can reach its quorum"
    );
    let sample = Sample::load(&args.backend)?;
    let lm = start_market(&sample).await?;
    // The client's deposit covers five replicas and the verification share
    // (two executions per image) that pays for the spot checks: nobody
    // credits the operator.
    let stroops = PRICE * 7 * sample.images.len() as i64;
    let (client, model) = funded_client(&lm, stroops, &sample.model_bytes).await?;

    // Workers: real inference, in this process, over loopback HTTP.
    let faulty = (0..args.workers).map(|i| i >= args.workers - args.faulty);
    let mut workers = Workers::start(&lm, &model, &sample, faulty)?;
    workers.ready(&lm).await?;

    // Workers that have passed one check each (credibility 0.917): two
    // agreeing reach 0.99, one alone does not reach 0.95; a market that has
    // run for a while trusts single results at 0.999.
    let req = BidRequest {
        max_replicas: Some(5),
        deadline_secs: 600,
        confidence: Some(0.95),
        ..BidRequest::new(model, Stroops(PRICE))
    };
    let status = bid_until_done(&lm, &client, req, &sample, !args.json, &mut workers).await?;
    // Earnings settle once their tasks are public (at most two periods).
    tokio::time::sleep(lm.market.config.publish_every * 2).await;
    tally_market::settle::settle_now(&lm.market).await?;
    let report = crate::audit::audit(&lm.client(Signer::generate())).await?;
    let records = client.settlements(0).await?.records;

    let paid = Paid::count(&records, &workers);
    let mut accounts = Vec::with_capacity(workers.list.len());
    for (s, _, _) in &workers.list {
        accounts.push(lm.client(s.clone()).account_me().await?);
    }
    let out = Outcome {
        status: &status,
        records: &records,
        report: &report,
        paid,
        seconds: started.elapsed().as_secs_f64(),
    };
    let ok = show(&out, &sample, &workers, &accounts, args.json);
    lm.finish().await?;
    Ok(exit_code(ok))
}

/// The market for the plain demo, with spot checks from the sample images'
/// reference answers: every worker's first claim is a check, so the faulty
/// one is caught at once.
async fn start_market(sample: &Sample) -> anyhow::Result<LocalMarket> {
    let golden = tally_market::checks::load_golden(&sample.assets)
        .map_err(|e| anyhow::anyhow!("the sample assets as a golden set: {e}"))?;
    let oracle = crate::oracle::SandboxOracle::start(sample.backend).await?;
    LocalMarket::start("sqlite", |c| {
        c.settle_every = Duration::from_secs(1);
        c.lease = Duration::from_secs(60);
        c.golden = golden;
        c.check_rates = tally_market::checks::CheckRates {
            first: 1.0,
            new: 1.0,
            trusted: 0.1,
            trusted_after: 1,
            rerun: 0.0,
        };
        c.oracle = Some(oracle);
        // The demo is short: decisions are public, and earnings settle, within seconds.
        c.publish_every = Duration::from_secs(1);
    })
    .await
}

/// How a demo's bid ended: its tasks, the settlements, the audit, the pay.
struct Outcome<'a> {
    status: &'a tally_protocol::wire::BidStatus,
    records: &'a [tally_protocol::wire::SettlementRecord],
    report: &'a crate::audit::Report,
    paid: Paid,
    seconds: f64,
}

/// Print the plain demo's outcome (JSON or text); whether it went as it
/// should: everything verified and audited, the faulty workers caught and
/// unpaid, no honest one caught.
fn show(
    out: &Outcome,
    sample: &Sample,
    workers: &Workers,
    accounts: &[tally_protocol::wire::AccountView],
    json: bool,
) -> bool {
    let (verified, labels) = verified_labels(out.status);
    let faulty_caught = workers
        .list
        .iter()
        .zip(accounts)
        .filter(|((_, f, _), _)| *f)
        .all(|(_, me)| me.checks.failed > 0);
    let honest_caught = workers
        .list
        .iter()
        .zip(accounts)
        .any(|((_, f, _), me)| !*f && me.checks.failed > 0);
    if json {
        println!(
            "{}",
            json!({
                "tasks": out.status.tasks.len(), "verified": verified, "labels": labels,
                "payouts": out.paid.payouts, "paid": out.paid.paid, "faulty_paid": out.paid.faulty_paid,
                "audit_ok": out.report.ok, "seconds": out.seconds,
                "faulty_caught": faulty_caught, "honest_caught": honest_caught,
                "credibility": accounts.iter().map(|me| me.credibility).collect::<Vec<_>>(),
                "tx_hashes": out.records.iter().map(|r| r.tx_hash.clone()).collect::<Vec<_>>(),
            })
        );
    } else {
        print_verified(out.status, sample, verified);
        print_workers(workers, accounts);
        print_ending(out.records, out.report, out.seconds);
    }
    out.report.ok
        && verified == out.status.tasks.len()
        && out.paid.faulty_paid == 0
        && faulty_caught
        && !honest_caught
}

/// Each image's verdict and verified detections.
fn print_verified(status: &tally_protocol::wire::BidStatus, sample: &Sample, verified: usize) {
    println!(
        "\nVerified detections ({verified}/{} tasks verified):",
        status.tasks.len()
    );
    for (i, t) in status.tasks.iter().enumerate() {
        let found = labels_of(t.consensus.as_deref().unwrap_or_default());
        println!("  {:<12} {:<9} {found}", sample.name(i), t.status.as_str());
    }
}

/// Each worker's reputation, checks and earnings.
fn print_workers(workers: &Workers, accounts: &[tally_protocol::wire::AccountView]) {
    println!("\nWorkers:");
    for (s, faulty, me) in workers
        .list
        .iter()
        .zip(accounts)
        .map(|((s, f, _), me)| (s, f, me))
    {
        println!(
            "  {}…  {:<7} agreed {:>2}  disagreed {:>2}  checks {}/{}  credibility {:.3}{}  earned {:>7} stroops",
            &s.account().as_str()[..8],
            if *faulty { "faulty" } else { "honest" },
            me.reputation.agreed,
            me.reputation.disagreed,
            me.checks.passed,
            me.checks.passed + me.checks.failed,
            me.credibility,
            if me.checks.failed > 0 { " CAUGHT by a spot check" } else { "" },
            me.paid_total.0 + me.earned_unpaid.0
        );
    }
}

/// Show tasks being claimed, voted and paid until the bid is done.
async fn progress(
    lm: &LocalMarket,
    client: &Client,
    bid: tally_protocol::BidId,
    show: bool,
) -> anyhow::Result<tally_protocol::wire::BidStatus> {
    let mut status = client.bid(bid).await?;
    let bar = if show {
        indicatif::ProgressBar::new(status.tasks.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} verified  {msg}")
            .expect("template")
            .progress_chars("=> "),
    );
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let m = &lm.market.metrics;
        bar.set_position(status.tasks.iter().filter(|t| t.status.is_final()).count() as u64);
        bar.set_message(format!(
            "claims {}  results {}  settled {}  settlement records {}",
            m.claims.load(Ordering::Relaxed),
            m.results.load(Ordering::Relaxed),
            m.paid_results.load(Ordering::Relaxed),
            m.settlements.load(Ordering::Relaxed),
        ));
        bar.tick();
        if status.status == tally_protocol::wire::BidState::Done {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the demo's bid was not decided within 10 minutes"
        );
        // Pushed: the market answers when another task is decided (the
        // counters above refresh at least once a second).
        let decided = status.tasks.iter().filter(|t| t.status.is_final()).count();
        status = client.bid_wait(bid, decided, 1_000).await?;
    }
    bar.finish();
    Ok(status)
}

/// `dog 0.83, person 0.71`
fn labels_of(dets: &[tally_protocol::Detection]) -> String {
    dets.iter()
        .map(|d| format!("{} {:.2}", d.label, d.score))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The demo's last lines: the settlement transactions, the audit, the time.
pub(crate) fn print_ending(
    records: &[tally_protocol::wire::SettlementRecord],
    report: &crate::audit::Report,
    seconds: f64,
) {
    if records
        .iter()
        .any(|r| r.status == tally_settlement::record::STATUS_NOT_SUBMITTED)
    {
        println!(
            "\nSettlement transactions (signed and recorded, never submitted: the demo has no \
             chain server, so nothing was paid on the network):"
        );
    } else {
        println!("\nSettlement transactions:");
    }
    for r in records {
        println!(
            "  #{} {} ({} payouts, {})",
            r.seq,
            r.tx_hash,
            r.payouts.len(),
            r.status
        );
    }
    println!("\nAudit: {}", report.summary().trim_end());
    println!("\n{seconds:.1} s in all");
}

/// How many of the bid's tasks are verified, and every label they found.
pub(crate) fn verified_labels(
    status: &tally_protocol::wire::BidStatus,
) -> (usize, BTreeSet<String>) {
    let verified = status
        .tasks
        .iter()
        .filter(|t| t.status == TaskState::Verified)
        .count();
    let labels = status
        .tasks
        .iter()
        .flat_map(|t| t.consensus.iter().flatten().map(|d| d.label.clone()))
        .collect();
    (verified, labels)
}
