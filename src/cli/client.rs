//! `tally bid`, `tally withdraw` and `tally audit`: a client's flags, and an auditor's.

use std::path::PathBuf;

use clap::Args;

use super::MarketKey;

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
