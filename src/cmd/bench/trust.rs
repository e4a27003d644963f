//! `tally bench trust`: the real market (in process, SQLite, real HTTP and
//! signatures) against a simulated fleet in which some workers lie, and how
//! much of the lying gets through: wrong tasks verified, the saboteurs'
//! share of the pay, and what the honest answer costs in results.
//!
//! The detector is simulated: the "right" detections of an image are a pure
//! function of its decoded pixels ([`truth`]), so an honest worker can answer
//! any input the market hands it, a client image or a market spot check (a
//! golden image in new bytes, the same pixels), and every worker treats every
//! assignment alike: it learns the input's bytes and nothing else about the
//! task. Saboteurs derive their wrong answers from the pixels too, so
//! colluders agree with each other.
//!
//! With spot checks (the default), the market is given a golden set of
//! [`GOLDEN_ITEMS`] more generated images, none of them a client input, with
//! their [`truth`] as the known answer; the operator's account is credited
//! to pay for the checks. A worker caught by a check (its claims answered
//! 403) stops.
//!
//! - `images`: the client's inputs, the golden set, and what an image
//!   shows ([`truth`]) and how each worker answers it.
//! - `fleet`: the simulated workers, by kind, and their claim loop.
//! - `tally`: the verdicts against the truth, and per kind of worker what
//!   it did, earned and was caught at.
//! - `rng`: the seeded randomness all of it is drawn from.

mod fleet;
mod images;
mod rng;
mod tally;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;
use tally_protocol::wire::{BidRequest, BidState, OfferRequest};
use tally_protocol::{Sha256Hex, Signer, Stroops};

use crate::local::LocalMarket;

use fleet::{Kind, Sim, CAPACITY};
use images::{golden, input_png, pixels_key};
use rng::Rng;

pub use images::{truth, GOLDEN_ITEMS, IMAGE_SIDE};

/// The flags of `tally bench trust`.
#[derive(Debug, Clone)]
pub struct TrustArgs {
    pub tasks: usize,
    pub workers: usize,
    /// Fraction of the workers that are saboteurs (rounded to a count).
    pub saboteurs: f64,
    /// Saboteur kinds, assigned round-robin.
    pub mix: Vec<String>,
    pub replicas: Option<u32>,
    pub quorum: Option<u32>,
    pub max_replicas: Option<u32>,
    pub seed: u64,
    /// Spot checks from a golden set of the bench's own images.
    pub checks: bool,
    /// The market's check rate for new workers (trusted ones get a tenth, and a tenth re-runs).
    pub check_rate: f64,
    /// The bids' deadline: tasks still unfinished then fail.
    pub deadline_secs: u64,
}

/// Stroops per agreeing result.
const PRICE: i64 = 100;
/// Tasks per bid.
const PER_BID: usize = 50;
/// Decisions are published in batches of this period (the bench's runs are short).
const PUBLISH_EVERY: Duration = Duration::from_millis(500);
/// The bench gives up when the bids are not all done this long after their
/// deadline (the market fails what is left at the deadline).
const GIVE_UP_AFTER_DEADLINE: Duration = Duration::from_secs(60);

/// Who the fleet is, from the flags: the saboteur kinds and count, whether
/// spot checks run, and each worker's kind in fleet order.
struct Plan {
    mix: Vec<Kind>,
    saboteurs: usize,
    checks: bool,
    kinds: Vec<Kind>,
}

impl Plan {
    /// Check the flags and draw the fleet's roles (seeded).
    fn new(args: &TrustArgs) -> anyhow::Result<Plan> {
        if args.tasks == 0 || args.workers == 0 {
            bail!("--tasks and --workers must be at least 1");
        }
        if !(0.0..=1.0).contains(&args.saboteurs) {
            bail!("--saboteurs is a fraction of the workers, between 0 and 1");
        }
        let mix: Vec<Kind> = args
            .mix
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| Kind::parse(s))
            .collect::<anyhow::Result<_>>()?;
        let saboteurs = (args.saboteurs * args.workers as f64).round() as usize;
        if saboteurs > 0 && mix.is_empty() {
            bail!("--mix names no saboteur kind");
        }
        if args.deadline_secs == 0 {
            bail!("--deadline must be at least 1 second");
        }
        if !(0.0..=1.0).contains(&args.check_rate) {
            bail!("--check-rate is a probability, between 0 and 1");
        }
        let checks = args.checks && args.check_rate > 0.0;
        // Who is who: saboteurs get the kinds round-robin, then the roles are
        // shuffled (seeded) so neither side always starts waiting first.
        let mut kinds: Vec<Kind> = (0..args.workers)
            .map(|i| {
                if i < saboteurs {
                    mix[i % mix.len()]
                } else {
                    Kind::Honest
                }
            })
            .collect();
        let mut r = Rng::new(&[args.seed, 0x5eed]);
        for i in (1..kinds.len()).rev() {
            kinds.swap(i, r.below(i as u64 + 1) as usize);
        }
        Ok(Plan {
            mix,
            saboteurs,
            checks,
            kinds,
        })
    }
}

