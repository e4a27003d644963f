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
    pub golden: crate::checks::Golden,
    pub check_rates: crate::checks::CheckRates,
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
            golden: crate::checks::Golden::default(),
            check_rates: crate::checks::CheckRates::default(),
            holdback: Duration::from_secs(24 * 3600),
            deposit_poll: Duration::from_secs(5),
        }
    }
}
