//! Claims and assignments: a worker's side of a task.

use super::*;

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
