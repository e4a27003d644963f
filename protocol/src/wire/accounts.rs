//! Accounts and money: events pushed to listeners, the operator's views,
//! an account's own view, deposits and withdrawals.

use super::*;

/// One event of `GET /v1/events` (server-sent events, `data:` lines of
/// JSON): what changed, with public ids only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MarketEvent {
    /// A task was verified or failed, or went to human review (again
    /// with `review` when its reviews did not decide it and it wants
    /// another reviewer).
    TaskDecided {
        bid: BidId,
        task: TaskId,
        status: TaskState,
    },
    /// A verified task's verdict was undone (a worker in its agreeing
    /// group was caught) and the task runs again.
    TaskRevised { task: TaskId },
    /// Every task of the bid is decided and its refund made.
    BidDone { bid: BidId },
    /// A decided task's evidence became public (where decisions are
    /// published in batches, the only task event the public stream carries).
    TaskPublished {
        bid: BidId,
        task: TaskId,
        status: TaskState,
    },
    /// A settlement record was written.
    SettlementWritten { seq: u64 },
    /// A deposit was credited to an account.
    DepositCredited { account: AccountId, amount: Stroops },
}

/// `GET /v1/admin/accounts` (operator only): every account's books.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AdminAccounts {
    pub accounts: Vec<AccountBooks>,
}

/// One account's balances, in stroops.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AccountBooks {
    pub account: String,
    pub available: Stroops,
    pub reserved: Stroops,
    pub earned: Stroops,
    pub withdrawing: Stroops,
    pub paid: Stroops,
    pub fees: Stroops,
}

/// `GET /v1/admin/workers` (operator only).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AdminWorkers {
    pub workers: Vec<AdminWorker>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AdminWorker {
    pub account: AccountId,
    pub credibility: f64,
    pub checks: crate::trust::CheckRecord,
    pub reputation: Reputation,
    pub earned_unpaid: Stroops,
    pub paid: Stroops,
    pub caught_at: Option<DateTime<Utc>>,
    pub last_seen: DateTime<Utc>,
}

/// `GET /v1/admin/bids` (operator only): the newest bids first.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AdminBids {
    pub bids: Vec<AdminBid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AdminBid {
    pub bid: BidId,
    pub client: AccountId,
    /// `client`, or `check` for the market's own spot checks.
    pub kind: String,
    pub model: Sha256Hex,
    pub price: Stroops,
    pub status: BidState,
    pub tasks: u64,
    pub verified: u64,
    pub failed: u64,
    pub reserved: Stroops,
    pub spent: Stroops,
    pub created_at: DateTime<Utc>,
}

/// `POST /v1/admin/credits` (operator only).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditRequest {
    pub account: AccountId,
    pub amount: Stroops,
}

/// `GET /v1/accounts/me`: the caller's view of the ledger, in stroops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AccountView {
    pub account: AccountId,
    pub balance: Stroops,
    pub reserved: Stroops,
    pub earned_unpaid: Stroops,
    /// Of `earned_unpaid`, what the probation holdback keeps from
    /// settlement for now (a worker not yet trusted).
    #[serde(default)]
    pub held: Stroops,
    pub paid_total: Stroops,
    /// Of `paid_total`, what is in settlement records never submitted to
    /// the network (the market has no `--horizon`/`--rpc`): recorded, not
    /// paid.
    #[serde(default)]
    pub not_submitted: Stroops,
    pub fees_paid: Stroops,
    pub reputation: Reputation,
    /// Spot checks passed and failed (one failure and the worker is caught).
    #[serde(default)]
    pub checks: crate::trust::CheckRecord,
    /// How far the market trusts this worker's results ([`crate::trust::credibility`]).
    #[serde(default)]
    pub credibility: f64,
    /// The text memo that credits a payment into the operator's account to
    /// this account whoever sends it (say, an exchange).
    #[serde(default)]
    pub deposit_memo: String,
    /// The operator's account: where deposits are paid.
    #[serde(default)]
    pub deposit_address: String,
    /// Withdrawals asked for and not yet in a settlement record.
    #[serde(default)]
    pub withdrawing: Stroops,
}

/// One payment into the operator's account, as the market read it from
/// the network: credited once, or refused with the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Deposit {
    /// The network's operation id.
    pub id: String,
    /// The account credited (none when refused).
    pub account: Option<AccountId>,
    pub sender: String,
    pub amount: Stroops,
    /// `native` or `CODE:ISSUER`.
    pub asset: String,
    pub memo: Option<String>,
    pub tx_hash: String,
    /// `credited` or `refused`.
    pub status: String,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// `POST /v1/withdrawals`: move `amount` of the caller's available balance
/// out to its own account on the network, through the settlement records.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRequest {
    pub amount: Stroops,
}

/// A withdrawal as the market holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Withdrawal {
    pub id: i64,
    pub account: AccountId,
    pub amount: Stroops,
    /// The settlement record paying it, once written.
    pub payout_seq: Option<u64>,
    pub created_at: DateTime<Utc>,
}

/// `GET /v1/withdrawals`: the caller's withdrawals, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WithdrawalPage {
    pub withdrawals: Vec<Withdrawal>,
}

/// `GET /v1/withdrawals/{id}/evidence`: the request exactly as its account
/// signed it, so an auditor checks that a payout's withdrawal was asked for.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WithdrawalEvidence {
    pub id: i64,
    pub account: AccountId,
    pub amount: Stroops,
    /// The request body as sent, base64.
    pub body: String,
    pub timestamp: i64,
    pub nonce: String,
    pub signature: String,
    pub payout_seq: Option<u64>,
}

impl WithdrawalEvidence {
    /// The signature verifies for `POST /v1/withdrawals` with this body, and
    /// the body asks for `amount`, on the market `domain`.
    pub fn verify(&self, domain: &crate::signing::Domain) -> Result<(), crate::Error> {
        use base64::Engine as _;
        let body = base64::engine::general_purpose::STANDARD
            .decode(&self.body)
            .map_err(|e| crate::Error::Invalid(format!("withdrawal body: {e}")))?;
        crate::signing::verify_post(
            domain,
            &self.account,
            "/v1/withdrawals",
            self.timestamp,
            &self.nonce,
            &self.signature,
            &body,
        )?;
        let req: WithdrawalRequest = serde_json::from_slice(&body)
            .map_err(|e| crate::Error::Invalid(format!("withdrawal body: {e}")))?;
        if req.amount != self.amount {
            return Err(crate::Error::Invalid(format!(
                "the signed request asks for {} stroops, not {}",
                req.amount.0, self.amount.0
            )));
        }
        Ok(())
    }
}

/// `GET /v1/deposits`: the caller's deposits, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DepositPage {
    pub deposits: Vec<Deposit>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Reputation {
    pub agreed: u64,
    pub disagreed: u64,
    pub timed_out: u64,
}

/// `GET /v1/audit`: the last report of the market's own periodic audit
/// (the checks of `tally audit`, run by the market against its own API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SelfAudit {
    pub ok: bool,
    pub records: u64,
    pub payouts: u64,
    /// Stroops paid by the records that paid.
    pub amount: i64,
    pub tasks: u64,
    pub withheld_checks: u64,
    pub revised_payouts: u64,
    pub withdrawals: u64,
    pub findings: Vec<AuditFinding>,
    pub audited_at: DateTime<Utc>,
}

/// One discrepancy the audit found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuditFinding {
    pub kind: String,
    pub detail: String,
}
