//! The settlement records and the payouts they make.

use super::*;

/// `GET /v1/settlements?after=seq`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SettlementPage {
    pub records: Vec<SettlementRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SettlementRecord {
    pub seq: u64,
    pub prev_hash: String,
    pub hash: String,
    pub network: String,
    pub source: AccountId,
    pub asset: String,
    pub payouts: Vec<Payout>,
    pub envelope_xdr: String,
    pub tx_hash: String,
    pub status: String,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Payout {
    pub account: AccountId,
    pub amount: Stroops,
    pub assignments: Vec<AssignmentId>,
    /// The task of each assignment, in the same order, so an auditor can
    /// fetch the evidence; not part of the hashed record (a wrong task only
    /// makes the audit fail to find the assignment).
    #[serde(default)]
    pub tasks: Vec<TaskId>,
    /// The client withdrawals this payout pays (`GET /v1/withdrawals/{id}/evidence`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withdrawals: Vec<i64>,
    /// How the transaction pays it.
    #[serde(default, skip_serializing_if = "PayoutKind::is_payment")]
    pub op: PayoutKind,
}

/// The operation a payout is paid by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayoutKind {
    /// A payment to an account that exists (and trusts the asset).
    #[default]
    Payment,
    /// A new account funded with the amount (native asset, amount at least
    /// the network's minimum balance).
    CreateAccount,
    /// A claimable balance the payee claims when it can: for a missing
    /// account paid less than the minimum balance, or no trustline.
    ClaimableBalance,
}

impl PayoutKind {
    pub fn is_payment(&self) -> bool {
        *self == PayoutKind::Payment
    }
}
