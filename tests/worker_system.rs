//! Real workers, run as users run them: `tally work` processes on ONNX
//! Runtime and on tract against a market on port 0, and `tally detect`.
//!
//! Needs the sample assets (`TALLY_ASSETS`, else the repository's own
//! `assets/`) and, for the ONNX Runtime workers, `libonnxruntime`
//! (`ORT_DYLIB_PATH` or the pip package). Without them a test says what is
//! missing and passes, unless `CI` is set: then it fails.
//!
//! Every wait is for an event — a line a worker logs, a process exiting —
//! and bounded.

mod common;
mod worker_process;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use tally_protocol::wire::{BidState, TaskState};
use tally_protocol::{Detection, Sha256Hex, Stroops};
use worker_process::*;

/// `tally work` processes called `names`, each with a capacity of 2 and
/// stopping after `max_results`: an
/// `ort...` one on ONNX Runtime, offering `model` (fetched from the market),
/// a `tract` one on tract with the model from `file`.
async fn on_engines(
    market: &TestMarket,
    dir: &Path,
    (model, file): (&Sha256Hex, &str),
    names: &[&str],
    max_results: &str,
) -> Vec<Worker> {
    let common = ["--capacity", "2", "--max-results", max_results];
    let mut workers = Vec::new();
    for name in names {
        let engine = match *name {
            "tract" => ["tract", "--model", file],
            _ => ["onnxruntime", "--offer", model.as_str()],
        };
        let args = [&["--backend", engine[0], engine[1], engine[2]][..], &common].concat();
        workers.push(Worker::start(&market.url, dir, name, &args).await);
    }
    workers
}

/// A folder for the workers, a client credited `funds`, and the sample
/// model it uploaded (its hash and file).
async fn sample_client(
    market: &TestMarket,
    assets: &Path,
    funds: i64,
) -> (
    tempfile::TempDir,
    tally_protocol::Client,
    (Sha256Hex, std::path::PathBuf),
) {
    let dir = tempfile::tempdir().unwrap();
    let client = market.funded_client(funds).await;
    let model = upload_sample_model(&client, assets).await;
    (dir, client, model)
}

