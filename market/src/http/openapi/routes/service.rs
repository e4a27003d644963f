//! Service operations: health, metrics, this document and its page, and
//! the hosted models.

use tally_protocol::wire::*;

use super::{of, Answer, Auth, Body, Op, HASH};

/// The operations of this group, in the order of the router.
#[rustfmt::skip]
pub(super) const OPS: &[Op] = &[
    Op::get("/healthz", "operations", Auth::Public, Answer::Bytes("text/plain", "`ok` and a newline."))
        .about("Liveness", "Answers `ok` while the process serves."),
    Op::get("/metrics", "operations", Auth::Public, Answer::Bytes("text/plain", "Prometheus text exposition format 0.0.4."))
        .about("Prometheus metrics", "Counters and gauges in the Prometheus text format 0.0.4."),
    Op::get("/openapi.json", "operations", Auth::Public, Answer::Bytes("application/json", "An OpenAPI 3.1 document."))
        .about("This document", "The OpenAPI 3.1 description of the API, generated from the wire types."),
    Op::get("/docs", "operations", Auth::Public, Answer::Bytes("text/html", "An HTML page."))
        .about("API reference page", "A page that renders this document; works offline."),
    Op::get("/v1/models", "models", Auth::Public, Answer::Json(of::<ModelList>))
        .about("List hosted models", "Every model the market hosts, oldest upload first: what a worker may offer."),
    Op::post("/v1/models", "models", Auth::Signed, Answer::Json(of::<ModelUploaded>)).body(Body::Bytes("application/octet-stream", "The ONNX model bytes.")).errors(&[400, 401, 409, 413, 422])
        .about("Upload a model", "The body is the raw ONNX bytes. The model must pass admission (a YOLOX \
            detector with standard operators and no external data) or is refused \
            with 422 and the rule's code; it is stored under its sha256."),
    Op::get("/v1/models/{hash}", "models", Auth::Public, Answer::Bytes("application/octet-stream", "The ONNX model bytes.")).params(&[HASH]).errors(&[400, 404, 422])
        .about("Download a model", "The ONNX bytes of a hosted model."),
];
