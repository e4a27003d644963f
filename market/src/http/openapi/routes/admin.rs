//! The operator's views, credits and reviewer marks, the public list of
//! marks, and reviews.

use tally_protocol::wire::*;
use tally_protocol::AssignmentId;

use super::{count, of, path, query, Answer, Auth, Body, Op};

/// The operations of this group, in the order of the router.
#[rustfmt::skip]
pub(super) const OPS: &[Op] = &[
    Op::post("/v1/admin/credits", "admin", Auth::Operator, Answer::Json(of::<AccountView>)).body(Body::Json(of::<CreditRequest>)).errors(&[400, 401, 403, 409, 413])
        .about("Credit an account", "Adds `amount` to an account's available balance."),
    Op::get("/v1/admin/accounts", "admin", Auth::Operator, Answer::Json(of::<AdminAccounts>)).errors(&[401, 403, 409])
        .about("Every account's books", "Balances of every account, in stroops."),
    Op::get("/v1/admin/workers", "admin", Auth::Operator, Answer::Json(of::<AdminWorkers>)).errors(&[401, 403, 409])
        .about("Workers", "Every worker's credibility, checks, reputation and earnings."),
    Op::get("/v1/admin/bids", "admin", Auth::Operator, Answer::Json(of::<AdminBids>)).errors(&[401, 403, 409])
        .about("Bids", "The newest bids first, client and spot-check bids alike."),
    Op::post("/v1/admin/reviewers", "admin", Auth::Operator, Answer::Json(of::<ReviewerMark>)).body(Body::Json(of::<ReviewerMarkRequest>)).errors(&[400, 401, 403, 409, 413])
        .about("Mark a reviewer", "Marks an account verified to review tasks without consensus (`verified: true`) \
            or takes the mark back. The signed request is kept and published at \
            `GET /v1/reviewers`: who was marked when is on record."),
    Op::get("/v1/reviewers", "audit", Auth::Public, Answer::Json(of::<ReviewerMarks>))
        .about("Reviewer marks", "Every mark the operator signed, oldest first: an account may review from \
            its latest mark saying `verified` until one saying otherwise."),
    Op::get("/v1/reviews/next", "reviews", Auth::Signed, Answer::Json(of::<ReviewTicket>)).params(&[query("wait_ms", count, "Wait up to this many ms (at most 60,000) for work.")]).errors(&[204, 401, 403, 409])
        .about("Next review", "A task the workers did not agree on, for a verified reviewer: the review the \
            caller holds, or a new one on the oldest task wanting a reviewer. Each \
            candidate is a group of agreeing results. With `wait_ms`, waits for a task \
            to want a reviewer instead of answering 204 at once."),
    Op::post("/v1/reviews/{id}", "reviews", Auth::Signed, Answer::Json(of::<ReviewOutcome>)).params(&[path("id", of::<AssignmentId>, "The review.")]).body(Body::Json(of::<ReviewRequest>)).errors(&[400, 401, 403, 404, 409, 413])
        .about("Answer a review", "The reviewer's detections (picking a candidate is sending its detections). \
            Two agreeing reviews decide the task; the signed request is evidence, \
            public once the task is decided."),
];
