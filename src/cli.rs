//! The command line: one subcommand per role.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tally",
    version,
    about = "A marketplace for spare compute: priced inference bids, voted results, Stellar settlement"
)]
pub struct Cli {
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage keys (Stellar secret seeds).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Run the market (operator).
    Serve(ServeArgs),
    /// Run a worker: claim tasks, run inference, get paid.
    Work(WorkArgs),
    /// Post a bid for images (client).
    Bid(BidArgs),
    /// Run the detector locally on images.
    Detect(DetectArgs),
    /// Re-check a market's settlement records from public data (auditor).
    Audit(AuditArgs),
    /// The whole market on this machine: market, workers, client, audit.
    Demo(DemoArgs),
    /// Benchmarks.
    Bench(BenchArgs),
    /// This account's balance, reservations, earnings and reputation.
    Account(AccountArgs),
    /// Pay available balance out to this key's own account (through the
    /// next settlement record).
    Withdraw(WithdrawArgs),
    /// Review a task the workers did not agree on (a reviewer the operator
    /// has verified): show the next one, answer it.
    Review(ReviewArgs),
    /// Operator commands, signed with the operator key.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The sample model and images.
    #[command(subcommand)]
    Assets(AssetsCommand),
    /// The confined inference child a worker starts (not for people).
    #[command(name = "__infer", hide = true)]
    InferChild(InferChildArgs),
}