/// The simulated workers, each with its kind, client and claim loop.
type Fleet = Vec<(
    Kind,
    tally_protocol::Client,
    tokio::task::JoinHandle<fleet::WorkerLog>,
)>;

/// The client's bids and its inputs by the address the market gave each
/// (the sha256 of its canonical encoding).
struct Bids {
    ids: Vec<tally_protocol::BidId>,
    by_hash: HashMap<Sha256Hex, usize>,
}

/// Run the bench; the JSON report.
pub async fn run(args: TrustArgs) -> anyhow::Result<serde_json::Value> {
    let plan = Plan::new(&args)?;
    let model_bytes = tally_model::build::tiny_yolox("trust");
    let lm = start_market(&args, plan.checks, &model_bytes).await?;
    let client = lm.client(Signer::generate());
    let operator = lm.client(lm.operator.clone());
    operator
        .credit(
            client.signer().unwrap().account(),
            Stroops(PRICE * 64 * args.tasks as i64),
        )
        .await?;
    // Checks are paid by the bids they protect (each task's verification
    // share), then from the operator's fees: nobody credits the operator.
    let model = client.upload_model(model_bytes.clone()).await?.model;

    // The client's inputs, by address.
    let images: Vec<Vec<u8>> = (0..args.tasks).map(|i| input_png(args.seed, i)).collect();
    if plan.checks {
        golden_apart_from(&lm, &images)?;
    }

    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let fleet = spawn_fleet(&lm, &plan.kinds, &model, &args, &done, started).await?;
    let bids = post_bids(&client, &model, &args, &images).await?;
    wait_all_done(&client, &bids.ids, &args, started).await?;
    let decided_secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let mut logs = Vec::new();
    for (kind, w, handle) in fleet {
        logs.push((kind, w, handle.await?));
    }
    // Earnings settle once their tasks are public: wait out the batch.
    if plan.checks {
        tokio::time::sleep(PUBLISH_EVERY * 2).await;
    }
    tally_market::settle::settle_now(&lm.market).await?;
    // The verdicts as they stand once the fleet has stopped (a result in
    // flight at the end may have caught a worker and undone a verdict).
    let mut statuses = Vec::with_capacity(bids.ids.len());
    for id in &bids.ids {
        statuses.push(client.bid(*id).await?);
    }

    // The verdicts against the truth; results, pay and reputation per kind.
    let v = tally::verdicts(&statuses, &images, &bids.by_hash)?;
    let f = tally::fleet(&logs, &bids.by_hash).await?;
    let metrics = &lm.market.metrics;
    let counters = Counters {
        checks_issued: metrics.checks.load(Ordering::Relaxed),
        revised: metrics.revised.load(Ordering::Relaxed),
        decided_secs,
        secs: started.elapsed().as_secs_f64(),
    };
    lm.finish().await?;
    Ok(report(&args, &plan, &v, &f, &counters))
}

/// The in-process market, with spot checks from the bench's golden set when
/// `checks`.
async fn start_market(
    args: &TrustArgs,
    checks: bool,
    model_bytes: &[u8],
) -> anyhow::Result<LocalMarket> {
    LocalMarket::start("sqlite", |c| {
        c.settle_every = Duration::from_millis(500);
        c.sweep_every = Duration::from_millis(500);
        if checks {
            c.golden = golden(args.seed, model_bytes);
            c.oracle = Some(images::oracle());
            c.publish_every = PUBLISH_EVERY;
            c.check_rates = tally_market::checks::CheckRates::scaled(args.check_rate);
        }
    })
    .await
}

/// Refuse a golden image showing what a client image shows: it would let a
/// check's answer be learnt from client work, and the reverse.
fn golden_apart_from(lm: &LocalMarket, images: &[Vec<u8>]) -> anyhow::Result<()> {
    let client_pixels: std::collections::HashSet<u64> =
        images.iter().map(|b| pixels_key(b)).collect();
    if lm.market.config.golden.items.iter().any(|i| {
        client_pixels.contains(&pixels_key(&tally_market::canonical::encode_rgb(&i.pixels)))
    }) {
        bail!("a golden image has the pixels of a client input");
    }
    Ok(())
}

/// Offer the model from one new account per worker and start each one's
/// claim loop.
async fn spawn_fleet(
    lm: &LocalMarket,
    kinds: &[Kind],
    model: &Sha256Hex,
    args: &TrustArgs,
    done: &Arc<AtomicBool>,
    started: Instant,
) -> anyhow::Result<Fleet> {
    let ring: fleet::Ring = Default::default();
    let mut fleet = Vec::new();
    for (index, &kind) in kinds.iter().enumerate() {
        let w = lm.client(Signer::generate());
        w.post_offer(&OfferRequest {
            models: vec![model.clone()],
            min_price: Stroops(0),
            capacity: CAPACITY,
        })
        .await?;
        let sim = Sim {
            index: index as u64,
            kind,
            seed: args.seed,
            ring: std::sync::Arc::clone(&ring),
        };
        let handle = tokio::spawn(sim.run(w.clone(), Arc::clone(done), started));
        fleet.push((kind, w, handle));
    }
    Ok(fleet)
}

