//! `tally demo` and `tally bench`: the whole market on this machine, shown or measured.

use clap::{Args, Subcommand};

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
