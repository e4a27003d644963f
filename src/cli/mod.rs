//! The command line: one subcommand per role, the flags of each group of
//! commands in a file of its own (the market's, a worker's, a client's, an
//! account's, the demo's and benches').

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod account;
mod bench;
mod client;
mod market;
mod worker;

pub use account::{
    AccountArgs, AdminCommand, AdminListArgs, ReviewArgs, ReviewerListArgs, ReviewerMarkArgs,
    ReviewersCommand,
};
pub use bench::{BenchArgs, BenchCommand, DemoArgs};
pub use client::{AuditArgs, BidArgs, WithdrawArgs};
pub use market::ServeArgs;
pub use worker::{DetectArgs, WorkArgs};

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
