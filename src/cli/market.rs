//! `tally serve`: the market's flags.

use std::path::PathBuf;

use clap::Args;

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
