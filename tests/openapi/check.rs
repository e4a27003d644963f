//! The checks of `tests/openapi.rs`: the document itself (OpenAPI 3.1,
//! `$ref`s, the router's routes), and each live answer against it.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};
use tally_protocol::signing;
use tally_protocol::Signer;

const OAS_31_SCHEMA: &str = include_str!("../fixtures/openapi-3.1-schema-2025-09-15.json");
const API_RS: &str = include_str!("../../market/src/http/api.rs");

/// One answer as it came over the wire.
pub struct Answer {
    pub status: u16,
    pub media: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            )
        })
    }
}

/// The document and the answers checked against it.
pub struct Api {
    url: String,
    /// The market's network and operator, which signatures name.
    pub domain: tally_protocol::Domain,
    pub doc: Value,
    pub http: reqwest::Client,
    /// `(method, path template, status)` of every answer checked.
    pub seen: BTreeSet<(String, String, u16)>,
}

impl Api {
    pub async fn new(url: &str) -> Api {
        let http = reqwest::Client::new();
        let doc: Value = http
            .get(format!("{url}/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Api {
            url: url.to_string(),
            domain: tally_protocol::Client::new(url, None)
                .domain()
                .await
                .expect("GET /v1/market"),
            doc,
            http,
            seen: BTreeSet::new(),
        }
    }

    /// Send a request (signed by `who` when given) to `path`, which fills
    /// the document's `template`, and check the answer against it.
    pub async fn call(
        &mut self,
        who: Option<&Signer>,
        method: &str,
        template: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Answer {
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut req = self.http.request(m.clone(), format!("{}{path}", self.url));
        if let Some(s) = who {
            let h = s.sign(&self.domain, m.as_str(), path, &body);
            req = req
                .header(signing::HEADER_ACCOUNT, h.account.as_str())
                .header(signing::HEADER_TIMESTAMP, h.timestamp_ms.to_string())
                .header(signing::HEADER_NONCE, h.nonce)
                .header(signing::HEADER_SIGNATURE, h.signature);
        }
        let resp = req.body(body).send().await.unwrap();
        let status = resp.status().as_u16();
        let media = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        // A stream never ends: its events are checked on their own.
        let body = if media == "text/event-stream" {
            Vec::new()
        } else {
            resp.bytes().await.unwrap().to_vec()
        };
        let answer = Answer {
            status,
            media,
            body,
        };
        self.check(method, template, &answer);
        answer
    }

    /// Sign and send `body` as JSON; expect `status`.
    pub async fn json(
        &mut self,
        who: Option<&Signer>,
        method: &str,
        template: &str,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let a = self.call(who, method, template, path, bytes).await;
        assert_eq!(
            a.status,
            status,
            "{method} {path}: {}",
            String::from_utf8_lossy(&a.body)
        );
        a.json()
    }

    /// [`Api::json`] for a POST by `who`.
    pub async fn post(
        &mut self,
        who: &Signer,
        template: &str,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        self.json(Some(who), "post", template, path, body, status)
            .await
    }

    /// [`Api::post`] of `body` to a path without parameters.
    pub async fn post_to(&mut self, who: &Signer, path: &str, body: Value, status: u16) -> Value {
        self.post(who, path, path, Some(body), status).await
    }

    /// [`Api::json`] for a GET without a body.
    pub async fn get(
        &mut self,
        who: Option<&Signer>,
        template: &str,
        path: &str,
        status: u16,
    ) -> Value {
        self.json(who, "get", template, path, None, status).await
    }

    /// The answer is one the document gives for this operation.
    pub fn check(&mut self, method: &str, template: &str, a: &Answer) {
        let op = &self.doc["paths"][template][method];
        assert!(op.is_object(), "{method} {template} is not documented");
        let response = &op["responses"][a.status.to_string()];
        assert!(
            response.is_object(),
            "{method} {template} answered {} which the document does not list: {}",
            a.status,
            String::from_utf8_lossy(&a.body[..a.body.len().min(300)])
        );
        let Some(content) = response["content"].as_object() else {
            // A documented answer without content (204): none may come.
            assert!(
                a.body.is_empty(),
                "{method} {template} {}: a body where none is documented",
                a.status
            );
            self.seen
                .insert((method.to_string(), template.to_string(), a.status));
            return;
        };
        let (media, entry) = content
            .iter()
            .find(|(m, _)| a.media.starts_with(m.as_str()))
            .unwrap_or_else(|| {
                panic!(
                    "{method} {template} {}: media type {:?} not documented",
                    a.status, a.media
                )
            });
        if media == "application/json" && a.status != 200 || entry["schema"].get("$ref").is_some() {
            self.validate(&entry["schema"], &a.json(), &format!("{method} {template}"));
        } else if media == "application/json" {
            // This document itself, or another JSON answer described loosely.
            a.json();
        }
        self.seen
            .insert((method.to_string(), template.to_string(), a.status));
    }

    /// Validate `instance` against `schema`, resolving `$ref`s into the
    /// document's components; formats (date-time, ...) are checked too.
    pub fn validate(&self, schema: &Value, instance: &Value, what: &str) {
        let errors = self.errors(schema, instance, what);
        assert!(
            errors.is_empty(),
            "{what}: the answer does not match the document: {errors:#?}\n{instance:#}"
        );
    }

    pub fn errors(&self, schema: &Value, instance: &Value, what: &str) -> Vec<String> {
        let mut root = schema.as_object().cloned().expect("a schema object");
        root.insert("components".into(), self.doc["components"].clone());
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&Value::Object(root))
            .unwrap_or_else(|e| panic!("{what}: the document's schema does not compile: {e}"));
        validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }
}

/// `(method, path)` of every route in `router()`, read from its source.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let mut rest = API_RS;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        // The call's text, up to its closing parenthesis.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("a closed .route(...)");
        let call = &rest[..end];
        let path = call.split('"').nth(1).expect("a path literal");
        for method in ["get", "post", "put", "patch", "delete"] {
            let called = call.match_indices(&format!("{method}(")).any(|(i, _)| {
                i == 0
                    || !call.as_bytes()[i - 1].is_ascii_alphanumeric()
                        && call.as_bytes()[i - 1] != b'_'
            });
            if called {
                out.insert((method.to_string(), path.to_string()));
            }
        }
    }
    out
}

