//! The API document: OpenAPI 3.1 at `GET /openapi.json`, generated from the
//! wire types ([`tally_protocol::wire`]) and the operation table in
//! [`routes`], and a reference page at `GET /docs` that renders it offline.
//!
//! Request bodies are described as the market deserializes them, answers as
//! it serializes them (a field it always writes is required), each type
//! once under `components/schemas`.

pub mod routes;

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use schemars::generate::SchemaSettings;
use schemars::SchemaGenerator;
use serde_json::{json, Map, Value};
use tally_protocol::signing;

use routes::{Answer, Auth, Body, Op};

/// The reference page: vanilla JS that fetches `/openapi.json` and renders it.
pub const DOCS_HTML: &str = include_str!("../../docs/index.html");

const SCHEMAS: &str = "#/components/schemas/";

/// `GET /openapi.json`.
pub async fn serve() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    let text = DOC.get_or_init(|| document().to_string());
    ([(header::CONTENT_TYPE, "application/json")], text.as_str()).into_response()
}

/// `GET /docs`.
pub async fn docs() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        DOCS_HTML,
    )
        .into_response()
}

/// A schema generator for the answers (`serialize`) or the requests.
fn generator(serialize: bool) -> SchemaGenerator {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = "/components/schemas".into();
        s.meta_schema = None;
    });
    let settings = if serialize {
        settings.for_serialize()
    } else {
        settings.for_deserialize()
    };
    settings.into_generator()
}

/// The whole document.
pub fn document() -> Value {
    let mut requests = generator(false);
    let mut answers = generator(true);
    let mut paths = Map::new();
    for op in routes::ops() {
        let item = paths
            .entry(op.path.to_string())
            .or_insert_with(|| json!({}));
        if let Value::Object(item) = item {
            item.insert(
                op.method.to_string(),
                operation(op, &mut requests, &mut answers),
            );
        }
    }
    let mut paths = Value::Object(paths);
    let schemas = merge(
        answers.take_definitions(true),
        requests.take_definitions(true),
        &mut paths,
    );
    let mut schemas = Value::Object(schemas);
    tidy_descriptions(&mut schemas);
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Tally market API",
            "version": "v1",
            "summary": "A marketplace for spare compute: priced inference bids, voted results, Stellar settlement.",
            "description": INTRO,
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" },
        },
        "tags": tags(),
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": security_schemes(),
        },
    })
}

const INTRO: &str = "Every amount is an integer number of stroops (1e-7 of the settlement asset). \
Errors are JSON `{\"error\": {\"code\", \"message\"}}` with a stable `code`. \
Signed endpoints take the four `X-Tally-*` headers described under *security*: \
an ed25519 signature by the account's key over\n\n\
```\ntally-v2\\n{NETWORK}\\n{OPERATOR}\\n{METHOD}\\n{PATH_AND_QUERY}\\n{TIMESTAMP}\\n{NONCE}\\n{hex sha256 of body}\n```\n\n\
(the market's Stellar network passphrase and operator account as `GET /v1/market` gives them, \
so a signature holds on this market only; the method in upper case, the path with its query \
string exactly as sent, the timestamp in Unix milliseconds within 60 s of the market's clock, a \
nonce of 16-64 hex characters never used before by the account), base64 in \
`X-Tally-Signature`. A `tally-v1` signature (without the two market lines) is refused with 401 \
saying the client is too old. Headers are checked before the body is read; a body must keep \
arriving (else 408), and large bodies share an upload budget (503 `busy` when it stays full).";

/// The tags operations are grouped by, in the order the page shows them.
fn tags() -> Value {
    json!([
        { "name": "clients", "description": "Bids and their results." },
        { "name": "workers", "description": "Offers, claims, leases, results." },
        { "name": "reviews", "description": "Human review of tasks without consensus (verified reviewers)." },
        { "name": "models", "description": "Hosted ONNX detectors, addressed by sha256." },
        { "name": "accounts", "description": "Balances, deposits, withdrawals." },
        { "name": "audit", "description": "Public evidence: task results and reviews, settlement records, withdrawal requests, reviewer marks." },
        { "name": "market", "description": "Statistics and the event stream." },
        { "name": "admin", "description": "The operator's views, credits and reviewer marks (operator key only)." },
        { "name": "operations", "description": "Health, metrics and this document." },
    ])
}

