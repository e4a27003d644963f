//! The chain: settlement records and their submission, deposits seen on the
//! network.
//!
//! - [`settle`]: settlement batches: earnings netted per worker into signed,
//!   hash-chained records; their submission to Horizon / Stellar RPC.
//! - [`deposits`]: payments into the operator's account on the network, each
//!   credited once.

pub mod deposits;
pub mod settle;