pub fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.insert((method.clone(), path.clone()));
        }
    }
    out
}

/// Every `$ref` in `v` points at something in `doc`.
fn refs_resolve(doc: &Value, v: &Value, refs: &mut usize) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                let pointer = r.strip_prefix('#').expect("a local $ref");
                assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
                *refs += 1;
            }
            map.values().for_each(|c| refs_resolve(doc, c, refs));
        }
        Value::Array(items) => items.iter().for_each(|c| refs_resolve(doc, c, refs)),
        _ => {}
    }
}

/// The document is valid OpenAPI 3.1 and describes exactly the router.
pub fn check_document(doc: &Value) {
    let meta: Value = serde_json::from_str(OAS_31_SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&meta).expect("the OpenAPI 3.1 schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "not valid OpenAPI 3.1: {errors:#?}");
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        jsonschema::meta::validate(schema)
            .unwrap_or_else(|e| panic!("components/schemas/{name} is not JSON Schema: {e}"));
    }
    let mut refs = 0;
    refs_resolve(doc, doc, &mut refs);
    assert!(refs > 50, "schemas are shared by $ref ({refs})");

    let routed = routes_in_source();
    assert!(routed.len() >= 27, "the route table parses: {routed:?}");
    let documented = operations(doc);
    assert_eq!(
        routed.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routes missing from the document"
    );
    assert_eq!(
        documented.difference(&routed).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented operations the router lacks"
    );
    // Every operation has an answer, errors in the ErrorBody shape, and
    // signed ones name the signing headers.
    for (method, path) in &documented {
        let op = &doc["paths"][path][method];
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path}"
        );
        for (status, r) in responses {
            if !status.starts_with('2') {
                let schema = &r["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
        let signed = op["security"].as_array().is_some_and(|s| !s.is_empty());
        if signed {
            assert!(responses.contains_key("401"), "{method} {path} lists 401");
        }
        assert_eq!(signed, !op["security"][0].is_null(), "{method} {path}");
    }
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for header in [
        "X-Tally-Account",
        "X-Tally-Timestamp",
        "X-Tally-Nonce",
        "X-Tally-Signature",
    ] {
        assert!(
            schemes
                .values()
                .any(|s| s["name"] == header && s["in"] == "header"),
            "{header}"
        );
    }
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], json!(["error"]));
    // The checks have teeth: a broken document is refused.
    let mut broken = doc.clone();
    broken["paths"]["/v1/market"]["get"]["responses"] = json!("none");
    assert!(
        !validator.is_valid(&broken),
        "the OpenAPI schema checks operations"
    );
}

/// Fill a template's parameters with values of the right shape.
fn dummy(template: &str) -> String {
    template
        .replace("{hash}", &"0".repeat(64))
        .replace("{id}", "1")
}

/// Every documented operation is routed: an unsigned request with made-up
/// ids meets the operation (an answer the document lists), never the
/// fallback or a wrong method.
pub async fn every_operation_is_routed(api: &mut Api) {
    for (method, template) in operations(&api.doc) {
        let a = api
            .call(None, &method, &template, &dummy(&template), Vec::new())
            .await;
        assert_ne!(a.status, 405, "{method} {template}");
        if a.status == 404 {
            let code = a.json();
            assert!(
                !code["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("no such endpoint"),
                "{method} {template} is not routed"
            );
        }
    }
}