/// The four signature headers, each an API key scheme.
fn security_schemes() -> Value {
    let schemes = [
        (
            "TallyAccount",
            signing::HEADER_ACCOUNT,
            "The signing account: a `G...` Stellar strkey (ed25519 public key).",
        ),
        (
            "TallyTimestamp",
            signing::HEADER_TIMESTAMP,
            "Unix time in milliseconds; refused when more than 60 s from the market's clock.",
        ),
        (
            "TallyNonce",
            signing::HEADER_NONCE,
            "16-64 hex characters, never reused by the account: a replay is refused with 409 `replayed_request`.",
        ),
        (
            "TallySignature",
            signing::HEADER_SIGNATURE,
            "Base64 ed25519 signature over `tally-v2\\n{NETWORK}\\n{OPERATOR}\\n{METHOD}\\n{PATH_AND_QUERY}\\n{TIMESTAMP}\\n{NONCE}\\n{hex sha256 of body}`.",
        ),
    ];
    let schemes = schemes.map(|(scheme, name, description)| {
        let header = json!({ "type": "apiKey", "in": "header", "name": canonical(name), "description": description });
        (scheme.to_string(), header)
    });
    Value::Object(schemes.into_iter().collect())
}

/// `x-tally-account` as `X-Tally-Account`.
fn canonical(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// One operation of the document: its tags, texts, id, parameters, body,
/// security and answers.
fn operation(op: &Op, requests: &mut SchemaGenerator, answers: &mut SchemaGenerator) -> Value {
    let mut o = Map::new();
    o.insert("tags".into(), json!([op.tag]));
    o.insert("summary".into(), json!(op.summary));
    let mut description = op.description.to_string();
    if op.auth == Auth::Operator {
        description.push_str("\n\nOnly the operator's key may call it (403 otherwise).");
    }
    o.insert("description".into(), json!(description));
    o.insert("operationId".into(), json!(operation_id(op)));
    if let Some(params) = parameters(op, requests) {
        o.insert("parameters".into(), params);
    }
    if let Some(body) = request_body(op, requests) {
        o.insert("requestBody".into(), body);
    }
    if op.auth != Auth::Public {
        o.insert(
            "security".into(),
            json!([{ "TallyAccount": [], "TallyTimestamp": [], "TallyNonce": [], "TallySignature": [] }]),
        );
    } else {
        o.insert("security".into(), json!([]));
    }
    o.insert("responses".into(), Value::Object(responses(op, answers)));
    Value::Object(o)
}

/// `get/v1/bids/{id}` as `get_v1_bids__id`.
fn operation_id(op: &Op) -> String {
    format!("{}{}", op.method, op.path)
        .replace(['/', '{', '}', '.'], "_")
        .trim_end_matches('_')
        .to_string()
}

/// The operation's path and query parameters, if it has any.
fn parameters(op: &Op, requests: &mut SchemaGenerator) -> Option<Value> {
    let params: Vec<Value> = op
        .params
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "in": p.place,
                "required": p.place == "path",
                "description": p.description,
                "schema": (p.schema)(requests),
            })
        })
        .collect();
    (!params.is_empty()).then_some(Value::Array(params))
}

/// The operation's request body, if it takes one.
fn request_body(op: &Op, requests: &mut SchemaGenerator) -> Option<Value> {
    match &op.body {
        Body::None => None,
        Body::Json(schema) => Some(
            json!({ "required": true, "content": { "application/json": { "schema": schema(requests) } } }),
        ),
        Body::Bytes(media, description) => {
            Some(json!({ "required": true, "description": description,
                    "content": { *media: { "schema": { "type": "string", "contentMediaType": media } } } }))
        }
    }
}

/// The operation's success answer.
fn success(op: &Op, answers: &mut SchemaGenerator) -> Value {
    match &op.answer {
        Answer::Json(schema) => json!({
            "description": "Success.",
            "content": { "application/json": { "schema": schema(answers) } },
        }),
        Answer::Bytes(media, description) => json!({
            "description": description,
            "content": { *media: { "schema": { "type": "string" } } },
        }),
        Answer::Events(schema) => json!({
            "description": "A stream of server-sent events; `x-item-schema` describes the JSON of each `data:` line.",
            "content": { "text/event-stream": {
                "schema": { "type": "string" },
                "x-item-schema": schema(answers),
            } },
        }),
    }
}

