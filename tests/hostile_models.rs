//! A client's model is hostile input to every worker that runs it.
//!
//! The attack: an ONNX model whose initializer is *external data* at
//! `worker.key` (the key beside a worker started in its own folder), whose
//! output would carry those bytes as detections. These tests hand such
//! models (and variants: `../`, an absolute path, a subgraph, a custom
//! operator domain) to `tally detect` on both backends and, through a
//! stand-in market that is itself hostile, to a real `tally work`: each is
//! refused, the task is reported failed, and no byte of the key leaves.

mod worker_process;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use tally_protocol::wire::*;
use tally_protocol::{AssignmentId, Sha256Hex, Signer, Stroops, TaskId};
use tokio::sync::mpsc;
use worker_process::{onnxruntime_present, TALLY};

fn hostile_models() -> Vec<(&'static str, Vec<u8>)> {
    use tally_model::build;
    vec![
        (
            "external data at worker.key",
            build::with_external_initializer("worker.key"),
        ),
        (
            "external data at ../worker.key",
            build::with_external_initializer("../worker.key"),
        ),
        (
            "external data at an absolute path",
            build::with_external_initializer("/etc/hostname"),
        ),
        (
            "external data inside an If subgraph",
            build::with_external_in_subgraph("worker.key"),
        ),
        (
            "external data in a Constant attribute",
            build::with_external_attribute("worker.key"),
        ),
        (
            "an operator from a custom domain",
            build::with_custom_domain("com.evil"),
        ),
    ]
}

fn backends() -> Vec<&'static str> {
    let mut b = vec!["tract"];
    if onnxruntime_present() {
        b.push("onnxruntime");
    }
    b
}

fn sample_png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 3, y as u8 * 5, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A worker's folder as the old README made it: the key beside the models.
fn worker_folder() -> (tempfile::TempDir, Signer) {
    let dir = tempfile::tempdir().unwrap();
    let (signer, _) = worker_process::key_file(dir.path(), "worker");
    (dir, signer)
}

