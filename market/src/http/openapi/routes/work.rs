//! The work: workers' offers and claims, clients' bids, inputs, and an
//! assignment's heartbeats, result or failure.

use tally_protocol::wire::*;
use tally_protocol::{AssignmentId, BidId};

use super::{count, of, path, query, Answer, Auth, Body, Op, HASH};

/// The operations of this group, in the order of the router.
#[rustfmt::skip]
pub(super) const OPS: &[Op] = &[
    Op::post("/v1/offers", "workers", Auth::Signed, Answer::Json(of::<Offer>)).body(Body::Json(of::<OfferRequest>)).errors(&[400, 401, 409, 413])
        .about("Offer to run models", "What a worker runs and for how little; replaces its previous offer."),
    Op::post("/v1/bids", "clients", Auth::Signed, Answer::Json(of::<BidCreated>)).body(Body::Json(of::<BidRequest>)).status(201).errors(&[400, 401, 402, 409, 413, 422])
        .about("Place a bid", "One price for every input; each input becomes a task. The price times \
            the replicas allowed is reserved from the caller's balance (402 when it \
            falls short) and what is not spent is refunded when the bid is done."),
    Op::get("/v1/bids/{id}", "clients", Auth::Signed, Answer::Json(of::<BidStatus>)).params(&[path("id", of::<BidId>, "The bid."), query("wait_ms", count, "Long-poll for up to this many milliseconds (at most 60000)."), query("seen", count, "How many tasks the caller already saw decided; defaults to the count now.")]).errors(&[400, 401, 403, 404, 409])
        .about("A bid and its tasks", "Readable by the bid's client. With `wait_ms` it answers as soon as a \
            task is decided beyond the `seen` count, or the bid is done, or the wait \
            runs out."),
    Op::post("/v1/claims", "workers", Auth::Signed, Answer::Json(of::<Claimed>)).body(Body::Json(of::<ClaimRequest>)).errors(&[400, 401, 403, 409, 413])
        .about("Claim work", "Long-polls for up to `wait_ms` for at most `max_tasks` assignments of the \
            models the worker offered, each under a lease."),
    Op::get("/v1/inputs/{hash}", "workers", Auth::Signed, Answer::Bytes("application/octet-stream", "The image bytes as sent.")).params(&[HASH]).errors(&[400, 401, 403, 409])
        .about("Download an input image", "Readable by the client who sent it and the workers holding a lease on it."),
    Op::post("/v1/assignments/{id}/heartbeat", "workers", Auth::Signed, Answer::Json(of::<Lease>)).params(&[path("id", of::<AssignmentId>, "The assignment.")]).errors(&[400, 401, 403, 404, 409, 413])
        .about("Extend a lease", "Keeps an assignment leased while its worker still runs it."),
    Op::post("/v1/assignments/{id}/result", "workers", Auth::Signed, Answer::Json(of::<AssignmentOutcome>)).params(&[path("id", of::<AssignmentId>, "The assignment.")]).body(Body::Json(of::<ResultRequest>)).errors(&[400, 401, 403, 404, 409, 413])
        .about("Submit a result", "The worker's detections. The signed request is kept as evidence; the \
            answer says where the assignment and its task stand."),
    Op::post("/v1/assignments/{id}/failure", "workers", Auth::Signed, Answer::Json(of::<AssignmentOutcome>)).params(&[path("id", of::<AssignmentId>, "The assignment.")]).body(Body::Json(of::<FailureRequest>)).errors(&[400, 401, 403, 404, 409, 413])
        .about("Report a failure", "The worker could not run the assignment; the task gets another replica."),
];
