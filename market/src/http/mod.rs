//! The HTTP face: the router, the signed-request extractor, read models, the
//! API document and the console.
//!
//! - [`api`]: the axum router.
//! - [`auth`]: the signed-request extractor.
//! - [`views`]: read models: hosted models, bid status, evidence, accounts,
//!   market stats, metrics.
//! - [`openapi`]: the API document (`GET /openapi.json`), generated from the
//!   wire types, and its page (`GET /docs`).
//! - [`console`]: the web console at `GET /`, compiled in.

pub mod api;
pub mod auth;
pub mod console;
pub mod openapi;
pub mod views;
