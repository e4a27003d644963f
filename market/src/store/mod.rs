//! The store: one query API over both engines, the ledger, task rows, replay
//! protection, events.
//!
//! - [`db`]: one query API over SQLite (rusqlite, in-process) and PostgreSQL
//!   (sqlx); migrations.
//! - [`ledger`]: double-entry postings, balances, and the invariant check.
//! - [`task`]: a task's row, lock and assignment state changes, shared by the
//!   decision path.
//! - [`nonces`]: replay protection: each signed request's nonce recorded
//!   once, with its effects.
//! - [`events`]: what changed, pushed to SSE listeners and bid long-polls.

pub mod db;
pub mod events;
pub mod ledger;
pub mod nonces;
pub mod task;
