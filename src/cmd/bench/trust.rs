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

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;
use tally_protocol::vote::{agrees, VoteParams};
use tally_protocol::wire::{
    Assignment, BidRequest, BidState, OfferRequest, ResultRequest, TaskState,
};
use tally_protocol::{Client, Detection, Sha256Hex, Signer, Stroops};

use crate::local::LocalMarket;

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
    /// The market's check rate for new workers (trusted ones get a fifth).
    pub check_rate: f64,
    /// The bids' deadline: tasks still unfinished then fail.
    pub deadline_secs: u64,
}

/// Side of the square input images, in pixels.
pub const IMAGE_SIDE: u32 = 64;
/// Stroops per agreeing result.
const PRICE: i64 = 100;
/// Tasks per bid.
const PER_BID: usize = 50;
/// Assignments a simulated worker holds at once (its offer's capacity).
const CAPACITY: u32 = 4;
/// Results a farming saboteur answers honestly before it starts lying.
const FARMING_HONEST: u64 = 15;
/// Share of its tasks (in percent) an intermittent saboteur lies on.
const INTERMITTENT_PERCENT: u64 = 30;
/// Images in the golden set of spot checks.
pub const GOLDEN_ITEMS: usize = 20;
/// Golden image `j` is generated as input `GOLDEN_BASE + j`: never a client's.
const GOLDEN_BASE: usize = 1 << 30;
/// The bench gives up when the bids are not all done this long after their
/// deadline (the market fails what is left at the deadline).
const GIVE_UP_AFTER_DEADLINE: Duration = Duration::from_secs(60);

/// What a simulated worker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Honest,
    /// 1-3 random boxes, random classes and scores.
    Random,
    /// Always the empty list.
    Lazy,
    /// The same wrong answer as every other colluder: [`colluding`].
    Colluding,
    /// Honest for its first [`FARMING_HONEST`] results, then colluding.
    Farming,
    /// Colluding on a seeded [`INTERMITTENT_PERCENT`] of its tasks.
    Intermittent,
}

impl Kind {
    fn parse(s: &str) -> anyhow::Result<Kind> {
        Ok(match s.trim() {
            "random" => Kind::Random,
            "lazy" => Kind::Lazy,
            "colluding" => Kind::Colluding,
            "farming" => Kind::Farming,
            "intermittent" => Kind::Intermittent,
            other => bail!(
                "--mix: {other:?} is not a saboteur kind (random, lazy, colluding, farming, intermittent)"
            ),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Honest => "honest",
            Kind::Random => "random",
            Kind::Lazy => "lazy",
            Kind::Colluding => "colluding",
            Kind::Farming => "farming",
            Kind::Intermittent => "intermittent",
        }
    }
}

/// How one assignment is answered.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Honest,
    Colluding,
    Random,
    Lazy,
}

/// SplitMix64: small, seedable, good enough for a simulation.
struct Rng(u64);

