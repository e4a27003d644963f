//! The operations of the v1 API as the document describes them: one row per
//! route of [`crate::api::router`], naming the wire types its handler reads
//! and answers with. The schemas themselves come from those types.

use schemars::{JsonSchema, Schema, SchemaGenerator};
use tally_protocol::wire::*;
use tally_protocol::{AssignmentId, BidId, Sha256Hex, TaskId};

/// A schema generated from a wire type.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

fn withdrawal_id(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({ "type": "integer", "format": "int64" })
}

fn count(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({ "type": "integer", "minimum": 0 })
}

/// Who may call an operation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Public,
    /// Any account, by a `tally-v2` signature.
    Signed,
    /// Signed by the operator's key only.
    Operator,
}

pub enum Body {
    None,
    Json(SchemaFn),
    /// Raw bytes of the given media type.
    Bytes(&'static str, &'static str),
}

pub enum Answer {
    Json(SchemaFn),
    /// Raw bytes of the given media type, with a description.
    Bytes(&'static str, &'static str),
    /// Server-sent events whose `data:` lines hold this JSON.
    Events(SchemaFn),
}

pub struct Param {
    pub name: &'static str,
    /// `path` or `query`.
    pub place: &'static str,
    pub schema: SchemaFn,
    pub description: &'static str,
}

const fn path(name: &'static str, schema: SchemaFn, description: &'static str) -> Param {
    Param {
        name,
        place: "path",
        schema,
        description,
    }
}

const fn query(name: &'static str, schema: SchemaFn, description: &'static str) -> Param {
    Param {
        name,
        place: "query",
        schema,
        description,
    }
}

pub struct Op {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub description: &'static str,
    pub auth: Auth,
    pub params: &'static [Param],
    pub body: Body,
    pub status: u16,
    pub answer: Answer,
    /// The error statuses it may answer with besides 500.
    pub errors: &'static [u16],
}

const HASH: Param = path("hash", of::<Sha256Hex>, "The sha256 address of the bytes.");