/// Two ONNX Runtime workers and a tract worker run every sample image; all
/// three results of every task agree, the consensus is what the reference
/// run saw, and each worker earns price - fee per task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_on_two_backends_agree_on_every_sample_image_and_are_paid() {
    let Some(assets) = assets() else { return };
    if !onnxruntime_present() {
        return;
    }
    let market = spawn_market(Backend::Sqlite).await;
    let (dir, client, (model, model_file)) = sample_client(&market, &assets, 10_000_000).await;
    let images = tally::assets::images(&assets).expect("sample images");
    assert!(images.len() >= 3, "too few sample images: {images:?}");
    let n = images.len().to_string();
    let model_file = model_file.to_str().unwrap();
    let names = ["ort-1", "ort-2", "tract"];
    let mut workers = on_engines(&market, dir.path(), (&model, model_file), &names, &n).await;

    let price = 1_000;
    let bytes: Vec<Vec<u8>> = images.iter().map(|p| std::fs::read(p).unwrap()).collect();
    // Quorum 3: every worker must run every image. (With quorum 2 the two
    // fastest workers verify a task alone, and its third slot is no longer
    // handed out to the slowest.)
    let mut request = bid_request(&model, price);
    request.quorum = Some(3);
    request.max_replicas = Some(3);
    let created = client
        .bid_images(request, &bytes)
        .await
        .expect("bid accepted");
    assert_eq!(created.tasks.len(), images.len());

    // Each worker stops by itself after one result per image.
    let deadline = Instant::now() + Duration::from_secs(120);
    for w in &mut workers {
        w.expect_clean_exit(remaining(deadline)).await;
    }
    for (w, backend) in workers.iter().zip(["onnxruntime", "onnxruntime", "tract"]) {
        assert_eq!(
            w.count(&format!("backend={backend}")),
            1,
            "{} did not load the model on {backend}:\n{}",
            w.name,
            w.log()
        );
        assert_eq!(w.count("submitted result"), images.len(), "{}", w.log());
    }

    let status = client.bid(created.bid).await.unwrap();
    assert_eq!(status.status, BidState::Done);
    // The market names each input by its canonical bytes' sha256.
    let by_input: HashMap<Sha256Hex, &Path> = created
        .inputs
        .iter()
        .cloned()
        .zip(images.iter().map(|p| p.as_path()))
        .collect();
    let accounts: BTreeSet<String> = workers
        .iter()
        .map(|w| w.signer.account().to_string())
        .collect();
    for task in &status.tasks {
        let image = by_input[&task.input];
        assert_eq!(task.status, TaskState::Verified, "{}", image.display());
        let evidence = market.anonymous().evidence(task.task).await.unwrap();
        let verdict = evidence.verdict.expect("a verified task has a verdict");
        assert_eq!(verdict.agree.len(), 3, "{}: {verdict:?}", image.display());
        assert!(
            verdict.disagree.is_empty(),
            "{}: {verdict:?}",
            image.display()
        );
        let who: BTreeSet<String> = evidence
            .results
            .iter()
            .map(|r| r.worker.to_string())
            .collect();
        assert_eq!(who, accounts, "{}", image.display());
        let got = labels(task.consensus.as_deref().unwrap_or_default());
        let want = expected_labels(&assets, image);
        assert!(
            want.is_subset(&got),
            "{}: consensus {got:?}, expected at least {want:?}",
            image.display()
        );
        if image.ends_with("dog.jpg") {
            for label in ["dog", "bicycle", "car"] {
                assert!(got.contains(label), "dog.jpg consensus: {got:?}");
            }
        }
    }

    let fee = price * 250 / 10_000;
    let each = Stroops((price - fee) * images.len() as i64);
    for w in &workers {
        let me = market.client(&w.signer).account_me().await.unwrap();
        assert_eq!(
            me.earned_unpaid.checked_add(me.paid_total),
            Some(each),
            "{}",
            w.name
        );
        assert_eq!(me.reputation.agreed, images.len() as u64, "{}", w.name);
        assert_eq!(
            w.count("stroops so far"),
            images.len(),
            "{} did not report its earnings after each result:\n{}",
            w.name,
            w.log()
        );
    }
    market.finish().await;
}