impl Rng {
    /// A generator seeded from several numbers.
    fn new(parts: &[u64]) -> Rng {
        let mut r = Rng(0x7a11_7a11_7a11_7a11);
        for &p in parts {
            r.0 ^= p;
            r.next();
        }
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

/// The first 64 bits of a sha256, as a number.
fn key(h: &Sha256Hex) -> u64 {
    u64::from_str_radix(&h.as_str()[..16], 16).expect("a sha256 is hex")
}

fn detection(class_id: u32, score: f64, bbox: [f64; 4]) -> Detection {
    Detection {
        class_id,
        label: tally_protocol::labels::label(class_id).to_string(),
        score,
        bbox,
    }
}

/// What an image shows, as a number: the first 64 bits of the sha256 of its
/// size and decoded RGB pixels, so the same picture in other bytes (a spot
/// check's variant) is the same image. Bytes that are no image: their sha256.
fn pixels_key(bytes: &[u8]) -> u64 {
    match image::load_from_memory(bytes) {
        Ok(img) => {
            let rgb = img.into_rgb8();
            let mut buf = Vec::with_capacity(8 + rgb.as_raw().len());
            buf.extend_from_slice(&rgb.width().to_le_bytes());
            buf.extend_from_slice(&rgb.height().to_le_bytes());
            buf.extend_from_slice(rgb.as_raw());
            key(&Sha256Hex::of(&buf))
        }
        Err(_) => key(&Sha256Hex::of(bytes)),
    }
}

/// The right detections of an image: 1-3 objects of distinct classes, boxes
/// 12-30 px inside the [`IMAGE_SIDE`] square, scores 0.5-0.95; a pure
/// function of the image's decoded pixels ([`pixels_key`]). The bench's
/// golden set of spot checks is answered with it.
pub fn truth(bytes: &[u8]) -> Vec<Detection> {
    let mut r = Rng::new(&[pixels_key(bytes)]);
    let side = f64::from(IMAGE_SIDE);
    let n = 1 + r.below(3) as usize;
    let mut classes: Vec<u32> = Vec::with_capacity(n);
    while classes.len() < n {
        let c = r.below(80) as u32;
        if !classes.contains(&c) {
            classes.push(c);
        }
    }
    classes
        .into_iter()
        .map(|c| {
            let (w, h) = (r.range(12.0, 30.0), r.range(12.0, 30.0));
            let (x, y) = (r.range(0.0, side - w), r.range(0.0, side - h));
            detection(c, r.range(0.5, 0.95), [x, y, x + w, y + h])
        })
        .collect()
}

/// The colluders' shared wrong answer: the truth with every class shifted
/// by one and every box moved 20 px sideways (kept inside the image).
fn colluding(bytes: &[u8]) -> Vec<Detection> {
    let side = f64::from(IMAGE_SIDE);
    truth(bytes)
        .into_iter()
        .map(|d| {
            let dx = if d.bbox[2] + 20.0 <= side {
                20.0
            } else {
                -20.0
            };
            let [x1, y1, x2, y2] = d.bbox;
            let bbox = [
                (x1 + dx).clamp(0.0, side),
                y1,
                (x2 + dx).clamp(0.0, side),
                y2,
            ];
            detection((d.class_id + 1) % 80, d.score, bbox)
        })
        .collect()
}

/// The truth as one honest worker reports it: ±0.5 px and ±0.005 of noise.
fn honest(bytes: &[u8], r: &mut Rng) -> Vec<Detection> {
    let side = f64::from(IMAGE_SIDE);
    truth(bytes)
        .into_iter()
        .map(|d| {
            let bbox = d.bbox.map(|v| (v + r.range(-0.5, 0.5)).clamp(0.0, side));
            detection(d.class_id, d.score + r.range(-0.005, 0.005), bbox)
        })
        .collect()
}

/// 1-3 random boxes with random classes and scores.
fn random(r: &mut Rng) -> Vec<Detection> {
    let side = f64::from(IMAGE_SIDE);
    (0..1 + r.below(3))
        .map(|_| {
            let (w, h) = (r.range(4.0, 40.0), r.range(4.0, 40.0));
            let (x, y) = (r.range(0.0, side - w), r.range(0.0, side - h));
            detection(r.below(80) as u32, r.range(0.4, 0.99), [x, y, x + w, y + h])
        })
        .collect()
}

/// Input `i` of the client: a PNG of [`IMAGE_SIDE`] square, a gradient in
/// seeded colours, with `i` and the seed written into its first row so that
/// every input is distinct bytes.
fn input_png(seed: u64, i: usize) -> Vec<u8> {
    let mut r = Rng::new(&[seed, i as u64, 0x1a9e]);
    let (a, b) = (
        [r.below(256), r.below(256), r.below(256)],
        [r.below(256), r.below(256), r.below(256)],
    );
    let tag: Vec<u8> = (i as u64)
        .to_le_bytes()
        .into_iter()
        .chain(seed.to_le_bytes())
        .collect();
    let side = IMAGE_SIDE;
    let img = image::RgbImage::from_fn(side, side, |x, y| {
        if y == 0 && (x as usize) < tag.len() {
            let t = tag[x as usize];
            return image::Rgb([t, t, t]);
        }
        let t = u64::from(x + y);
        let mix = |k: usize| {
            ((a[k] * (2 * u64::from(side) - t) + b[k] * t) / (2 * u64::from(side))) as u8
        };
        image::Rgb([mix(0), mix(1), mix(2)])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png encodes");
    out.into_inner()
}

/// The golden set of spot checks for `model`: [`GOLDEN_ITEMS`] generated
/// images that are none of the client's, each with its [`truth`].
fn golden(seed: u64, model: &[u8]) -> tally_market::checks::Golden {
    let hash = Sha256Hex::of(model);
    let items = (0..GOLDEN_ITEMS)
        .map(|j| {
            let bytes = input_png(seed, GOLDEN_BASE + j);
            tally_market::checks::GoldenItem {
                model: hash.clone(),
                name: format!("golden-{j}"),
                reference: truth(&bytes),
                bytes,
                width: IMAGE_SIDE,
                height: IMAGE_SIDE,
            }
        })
        .collect();
    tally_market::checks::Golden {
        models: vec![model.to_vec()],
        items,
    }
}

/// Whether the market answered 403: this worker was caught by a spot check.
fn is_forbidden(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<tally_protocol::Error>(),
            Some(tally_protocol::Error::Api { status: 403, .. })
        )
    })
}

/// What a simulated worker did.
#[derive(Debug, Default)]
struct WorkerLog {
    /// The input of each result the market accepted.
    inputs: Vec<Sha256Hex>,
    /// Results or input fetches the market refused.
    refused: u64,
    claim_errors: u64,
    first_error: Option<String>,
    /// Seconds into the run when the market first answered this worker 403
    /// (caught by a spot check); it stopped then.
    caught_at: Option<f64>,
}

/// One simulated worker.
struct Sim {
    index: u64,
    kind: Kind,
    seed: u64,
}

impl Sim {
    /// How the `n`th assignment this worker takes (from 0) is answered.
    fn answer(&self, n: u64, a: &Assignment) -> Answer {
        match self.kind {
            Kind::Honest => Answer::Honest,
            Kind::Random => Answer::Random,
            Kind::Lazy => Answer::Lazy,
            Kind::Colluding => Answer::Colluding,
            Kind::Farming if n < FARMING_HONEST => Answer::Honest,
            Kind::Farming => Answer::Colluding,
            Kind::Intermittent => {
                let mut r = Rng::new(&[self.seed, self.index, key(&a.input), 0x1e]);
                if r.below(100) < INTERMITTENT_PERCENT {
                    Answer::Colluding
                } else {
                    Answer::Honest
                }
            }
        }
    }

