//! The JSON bodies of every endpoint of the v1 API (DESIGN "HTTP API").
//!
//! Requests deny unknown fields: a client that misspells a field hears about
//! it instead of silently getting a default.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, AssignmentId, BidId, Sha256Hex, Stroops, TaskId};
use crate::vote::{Verdict, VoteParams};
use crate::Detection;

/// `{"error": {"code", "message"}}`, the body of every 4xx and 5xx.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// `POST /v1/models` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelUploaded {
    pub model: Sha256Hex,
    pub size: u64,
}

/// `GET /v1/models`: every model the market hosts, oldest upload first;
/// what a worker may offer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelList {
    pub models: Vec<HostedModel>,
}

/// One hosted model: its address and its size in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostedModel {
    pub model: Sha256Hex,
    pub bytes: u64,
}

/// `POST /v1/offers`: what a worker runs and for how little.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferRequest {
    pub models: Vec<Sha256Hex>,
    pub min_price: Stroops,
    pub capacity: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Offer {
    pub worker: AccountId,
    pub models: Vec<Sha256Hex>,
    pub min_price: Stroops,
    pub capacity: u32,
    pub updated_at: DateTime<Utc>,
}

fn default_deadline() -> u64 {
    3600
}

/// `POST /v1/bids`: one price for every input; each input becomes a task.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BidRequest {
    pub model: Sha256Hex,
    /// Paid per agreeing result, fee included.
    pub price: Stroops,
    /// Replicas asked for at first, a floor. Absent: 1 where the market
    /// runs spot checks (credibility decides how many more), else 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// Agreeing results needed at least. Absent: 1 where the market runs
    /// spot checks (with the bid's confidence), else 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u32>,
    /// Replicas allowed in all when the first ones do not decide; defaults
    /// to `replicas + 2` (`replicas + 4` where credibility decides).
    #[serde(default)]
    pub max_replicas: Option<u32>,
    #[serde(default = "default_deadline")]
    pub deadline_secs: u64,
    /// Base64 images (JPEG, PNG, WebP, BMP).
    pub inputs: Vec<String>,
    /// Voting overrides; defaults from [`VoteParams::default`].
    #[serde(default)]
    pub iou: Option<f64>,
    #[serde(default)]
    pub min_score: Option<f64>,
    #[serde(default)]
    pub agree: Option<f64>,
    /// The probability, at least, that a verified answer is right (0.999
    /// when absent). Used where the market runs spot checks, so workers'
    /// credibility is known; elsewhere the quorum alone decides.
    #[serde(default)]
    pub confidence: Option<f64>,
}

impl BidRequest {
    /// A bid for `model` at `price` with the documented defaults (replicas,
    /// quorum and `max_replicas` chosen by the market, one hour) and no
    /// inputs yet.
    pub fn new(model: Sha256Hex, price: Stroops) -> Self {
        BidRequest {
            model,
            price,
            replicas: None,
            quorum: None,
            max_replicas: None,
            deadline_secs: default_deadline(),
            inputs: vec![],
            iou: None,
            min_score: None,
            agree: None,
            confidence: None,
        }
    }
}

/// `POST /v1/bids` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BidCreated {
    pub bid: BidId,
    pub tasks: Vec<TaskId>,
    pub reserved: Stroops,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BidState {
    Open,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Open,
    Running,
    Verified,
    Failed,
}

impl TaskState {
    pub fn is_final(self) -> bool {
        matches!(self, TaskState::Verified | TaskState::Failed)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Open => "open",
            TaskState::Running => "running",
            TaskState::Verified => "verified",
            TaskState::Failed => "failed",
        }
    }
}

/// `GET /v1/bids/{id}` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BidStatus {
    pub bid: BidId,
    pub status: BidState,
    pub client: AccountId,
    pub model: Sha256Hex,
    pub price: Stroops,
    pub reserved: Stroops,
    pub spent: Stroops,
    pub created_at: DateTime<Utc>,
    pub tasks: Vec<TaskStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskStatus {
    pub task: TaskId,
    pub status: TaskState,
    pub input: Sha256Hex,
    pub results: u32,
    pub consensus: Option<Vec<Detection>>,
    /// Times this task's verdict was undone (a worker in its agreeing
    /// group was caught) and the task decided again.
    #[serde(default)]
    pub revisions: u32,
}

/// `POST /v1/claims`: long-poll for up to `max_tasks` assignments.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    pub max_tasks: u32,
    #[serde(default)]
    pub wait_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claimed {
    pub assignments: Vec<Assignment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub assignment: AssignmentId,
    pub task: TaskId,
    pub model: Sha256Hex,
    pub input: Sha256Hex,
    pub price: Stroops,
    pub lease_expires_at: DateTime<Utc>,
}

/// `POST /v1/assignments/{id}/heartbeat` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lease {
    pub assignment: AssignmentId,
    pub lease_expires_at: DateTime<Utc>,
}

/// `POST /v1/assignments/{id}/result`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultRequest {
    pub detections: Vec<Detection>,
    pub elapsed_ms: f64,
}

/// `POST /v1/assignments/{id}/failure`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureRequest {
    pub reason: String,
}

/// Answer to a result or a failure: where the assignment and its task stand.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssignmentOutcome {
    pub assignment: AssignmentId,
    pub task: TaskId,
    /// `submitted`, `agreed`, `disagreed`, `failed`.
    pub status: String,
    pub task_status: TaskState,
}