#[derive(Debug, Args)]
pub struct InferChildArgs {
    #[arg(long)]
    pub backend: String,
    #[arg(long)]
    pub ort_dylib: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    #[arg(long, default_value_t = 4096)]
    pub memory_mb: u64,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a key pair; print the G... address, write the S... seed (mode 0600).
    Generate {
        /// Where to write the seed; without it the seed is printed to stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the G... address of a key file (or env:VAR).
    Address { key: String },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    #[arg(long, default_value = "sqlite://tally.db", env = "TALLY_DB")]
    pub db: String,
    /// The operator's key: a file holding an S... seed, or env:VAR.
    #[arg(long)]
    pub operator_key: String,
    /// testnet, public, or a network passphrase.
    #[arg(long, default_value = "testnet")]
    pub network: String,
    /// native or CODE:ISSUER.
    #[arg(long, default_value = "native")]
    pub asset: String,
    #[arg(long, default_value_t = 250)]
    pub fee_bps: u32,
    /// How long a claim holds its slot without a heartbeat (seconds).
    #[arg(long, default_value_t = 60)]
    pub lease_secs: u64,
    /// How often earnings are batched into a settlement (e.g. 10s, 500ms, 1m).
    #[arg(long, default_value = "10s")]
    pub settle_every: String,
    #[arg(long, default_value_t = 100)]
    pub settle_max_ops: usize,
    /// Submit settlement transactions to this Horizon server.
    #[arg(long, conflicts_with = "rpc")]
    pub horizon: Option<String>,
    /// Submit settlement transactions to this Stellar RPC server.
    #[arg(long)]
    pub rpc: Option<String>,
    /// Spot checks: a private folder of models/*.onnx (one model) and
    /// images/*. Checks are fresh variants of these images, answered by the
    /// market's own confined detector; never use public images.
    #[arg(long)]
    pub golden: Option<PathBuf>,
    /// With --golden: the backend of the market's own detector.
    #[arg(long, default_value = "auto")]
    pub check_backend: tally_worker::BackendChoice,
    /// No spot check pays more than this many stroops (nor more than twice
    /// the model's recent median verified price).
    #[arg(long, default_value_t = 1_000_000)]
    pub check_price_cap: i64,
    /// What spot checks may pay one worker in 24 hours, in stroops; past
    /// it, its claims get client work only.
    #[arg(long, default_value_t = 100_000_000)]
    pub check_budget: i64,
    /// With --golden: decided tasks' evidence, and what they paid, become
    /// public in batches of this many seconds (one to two periods after the
    /// decision), so nothing tells a worker which tasks were checks.
    #[arg(long, default_value_t = 300)]
    pub publish_every_secs: u64,
    /// How often a new worker's claim gets a spot check (trusted workers:
    /// a tenth of that, and as often one more replica on a task they would
    /// decide alone).
    #[arg(long, default_value_t = 0.05)]
    pub check_rate: f64,
    /// Probation (with --golden): a worker's earnings are settled this
    /// many seconds after they were earned until it has passed enough spot
    /// checks to be trusted, so a saboteur caught meanwhile forfeits them.
    #[arg(long, default_value_t = 86_400)]
    pub holdback_secs: u64,
    /// How often the market runs `tally audit` against itself (0: never);
    /// the last report is at `GET /v1/audit` and in the console.
    #[arg(long, default_value_t = 600)]
    pub audit_every_secs: u64,
}

/// The market a command talks to and the key it signs with.
#[derive(Debug, Args)]
pub struct MarketKey {
    /// The market's address: http://HOST:PORT (a bare HOST:PORT means http://).
    #[arg(long, env = "TALLY_MARKET")]
    pub market: String,
    /// Your key (the worker's, client's, reviewer's or operator's, as the
    /// command needs): a file holding an S... seed, or env:VAR.
    #[arg(long)]
    pub key: String,
}

#[derive(Debug, Args)]
pub struct WorkArgs {
    #[command(flatten)]
    pub to: MarketKey,
    /// auto, onnxruntime or tract.
    #[arg(long, default_value = "auto")]
    pub backend: String,
    #[arg(long, default_value_t = 0)]
    pub min_price: i64,
    /// Inferences run at once.
    #[arg(long, default_value_t = 1)]
    pub capacity: u32,
    #[arg(long, default_value = "tally-models")]
    pub models_dir: PathBuf,
    /// Models to offer (sha256); by default every model the market hosts
    /// (up to --max-model-mb), fetched when first needed.
    #[arg(long = "offer")]
    pub offer: Vec<String>,
    /// The largest model to fetch and run, in MiB.
    #[arg(long, default_value_t = 64)]
    pub max_model_mb: u64,
    /// Address space of each inference child, in MiB.
    #[arg(long, default_value_t = 4096)]
    pub max_memory_mb: u64,
    /// Wall-clock seconds one inference may take before its child is stopped.
    #[arg(long, default_value_t = 120)]
    pub task_timeout_secs: u64,
    /// A model file to offer (uploaded to the market if it lacks it).
    #[arg(long)]
    pub model: Vec<PathBuf>,
    /// Threads per inference.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Answer with deliberately wrong detections (for demos of the vote).
    #[arg(long, hide = true)]
    pub faulty: bool,
    /// Stop after this many results (for tests and demos).
    #[arg(long, hide = true)]
    pub max_results: Option<u64>,
    /// On SIGINT/SIGTERM, seconds the tasks in hand may take to finish
    /// before they are handed back to the market.
    #[arg(long, default_value_t = 30)]
    pub grace_secs: u64,
    /// Wait this long after each claim, as a long job would (for tests).
    #[arg(long, hide = true)]
    pub pause_after_claim_ms: Option<u64>,
}

#[derive(Debug, Args)]
pub struct BidArgs {
    #[command(flatten)]
    pub to: MarketKey,
    /// A model file (uploaded first) or a sha256 the market knows.
    #[arg(long)]
    pub model: String,
    /// Stroops per agreeing result.
    #[arg(long)]
    pub price: i64,
    /// Replicas at first (default: 1 where the market runs spot checks and
    /// credibility decides how many more, else 3).
    #[arg(long)]
    pub replicas: Option<u32>,
    /// Agreeing results needed at least (default: 1 with spot checks, else 2).
    #[arg(long)]
    pub quorum: Option<u32>,
    #[arg(long)]
    pub max_replicas: Option<u32>,
    #[arg(long, default_value_t = 3600)]
    pub deadline_secs: u64,
    /// The credibility a verified answer must reach (markets with spot
    /// checks; 0.999 when not given).
    #[arg(long)]
    pub confidence: Option<f64>,
    /// Stroops per human review (fee included): a task the workers do not
    /// agree on goes to verified reviewers instead of failing.
    #[arg(long)]
    pub review_price: Option<i64>,
    /// Wait until every task is decided, showing progress.
    #[arg(long)]
    pub wait: bool,
    /// Write each image with its consensus boxes drawn into the folder DIR
    /// (implies --wait).
    #[arg(long)]
    pub draw: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long, default_value = "auto")]
    pub backend: String,
    #[arg(long)]
    pub json: bool,
    /// Write the image with labelled boxes to this PNG (the first image),
    /// or, given a folder (one that exists, or a path ending in /), each
    /// image into it as NAME.png.
    #[arg(long)]
    pub draw: Option<PathBuf>,
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AccountArgs {
    #[command(flatten)]
    pub to: MarketKey,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Credit a client's balance by hand (stroops).
    Credit {
        #[command(flatten)]
        to: MarketKey,
        /// The G... account to credit.
        #[arg(long)]
        account: String,
        #[arg(long)]
        amount: i64,
    },
    /// Every account's balances by book.
    Accounts(AdminListArgs),
    /// Every worker: credibility, spot checks, votes, earnings, caught or not.
    Workers(AdminListArgs),
    /// The newest bids and their progress.
    Bids(AdminListArgs),
    /// Who may review tasks the workers did not agree on (signed marks).
    #[command(subcommand)]
    Reviewers(ReviewersCommand),
}

#[derive(Debug, Subcommand)]
pub enum ReviewersCommand {
    /// Mark accounts verified to review (one signed mark each).
    Add(ReviewerMarkArgs),
    /// Take the mark back: the accounts may no longer review.
    Remove(ReviewerMarkArgs),
    /// Every account's standing and the history of marks (public).
    List(ReviewerListArgs),
}