/// Every operation, in the order of the router.
pub const OPS: &[Op] = &[
    Op {
        method: "get",
        path: "/healthz",
        tag: "operations",
        summary: "Liveness",
        description: "Answers `ok` while the process serves.",
        auth: Auth::Public,
        params: &[],
        body: Body::None,
        status: 200,
        answer: Answer::Bytes("text/plain", "`ok` and a newline."),
        errors: &[],
    },
    Op {
        method: "get",
        path: "/metrics",
        tag: "operations",
        summary: "Prometheus metrics",
        description: "Counters and gauges in the Prometheus text format 0.0.4.",
        auth: Auth::Public,
        params: &[],
        body: Body::None,
        status: 200,
        answer: Answer::Bytes("text/plain", "Prometheus text exposition format 0.0.4."),
        errors: &[],
    },
    Op {
        method: "get",
        path: "/openapi.json",
        tag: "operations",
        summary: "This document",
        description: "The OpenAPI 3.1 description of the API, generated from the wire types.",
        auth: Auth::Public,
        params: &[],
        body: Body::None,
        status: 200,
        answer: Answer::Bytes("application/json", "An OpenAPI 3.1 document."),
        errors: &[],
    },
    Op {
        method: "get",
        path: "/docs",
        tag: "operations",
        summary: "API reference page",
        description: "A page that renders this document; works offline.",
        auth: Auth::Public,
        params: &[],
        body: Body::None,
        status: 200,
        answer: Answer::Bytes("text/html", "An HTML page."),
        errors: &[],
    },
    Op {
        method: "get",
        path: "/v1/models",
        tag: "models",
        summary: "List hosted models",
        description: "Every model the market hosts, oldest upload first: what a worker may offer.",
        auth: Auth::Public,
        params: &[],
        body: Body::None,
        status: 200,
        answer: Answer::Json(of::<ModelList>),
        errors: &[],
    },
    Op {
        method: "post",
        path: "/v1/models",
        tag: "models",
        summary: "Upload a model",
        description: "The body is the raw ONNX bytes. The model must pass admission (a YOLOX \
                      detector with standard operators and no external data) or is refused \
                      with 422 and the rule's code; it is stored under its sha256.",
        auth: Auth::Signed,
        params: &[],
        body: Body::Bytes("application/octet-stream", "The ONNX model bytes."),
        status: 200,
        answer: Answer::Json(of::<ModelUploaded>),
        errors: &[400, 401, 409, 413, 422],
    },
    Op {
        method: "get",
        path: "/v1/models/{hash}",
        tag: "models",
        summary: "Download a model",
        description: "The ONNX bytes of a hosted model.",
        auth: Auth::Public,
        params: &[HASH],
        body: Body::None,
        status: 200,
        answer: Answer::Bytes("application/octet-stream", "The ONNX model bytes."),
        errors: &[400, 404, 422],
    },
    Op {
        method: "post",
        path: "/v1/offers",
        tag: "workers",
        summary: "Offer to run models",
        description: "What a worker runs and for how little; replaces its previous offer.",
        auth: Auth::Signed,
        params: &[],
        body: Body::Json(of::<OfferRequest>),
        status: 200,
        answer: Answer::Json(of::<Offer>),
        errors: &[400, 401, 409, 413],
    },
    Op {
        method: "post",
        path: "/v1/bids",
        tag: "clients",
        summary: "Place a bid",
        description: "One price for every input; each input becomes a task. The price times \
                      the replicas allowed is reserved from the caller's balance (402 when it \
                      falls short) and what is not spent is refunded when the bid is done.",
        auth: Auth::Signed,
        params: &[],
        body: Body::Json(of::<BidRequest>),
        status: 201,
        answer: Answer::Json(of::<BidCreated>),
        errors: &[400, 401, 402, 409, 413, 422],
    },
    Op {
        method: "get",
        path: "/v1/bids/{id}",
        tag: "clients",
        summary: "A bid and its tasks",
        description: "Readable by the bid's client. With `wait_ms` it answers as soon as a \
                      task is decided beyond the `seen` count, or the bid is done, or the wait \
                      runs out.",
        auth: Auth::Signed,
        params: &[
            path("id", of::<BidId>, "The bid."),
            query(
                "wait_ms",
                count,
                "Long-poll for up to this many milliseconds (at most 60000).",
            ),
            query(
                "seen",
                count,
                "How many tasks the caller already saw decided; defaults to the count now.",
            ),
        ],
        body: Body::None,
        status: 200,
        answer: Answer::Json(of::<BidStatus>),
        errors: &[400, 401, 403, 404, 409],
    },
    Op {
        method: "post",
        path: "/v1/claims",
        tag: "workers",
        summary: "Claim work",
        description: "Long-polls for up to `wait_ms` for at most `max_tasks` assignments of the \
                      models the worker offered, each under a lease.",
        auth: Auth::Signed,
        params: &[],
        body: Body::Json(of::<ClaimRequest>),
        status: 200,
        answer: Answer::Json(of::<Claimed>),
        errors: &[400, 401, 403, 409, 413],
    },
    Op {
        method: "get",
        path: "/v1/inputs/{hash}",
        tag: "workers",
        summary: "Download an input image",
        description: "Readable by the client who sent it and the workers holding a lease on it.",
        auth: Auth::Signed,
        params: &[HASH],
        body: Body::None,
        status: 200,
        answer: Answer::Bytes("application/octet-stream", "The image bytes as sent."),
        errors: &[400, 401, 403, 409],
    },
    Op {
        method: "post",
        path: "/v1/assignments/{id}/heartbeat",
        tag: "workers",
        summary: "Extend a lease",
        description: "Keeps an assignment leased while its worker still runs it.",
        auth: Auth::Signed,
        params: &[path("id", of::<AssignmentId>, "The assignment.")],
        body: Body::None,
        status: 200,
        answer: Answer::Json(of::<Lease>),
        errors: &[400, 401, 403, 404, 409, 413],
    },
    Op {
        method: "post",
        path: "/v1/assignments/{id}/result",
        tag: "workers",
        summary: "Submit a result",
        description: "The worker's detections. The signed request is kept as evidence; the \
                      answer says where the assignment and its task stand.",
        auth: Auth::Signed,
        params: &[path("id", of::<AssignmentId>, "The assignment.")],
        body: Body::Json(of::<ResultRequest>),
        status: 200,
        answer: Answer::Json(of::<AssignmentOutcome>),
        errors: &[400, 401, 403, 404, 409, 413],
    },
    Op {
        method: "post",
        path: "/v1/assignments/{id}/failure",
        tag: "workers",
        summary: "Report a failure",
        description: "The worker could not run the assignment; the task gets another replica.",
        auth: Auth::Signed,
        params: &[path("id", of::<AssignmentId>, "The assignment.")],
        body: Body::Json(of::<FailureRequest>),
        status: 200,
        answer: Answer::Json(of::<AssignmentOutcome>),
        errors: &[400, 401, 403, 404, 409, 413],
    },
    Op {
        method: "get",
        path: "/v1/tasks/{id}/evidence",
        tag: "audit",
        summary: "A decided task's evidence",
        description: "Every signed result, the vote parameters and the verdict, so anyone can \
                      re-run the vote. 404 until the task is decided.",
        auth: Auth::Public,
        params: &[path("id", of::<TaskId>, "The task.")],
        body: Body::None,
        status: 200,
        answer: Answer::Json(of::<Evidence>),
        errors: &[400, 404],
    },
    Op {
        method: "get",
        path: "/v1/settlements",
        tag: "audit",
        summary: "Settlement records",
        description: "The hash-chained settlement records after `after`, oldest first.",
        auth: Auth::Public,
        params: &[
            query(
                "after",
                count,
                "Only records with a greater `seq` (default 0).",
            ),
            query(
                "limit",
                count,
                "At most this many records (1 to 1000, default 1000).",
            ),
        ],
        body: Body::None,
        status: 200,
        answer: Answer::Json(of::<SettlementPage>),
        errors: &[400],
    },
    Op {
        method: "get",
        path: "/v1/market",
        tag: "market",
        summary: "Market statistics",
        description: "Task counts, price levels, workers online, recent clearing prices, fees.",
        auth: Auth::Public,
        params: &[],
        body: Body::None,
        status: 200,
        answer: Answer::Json(of::<MarketStats>),
        errors: &[],
    },
    Op {
        method: "get",
        path: "/v1/workers/{account}",
        tag: "market",
        summary: "A worker's public record",
        description: "Spot checks, credibility, results decided and paid total, with the last 7 days hour by hour (UTC; ended hours only, so the record never dates a single check).",
        auth: Auth::Public,
        params: &[path("account", of::<tally_protocol::AccountId>, "The worker's Stellar account (G...).")],
        body: Body::None,
        status: 200,
        answer: Answer::Json(of::<WorkerRecord>),
        errors: &[400],
    },
    Op {
        method: "get",
        path: "/v1/audit",
        tag: "market",
        summary: "The market's own audit",
        description: "The last report of the checks of `tally audit`, run by the market \
                      against its own API every `--audit-every-secs`; 404 until the first run.",
        auth: Auth::Public,
        params: &[],
        body: Body::None,
        status: 200,
        answer: Answer::Json(of::<SelfAudit>),
        errors: &[404],
    },
    Op {
        method: "get",
        path: "/v1/events",
        tag: "market",
        summary: "Event stream",
        description: "Server-sent events: each `data:` line is one JSON `MarketEvent`. A frame \
                      with `event: lagged` carries the number of events this listener missed.",
        auth: Auth::Public,
        params: &[],
        body: Body::None,
        status: 200,
        answer: Answer::Events(of::<MarketEvent>),
        errors: &[],
    },
    Op {
        method: "get",
        path: "/v1/accounts/me",
        tag: "accounts",
        summary: "The caller's account",
        description: "Balances, earnings, reputation and where to deposit.",
        auth: Auth::Signed,
        params: &[],
        body: Body::None,
        status: 200,
        answer: Answer::Json(of::<AccountView>),
        errors: &[401, 409],
    },
    Op {
        method: "get",
        path: "/v1/deposits",
        tag: "accounts",
        summary: "The caller's deposits",
        description: "Payments into the operator's account credited to the caller or sent \
                      from it, newest first.",
        auth: Auth::Signed,
        params: &[],
        body: Body::None,
        status: 200,
        answer: Answer::Json(of::<DepositPage>),
        errors: &[401, 409],
    },
    Op {
        method: "get",
        path: "/v1/withdrawals",
        tag: "accounts",
        summary: "The caller's withdrawals",
        description: "Newest first.",
        auth: Auth::Signed,
        params: &[],
        body: Body::None,
        status: 200,
        answer: Answer::Json(of::<WithdrawalPage>),
        errors: &[401, 409],
    },
    Op {
        method: "post",
        path: "/v1/withdrawals",
        tag: "accounts",
        summary: "Withdraw",
        description: "Moves `amount` of the available balance out to the caller's own account \
                      on the network, paid by the next settlement record.",
        auth: Auth::Signed,
        params: &[],
        body: Body::Json(of::<WithdrawalRequest>),
        status: 200,
        answer: Answer::Json(of::<Withdrawal>),
        errors: &[400, 401, 402, 409, 413],
    },
    Op {
        method: "get",
        path: "/v1/withdrawals/{id}/evidence",
        tag: "audit",
        summary: "A withdrawal's signed request",
        description: "The request exactly as its account signed it, for auditors.",
        auth: Auth::Public,
        params: &[path("id", withdrawal_id, "The withdrawal.")],
        body: Body::None,
        status: 200,
        answer: Answer::Json(of::<WithdrawalEvidence>),
        errors: &[400, 404],
    },
    Op {
        method: "post",
        path: "/v1/admin/credits",
        tag: "admin",
        summary: "Credit an account",
        description: "Adds `amount` to an account's available balance.",
        auth: Auth::Operator,
        params: &[],
        body: Body::Json(of::<CreditRequest>),
        status: 200,
        answer: Answer::Json(of::<AccountView>),
        errors: &[400, 401, 403, 409, 413],
    },
    Op {
        method: "get",
        path: "/v1/admin/accounts",
        tag: "admin",
        summary: "Every account's books",
        description: "Balances of every account, in stroops.",
        auth: Auth::Operator,
        params: &[],
        body: Body::None,
        status: 200,
        answer: Answer::Json(of::<AdminAccounts>),
        errors: &[401, 403, 409],
    },
    Op {
        method: "get",
        path: "/v1/admin/workers",
        tag: "admin",
        summary: "Workers",
        description: "Every worker's credibility, checks, reputation and earnings.",
        auth: Auth::Operator,
        params: &[],
        body: Body::None,
        status: 200,
        answer: Answer::Json(of::<AdminWorkers>),
        errors: &[401, 403, 409],
    },
    Op {
        method: "get",
        path: "/v1/admin/bids",
        tag: "admin",
        summary: "Bids",
        description: "The newest bids first, client and spot-check bids alike.",
        auth: Auth::Operator,
        params: &[],
        body: Body::None,
        status: 200,
        answer: Answer::Json(of::<AdminBids>),
        errors: &[401, 403, 409],
    },
    Op {
        method: "post",
        path: "/v1/admin/reviewers",
        tag: "admin",
        summary: "Mark a reviewer",
        description: "Marks an account verified to review tasks without consensus (`verified: true`) \
                      or takes the mark back. The signed request is kept and published at \
                      `GET /v1/reviewers`: who was marked when is on record.",
        auth: Auth::Operator,
        params: &[],
        body: Body::Json(of::<ReviewerMarkRequest>),
        status: 200,
        answer: Answer::Json(of::<ReviewerMark>),
        errors: &[400, 401, 403, 409, 413],
    },
    Op {
        method: "get",
        path: "/v1/reviewers",
        tag: "audit",
        summary: "Reviewer marks",
        description: "Every mark the operator signed, oldest first: an account may review from \
                      its latest mark saying `verified` until one saying otherwise.",
        auth: Auth::Public,
        params: &[],
        body: Body::None,
        status: 200,
        answer: Answer::Json(of::<ReviewerMarks>),
        errors: &[],
    },
    Op {
        method: "get",
        path: "/v1/reviews/next",
        tag: "reviews",
        summary: "Next review",
        description: "A task the workers did not agree on, for a verified reviewer: the review the \
                      caller holds, or a new one on the oldest task wanting a reviewer. Each \
                      candidate is a group of agreeing results. With `wait_ms`, waits for a task \
                      to want a reviewer instead of answering 204 at once.",
        auth: Auth::Signed,
        params: &[query("wait_ms", count, "Wait up to this many ms (at most 60,000) for work.")],
        body: Body::None,
        status: 200,
        answer: Answer::Json(of::<ReviewTicket>),
        errors: &[204, 401, 403, 409],
    },
    Op {
        method: "post",
        path: "/v1/reviews/{id}",
        tag: "reviews",
        summary: "Answer a review",
        description: "The reviewer's detections (picking a candidate is sending its detections). \
                      Two agreeing reviews decide the task; the signed request is evidence, \
                      public once the task is decided.",
        auth: Auth::Signed,
        params: &[path("id", of::<AssignmentId>, "The review.")],
        body: Body::Json(of::<ReviewRequest>),
        status: 200,
        answer: Answer::Json(of::<ReviewOutcome>),
        errors: &[400, 401, 403, 404, 409, 413],
    },
];

