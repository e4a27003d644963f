//! Hosted models and workers' offers.

use super::*;

/// `POST /v1/models` answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ModelUploaded {
    pub model: Sha256Hex,
    pub size: u64,
}

/// `GET /v1/models`: every model the market hosts, oldest upload first;
/// what a worker may offer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ModelList {
    pub models: Vec<HostedModel>,
}

/// One hosted model: its address and its size in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HostedModel {
    pub model: Sha256Hex,
    pub bytes: u64,
}

/// `POST /v1/offers`: what a worker runs and for how little.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferRequest {
    pub models: Vec<Sha256Hex>,
    pub min_price: Stroops,
    pub capacity: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Offer {
    pub worker: AccountId,
    pub models: Vec<Sha256Hex>,
    pub min_price: Stroops,
    pub capacity: u32,
    pub updated_at: DateTime<Utc>,
}
