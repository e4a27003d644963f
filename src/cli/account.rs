//! `tally account` and `tally review`: an account's view, the operator's admin commands and a reviewer's.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::MarketKey;

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
