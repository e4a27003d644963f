//! What `tally serve` is told: database, operator key, money rules, limits.

use std::time::Duration;

use tally_protocol::Signer;

/// Size limits on what clients may send.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_model_bytes: usize,
    /// A whole bid request, images included.
    pub max_bid_bytes: usize,
    /// Any other request body.
    pub max_body_bytes: usize,
    /// One image, encoded.
    pub max_image_bytes: usize,
    /// One image, decoded (width x height).
    pub max_image_pixels: u64,
    pub max_inputs: usize,
    pub max_replicas: u32,
    pub max_detections: usize,
    /// Bodies above `max_body_bytes` stream in only while their sizes fit
    /// in this budget together (the rest wait, then get 503).
    pub upload_budget_bytes: usize,
    /// How long a large body waits for its share of the budget.
    pub upload_wait: Duration,
    /// A body must arrive at this many bytes per second or faster...
    pub body_min_rate: u64,
    /// ...after this grace (else 408).
    pub body_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_model_bytes: 64 << 20,
            max_bid_bytes: 48 << 20,
            max_body_bytes: 1 << 20,
            max_image_bytes: 16 << 20,
            max_image_pixels: 50_000_000,
            max_inputs: 256,
            max_replicas: 16,
            max_detections: 1000,
            upload_budget_bytes: 128 << 20,
            upload_wait: Duration::from_secs(5),
            body_min_rate: 64 << 10,
            body_grace: Duration::from_secs(5),
        }
    }
}

/// The market's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite://path` or `postgres://...`.
    pub db_url: String,
    /// Signs settlement transactions and admin requests; never stored.
    pub operator: Signer,
    /// Network passphrase.
    pub network: String,
    /// `native` or `CODE:ISSUER`.
    pub asset: String,
    /// Market fee in basis points of each paid result.
    pub fee_bps: u32,
    /// How long a claim holds its replica slot without a heartbeat.
    pub lease: Duration,
    /// How often expired leases and past-deadline bids are swept.
    pub sweep_every: Duration,
    /// How often earnings are batched into a settlement transaction.
    pub settle_every: Duration,
    /// Payment operations per settlement transaction (at most 100).
    pub settle_max_ops: usize,
    /// Horizon URL to submit settlement transactions to.
    pub horizon: Option<String>,
    /// Stellar RPC URL to submit settlement transactions to.
    pub rpc: Option<String>,
    pub limits: Limits,
    /// Known answers for spot checks (`--golden DIR`); empty: no checks.
    pub golden: crate::golden::Golden,
    pub check_rates: crate::golden::CheckRates,
    /// The market's own detector, which answers the checks it makes; the
    /// golden set needs one.
    pub oracle: Option<crate::golden::OracleRef>,
    /// No check pays more than this (nor more than twice the model's
    /// recent median verified price), whatever the task it displaces pays.
    pub check_price_cap: tally_protocol::Stroops,
    /// What checks may pay one worker in 24 hours; past it, its claims get
    /// client work only until the window moves on.
    pub check_budget: tally_protocol::Stroops,
    /// Where spot checks run, decided tasks are published in batches of
    /// this period (`publish.rs`); zero: at once.
    pub publish_every: Duration,
    /// Probation: where the market runs spot checks, earnings of a worker
    /// not yet trusted (fewer than `check_rates.trusted_after` passed
    /// checks) are settled only this long after they were earned, so a
    /// saboteur caught meanwhile forfeits them.
    pub holdback: Duration,
    /// With `horizon` (or `rpc`), how often deposits into the operator's
    /// account are looked for (a full page is followed at once).
    pub deposit_poll: Duration,
}

impl Config {
    /// Whether settlement transactions are submitted to the network
    /// (`--horizon` or `--rpc`). Without, records are written and signed
    /// but nothing is paid on the network.
    pub fn submits(&self) -> bool {
        self.horizon.is_some() || self.rpc.is_some()
    }

    /// The market every signature it takes must be bound to.
    pub fn domain(&self) -> tally_protocol::Domain {
        tally_protocol::Domain::new(self.network.clone(), self.operator.account().clone())
    }

    /// A configuration with the documented defaults.
    pub fn new(db_url: &str, operator: Signer) -> Self {
        Config {
            db_url: db_url.to_string(),
            operator,
            network: "Test SDF Network ; September 2015".to_string(),
            asset: "native".to_string(),
            fee_bps: 250,
            lease: Duration::from_secs(60),
            sweep_every: Duration::from_millis(500),
            settle_every: Duration::from_secs(10),
            settle_max_ops: 100,
            horizon: None,
            rpc: None,
            limits: Limits::default(),
            golden: crate::golden::Golden::default(),
            check_rates: crate::golden::CheckRates::default(),
            oracle: None,
            check_price_cap: tally_protocol::Stroops(1_000_000),
            check_budget: tally_protocol::Stroops(100_000_000),
            publish_every: Duration::from_secs(300),
            holdback: Duration::from_secs(24 * 3600),
            deposit_poll: Duration::from_secs(5),
        }
    }
}
