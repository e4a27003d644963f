//! The operations of the v1 API as the document describes them: one row per
//! route of [`crate::api::router`], naming the wire types its handler reads
//! and answers with. The schemas themselves come from those types.
//!
//! The rows are grouped by resource, in the order of the router:
//! [`service`] (health, metrics, this document, models), [`work`] (offers,
//! bids, claims, inputs, assignments), [`public`] (evidence, settlements,
//! statistics, worker records, the self-audit, events), [`accounts`]
//! (balances, deposits, withdrawals) and [`admin`] (the operator's views and
//! marks, reviews).

mod accounts;
mod admin;
mod public;
mod service;
mod work;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use tally_protocol::Sha256Hex;

/// A schema generated from a wire type.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The schema of `T`.
fn of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// A withdrawal id: stored as a plain integer.
fn withdrawal_id(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({ "type": "integer", "format": "int64" })
}

/// A count or a bound: a non-negative integer.
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

/// What an operation reads from the request body.
pub enum Body {
    None,
    Json(SchemaFn),
    /// Raw bytes of the given media type.
    Bytes(&'static str, &'static str),
}

/// What an operation answers with on success.
pub enum Answer {
    Json(SchemaFn),
    /// Raw bytes of the given media type, with a description.
    Bytes(&'static str, &'static str),
    /// Server-sent events whose `data:` lines hold this JSON.
    Events(SchemaFn),
}

/// A path or query parameter.
pub struct Param {
    pub name: &'static str,
    /// `path` or `query`.
    pub place: &'static str,
    pub schema: SchemaFn,
    pub description: &'static str,
}

/// A parameter in the path.
const fn path(name: &'static str, schema: SchemaFn, description: &'static str) -> Param {
    Param {
        name,
        place: "path",
        schema,
        description,
    }
}

/// A parameter in the query string.
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

impl Op {
    /// A `method` operation on `path` answering `answer`: no parameters, no
    /// body, 200 on success and no error besides 500 until told otherwise.
    const fn new(
        method: &'static str,
        path: &'static str,
        tag: &'static str,
        auth: Auth,
        answer: Answer,
    ) -> Op {
        Op {
            method,
            path,
            tag,
            summary: "",
            description: "",
            auth,
            params: &[],
            body: Body::None,
            status: 200,
            answer,
            errors: &[],
        }
    }

    /// A `GET` operation (see [`Op::new`]).
    const fn get(path: &'static str, tag: &'static str, auth: Auth, answer: Answer) -> Op {
        Op::new("get", path, tag, auth, answer)
    }

    /// A `POST` operation (see [`Op::new`]).
    const fn post(path: &'static str, tag: &'static str, auth: Auth, answer: Answer) -> Op {
        Op::new("post", path, tag, auth, answer)
    }

    /// Its summary and description.
    const fn about(mut self, summary: &'static str, description: &'static str) -> Op {
        self.summary = summary;
        self.description = description;
        self
    }

    /// Its parameters.
    const fn params(mut self, params: &'static [Param]) -> Op {
        self.params = params;
        self
    }

    /// What it reads from the body.
    const fn body(mut self, body: Body) -> Op {
        self.body = body;
        self
    }

    /// Its success status.
    const fn status(mut self, status: u16) -> Op {
        self.status = status;
        self
    }

    /// The error statuses it may answer with besides 500.
    const fn errors(mut self, errors: &'static [u16]) -> Op {
        self.errors = errors;
        self
    }
}

/// The sha256 address in a path.
const HASH: Param = path("hash", of::<Sha256Hex>, "The sha256 address of the bytes.");

/// Every operation, in the order of the router.
pub fn ops() -> impl Iterator<Item = &'static Op> {
    [
        service::OPS,
        work::OPS,
        public::OPS,
        accounts::OPS,
        admin::OPS,
    ]
    .into_iter()
    .flatten()
}

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
