//! The Tally market: clients bid, workers claim, the vote decides, the
//! ledger pays, settlement batches go out on Stellar.
//!
//! Layers, each using only its own and those below (`tests/layers.rs`
//! checks it):
//!
//! 1. the base, here: [`error`], [`config`], [`golden`], [`lifecycle`],
//!    [`canonical`], [`wake`];
//! 2. [`store`] (with [`state`], the shared handle and the clock): [`db`],
//!    [`ledger`], [`task`], [`nonces`], [`events`];
//! 3. [`rules`]: [`bids`], [`checks`], [`claims`], [`results`], [`review`],
//!    [`decide`], [`payment`], [`sweep`], [`publish`], [`withdrawals`],
//!    [`admin`]; and [`chain`]: [`settle`], [`deposits`];
//! 4. [`http`]: [`api`], [`auth`], [`views`], [`openapi`], [`console`];
//! 5. [`server`]: start-up, background jobs, graceful shutdown.
//!
//! - [`state`]: the shared handle ([`Market`]: database, configuration,
//!   wake-ups, counters) and the clock.
//! - [`config`]: what `tally serve` is told: database, operator key, fees,
//!   limits.
//! - [`error`]: the one error type, and the status and code each is
//!   answered with.
//! - [`golden`]: what spot checks are configured with: the golden set, the
//!   market's own detector, the rates.
//! - [`lifecycle`]: task and assignment states and their one transition check.
//! - [`canonical`]: the one encoding every input is served in, whatever was
//!   uploaded.
//! - [`wake`]: waiting claims, woken only as many as new work has slots.
//!
//! Every module is also reachable from the root (`tally_market::db`, ...).

pub mod canonical;
pub mod chain;
pub mod config;
pub mod error;
pub mod golden;
pub mod http;
pub mod lifecycle;
pub mod rules;
pub mod server;
pub mod state;
pub mod store;
pub mod wake;

pub use chain::{deposits, settle};
pub use http::{api, auth, console, openapi, views};
pub use rules::{
    admin, bids, checks, claims, decide, payment, publish, results, review, sweep, withdrawals,
};
pub use store::{db, events, ledger, nonces, task};

pub use config::{Config, Limits};
pub use error::{MarketError, Result};
pub use server::serve;
pub use state::{now_ms, to_time, Market, Metrics};