#[tokio::test]
async fn tally_detect_refuses_every_hostile_model_on_both_backends() {
    let (dir, signer) = worker_folder();
    let image = dir.path().join("photo.png");
    std::fs::write(&image, sample_png()).unwrap();
    for backend in backends() {
        for (what, bytes) in hostile_models() {
            let model = dir.path().join("hostile.onnx");
            std::fs::write(&model, &bytes).unwrap();
            let out = tokio::process::Command::new(TALLY)
                .current_dir(dir.path())
                .args([
                    "detect",
                    "--json",
                    "--backend",
                    backend,
                    "--model",
                    "hostile.onnx",
                    "photo.png",
                ])
                .output()
                .await
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                !out.status.success(),
                "{backend}, {what}: accepted\n{stdout}"
            );
            assert!(
                stderr.contains("model refused"),
                "{backend}, {what}: {stderr}"
            );
            assert!(
                stderr.contains("external data") || stderr.contains("domain"),
                "{backend}, {what}: the refusal names no reason: {stderr}"
            );
            assert!(!stdout.contains(signer.secret().as_str()));
        }
    }
    // The honest tiny model still runs, so the refusals above are about the models.
    std::fs::write(
        dir.path().join("tiny.onnx"),
        tally_model::build::tiny_yolox("detect"),
    )
    .unwrap();
    let out = tokio::process::Command::new(TALLY)
        .current_dir(dir.path())
        .args([
            "detect",
            "--json",
            "--backend",
            "tract",
            "--model",
            "tiny.onnx",
            "photo.png",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the stand-in market saw.
#[derive(Default)]
struct Seen {
    bodies: Vec<Vec<u8>>,
    results: usize,
}

struct Stub {
    model: Vec<u8>,
    model_hash: Sha256Hex,
    image: Vec<u8>,
    claimed: Mutex<bool>,
    seen: Mutex<Seen>,
    failures: mpsc::UnboundedSender<String>,
}

type S = State<Arc<Stub>>;

/// A market that hands out one task with a hostile model and records every body it is sent.
async fn hostile_market(model: Vec<u8>) -> (String, Arc<Stub>, mpsc::UnboundedReceiver<String>) {
    let (failures, rx) = mpsc::unbounded_channel();
    let stub = Arc::new(Stub {
        model_hash: Sha256Hex::of(&model),
        model,
        image: sample_png(),
        claimed: Mutex::new(false),
        seen: Mutex::new(Seen::default()),
        failures,
    });
    let record = |s: &Stub, body: &Bytes| s.seen.lock().unwrap().bodies.push(body.to_vec());
    let app = Router::new()
        .route(
            "/v1/models",
            get(|State(s): S| async move {
                Json(ModelList {
                    models: vec![HostedModel { model: s.model_hash.clone(), bytes: s.model.len() as u64 }],
                })
            }),
        )
        .route("/v1/models/{hash}", get(|State(s): S| async move { s.model.clone() }))
        // What the worker's signatures are bound to: a network and an operator.
        .route(
            "/v1/market",
            get(|| async {
                Json(MarketStats {
                    open_tasks: 1,
                    running_tasks: 0,
                    verified_tasks: 0,
                    failed_tasks: 0,
                    review_tasks: 0,
                    price_levels: vec![],
                    workers_online: 0,
                    workers: vec![],
                    recent_clearing_prices: vec![],
                    fee_bps: 0,
                    asset: "native".into(),
                    network: "Test SDF Network ; September 2015".into(),
                    operator: Signer::generate().account().clone(),
                    holdback_secs: 0,
                    trusted_after: 24,
                })
            }),
        )
        .route("/v1/inputs/{hash}", get(|State(s): S| async move { s.image.clone() }))
        .route(
            "/v1/offers",
            post(move |State(s): S, body: Bytes| async move {
                record(&s, &body);
                let req: OfferRequest = serde_json::from_slice(&body).unwrap();
                Json(Offer {
                    worker: Signer::generate().account().clone(),
                    models: req.models,
                    min_price: req.min_price,
                    capacity: req.capacity,
                    updated_at: chrono::Utc::now(),
                })
            }),
        )
        .route(
            "/v1/claims",
            post(move |State(s): S, body: Bytes| async move {
                record(&s, &body);
                let first = !std::mem::replace(&mut *s.claimed.lock().unwrap(), true);
                if !first {
                    // Long-poll with nothing to give.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    return Json(Claimed { assignments: vec![] });
                }
                Json(Claimed {
                    assignments: vec![Assignment {
                        assignment: AssignmentId(1),
                        task: TaskId(1),
                        model: s.model_hash.clone(),
                        input: Sha256Hex::of(&s.image),
                        price: Stroops(1000),
                        lease_expires_at: chrono::Utc::now() + chrono::Duration::seconds(60),
                    }],
                })
            }),
        )
        .route(
            "/v1/assignments/{id}/heartbeat",
            post(move |State(s): S, body: Bytes| async move {
                record(&s, &body);
                Json(Lease {
                    assignment: AssignmentId(1),
                    lease_expires_at: chrono::Utc::now() + chrono::Duration::seconds(60),
                })
            }),
        )
        .route(
            "/v1/assignments/{id}/result",
            post(move |State(s): S, body: Bytes| async move {
                record(&s, &body);
                s.seen.lock().unwrap().results += 1;
                let _ = s.failures.send("RESULT".into());
                Json(AssignmentOutcome {
                    assignment: AssignmentId(1),
                    task: TaskId(1),
                    status: "submitted".into(),
                    task_status: TaskState::Running,
                })
            }),
        )
        .route(
            "/v1/assignments/{id}/failure",
            post(move |State(s): S, UrlPath(_id): UrlPath<String>, body: Bytes| async move {
                record(&s, &body);
                let req: FailureRequest = serde_json::from_slice(&body).unwrap();
                let _ = s.failures.send(req.reason);
                Json(AssignmentOutcome {
                    assignment: AssignmentId(1),
                    task: TaskId(1),
                    status: "failed".into(),
                    task_status: TaskState::Open,
                })
            }),
        )
        .route(
            "/v1/accounts/me",
            get(|| async {
                Json(serde_json::json!({
                    "account": Signer::generate().account().to_string(),
                    "balance": 0, "reserved": 0, "earned_unpaid": 0, "paid_total": 0, "fees_paid": 0,
                    "reputation": { "agreed": 0, "disagreed": 0, "timed_out": 0 }
                }))
            }),
        )
        .with_state(Arc::clone(&stub));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, stub, rx)
}

/// Starts `tally work` in `dir` with the key as `worker.key` beside it.
fn start_worker(dir: &Path, market: &str, backend: &str) -> tokio::process::Child {
    tokio::process::Command::new(TALLY)
        .current_dir(dir)
        .args([
            "work",
            "--market",
            market,
            "--key",
            "worker.key",
            "--backend",
            backend,
        ])
        .args(["--models-dir", "models"])
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start tally work")
}

#[tokio::test]
async fn a_worker_handed_a_hostile_model_reports_the_task_failed_and_leaks_nothing() {
    for backend in backends() {
        for (what, model) in hostile_models() {
            let (dir, signer) = worker_folder();
            let (market, stub, mut failures) = hostile_market(model).await;
            let mut worker = start_worker(dir.path(), &market, backend);
            let reason = tokio::time::timeout(Duration::from_secs(60), failures.recv())
                .await
                .unwrap_or_else(|_| panic!("{backend}, {what}: no failure reported within 60 s"))
                .unwrap();
            let _ = worker.start_kill();
            let out = worker.wait_with_output().await.unwrap();
            let log = String::from_utf8_lossy(&out.stderr);
            assert_ne!(
                reason, "RESULT",
                "{backend}, {what}: a result was submitted\n{log}"
            );
            assert!(
                reason.contains("model refused"),
                "{backend}, {what}: {reason}"
            );
            let seen = stub.seen.lock().unwrap();
            assert_eq!(seen.results, 0, "{backend}, {what}");
            // Not one body carries the seed, in text or as its raw bytes.
            let seed = signer.secret();
            let raw = stellar_seed_bytes(seed.as_str());
            for body in &seen.bodies {
                assert!(
                    !contains(body, seed.as_bytes()),
                    "{backend}, {what}: seed in a request"
                );
                assert!(
                    !contains(body, &raw),
                    "{backend}, {what}: raw seed bytes in a request"
                );
            }
            assert!(
                !log.contains(seed.as_str()),
                "{backend}, {what}: seed in the log"
            );
            // The refused model is not kept where a later run would offer it.
            let cached = dir
                .path()
                .join("models")
                .join(format!("{}.onnx", stub.model_hash));
            assert!(
                !cached.exists(),
                "{backend}, {what}: refused model left in the cache"
            );
        }
    }
}

#[tokio::test]
async fn a_key_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, _) = worker_folder();
    let key = dir.path().join("worker.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = tokio::process::Command::new(TALLY)
        .args(["work", "--market", "http://127.0.0.1:9", "--key"])
        .arg(&key)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("can be read by others") && stderr.contains("chmod 600"),
        "{stderr}"
    );
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The 32 raw bytes behind an `S...` seed.
fn stellar_seed_bytes(seed: &str) -> Vec<u8> {
    stellar_strkey::ed25519::PrivateKey::from_string(seed.trim())
        .expect("a seed")
        .0
        .to_vec()
}