#[derive(Debug, Args)]
pub struct ReviewerMarkArgs {
    /// The G... accounts to mark.
    #[arg(required = true)]
    pub accounts: Vec<String>,
    #[command(flatten)]
    pub to: MarketKey,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReviewerListArgs {
    /// Only these G... accounts (default: every account ever marked).
    pub accounts: Vec<String>,
    #[arg(long, env = "TALLY_MARKET")]
    pub market: String,
    /// The operator's key (not needed: the marks are public).
    #[arg(long)]
    pub key: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReviewArgs {
    #[command(flatten)]
    pub to: MarketKey,
    /// Answer with candidate N's detections (numbered from 1, as `tally
    /// review` shows them); needs --task, the task whose candidates you
    /// were shown.
    #[arg(long, conflicts_with = "detections")]
    pub pick: Option<usize>,
    /// The task you answer for: the answer is sent only if the review in
    /// your hands is of this task (required with --pick).
    #[arg(long)]
    pub task: Option<i64>,
    /// Answer with the detections in this JSON file: an array of
    /// detections (as `tally detect --json` prints them per image), or an
    /// object with a "detections" array.
    #[arg(long)]
    pub detections: Option<PathBuf>,
    /// Write the task's image with each candidate's boxes drawn into DIR
    /// (candidate-N.png, N from 1) and the image itself (image.*).
    #[arg(long)]
    pub draw: Option<PathBuf>,
    /// Wait up to this many seconds (at most 60) for a task to want a
    /// reviewer, instead of saying "nothing to review" at once.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=60))]
    pub wait: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AdminListArgs {
    #[command(flatten)]
    pub to: MarketKey,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct WithdrawArgs {
    #[command(flatten)]
    pub to: MarketKey,
    /// Stroops of the available balance to pay out to this key's account.
    #[arg(long)]
    pub amount: i64,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[arg(long, env = "TALLY_MARKET")]
    pub market: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    #[arg(long, default_value_t = 1)]
    pub faulty: usize,
    /// Human review instead: one honest and one faulty worker disagree on
    /// every image, and two scripted reviewers decide (--workers and
    /// --faulty do not apply).
    #[arg(long)]
    pub review: bool,
    #[arg(long)]
    pub json: bool,
    #[arg(long, default_value = "auto")]
    pub backend: String,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub which: BenchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Verified tasks per second end to end, workers returning fixed detections.
    Market {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "sqlite")]
        db: String,
        #[arg(long, default_value_t = 2000)]
        tasks: usize,
        #[arg(long, default_value_t = 12)]
        workers: usize,
        /// Run N `tally serve` processes on one database (PostgreSQL for
        /// N > 1) with the workers and clients spread over them; without it
        /// the market runs inside the benchmark's own process.
        #[arg(long)]
        markets: Option<usize>,
    },
    /// Claim latency with many long-polling workers.
    Claims {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 1000)]
        workers: usize,
        #[arg(long, default_value_t = 50)]
        bids: usize,
        /// Run N `tally serve` processes on one database (PostgreSQL for
        /// N > 1), workers spread over them, bids placed in each in turn.
        #[arg(long)]
        markets: Option<usize>,
        #[arg(long, default_value = "sqlite")]
        db: String,
    },
    /// Inference latency per image.
    Inference {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "auto")]
        backend: String,
        #[arg(long, default_value_t = 30)]
        iterations: usize,
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Settlement transactions built, signed and encoded per second.
    Settle {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 200)]
        txs: usize,
    },
    /// Image to verified answer, one bid at a time, real workers.
    Latency {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 3)]
        workers: usize,
        #[arg(long, default_value_t = 30)]
        bids: usize,
        #[arg(long, default_value = "auto")]
        backend: String,
    },
    /// Wrong answers verified and saboteurs paid, against simulated fleets.
    Trust {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 300)]
        tasks: usize,
        #[arg(long, default_value_t = 12)]
        workers: usize,
        /// Fraction of the workers that are saboteurs (rounded to a count).
        #[arg(long, default_value_t = 0.4)]
        saboteurs: f64,
        /// Saboteur kinds, assigned round-robin: random, lazy, colluding,
        /// farming, intermittent, aware (recognises what can be recognised).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "random,lazy,colluding,farming,intermittent,aware"
        )]
        mix: Vec<String>,
        /// Bid fields; the bid's defaults when absent.
        #[arg(long)]
        replicas: Option<u32>,
        #[arg(long)]
        quorum: Option<u32>,
        #[arg(long)]
        max_replicas: Option<u32>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Spot checks from a golden set of the bench's own images (the
        /// default).
        #[arg(long, overrides_with = "no_checks")]
        checks: bool,
        /// No spot checks.
        #[arg(long, overrides_with = "checks")]
        no_checks: bool,
        /// Share of claimed tasks that are spot checks for new workers
        /// (trusted workers get a tenth of it, and a tenth re-runs); 0
        /// turns checks off.
        #[arg(long, default_value_t = 0.05)]
        check_rate: f64,
        /// Seconds the bids allow; tasks still unfinished then fail.
        #[arg(long, default_value_t = 300)]
        deadline: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum AssetsCommand {
    /// Where the assets are, or how to get them.
    Where,
    /// Download the official model and verify its sha256 (needs internet).
    Fetch {
        #[arg(long, default_value = "tally-assets")]
        dir: PathBuf,
    },
}
