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

fn default_deadline() -> u64 {
    3600
}

/// `POST /v1/bids`: one price for every input; each input becomes a task.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
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
    /// Stroops per human review, fee included: a task the workers do not
    /// agree on goes to review instead of failing.
    /// Absent: no review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_price: Option<Stroops>,
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
            review_price: None,
        }
    }
}

/// `POST /v1/bids` answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BidCreated {
    pub bid: BidId,
    pub tasks: Vec<TaskId>,
    pub reserved: Stroops,
    /// Each task's input as the market stores and serves it, in the order
    /// of `tasks`: the sha256 of the image's canonical encoding (RGB8 PNG,
    /// no metadata), not of the bytes the client sent.
    #[serde(default)]
    pub inputs: Vec<Sha256Hex>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BidState {
    Open,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Open,
    Running,
    Verified,
    Failed,
    /// No consensus: waiting for human reviewers (bids with `review_price`).
    Review,
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
            TaskState::Review => "review",
        }
    }
}

/// `GET /v1/bids/{id}` answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
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

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
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
    /// Decided by human review: the workers did not agree, and the
    /// consensus is the reviewers'.
    #[serde(default)]
    pub reviewed: bool,
    /// Reviews answered for this task.
    #[serde(default)]
    pub reviews: u32,
    /// What its reviews cost the bid: `review_price` for each review that
    /// agrees with the decision.
    #[serde(default)]
    pub review_cost: Stroops,
}

/// `POST /v1/claims`: long-poll for up to `max_tasks` assignments.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    pub max_tasks: u32,
    #[serde(default)]
    pub wait_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Claimed {
    pub assignments: Vec<Assignment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Assignment {
    pub assignment: AssignmentId,
    pub task: TaskId,
    pub model: Sha256Hex,
    pub input: Sha256Hex,
    pub price: Stroops,
    pub lease_expires_at: DateTime<Utc>,
}

/// `POST /v1/assignments/{id}/heartbeat` answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Lease {
    pub assignment: AssignmentId,
    pub lease_expires_at: DateTime<Utc>,
}

/// `POST /v1/assignments/{id}/result`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultRequest {
    pub detections: Vec<Detection>,
    pub elapsed_ms: f64,
}

/// `POST /v1/assignments/{id}/failure`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailureRequest {
    pub reason: String,
}

/// Answer to a result or a failure: where the assignment and its task stand.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AssignmentOutcome {
    pub assignment: AssignmentId,
    pub task: TaskId,
    /// `submitted`, `agreed`, `disagreed`, `failed`.
    pub status: String,
    pub task_status: TaskState,
}

/// `GET /v1/tasks/{id}/evidence`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
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
    /// Kept for old readers: evidence is never served withheld any more
    /// (a task's evidence is public before anything it paid settles); an
    /// auditor treats a paid task whose evidence says so as unchecked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withheld: bool,
    /// A spot check: `verdict.consensus` is the market's own answer, and
    /// the one result is judged against it alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub check: bool,
    /// When this evidence became public (a task's results are paid only
    /// after): an auditor expects every agreeing result paid soon after it,
    /// or after its probation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
    /// Results of workers caught by a spot check before the decision: left
    /// out of the vote and of the judgement, never paid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<AssignmentId>,
    /// Earlier verdicts of this task, oldest first, each undone when a
    /// worker in its agreeing group was caught.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<Revision>,
    /// Stroops per agreeing review, where the bid asked for review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_price: Option<Stroops>,
    /// The signed reviews of a task that went to review, once it is
    /// decided (withheld while reviewers still answer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reviews: Vec<SignedReview>,
    /// How the reviews decided it: then `verdict` judges the results
    /// against this verdict's consensus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewVerdict>,
}

/// A verdict that was undone: what it said, when, and why.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Revision {
    pub verdict: Verdict,
    pub revised_at: DateTime<Utc>,
    /// The caught worker whose results no longer count.
    pub caught: AccountId,
    /// The public task that caught it: a spot check whose evidence shows
    /// the caught worker's result disagreeing with the market's answer, or
    /// client work whose credible verdict, agreed by two results or more,
    /// out-voted its result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caught_by: Option<TaskId>,
}

/// A result exactly as its worker signed it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
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

    /// Check the worker's signature over the request as sent, for the
    /// market `domain`.
    pub fn verify(&self, domain: &crate::signing::Domain) -> Result<(), crate::Error> {
        let body = self.body_bytes()?;
        crate::signing::verify_post(
            domain,
            &self.worker,
            &self.path(),
            self.timestamp,
            &self.nonce,
            &self.signature,
            &body,
        )
    }

    /// The result as the worker sent it.
    pub fn request(&self) -> Result<ResultRequest, crate::Error> {
        Ok(serde_json::from_slice(&self.body_bytes()?)?)
    }
}

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

/// `GET /v1/market`: what an operator or a worker owner looks at first.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MarketStats {
    pub open_tasks: u64,
    pub running_tasks: u64,
    pub verified_tasks: u64,
    pub failed_tasks: u64,
    /// Tasks waiting for human reviewers.
    #[serde(default)]
    pub review_tasks: u64,
    pub price_levels: Vec<PriceLevel>,
    pub workers_online: u64,
    /// The workers seen in the last minute (at most 100, most credible
    /// first) with their spot-check record and credibility.
    #[serde(default)]
    pub workers: Vec<WorkerSummary>,
    /// The prices of the latest verified client tasks, newest first.
    pub recent_clearing_prices: Vec<Stroops>,
    pub fee_bps: u32,
    pub asset: String,
    pub network: String,
    pub operator: AccountId,
    /// Probation: earnings of results whose worker had passed fewer than
    /// `trusted_after` checks when it sent them settle this long after.
    #[serde(default)]
    pub holdback_secs: u64,
    #[serde(default)]
    pub trusted_after: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkerSummary {
    pub account: AccountId,
    pub checks: crate::trust::CheckRecord,
    pub credibility: f64,
}

/// `GET /v1/workers/{account}`: a worker's public record and how it grew,
/// hour by hour (UTC). Only hours that have ended are listed, so the
/// record never tells which of the worker's recent tasks was a spot check.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WorkerRecord {
    pub account: AccountId,
    /// Whether the market has seen this worker at all.
    pub known: bool,
    /// Seen in the last minute.
    pub online: bool,
    /// Caught failing a spot check: no more work, unsettled earnings forfeit.
    pub caught: bool,
    pub checks: crate::trust::CheckRecord,
    pub credibility: f64,
    /// Results decided so far: in the agreeing group, outvoted.
    pub agreed: u64,
    pub disagreed: u64,
    /// Paid out to this worker in settlement records, in total.
    pub paid_total: Stroops,
    /// The last 7 days of ended hours in which the worker had a result
    /// decided, oldest first.
    pub hours: Vec<WorkerHour>,
}

/// One ended UTC hour of a worker's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkerHour {
    /// The start of the hour.
    pub hour: DateTime<Utc>,
    /// Results decided in this hour: agreeing, outvoted.
    pub agreed: u64,
    pub disagreed: u64,
    /// Spot checks passed up to the end of this hour, and the credibility
    /// they gave then.
    pub checks_passed: u64,
    pub credibility: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PriceLevel {
    pub price: Stroops,
    pub tasks: u64,
}

mod accounts;
mod reviews;

pub use accounts::*;
pub use reviews::*;