/// Bid the client's images, [`PER_BID`] to a bid.
async fn post_bids(
    client: &tally_protocol::Client,
    model: &Sha256Hex,
    args: &TrustArgs,
    images: &[Vec<u8>],
) -> anyhow::Result<Bids> {
    let mut by_hash: HashMap<Sha256Hex, usize> = HashMap::with_capacity(images.len());
    let mut ids = Vec::new();
    for (c, chunk) in images.chunks(PER_BID).enumerate() {
        let mut req = BidRequest::new(model.clone(), Stroops(PRICE));
        req.deadline_secs = args.deadline_secs;
        req.replicas = args.replicas;
        req.quorum = args.quorum;
        if let Some(m) = args.max_replicas {
            req.max_replicas = Some(m);
        }
        let created = client.bid_images(req, chunk).await.context("bid")?;
        for (j, input) in created.inputs.into_iter().enumerate() {
            by_hash.insert(input, c * PER_BID + j);
        }
        ids.push(created.bid);
    }
    if by_hash.len() != images.len() {
        bail!("two generated inputs have the same pixels");
    }
    Ok(Bids { ids, by_hash })
}

/// Wait until every bid is done at once (backtracking may re-open a bid
/// that was done), giving up [`GIVE_UP_AFTER_DEADLINE`] past the deadline.
async fn wait_all_done(
    client: &tally_protocol::Client,
    bids: &[tally_protocol::BidId],
    args: &TrustArgs,
    started: Instant,
) -> anyhow::Result<()> {
    loop {
        let mut open = 0;
        for id in bids {
            if client.bid(*id).await?.status != BidState::Done {
                open += 1;
            }
        }
        if open == 0 {
            return Ok(());
        }
        let give_up = Duration::from_secs(args.deadline_secs) + GIVE_UP_AFTER_DEADLINE;
        if started.elapsed() > give_up {
            bail!(
                "after {} s, {open} of {} bids are still open, past their deadline",
                give_up.as_secs(),
                bids.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The market's counters and the run's times, read before it stops.
struct Counters {
    checks_issued: u64,
    revised: u64,
    decided_secs: f64,
    secs: f64,
}

/// The JSON report of a run.
fn report(
    args: &TrustArgs,
    plan: &Plan,
    v: &tally::Verdicts,
    f: &tally::FleetTally,
    c: &Counters,
) -> serde_json::Value {
    let saboteurs = plan.saboteurs;
    let checks = plan.checks;
    let ratio = |n: f64, d: f64| if d > 0.0 { n / d } else { 0.0 };
    let by_kind: BTreeMap<&str, &tally::PerKind> = f
        .per_kind
        .iter()
        .map(|(kind, k)| (kind.name(), k))
        .collect();
    json!({
        "bench": "trust",
        "tasks": args.tasks,
        "workers": args.workers,
        "saboteurs": saboteurs,
        "saboteur_fraction": ratio(saboteurs as f64, args.workers as f64),
        "mix": plan.mix.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "seed": args.seed,
        "replicas": args.replicas,
        "quorum": args.quorum,
        "max_replicas": args.max_replicas,
        "deadline_secs": args.deadline_secs,
        "checks": checks,
        "check_rate": if checks { args.check_rate } else { 0.0 },
        "verified": v.verified,
        "failed": v.failed,
        "undecided": v.undecided,
        "wrong_verified": v.wrong,
        "wrong_verified_as": v.wrong_as,
        "error_rate": ratio(v.wrong as f64, v.verified as f64),
        "saboteur_paid_share": ratio(f.paid_saboteurs as f64, f.paid_all as f64),
        "saboteur_settled_share": ratio(f.settled_saboteurs as f64, f.settled_all as f64),
        "settled": f.settled_all,
        "held": f.held_all,
        "revised": c.revised,
        "results": f.results,
        "results_per_verified": ratio(f.results as f64, v.verified as f64),
        "spot_check_share": ratio(f.off_client as f64, f.results as f64),
        "checks_issued": c.checks_issued,
        "caught": f.caught,
        "honest_caught": f.honest_caught,
        "caught_seconds": f.caught_seconds,
        "paid": f.paid_all,
        "saboteur_paid": f.paid_saboteurs,
        "client_spent": v.spent,
        "spent_per_verified": ratio(v.spent as f64, v.verified as f64),
        "refused": f.refused,
        "claim_errors": f.claim_errors,
        "first_error": f.first_error,
        "by_kind": by_kind,
        "decided_seconds": c.decided_secs,
        "seconds": c.secs,
    })
}
