//! Model admission at upload: a model no worker may run (external data
//! reading the worker's key, foreign operators, not a detector, broken
//! bytes) is refused with 422, the rule's code and a message naming the
//! problem; it is never stored, so it cannot be downloaded and no bid can
//! name it. Real detectors are accepted. On SQLite and PostgreSQL.

mod common;

use common::*;
use tally_model::build;
use tally_protocol::{Error, Sha256Hex, Stroops};

/// A hostile upload: what it is, its bytes, the refusal code and a phrase
/// the message must contain.
struct Hostile {
    what: &'static str,
    bytes: Vec<u8>,
    code: &'static str,
    mentions: &'static str,
}

fn hostile_models() -> Vec<Hostile> {
    let h = |what, bytes, code, mentions| Hostile {
        what,
        bytes,
        code,
        mentions,
    };
    let tiny = build::tiny_yolox("truncated");
    vec![
        h(
            "external initializer at worker.key",
            build::with_external_initializer("worker.key"),
            "external_data",
            "location \"worker.key\"",
        ),
        h(
            "external initializer at ../worker.key",
            build::with_external_initializer("../worker.key"),
            "external_data",
            "location \"../worker.key\"",
        ),
        h(
            "external initializer at an absolute path",
            build::with_external_initializer("/etc/passwd"),
            "external_data",
            "location \"/etc/passwd\"",
        ),
        h(
            "external tensor inside an If branch",
            build::with_external_in_subgraph("worker.key"),
            "external_data",
            "in a subgraph",
        ),
        h(
            "external sparse initializer",
            build::with_external_sparse_initializer("worker.key"),
            "external_data",
            "sparse initializer \"S\"",
        ),
        h(
            "external tensor in a Constant attribute",
            build::with_external_attribute("worker.key"),
            "external_data",
            "attribute \"value\" of node \"leak\"",
        ),
        h(
            "operator from a custom domain",
            build::with_custom_domain("com.evil"),
            "custom_domain",
            "domain \"com.evil\"",
        ),
        h("opset 99", build::with_opset(99), "opset", "version 99"),
        h(
            "unknown TensorProto field",
            build::with_unknown_field(),
            "unknown_field",
            "field 17",
        ),
        h(
            "model-local function",
            build::with_function(),
            "model_functions",
            "functions",
        ),
        h(
            "training info",
            build::with_training_info(),
            "training_info",
            "training",
        ),
        h(
            "ONNX Runtime settings in metadata",
            build::with_metadata("ort_config", "{}"),
            "runtime_metadata",
            "\"ort_config\"",
        ),
        h(
            "input that is not [1, 3, S, S]",
            build::with_input_shape(&[1, 3, 33, 33]),
            "model_family",
            "[1, 3, 33, 33]",
        ),
        h(
            "two outputs",
            build::with_two_outputs(),
            "model_family",
            "2 outputs",
        ),
        h(
            "truncated model",
            tiny[..tiny.len() / 2].to_vec(),
            "malformed",
            "not a well-formed ONNX file",
        ),
        h(
            "bytes that are not ONNX",
            b"onnx-model-bytes-for-tests".to_vec(),
            "malformed",
            "not a well-formed ONNX file",
        ),
    ]
}

fn status(e: &Error) -> Option<u16> {
    e.status().map(|s| s.as_u16())
}

async fn hostile_models_are_refused_and_never_stored(backend: Backend) {
    let market = spawn_market(backend).await;
    let client = market.funded_client(1_000_000).await;
    for m in hostile_models() {
        let hash = Sha256Hex::of(&m.bytes);
        match client.upload_model(m.bytes).await {
            Err(Error::Api {
                status,
                code,
                message,
            }) => {
                assert_eq!(status, 422, "{}: {code}: {message}", m.what);
                assert_eq!(code, m.code, "{}: {message}", m.what);
                assert!(
                    message.contains(m.mentions),
                    "{}: {message:?} should mention {:?}",
                    m.what,
                    m.mentions
                );
            }
            other => panic!("{}: expected a refusal, got {other:?}", m.what),
        }
        let download = market.anonymous().model(&hash).await.unwrap_err();
        assert_eq!(status(&download), Some(404), "{}: {download}", m.what);
        let bid = client
            .bid_images(bid_request(&hash, 100), &[png(1)])
            .await
            .unwrap_err();
        assert_eq!(status(&bid), Some(404), "{}: {bid}", m.what);
    }
    let me = client.account_me().await.unwrap();
    assert_eq!(
        me.reserved,
        Stroops(0),
        "no refused model reserved anything"
    );
    market.anonymous().healthz().await.unwrap();
    market.finish().await;
}
both!(hostile_models_are_refused_and_never_stored);

/// Uploads `bytes`, checks they download unchanged and a bid may name them.
async fn accepted(market: &TestMarket, client: &tally_protocol::Client, bytes: Vec<u8>) {
    let up = client.upload_model(bytes.clone()).await.expect("accepted");
    assert_eq!(up.model, Sha256Hex::of(&bytes));
    assert_eq!(up.size, bytes.len() as u64);
    assert_eq!(market.anonymous().model(&up.model).await.unwrap(), bytes);
    client
        .bid_images(bid_request(&up.model, 100), &[png(2)])
        .await
        .expect("a bid may name an admitted model");
}

async fn real_detectors_are_accepted(backend: Backend) {
    let market = spawn_market(backend).await;
    let client = market.funded_client(1_000_000).await;
    accepted(&market, &client, build::tiny_yolox("model-admission")).await;
    match tally::assets::find() {
        Some(dir) => {
            let bytes = std::fs::read(dir.join(tally::assets::MODEL_FILE)).unwrap();
            accepted(&market, &client, bytes).await;
        }
        None => {
            let why = tally::assets::missing_message();
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must upload the sample model, but {why}"
            );
            eprintln!("skipping the sample model: {why}");
        }
    }
    market.finish().await;
}
both!(real_detectors_are_accepted);

/// A model stored before admission existed (written straight into the
/// database here) is never handed to a worker: its download is refused.
async fn a_model_stored_before_admission_is_not_served(backend: Backend) {
    let market = spawn_market(backend).await;
    let hostile = build::with_external_initializer("worker.key");
    let hash = Sha256Hex::of(&hostile);
    let legacy = tally_market::db::query(
        "INSERT INTO models (hash, bytes, size, uploaded_by, created_at) VALUES ($1, $2, $3, 'legacy', 0)",
    )
    .bind(hash.as_str())
    .bind(hostile.as_slice())
    .bind(hostile.len() as i64);
    market.write(legacy).await;
    let refused = market.anonymous().model(&hash).await.unwrap_err();
    assert_eq!(status(&refused), Some(422), "{refused}");
    assert!(refused.to_string().contains("external data"), "{refused}");
    market.finish().await;
}
both!(a_model_stored_before_admission_is_not_served);
