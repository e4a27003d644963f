//! The rules every Tally party shares.
//!
//! The market, the worker, the CLI and every auditor link this crate and
//! nothing else of ours, so what it says is what the wire says:
//!
//! - [`ids`]: newtypes for ids, stroops, account strkeys and sha256 hashes.
//! - [`detection`]: one detected object and the IoU between two of them.
//! - [`wire`]: the JSON bodies of every endpoint of the v1 API.
//! - [`signing`]: the `tally-v2` request signature (bound to one market), byte for byte.
//! - [`vote`]: the deterministic vote the market decides with and auditors re-run.
//! - [`review`]: human review: the reviews' vote, candidates, who may review when.
//! - [`trust`]: credibility of workers (from spot checks) and of agreeing groups.
//! - [`client`]: a typed async HTTP client over [`wire`] and [`signing`].
//! - [`labels`]: the 80 COCO label names.

pub mod client;
pub mod detection;
pub mod error;
pub mod ids;
pub mod labels;
pub mod review;
pub mod signing;
pub mod trust;
pub mod vote;
pub mod wire;

pub use client::Client;
pub use detection::{iou, Detection};
pub use error::Error;
pub use ids::{AccountId, AssignmentId, BidId, Sha256Hex, Stroops, TaskId};
pub use signing::{Domain, SignedHeaders, Signer};
