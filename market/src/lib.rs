//! The Tally market: clients bid, workers claim, the vote decides, the
//! ledger pays, settlement batches go out on Stellar.
//!
//! - [`config`]: what `tally serve` is told: database, operator key, fees, limits.
//! - [`db`]: one query API over SQLite (rusqlite, in-process) and PostgreSQL (sqlx); migrations.
//! - [`error`]: the one error type and its HTTP mapping.
//! - [`lifecycle`]: task and assignment states and their one transition check.
//! - [`ledger`]: double-entry postings, balances, and the invariant check.
//! - [`bids`]: validating a bid, storing its inputs, reserving its money.
//! - [`checks`]: spot checks: known answers from the golden set, handed out in place of client work.
//! - [`claims`]: matching workers to tasks; exclusive, long-polled, woken by new work.
//! - [`results`]: leases, results, failures.
//! - [`review`]: human review: the operator's signed reviewer marks, the reviewers' queue, answers.
//! - [`decide`]: the vote and its outcome: verify and pay, judge late results, add a replica, fail.
//! - [`payment`]: paying agreeing results, failing tasks, closing bids with refunds.
//! - [`sweep`]: lease expiry and bid deadlines.
//! - [`task`]: a task's row, lock and assignment state changes, shared by the decision path.
//! - [`deposits`]: payments into the operator's account on the network, each credited once.
//! - [`withdrawals`]: clients' balances paid out to their own accounts, through settlement.
//! - [`settle`]: settlement batches: earnings netted per worker into signed,
//!   hash-chained records; their submission to Horizon / Stellar RPC.
//! - [`views`]: read models: hosted models, bid status, evidence, accounts, market stats, metrics.
//! - [`events`]: what changed, pushed to SSE listeners and bid long-polls.
//! - [`wake`]: waiting claims, woken only as many as new work has slots.
//! - [`auth`]: the signed-request extractor and replay protection.
//! - [`admin`]: the operator's views: accounts' books, workers, bids.
//! - [`api`]: the axum router.
//! - [`openapi`]: the API document (`GET /openapi.json`), generated from the wire types, and its page (`GET /docs`).
//! - [`console`]: the web console at `GET /`, compiled in.
//! - [`server`]: start-up, background jobs, graceful shutdown.

pub mod admin;
pub mod api;
pub mod auth;
pub mod bids;
pub mod checks;
pub mod claims;
pub mod config;
pub mod console;
pub mod db;
pub mod decide;
pub mod deposits;
pub mod error;
pub mod events;
pub mod ledger;
pub mod lifecycle;
pub mod openapi;
pub mod payment;
pub mod results;
pub mod review;
pub mod server;
pub mod settle;
pub mod sweep;
pub mod task;
pub mod views;
pub mod wake;
pub mod withdrawals;

pub use config::{Config, Limits};
pub use error::{MarketError, Result};
pub use server::{serve, Market};

/// Unix time in milliseconds, UTC.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Milliseconds since the epoch to an RFC 3339 UTC time.
pub fn to_time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
