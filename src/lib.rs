//! The `tally` application: one binary for every party of the market.
//!
//! - [`cli`]: the command line (clap), one subcommand per role.
//! - [`cmd`]: what each subcommand does: `keys`, `serve`, `work`, `bid`,
//!   `detect`, `audit`, `review`, `demo`, `bench`, `assets`.
//! - [`assets`]: where the sample model and images are, and how to get them.
//! - [`local`]: a market on this machine, for the demo and the benchmarks.
//! - [`oracle`]: the market's own confined detector, which answers its spot checks.
//! - [`audit`]: the auditor's checks of a market, from its public endpoints
//!   alone (human reviews included).
//!
//! The crates do the work: `tally-protocol` (wire, signing, vote),
//! `tally-market` (the server), `tally-worker` (inference, claim loop),
//! `tally-settlement` (Stellar transactions and records).

pub mod assets;
pub mod audit;
pub mod cli;
pub mod cmd;
pub mod local;
pub mod oracle;