/// What each error status means on this API.
pub fn error_meaning(status: u16) -> &'static str {
    match status {
        400 => "Bad request: malformed JSON, an unknown field, a bad id or hash, or an invalid value; `code` names it (`bad_json`, `bad_id`, `bad_price`, ...).",
        401 => "Unauthorized: the request is unsigned, its signature does not verify for this market (its network and operator), it is signed the retired `tally-v1` way (the client is too old), or its timestamp is more than 60 s from the market's clock.",
        402 => "Insufficient funds: the available balance does not cover it.",
        204 => "Nothing waits for this caller.",
        403 => "Forbidden: the caller's key may not do this (`not_a_reviewer`: the operator has not marked it a verified reviewer).",
        404 => "Not found.",
        409 => "Conflict: a replayed nonce (`replayed_request`), or a state that no longer allows it (`lease_expired`, `cancelled`, `already_finished`, ...).",
        413 => "The body is larger than the market's limit for this path (refused on `Content-Length` before it is read).",
        408 => "The body arrived too slowly (`body_timeout`): after a few seconds' grace a body must keep arriving.",
        503 => "The market is reading its share of large bodies (`busy`); try again in a few seconds.",
        422 => "Unprocessable: well-formed but refused (a model failing admission, an image that does not decode); `code` names the rule.",
        500 => "Internal error; the operator's log has the cause.",
        _ => "Error.",
    }
}