/// `GET /v1/tasks/{id}/evidence`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evidence {
    pub task: TaskId,
    pub bid: BidId,
    pub status: TaskState,
    pub model: Sha256Hex,
    pub input: Sha256Hex,
    pub price: Stroops,
    pub fee_bps: u32,
    pub params: VoteParams,
    pub results: Vec<SignedResult>,
    /// The results the consensus was voted from; results that came later
    /// were judged against that consensus alone.
    #[serde(default)]
    pub voted: Vec<AssignmentId>,
    pub verdict: Option<Verdict>,
    /// Where the bid bought a confidence: each voted result's weight (its
    /// worker's check record and credibility at the time) and the
    /// agreeing group's credibility that verified the task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<crate::trust::Weight>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credibility: Option<f64>,
    /// A spot check, or a client task whose answer is in use as one: its
    /// results and answer are withheld while its image may be used again
    /// (price and fee still show what it paid).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withheld: bool,
    /// Results of workers caught by a spot check before the decision: left
    /// out of the vote and of the judgement, never paid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<AssignmentId>,
    /// Earlier verdicts of this task, oldest first, each undone when a
    /// worker in its agreeing group was caught.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<Revision>,
}

/// A verdict that was undone: what it said, when, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Revision {
    pub verdict: Verdict,
    pub revised_at: DateTime<Utc>,
    /// The caught worker whose results no longer count.
    pub caught: AccountId,
}

/// A result exactly as its worker signed it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedResult {
    pub assignment: AssignmentId,
    pub worker: AccountId,
    /// The request body as sent, base64.
    pub body: String,
    pub timestamp: i64,
    pub nonce: String,
    pub signature: String,
}

impl SignedResult {
    /// The path the result was posted to: part of what the worker signed.
    pub fn path(&self) -> String {
        format!("/v1/assignments/{}/result", self.assignment)
    }

    /// The request body exactly as sent.
    pub fn body_bytes(&self) -> Result<Vec<u8>, crate::Error> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(&self.body)
            .map_err(|_| crate::Error::InvalidSignature("the result body is not base64"))
    }

    /// Check the worker's `tally-v1` signature over the request as sent.
    pub fn verify(&self) -> Result<(), crate::Error> {
        let body = self.body_bytes()?;
        let message =
            crate::signing::message("POST", &self.path(), self.timestamp, &self.nonce, &body);
        crate::signing::verify(&self.worker, &message, &self.signature)
    }

    /// The result as the worker sent it.
    pub fn request(&self) -> Result<ResultRequest, crate::Error> {
        Ok(serde_json::from_slice(&self.body_bytes()?)?)
    }
}

/// `GET /v1/settlements?after=seq`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SettlementPage {
    pub records: Vec<SettlementRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// `GET /v1/market`: what an operator or a worker owner looks at first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MarketStats {
    pub open_tasks: u64,
    pub running_tasks: u64,
    pub verified_tasks: u64,
    pub failed_tasks: u64,
    pub price_levels: Vec<PriceLevel>,
    pub workers_online: u64,
    /// The workers seen in the last minute (at most 100, most credible
    /// first) with their spot-check record and credibility.
    #[serde(default)]
    pub workers: Vec<WorkerSummary>,
    pub recent_clearing_prices: Vec<Stroops>,
    pub fee_bps: u32,
    pub asset: String,
    pub network: String,
    pub operator: AccountId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerSummary {
    pub account: AccountId,
    pub checks: crate::trust::CheckRecord,
    pub credibility: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PriceLevel {
    pub price: Stroops,
    pub tasks: u64,
}

/// One event of `GET /v1/events` (server-sent events, `data:` lines of
/// JSON): what changed, with public ids only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MarketEvent {
    /// A task was verified or failed.
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
    /// A settlement record was written.
    SettlementWritten { seq: u64 },
    /// A deposit was credited to an account.
    DepositCredited { account: AccountId, amount: Stroops },
}

/// `GET /v1/admin/accounts` (operator only): every account's books.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminAccounts {
    pub accounts: Vec<AccountBooks>,
}

/// One account's balances, in stroops.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminWorkers {
    pub workers: Vec<AdminWorker>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminBids {
    pub bids: Vec<AdminBid>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditRequest {
    pub account: AccountId,
    pub amount: Stroops,
}

/// `GET /v1/accounts/me`: the caller's view of the ledger, in stroops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRequest {
    pub amount: Stroops,
}

/// A withdrawal as the market holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Withdrawal {
    pub id: i64,
    pub account: AccountId,
    pub amount: Stroops,
    /// The settlement record paying it, once written.
    pub payout_seq: Option<u64>,
    pub created_at: DateTime<Utc>,
}

/// `GET /v1/withdrawals`: the caller's withdrawals, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WithdrawalPage {
    pub withdrawals: Vec<Withdrawal>,
}

/// `GET /v1/withdrawals/{id}/evidence`: the request exactly as its account
/// signed it, so an auditor checks that a payout's withdrawal was asked for.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// the body asks for `amount`.
    pub fn verify(&self) -> Result<(), crate::Error> {
        use base64::Engine as _;
        let body = base64::engine::general_purpose::STANDARD
            .decode(&self.body)
            .map_err(|e| crate::Error::Invalid(format!("withdrawal body: {e}")))?;
        let message = crate::signing::message(
            "POST",
            "/v1/withdrawals",
            self.timestamp,
            &self.nonce,
            &body,
        );
        crate::signing::verify(&self.account, &message, &self.signature)?;
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DepositPage {
    pub deposits: Vec<Deposit>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reputation {
    pub agreed: u64,
    pub disagreed: u64,
    pub timed_out: u64,
}