/// A worker killed mid-task keeps its lease only while it heartbeats; once
/// it is gone the lease expires and two other workers verify the task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_task_loses_it_after_the_lease_and_others_verify_it() {
    let Some(assets) = assets() else { return };
    let market = spawn_leased(Backend::Sqlite, Duration::from_secs(2)).await;
    let (dir, client, (model, _)) = sample_client(&market, &assets, 1_000_000).await;
    let offer = ["--offer", model.as_str(), "--capacity", "1"];

    // The first worker claims the task and holds it far longer than the lease.
    let mut doomed = Worker::start(
        &market.url,
        dir.path(),
        "doomed",
        &[&offer[..], &["--pause-after-claim-ms", "600000"][..]].concat(),
    )
    .await;
    let mut request = bid_request(&model, 1_000);
    request.replicas = Some(2);
    request.quorum = Some(2);
    let dog = std::fs::read(assets.join("images/dog.jpg")).unwrap();
    let created = client.bid_images(request, &[dog]).await.unwrap();
    doomed
        .expect_line("claimed assignment", Duration::from_secs(60))
        .await;
    // Heartbeats carry it past the original lease (four at a third of 2 s each).
    for _ in 0..4 {
        doomed
            .expect_line("lease extended", Duration::from_secs(10))
            .await;
    }
    let me = market.client(&doomed.signer).account_me().await.unwrap();
    assert_eq!(me.reputation.timed_out, 0, "a heartbeating lease expired");
    let task = client.bid(created.bid).await.unwrap().tasks[0].clone();
    assert_eq!(task.status, TaskState::Running);

    doomed.signal("-KILL");
    let status = doomed.exit_status(Duration::from_secs(10)).await;
    assert!(!status.success());

    let mut helpers = Vec::new();
    for name in ["helper-1", "helper-2"] {
        helpers.push(
            Worker::start(
                &market.url,
                dir.path(),
                name,
                &[&offer[..], &["--max-results", "1"][..]].concat(),
            )
            .await,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    for h in &mut helpers {
        h.expect_clean_exit(remaining(deadline)).await;
    }

    let status = client.bid(created.bid).await.unwrap();
    assert_eq!(status.tasks[0].status, TaskState::Verified);
    let evidence = market.anonymous().evidence(task.task).await.unwrap();
    let who: BTreeSet<String> = evidence
        .results
        .iter()
        .map(|r| r.worker.to_string())
        .collect();
    let helpers_accounts: BTreeSet<String> = helpers
        .iter()
        .map(|h| h.signer.account().to_string())
        .collect();
    assert_eq!(who, helpers_accounts);
    let me = market.client(&doomed.signer).account_me().await.unwrap();
    assert_eq!(me.reputation.timed_out, 1);
    assert_eq!((me.earned_unpaid, me.paid_total), (Stroops(0), Stroops(0)));
    market.finish().await;
}

/// SIGTERM stops claiming but the task in hand is finished and submitted;
/// with no grace left, it is handed back to the market instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_finishes_its_task_or_hands_it_back_after_the_grace_period() {
    let Some(assets) = assets() else { return };
    let market = spawn_market(Backend::Sqlite).await;
    let (dir, client, (model, _)) = sample_client(&market, &assets, 1_000_000).await;
    let dog = std::fs::read(assets.join("images/dog.jpg")).unwrap();
    let mut request = bid_request(&model, 1_000);
    request.replicas = Some(1);
    request.quorum = Some(1);

    for (name, grace, finished) in [("patient", "30", true), ("hasty", "0", false)] {
        let mut worker = Worker::start(
            &market.url,
            dir.path(),
            name,
            &[
                "--offer",
                model.as_str(),
                "--pause-after-claim-ms",
                "1500",
                "--grace-secs",
                grace,
            ],
        )
        .await;
        let created = client
            .bid_images(request.clone(), std::slice::from_ref(&dog))
            .await
            .unwrap();
        worker
            .expect_line("claimed assignment", Duration::from_secs(60))
            .await;
        worker.signal("-TERM");
        worker.expect_clean_exit(Duration::from_secs(60)).await;
        assert_eq!(worker.count("no new claims"), 1, "{}", worker.log());

        let task = &client.bid(created.bid).await.unwrap().tasks[0];
        if finished {
            assert_eq!(task.status, TaskState::Verified, "{}", worker.log());
            assert_eq!(worker.count("submitted result"), 1, "{}", worker.log());
        } else {
            // Handed back: open again, for the next worker to claim.
            assert_eq!(task.status, TaskState::Open, "{}", worker.log());
            assert_eq!(task.results, 0);
            assert_eq!(worker.count("reported failure"), 1, "{}", worker.log());
        }
    }
    market.finish().await;
}

/// A worker answering wrong boxes is outvoted by two honest ones: the task
/// is verified without it, and it earns nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulty_worker_is_outvoted_and_not_paid() {
    let Some(assets) = assets() else { return };
    let market = spawn_market(Backend::Sqlite).await;
    let (dir, client, (model, _)) = sample_client(&market, &assets, 1_000_000).await;
    let offer = ["--offer", model.as_str(), "--max-results", "1"];
    let dog = std::fs::read(assets.join("images/dog.jpg")).unwrap();
    let created = client
        .bid_images(bid_request(&model, 1_000), &[dog])
        .await
        .unwrap();
    // The faulty worker claims first, so it surely holds a replica.
    let mut faulty = Worker::start(
        &market.url,
        dir.path(),
        "faulty",
        &[&offer[..], &["--faulty"][..]].concat(),
    )
    .await;
    faulty
        .expect_line("claimed assignment", Duration::from_secs(60))
        .await;
    let mut workers = vec![
        Worker::start(&market.url, dir.path(), "honest-1", &offer).await,
        Worker::start(&market.url, dir.path(), "honest-2", &offer).await,
    ];
    let deadline = Instant::now() + Duration::from_secs(90);
    faulty.expect_clean_exit(remaining(deadline)).await;
    for w in &mut workers {
        w.expect_clean_exit(remaining(deadline)).await;
    }

    let task = &client.bid(created.bid).await.unwrap().tasks[0];
    assert_eq!(task.status, TaskState::Verified);
    let got = labels(task.consensus.as_deref().unwrap_or_default());
    assert!(got.contains("dog") && got.contains("bicycle"), "{got:?}");
    let evidence = market.anonymous().evidence(task.task).await.unwrap();
    let verdict = evidence.verdict.expect("verdict");
    let faulty_result = evidence
        .results
        .iter()
        .find(|r| r.worker == *faulty.signer.account())
        .expect("the faulty worker's result is in the evidence");
    assert_eq!(verdict.disagree, vec![faulty_result.assignment]);
    assert_eq!(verdict.agree.len(), 2);
    let earned =
        |me: &tally_protocol::wire::AccountView| me.earned_unpaid.checked_add(me.paid_total);
    let me = market.client(&faulty.signer).account_me().await.unwrap();
    assert_eq!(earned(&me), Some(Stroops(0)));
    assert_eq!(me.reputation.disagreed, 1);
    for w in &workers {
        let me = market.client(&w.signer).account_me().await.unwrap();
        assert_eq!(earned(&me), Some(Stroops(1_000 - 25)), "{}", w.name);
    }
    market.finish().await;
}