    /// Answer one assignment: fetch the input when the answer needs it,
    /// compute (honest answers take 20-60 ms), submit.
    async fn handle(&self, w: &Client, a: &Assignment, answer: Answer) -> anyhow::Result<()> {
        let mut r = Rng::new(&[self.seed, self.index, a.assignment.0 as u64]);
        let (detections, elapsed_ms) = match answer {
            Answer::Lazy => (vec![], 0.0),
            Answer::Random => (random(&mut r), 0.0),
            Answer::Colluding => {
                let bytes = w.input(&a.input).await.context("input")?;
                (colluding(&bytes), 0.0)
            }
            Answer::Honest => {
                let bytes = w.input(&a.input).await.context("input")?;
                let ms = 20 + r.below(41);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                (honest(&bytes, &mut r), ms as f64)
            }
        };
        w.submit_result(
            a.assignment,
            &ResultRequest {
                detections,
                elapsed_ms,
            },
        )
        .await
        .context("result")?;
        Ok(())
    }

    /// Claim and answer until `done`, or until the market refuses this
    /// worker (403: caught by a spot check).
    async fn run(self, w: Client, done: Arc<AtomicBool>, started: Instant) -> WorkerLog {
        let mut log = WorkerLog::default();
        let mut taken = 0u64;
        while !done.load(Ordering::Relaxed) && log.caught_at.is_none() {
            let got = match w.claim(CAPACITY, 200).await {
                Ok(got) => got,
                Err(tally_protocol::Error::Api { status: 403, .. }) => {
                    log.caught_at = Some(started.elapsed().as_secs_f64());
                    break;
                }
                Err(e) => {
                    log.claim_errors += 1;
                    log.first_error.get_or_insert_with(|| format!("claim: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (sim, w) = (&self, &w);
            let jobs = got.assignments.iter().map(|a| {
                let answer = sim.answer(taken, a);
                taken += 1;
                async move { (a, sim.handle(w, a, answer).await) }
            });
            for (a, outcome) in futures::future::join_all(jobs).await {
                match outcome {
                    Ok(()) => log.inputs.push(a.input.clone()),
                    Err(e) if is_forbidden(&e) => {
                        log.caught_at
                            .get_or_insert_with(|| started.elapsed().as_secs_f64());
                    }
                    Err(e) => {
                        log.refused += 1;
                        log.first_error
                            .get_or_insert_with(|| format!("assignment {}: {e:#}", a.assignment));
                    }
                }
            }
        }
        log
    }
}

/// Run the bench; the JSON report.
pub async fn run(args: TrustArgs) -> anyhow::Result<serde_json::Value> {
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

    let model_bytes = tally_model::build::tiny_yolox("trust");
    let lm = LocalMarket::start("sqlite", |c| {
        c.settle_every = Duration::from_millis(500);
        c.sweep_every = Duration::from_millis(500);
        if checks {
            c.golden = golden(args.seed, &model_bytes);
            c.check_rates = tally_market::checks::CheckRates {
                new: args.check_rate,
                trusted: args.check_rate / 5.0,
                ..tally_market::checks::CheckRates::default()
            };
        }
    })
    .await?;
    let client = lm.client(Signer::generate());
    let operator = lm.client(lm.operator.clone());
    operator
        .credit(
            client.signer().unwrap().account(),
            Stroops(PRICE * 64 * args.tasks as i64),
        )
        .await?;
    if checks {
        // Checks are paid from the operator's fees, and from its own balance
        // while the fees fall short (they do at first): more than enough for
        // many checks per client task.
        operator
            .credit(
                lm.operator.account(),
                Stroops(PRICE * 16 * args.tasks as i64),
            )
            .await?;
    }
    let model = client.upload_model(model_bytes.clone()).await?.model;

    // The client's inputs, by address.
    let images: Vec<Vec<u8>> = (0..args.tasks).map(|i| input_png(args.seed, i)).collect();
    let by_hash: HashMap<Sha256Hex, usize> = images
        .iter()
        .enumerate()
        .map(|(i, b)| (Sha256Hex::of(b), i))
        .collect();
    if by_hash.len() != images.len() {
        bail!("two generated inputs have the same bytes");
    }
    if checks {
        // A golden image showing what a client image shows would let a
        // check's answer be learnt from client work, and the reverse.
        let client_pixels: std::collections::HashSet<u64> =
            images.iter().map(|b| pixels_key(b)).collect();
        if lm
            .market
            .config
            .golden
            .items
            .iter()
            .any(|i| client_pixels.contains(&pixels_key(&i.bytes)))
        {
            bail!("a golden image has the pixels of a client input");
        }
    }

    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
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
        };
        let handle = tokio::spawn(sim.run(w.clone(), Arc::clone(&done), started));
        fleet.push((kind, w, handle));
    }

    let mut bids = Vec::new();
    for chunk in images.chunks(PER_BID) {
        let mut req = BidRequest::new(model.clone(), Stroops(PRICE));
        req.deadline_secs = args.deadline_secs;
        if let Some(r) = args.replicas {
            req.replicas = r;
        }
        if let Some(q) = args.quorum {
            req.quorum = q;
        }
        if let Some(m) = args.max_replicas {
            req.max_replicas = Some(m);
        }
        bids.push(client.bid_images(req, chunk).await.context("bid")?.bid);
    }

    // Wait until every bid is done.
    let mut statuses = Vec::with_capacity(bids.len());
    let mut open = bids.clone();
    loop {
        let mut still = Vec::new();
        for id in open {
            let s = client.bid(id).await?;
            if s.status == BidState::Done {
                statuses.push(s);
            } else {
                still.push(id);
            }
        }
        open = still;
        if open.is_empty() {
            break;
        }
        let give_up = Duration::from_secs(args.deadline_secs) + GIVE_UP_AFTER_DEADLINE;
        if started.elapsed() > give_up {
            bail!(
                "after {} s, {} of {} bids are still open, past their deadline",
                give_up.as_secs(),
                open.len(),
                bids.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let decided_secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let mut logs = Vec::new();
    for (kind, w, handle) in fleet {
        logs.push((kind, w, handle.await?));
    }
    tally_market::settle::settle_now(&lm.market).await?;

    // The verdicts against the truth.
    let params = VoteParams::default();
    let (mut verified, mut failed, mut undecided, mut wrong) = (0u64, 0u64, 0u64, 0u64);
    let mut wrong_as: BTreeMap<&str, u64> = BTreeMap::new();
    let mut spent = 0i64;
    for s in &statuses {
        spent += s.spent.0;
        for t in &s.tasks {
            match t.status {
                TaskState::Verified => verified += 1,
                TaskState::Failed => {
                    failed += 1;
                    continue;
                }
                _ => {
                    undecided += 1;
                    continue;
                }
            }
            let i = *by_hash
                .get(&t.input)
                .with_context(|| format!("task {} has an input the client never sent", t.task))?;
            let consensus = t.consensus.clone().unwrap_or_default();
            if !agrees(&params, &truth(&images[i]), &consensus) {
                wrong += 1;
                let like = if consensus.is_empty() {
                    "empty"
                } else if agrees(&params, &colluding(&images[i]), &consensus) {
                    "colluding"
                } else {
                    "other"
                };
                *wrong_as.entry(like).or_default() += 1;
            }
        }
    }

    // Results, pay and reputation per kind.
    #[derive(Default)]
    struct PerKind {
        workers: u64,
        results: u64,
        agreed: u64,
        disagreed: u64,
        paid: i64,
        checks_passed: u64,
        checks_failed: u64,
        caught: u64,
    }
    let mut per_kind: BTreeMap<Kind, PerKind> = BTreeMap::new();
    let (mut results, mut off_client, mut refused, mut claim_errors) = (0u64, 0u64, 0u64, 0u64);
    let (mut paid_all, mut paid_saboteurs) = (0i64, 0i64);
    let mut first_error = None;
    let (mut caught, mut honest_caught) = (0u64, 0u64);
    let mut caught_seconds: Vec<f64> = Vec::new();
    for (kind, w, log) in &logs {
        let me = w.account_me().await?;
        let paid = me.earned_unpaid.0 + me.paid_total.0;
        let is_caught = log.caught_at.is_some() || me.checks.failed > 0;
        let k = per_kind.entry(*kind).or_default();
        k.workers += 1;
        k.results += log.inputs.len() as u64;
        k.agreed += me.reputation.agreed;
        k.disagreed += me.reputation.disagreed;
        k.paid += paid;
        k.checks_passed += me.checks.passed;
        k.checks_failed += me.checks.failed;
        if is_caught {
            k.caught += 1;
            if *kind == Kind::Honest {
                honest_caught += 1;
            } else {
                caught += 1;
                caught_seconds.extend(log.caught_at);
            }
        }
        results += log.inputs.len() as u64;
        off_client += log
            .inputs
            .iter()
            .filter(|h| !by_hash.contains_key(*h))
            .count() as u64;
        refused += log.refused;
        claim_errors += log.claim_errors;
        if first_error.is_none() {
            first_error.clone_from(&log.first_error);
        }
        paid_all += paid;
        if *kind != Kind::Honest {
            paid_saboteurs += paid;
        }
    }
    caught_seconds.sort_by(f64::total_cmp);
    let checks_issued = lm
        .market
        .metrics
        .checks
        .load(std::sync::atomic::Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    lm.stop();

    let ratio = |n: f64, d: f64| if d > 0.0 { n / d } else { 0.0 };
    let by_kind: serde_json::Map<String, serde_json::Value> = per_kind
        .iter()
        .map(|(kind, k)| {
            (
                kind.name().to_string(),
                json!({
                    "workers": k.workers,
                    "results": k.results,
                    "agreed": k.agreed,
                    "disagreed": k.disagreed,
                    "paid": k.paid,
                    "checks_passed": k.checks_passed,
                    "checks_failed": k.checks_failed,
                    "caught": k.caught,
                }),
            )
        })
        .collect();
    Ok(json!({
        "bench": "trust",
        "tasks": args.tasks,
        "workers": args.workers,
        "saboteurs": saboteurs,
        "saboteur_fraction": ratio(saboteurs as f64, args.workers as f64),
        "mix": mix.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "seed": args.seed,
        "replicas": args.replicas,
        "quorum": args.quorum,
        "max_replicas": args.max_replicas,
        "deadline_secs": args.deadline_secs,
        "checks": checks,
        "check_rate": if checks { args.check_rate } else { 0.0 },
        "verified": verified,
        "failed": failed,
        "undecided": undecided,
        "wrong_verified": wrong,
        "wrong_verified_as": wrong_as,
        "error_rate": ratio(wrong as f64, verified as f64),
        "saboteur_paid_share": ratio(paid_saboteurs as f64, paid_all as f64),
        "results": results,
        "results_per_verified": ratio(results as f64, verified as f64),
        "spot_check_share": ratio(off_client as f64, results as f64),
        "checks_issued": checks_issued,
        "caught": caught,
        "honest_caught": honest_caught,
        "caught_seconds": caught_seconds,
        "paid": paid_all,
        "saboteur_paid": paid_saboteurs,
        "client_spent": spent,
        "spent_per_verified": ratio(spent as f64, verified as f64),
        "refused": refused,
        "claim_errors": claim_errors,
        "first_error": first_error,
        "by_kind": by_kind,
        "decided_seconds": decided_secs,
        "seconds": secs,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn honest_answers_agree_with_the_truth_and_sabotage_does_not() {
        let p = VoteParams::default();
        for i in 0..200 {
            let png = input_png(7, i);
            let t = truth(&png);
            assert!((1..=3).contains(&t.len()));
            assert_eq!(t, truth(&png), "the truth is deterministic");
            let check = tally_market::checks::variant(&png);
            assert_ne!(check, png);
            assert_eq!(t, truth(&check), "the truth is a function of the pixels");
            assert_eq!(colluding(&check), colluding(&png));
            let mut r = Rng::new(&[i as u64]);
            assert!(agrees(&p, &t, &honest(&png, &mut r)));
            assert!(!agrees(&p, &t, &colluding(&png)));
            assert!(!agrees(&p, &t, &[]));
            assert!(agrees(&p, &colluding(&png), &colluding(&png)));
        }
    }

    #[test]
    fn inputs_are_distinct_valid_images() {
        let a = input_png(1, 0);
        assert_ne!(a, input_png(1, 1));
        assert_ne!(a, input_png(2, 0));
        let img = image::load_from_memory(&a).unwrap();
        assert_eq!((img.width(), img.height()), (IMAGE_SIDE, IMAGE_SIDE));
    }

    #[test]
    fn the_golden_set_is_none_of_the_clients_inputs_and_knows_the_truth() {
        let model = b"model".to_vec();
        let g = golden(3, &model);
        assert_eq!(g.models, vec![model.clone()]);
        assert_eq!(g.items.len(), GOLDEN_ITEMS);
        let clients: std::collections::HashSet<u64> =
            (0..1000).map(|i| pixels_key(&input_png(3, i))).collect();
        for item in &g.items {
            assert_eq!(item.model, Sha256Hex::of(&model));
            assert!(!clients.contains(&pixels_key(&item.bytes)));
            assert_eq!(item.reference, truth(&item.bytes));
            let img = image::load_from_memory(&item.bytes).unwrap();
            assert_eq!((img.width(), img.height()), (item.width, item.height));
        }
    }
}
