//! A decided task's public evidence: the signed results, the undone verdicts.

use super::*;

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
        decode_body(&self.body, "the result body is not base64")
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
