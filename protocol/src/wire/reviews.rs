//! Human review: the reviewer's queue, a review, the operator's signed
//! marks of who may review, and reviews as public evidence.

use super::*;

/// `GET /v1/reviews/next` (a verified reviewer): a task the detectors did
/// not agree on, with each group of agreeing results as a candidate.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ReviewTicket {
    /// The review's id (answer with `POST /v1/reviews/{review}`).
    pub review: AssignmentId,
    pub task: TaskId,
    pub model: Sha256Hex,
    /// The image (`GET /v1/inputs/{input}`, readable by its reviewers).
    pub input: Sha256Hex,
    /// Paid per review that agrees with the decision, fee included.
    pub price: Stroops,
    /// The review may still be answered after this, unless the task was
    /// decided meanwhile; after it the task may go to another reviewer.
    pub lease_expires_at: DateTime<Utc>,
    pub candidates: Vec<ReviewCandidate>,
    /// The bid's voting parameters: reviews agree within its tolerances
    /// (`iou`, `agree`, `min_score`; [`crate::review::review_params`]).
    pub params: VoteParams,
}

/// One group of results that agree with each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReviewCandidate {
    /// The detections of the group's first result (original-image pixels).
    pub detections: Vec<Detection>,
    /// The results in the group, ascending.
    pub assignments: Vec<AssignmentId>,
}

/// `POST /v1/reviews/{id}`: the reviewer's answer (picking a candidate is
/// sending its detections).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub detections: Vec<Detection>,
}

/// `POST /v1/reviews/{id}` answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ReviewOutcome {
    pub review: AssignmentId,
    pub task: TaskId,
    /// The task's status after this review: still `review` until two
    /// reviews agree (or the last allowed reviewer disagrees).
    pub task_status: TaskState,
}

/// `POST /v1/admin/reviewers` (operator): mark an account verified to
/// review, or take the mark back.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewerMarkRequest {
    pub account: AccountId,
    pub verified: bool,
}

/// One operator's mark, exactly as signed: public evidence of who could
/// review when (`GET /v1/reviewers`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ReviewerMark {
    pub id: i64,
    pub account: AccountId,
    pub verified: bool,
    /// The operator's account that signed the mark.
    pub signer: AccountId,
    /// The request body as sent, base64.
    pub body: String,
    /// The signed timestamp (unix ms): the mark holds from then on.
    pub timestamp: i64,
    pub nonce: String,
    pub signature: String,
}

impl ReviewerMark {
    pub const PATH: &'static str = "/v1/admin/reviewers";

    /// Check the operator's signature and that the signed body says what
    /// the mark says, on the market `domain`.
    pub fn verify(
        &self,
        domain: &crate::signing::Domain,
    ) -> Result<ReviewerMarkRequest, crate::Error> {
        let body = decode_body(&self.body, "the mark body is not base64")?;
        crate::signing::verify_post(
            domain,
            &self.signer,
            Self::PATH,
            self.timestamp,
            &self.nonce,
            &self.signature,
            &body,
        )?;
        let req: ReviewerMarkRequest = serde_json::from_slice(&body)?;
        if req.account != self.account || req.verified != self.verified {
            return Err(crate::Error::InvalidSignature(
                "the mark differs from its signed body",
            ));
        }
        Ok(req)
    }
}

/// `GET /v1/reviewers`: every mark, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ReviewerMarks {
    pub marks: Vec<ReviewerMark>,
}

/// A review as the reviewer signed it (in a decided task's evidence).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SignedReview {
    pub review: AssignmentId,
    pub reviewer: AccountId,
    /// The request body as sent, base64.
    pub body: String,
    pub timestamp: i64,
    pub nonce: String,
    pub signature: String,
    /// When the market took the answer (unix ms, its clock): the reviewer
    /// must have been verified then too, not only at the signed time.
    pub received_at: i64,
}

impl SignedReview {
    /// The path the review was posted to: part of what the reviewer signed.
    pub fn path(&self) -> String {
        format!("/v1/reviews/{}", self.review)
    }

    /// Check the reviewer's signature on the market `domain`; the review as sent.
    pub fn verify(&self, domain: &crate::signing::Domain) -> Result<ReviewRequest, crate::Error> {
        let body = decode_body(&self.body, "the review body is not base64")?;
        crate::signing::verify_post(
            domain,
            &self.reviewer,
            &self.path(),
            self.timestamp,
            &self.nonce,
            &self.signature,
            &body,
        )?;
        Ok(serde_json::from_slice(&body)?)
    }
}

/// How the reviews decided a task (in its evidence): the reviews voted on
/// and the vote's verdict; the task's consensus is this verdict's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReviewVerdict {
    pub voted: Vec<AssignmentId>,
    pub verdict: Verdict,
}
