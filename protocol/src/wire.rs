//! The JSON bodies of every endpoint of the v1 API.
//!
//! Requests deny unknown fields: a client that misspells a field hears about
//! it instead of silently getting a default.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, AssignmentId, BidId, Sha256Hex, Stroops, TaskId};
use crate::vote::{Verdict, VoteParams};
use crate::Detection;

/// `{"error": {"code", "message"}}`, the body of every 4xx and 5xx.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// A signed request's body, stored as base64, as bytes; `what` is the
/// refusal when it is not base64.
fn decode_body(b64: &str, what: &'static str) -> Result<Vec<u8>, crate::Error> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| crate::Error::InvalidSignature(what))
}

mod accounts;
mod assignments;
mod bids;
mod evidence;
mod models;
mod reviews;
mod settlements;
mod stats;

pub use accounts::*;
pub use assignments::*;
pub use bids::*;
pub use evidence::*;
pub use models::*;
pub use reviews::*;
pub use settlements::*;
pub use stats::*;