/// Every answer of the operation by status: its success, its errors, those
/// of any signed request and 500.
fn responses(op: &Op, answers: &mut SchemaGenerator) -> Map<String, Value> {
    let mut responses = Map::new();
    responses.insert(op.status.to_string(), success(op, answers));
    let error_body = answers.subschema_for::<tally_protocol::wire::ErrorBody>();
    // Any signed request's body may be too slow (408); a large one may find
    // the upload budget full (503).
    let signed: &[u16] = match op.auth {
        Auth::Public => &[],
        _ => &[408, 503],
    };
    for status in op
        .errors
        .iter()
        .copied()
        .chain(signed.iter().copied())
        .chain([500])
    {
        if status == 204 {
            responses.insert(
                "204".into(),
                json!({ "description": routes::error_meaning(status) }),
            );
            continue;
        }
        responses.insert(
            status.to_string(),
            json!({
                "description": routes::error_meaning(status),
                "content": { "application/json": { "schema": error_body } },
            }),
        );
    }
    responses
}

/// Rustdoc links in doc comments (``[`crate::x::Y`]``) read as plain code.
fn tidy_descriptions(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    Value::String(text) if key == "description" => {
                        *text = text
                            .replace("[`", "`")
                            .replace("`]", "`")
                            .replace("`crate::", "`");
                    }
                    _ => tidy_descriptions(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(tidy_descriptions),
        _ => {}
    }
}

/// One `components/schemas` from both contracts. A type read in requests
/// and written in answers is described once when both forms agree;
/// otherwise its request form becomes `{name}Input` and the request side
/// (`paths`' request bodies and parameters, request schemas) points there.
fn merge(
    answers: Map<String, Value>,
    requests: Map<String, Value>,
    paths: &mut Value,
) -> Map<String, Value> {
    let mut renamed: Vec<String> = Vec::new();
    let mut requests = requests;
    loop {
        let before = renamed.len();
        for (name, schema) in requests.iter_mut() {
            rename_refs(schema, &renamed);
            let differs = answers.get(name).is_some_and(|a| a != schema);
            if differs && !renamed.contains(name) {
                renamed.push(name.clone());
            }
        }
        if renamed.len() == before {
            break;
        }
    }
    rename_refs(paths, &renamed);
    let mut schemas = answers;
    for (name, schema) in requests {
        if renamed.contains(&name) {
            schemas.insert(format!("{name}Input"), schema);
        } else {
            schemas.entry(name).or_insert(schema);
        }
    }
    schemas
}

/// Point `$ref`s at the `...Input` form of `renamed` types, except under
/// `responses` (answers keep the serialize form).
fn rename_refs(v: &mut Value, renamed: &[String]) {
    match v {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "responses" {
                    continue;
                }
                if key == "$ref" {
                    if let Value::String(r) = child {
                        if let Some(name) = r.strip_prefix(SCHEMAS) {
                            if renamed.iter().any(|n| n == name) {
                                *r = format!("{SCHEMAS}{name}Input");
                            }
                        }
                    }
                } else {
                    rename_refs(child, renamed);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|c| rename_refs(c, renamed)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_wire_type_needs_two_forms_today() {
        let doc = document();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let inputs: Vec<_> = schemas.keys().filter(|k| k.ends_with("Input")).collect();
        assert!(inputs.is_empty(), "{inputs:?}");
        assert!(schemas.contains_key("BidRequest") && schemas.contains_key("ErrorBody"));
    }

    #[test]
    fn a_request_form_that_differs_is_renamed_on_the_request_side_only() {
        let answers =
            json!({ "T": { "required": ["a"] }, "U": { "$ref": "#/components/schemas/T" } });
        let requests =
            json!({ "T": { "required": [] }, "R": { "$ref": "#/components/schemas/T" } });
        let mut paths = json!({ "/x": { "post": {
            "requestBody": { "$ref": "#/components/schemas/T" },
            "responses": { "200": { "$ref": "#/components/schemas/T" } } } } });
        let to_map = |v: Value| v.as_object().cloned().unwrap();
        let merged = merge(to_map(answers), to_map(requests), &mut paths);
        assert_eq!(merged["U"]["$ref"], "#/components/schemas/T");
        assert_eq!(merged["R"]["$ref"], "#/components/schemas/TInput");
        assert_eq!(merged["TInput"]["required"], json!([]));
        let post = &paths["/x"]["post"];
        assert_eq!(post["requestBody"]["$ref"], "#/components/schemas/TInput");
        assert_eq!(post["responses"]["200"]["$ref"], "#/components/schemas/T");
    }
}