/// `tally detect` finds the dog, the bicycle and the car on both backends;
/// a truncated JPEG is refused with one line naming it.
#[tokio::test]
async fn detect_finds_the_dog_bicycle_and_car_and_refuses_a_truncated_jpeg() {
    let Some(assets) = assets() else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = assets.join(tally::assets::MODEL_FILE);
    let dog = assets.join("images/dog.jpg");
    let mut backends = vec!["tract"];
    if onnxruntime_present() {
        backends.push("onnxruntime");
    }
    for backend in backends {
        let drawn = dir.path().join(format!("dog-{backend}.png"));
        let out = tokio::process::Command::new(TALLY)
            .args(["detect", "--json", "--backend", backend, "--model"])
            .arg(&model)
            .arg("--draw")
            .arg(&drawn)
            .arg(&dog)
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{backend}: {stderr}");
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("one JSON document");
        assert_eq!(report["backend"], backend);
        let image = &report["images"][0];
        assert_eq!(image["path"], dog.to_str().unwrap());
        assert_eq!(
            (image["width"].as_u64(), image["height"].as_u64()),
            (Some(768), Some(576))
        );
        assert!(image["elapsed_ms"].as_f64().is_some_and(|ms| ms > 0.0));
        let detections: Vec<Detection> =
            serde_json::from_value(image["detections"].clone()).unwrap();
        let got = labels(&detections);
        for label in ["dog", "bicycle", "car"] {
            assert!(got.contains(label), "{backend}: {got:?}");
        }
        let png = image::open(&drawn).expect("the drawing is a PNG");
        assert_eq!((png.width(), png.height()), (768, 576));
    }

    let bytes = std::fs::read(&dog).unwrap();
    let truncated = dir.path().join("truncated.jpg");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let out = tokio::process::Command::new(TALLY)
        .args(["detect", "--json", "--model"])
        .arg(&model)
        .arg(&truncated)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no JSON for a failed run");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("truncated.jpg"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Workers started with nothing but a market and a key (no model named,
/// an empty models folder) find the model a client uploaded, fetch it on
/// first use and verify the client's image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_workers_with_only_a_market_and_a_key_take_and_verify_work() {
    let Some(assets) = assets() else { return };
    let market = spawn_market(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    // The workers start first, on a market that hosts no model yet.
    let mut workers = Vec::new();
    for name in ["new-1", "new-2"] {
        let mut w = Worker::start(&market.url, dir.path(), name, &["--max-results", "1"]).await;
        w.expect_line(
            "hosts no model this worker can run yet",
            Duration::from_secs(30),
        )
        .await;
        workers.push(w);
    }
    let client = market.funded_client(1_000_000).await;
    let (model, _) = upload_sample_model(&client, &assets).await;
    let image = std::fs::read(assets.join("images/dog.jpg")).unwrap();
    let mut request = bid_request(&model, 1_000);
    request.replicas = Some(2);
    request.max_replicas = Some(2);
    let created = client.bid_images(request, &[image]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    for w in &mut workers {
        w.expect_clean_exit(remaining(deadline)).await;
        assert_eq!(w.count("model admitted"), 1, "{}", w.log());
        assert_eq!(w.count("submitted result"), 1, "{}", w.log());
    }
    let status = client.bid(created.bid).await.unwrap();
    assert_eq!(status.tasks[0].status, TaskState::Verified);
    let labels = labels(status.tasks[0].consensus.as_deref().unwrap_or_default());
    assert!(labels.contains("dog"), "{labels:?}");
    market.finish().await;
}

/// One worker on ONNX Runtime and one on tract answer every task of a
/// 100-image bid (two replicas, quorum 2: each consensus is the median of
/// one result from each engine). Every task is verified with both agreeing,
/// `tally audit` exits 0, and the market's own audit (`GET /v1/audit`) has
/// no finding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_onnxruntime_and_a_tract_worker_vote_together_and_the_audits_are_clean() {
    let Some(assets) = assets() else { return };
    if !onnxruntime_present() {
        return;
    }
    let started = Instant::now();
    let market = spawn_market(Backend::Sqlite).await;
    let (dir, client, (model, model_file)) = sample_client(&market, &assets, 100_000_000).await;
    let model_file = model_file.to_str().unwrap();
    let tasks = 100;
    let n = tasks.to_string();
    let names = ["ort", "tract"];
    let mut workers = on_engines(&market, dir.path(), (&model, model_file), &names, &n).await;

    // The sample images, made small (the model sees 416 x 416 whatever the
    // size), repeated up to 100 inputs.
    let small: Vec<Vec<u8>> = tally::assets::images(&assets)
        .expect("sample images")
        .iter()
        .map(|p| {
            let img = image::open(p).unwrap().thumbnail(320, 320);
            let mut out = std::io::Cursor::new(Vec::new());
            img.write_to(&mut out, image::ImageFormat::Png).unwrap();
            out.into_inner()
        })
        .collect();
    let inputs: Vec<Vec<u8>> = (0..tasks).map(|i| small[i % small.len()].clone()).collect();
    let mut request = bid_request(&model, 1_000);
    request.replicas = Some(2);
    request.quorum = Some(2);
    request.max_replicas = Some(2);
    let created = client.bid_images(request, &inputs).await.expect("bid");
    assert_eq!(created.tasks.len(), tasks);

    let deadline = Instant::now() + Duration::from_secs(300);
    for w in &mut workers {
        w.expect_clean_exit(remaining(deadline)).await;
    }
    for (w, backend) in workers.iter().zip(["onnxruntime", "tract"]) {
        assert_eq!(w.count(&format!("backend={backend}")), 1, "{}", w.log());
        assert_eq!(w.count("submitted result"), tasks, "{}", w.log());
    }
    let status = client.bid(created.bid).await.unwrap();
    assert_eq!(status.status, BidState::Done);
    let anon = market.anonymous();
    let mut differed = 0;
    for task in &status.tasks {
        assert_eq!(task.status, TaskState::Verified);
        let ev = anon.evidence(task.task).await.unwrap();
        let verdict = ev.verdict.expect("a verified task has a verdict");
        assert_eq!(
            (verdict.agree.len(), verdict.disagree.len()),
            (2, 0),
            "{verdict:?}"
        );
        assert_eq!(verdict.numbers, tally_protocol::vote::Numbers::Grid);
        let bodies: BTreeSet<Vec<u8>> = ev
            .results
            .iter()
            .map(|r| serde_json::to_vec(&r.request().unwrap().detections).unwrap())
            .collect();
        differed += usize::from(bodies.len() == 2);
    }
    // The engines' answers differ, so the medians are of two distinct results.
    assert!(
        differed > 0,
        "both engines sent identical detections on every task"
    );

    // The audits follow the money: wait until settlement pays every
    // agreeing result, so they re-run the vote of every task.
    records_paying(&anon, 2 * tasks, Duration::from_secs(60)).await;
    audit_cli_passes(&market.url).await;
    let report = tally::audit::audit(&anon).await.unwrap();
    *market.market.audit.lock().unwrap() = Some(report.to_wire());
    let served: tally_protocol::wire::SelfAudit = reqwest::get(format!("{}/v1/audit", market.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(served.ok && served.findings.is_empty(), "{served:?}");
    assert_eq!(served.tasks, tasks as u64);
    println!(
        "{tasks} tasks, {differed} with differing engine answers, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    market.finish().await;
}
