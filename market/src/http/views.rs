//! Read models: hosted models, bid status, evidence, an account's view of
//! the ledger, market statistics, settlement records and Prometheus metrics.
//!
//! - [`tasks`]: a bid's status and a task's evidence.
//! - [`accounts`]: an account's view and a worker's public record.
//! - [`market`]: hosted models and market statistics.
//! - [`workers`]: a worker's public record hour by hour.
//! - [`settlements`]: the settlement records.
//! - [`metrics`]: Prometheus metrics.

mod accounts;
mod market;
mod metrics;
mod settlements;
mod tasks;
mod workers;

pub use accounts::account_view;
pub use market::{market_stats, models};
pub use metrics::metrics;
pub use settlements::settlements;
pub use tasks::{bid_status, evidence};
pub use workers::worker_record;
