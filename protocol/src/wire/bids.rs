//! Bids and their tasks: what a requester asks for and how it stands.

use super::*;

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
