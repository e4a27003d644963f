//! What a newcomer trips on, tried as one would over HTTP against a real
//! market with the `tally` binary: `bid --wait` ending at the last
//! decision, wrong market URLs, missing keys, output to a closed pipe.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use tally_protocol::wire::{BidState, TaskState};
use tally_protocol::{Signer, Stroops};

/// `signer`'s key (`client.key`) and `image` (`street.png`) in `dir`: their paths.
fn client_files(dir: &Path, signer: &Signer, image: Vec<u8>) -> (PathBuf, PathBuf) {
    let path = dir.join("street.png");
    std::fs::write(&path, image).unwrap();
    (key_file(dir, "client.key", signer), path)
}

fn tally() -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_tally"));
    c.env_remove("TALLY_MARKET").kill_on_drop(true);
    c
}

/// `tally bid --wait` returns once every task is decided, while a replica
/// claimed before the decision is still out (so the bid is not done yet):
/// it used to wait for the bid to close, up to the late replica's lease.
/// Here it waits because of `--draw` (which implies `--wait`), and draws.
async fn bid_wait_returns_at_the_last_decision_with_a_replica_out(backend: Backend) {
    let market = spawn_market(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let signer = market.funded_signer(1_000_000).await;
    let client = market.client(&signer);
    let model = model(&client).await;
    let (key, image) = client_files(dir.path(), &signer, png(1));

    let bid = tally()
        .args(["bid", "--market", &market.url, "--key"])
        .arg(&key)
        .args([
            "--model",
            model.as_str(),
            "--price",
            "10000",
            "--json",
            "--draw",
        ])
        .arg(dir.path().join("drawn"))
        .arg(&image)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let workers = market.workers::<3>(&model).await;
    let mut held = Vec::new();
    for w in &workers {
        // The first claim waits for the CLI to post its bid.
        let got = w.claim(1, 30_000).await.unwrap();
        assert_eq!(got.assignments.len(), 1, "each worker gets a replica");
        held.push(got.assignments[0].clone());
    }
    submit(&workers[0], held[0].assignment, &honest()).await;
    let decided = submit(&workers[1], held[1].assignment, &honest_noisy()).await;
    assert_eq!(decided.task_status, TaskState::Verified);

    // The third replica is still out: the bid is decided but not done. The
    // guard only catches a CLI that never returns (it used to wait on).
    let out = tokio::time::timeout(Duration::from_secs(120), bid.wait_with_output())
        .await
        .expect("tally bid --wait returned while the late replica was still out")
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["tasks"][0]["status"], "verified", "{report}");
    assert!(report["tasks"][0]["consensus"].is_array(), "{report}");
    assert!(dir.path().join("drawn/street.png").is_file(), "drawn");
    let status = client.bid(decided_bid(&report)).await.unwrap();
    assert_eq!(
        status.status,
        BidState::Open,
        "the late replica keeps the bid open"
    );

    // The late replica ends: the bid closes, and a long poll waiting on it
    // hears so (no decision announces it; it used to wait its 30 s out and
    // answer "open").
    let bid_id = decided_bid(&report);
    let waiting = {
        let client = client.clone();
        tokio::spawn(async move { client.bid_wait(bid_id, 1, 30_000).await })
    };
    submit(&workers[2], held[2].assignment, &honest()).await;
    let status = waiting.await.unwrap().unwrap();
    assert_eq!(status.status, BidState::Done);
    market.finish().await;
}
both!(bid_wait_returns_at_the_last_decision_with_a_replica_out);

fn decided_bid(report: &serde_json::Value) -> tally_protocol::BidId {
    serde_json::from_value(report["bid"].clone()).expect("the report names its bid")
}

/// A verified bid on a market without a chain server, its earnings
/// settled: the records and `tally account` say not submitted, never paid.
async fn without_a_chain_server_nothing_says_paid(backend: Backend) {
    let market = spawn_market(backend).await;
    let (client, model) = market.client_with_model(1_000_000).await;
    let created = client
        .bid_images(bid_request(&model, 10_000), &[png(2)])
        .await
        .unwrap();
    let signers: Vec<Signer> = (0..3).map(|_| Signer::generate()).collect();
    for (i, s) in signers.iter().enumerate() {
        let w = market.client(s);
        w.post_offer(&tally_protocol::wire::OfferRequest {
            models: vec![model.clone()],
            min_price: Stroops(0),
            capacity: 1,
        })
        .await
        .unwrap();
        // Two agreeing results decide the task: the third worker finds
        // nothing left to claim.
        let got = w.claim(1, 0).await.unwrap();
        let body = if i == 1 { honest_noisy() } else { honest() };
        if let Some(a) = got.assignments.first() {
            w.submit_result(a.assignment, &body).await.unwrap();
        }
    }
    let status = client.bid(created.bid).await.unwrap();
    assert_eq!(status.tasks[0].status, TaskState::Verified);
    tally_market::settle::settle_now(&market.market)
        .await
        .unwrap();
    let records = market.anonymous().settlements(0).await.unwrap().records;
    assert!(!records.is_empty(), "a record was written");
    for r in &records {
        assert_eq!(r.status, "not_submitted", "record {}", r.seq);
    }

    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "worker.key", &signers[0]);
    let out = tally()
        .args(["account", "--market", &market.url, "--key"])
        .arg(&key)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("not submitted"), "{text}");
    assert!(!text.contains("paid out"), "{text}");
    let me = market.client(&signers[0]).account_me().await.unwrap();
    assert!(me.paid_total.0 > 0);
    assert_eq!(me.not_submitted, me.paid_total);
    // The audit checks the records, and says they paid nobody yet.
    let out = tally()
        .args(["audit", "--market", &market.url])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("stroops settled") && text.contains("nothing was paid on the network"),
        "{text}"
    );
    assert!(!text.contains("stroops paid"), "{text}");
    market.finish().await;
}
both!(without_a_chain_server_nothing_says_paid);

/// `tally serve` without `--horizon`/`--rpc` says at start that nothing
/// will be submitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_warns_without_a_chain_server() {
    let dir = tempfile::tempdir().unwrap();
    key_file(dir.path(), "operator.key", &Signer::generate());
    let db = format!("sqlite://{}", dir.path().join("m.db").display());
    let mut serve = serve_process(dir.path(), &db, &free_addr(), "serve", &[]).await;
    // It answers /healthz only after its start-up lines are written.
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(
        log.contains("no --horizon or --rpc") && log.contains("never submitted"),
        "{log}"
    );
    // Written to a file, the log is plain text: no colour codes.
    assert!(!log.contains('\u{1b}'), "{log}");
    serve.kill().await.unwrap();
}

/// `tally` with `args`, its stdout written into a pipe whose reader is
/// already gone: exit status and stderr.
async fn into_closed_pipe(args: &[&str]) -> (std::process::ExitStatus, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    // spawn, not output(): output() would pipe stdout itself.
    let out = tally()
        .args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
        .wait_with_output()
        .await
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Output piped into `head` that stops reading: no panic, no message, the
/// exit a shell expects of a tool whose reader went away (141, as after
/// SIGPIPE; `detect` treats it as no error and exits 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_into_a_closed_pipe_ends_quietly() {
    let market = spawn_market(Backend::Sqlite).await;
    let (client, model) = market.client_with_model(1_000_000).await;
    client
        .bid_images(bid_request(&model, 10_000), &[png(3)])
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "operator.key", &market.operator);
    let key = key.to_str().unwrap();
    let tiny = dir.path().join("tiny.onnx");
    std::fs::write(&tiny, tally_model::build::tiny_yolox("tests")).unwrap();
    let image = dir.path().join("scene.png");
    std::fs::write(&image, scene()).unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["admin", "bids", "--market", &market.url, "--key", key],
        vec![
            "admin",
            "reviewers",
            "list",
            "--json",
            "--market",
            &market.url,
            "--key",
            key,
        ],
        vec!["keys", "address", key],
        // Runs its detector in process: SIGPIPE stays ignored there.
        vec![
            "detect",
            "--model",
            tiny.to_str().unwrap(),
            "--backend",
            "tract",
            "--json",
            image.to_str().unwrap(),
        ],
    ];
    for args in &commands {
        // Each prints something when read.
        let read = tally().args(args).output().await.unwrap();
        assert!(
            read.status.success() && !read.stdout.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&read.stderr)
        );
        let (status, stderr) = into_closed_pipe(args).await;
        let expected = if args[0] == "detect" { 0 } else { 141 };
        assert_eq!(status.code(), Some(expected), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
    }
    market.finish().await;
}

/// `tally account` with `--market market` (and a fresh key): exit status,
/// stderr.
async fn account_at(market: &str, key: &Path) -> (bool, String) {
    let out = tally()
        .args(["account", "--market", market, "--key"])
        .arg(key)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The ways of getting the market or the key wrong each say what is wrong
/// and what to try, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_market_urls_and_keys_are_explained() {
    let market = spawn_market(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "client.key", &Signer::generate());
    let host_port = market.url.trim_start_matches("http://").to_string();

    // host:port alone is taken as http://host:port.
    let (ok, stderr) = account_at(&host_port, &key).await;
    assert!(ok, "{stderr}");

    // https:// to the plain-HTTP market.
    let (ok, stderr) = account_at(&format!("https://{host_port}"), &key).await;
    assert!(!ok);
    assert!(
        stderr.contains("plain HTTP") && stderr.contains(&format!("try http://{host_port}")),
        "{stderr}"
    );
    assert!(!stderr.contains("InvalidContentType"), "{stderr}");

    // Not a URL at all.
    let (ok, stderr) = account_at("ht tp://x", &key).await;
    assert!(!ok);
    assert!(stderr.contains("--market is not a market URL"), "{stderr}");

    // An endpoint that does not exist points to the API's documentation.
    let resp = reqwest::get(format!("{}/v1/nothing", market.url))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.text().await.unwrap().contains("/docs"));

    // Nothing listening there.
    let down = free_addr();
    let (ok, stderr) = account_at(&format!("http://{down}"), &key).await;
    assert!(!ok);
    assert!(stderr.contains("is `tally serve` running"), "{stderr}");
    assert_eq!(stderr.matches(&down).count(), 1, "the URL once: {stderr}");

    // A key file that is missing, and one that cannot be read as a file.
    let missing = dir.path().join("nope.key");
    let (ok, stderr) = account_at(&market.url, &missing).await;
    assert!(!ok);
    assert!(
        stderr.contains(&missing.display().to_string()) && stderr.contains("tally keys generate"),
        "{stderr}"
    );
    let (ok, stderr) = account_at(&market.url, dir.path()).await;
    assert!(!ok);
    assert!(
        stderr.contains(&format!("key file {}", dir.path().display())),
        "{stderr}"
    );
    market.finish().await;
}

/// `tally review` numbers candidates from 1 (as the console does), and
/// picks only for the task whose candidates the reviewer was shown.
async fn review_picks_only_what_was_shown(backend: Backend) {
    let market = spawn_market(backend).await;
    let d = market
        .disputed(png(7), 10_000, 4_000, [honest(), ResultBody::other()])
        .await;
    let task = d.bid.tasks[0];
    let signer = market.verified_reviewer().await;
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "reviewer.key", &signer);
    let review = |args: Vec<String>| {
        let key = key.clone();
        let url = market.url.clone();
        async move {
            let review = ["review", "--market", &url, "--key"];
            outcome(tally().args(review).arg(&key).args(&args)).await
        }
    };

    // A pick without the task it is for: refused, nothing sent.
    let (ok, _, stderr) = review(vec!["--pick".into(), "1".into()]).await;
    assert!(!ok);
    assert!(stderr.contains("needs --task"), "{stderr}");

    // Shown: candidates [1] and [2], drawn as candidate-1/2, and how to answer.
    let drawn = dir.path().join("drawn");
    let (ok, stdout, stderr) = review(vec!["--draw".into(), drawn.display().to_string()]).await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("  [1] ") && stdout.contains("  [2] ") && !stdout.contains("  [0] "),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("--task {task} --pick N")),
        "{stdout}"
    );
    assert!(drawn.join("candidate-1.png").is_file() && drawn.join("candidate-2.png").is_file());
    assert!(!drawn.join("candidate-0.png").exists());

    // Another task named: not answered, the task still waits.
    let (ok, _, stderr) = review(vec![
        "--task".into(),
        (task.0 + 1000).to_string(),
        "--pick".into(),
        "1".into(),
    ])
    .await;
    assert!(!ok);
    assert!(
        stderr.contains(&format!("the review in your hands is of task {task}")),
        "{stderr}"
    );
    let status = d.client.bid(d.bid.bid).await.unwrap();
    assert_eq!(status.tasks[0].status, TaskState::Review);

    // The task shown: answered with candidate 1.
    let (ok, stdout, stderr) = review(vec![
        "--task".into(),
        task.0.to_string(),
        "--pick".into(),
        "1".into(),
        "--json".into(),
    ])
    .await;
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["outcome"]["task"], task.0, "{v}");
    market.finish().await;
}
both!(review_picks_only_what_was_shown);

/// `--draw` takes a folder everywhere (and a file too for `detect`), says
/// so when given a file where a folder is wanted; a refused image is named
/// by its file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draw_folders_and_refused_images_are_named() {
    let market = spawn_market(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let signer = market.funded_signer(1_000_000).await;
    let model = model(&market.client(&signer)).await;
    let key = key_file(d, "client.key", &signer);
    let tiny = d.join("tiny.onnx");
    std::fs::write(&tiny, tally_model::build::tiny_yolox("tests")).unwrap();
    std::fs::write(d.join("a.png"), scene()).unwrap();
    std::fs::write(d.join("b.png"), png(4)).unwrap();
    std::fs::write(d.join("notes.txt"), "not an image").unwrap();
    let run = |args: Vec<std::ffi::OsString>| async move {
        let out = tally().args(&args).output().await.unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let detect = |draw: PathBuf| {
        vec![
            "detect".into(),
            "--model".into(),
            tiny.clone().into_os_string(),
            "--backend".into(),
            "tract".into(),
            "--draw".into(),
            draw.into_os_string(),
            d.join("a.png").into_os_string(),
            d.join("b.png").into_os_string(),
        ]
    };

    // detect: a folder (ending in /) gets every image, a file the first.
    let folder = d.join("out/");
    let (ok, stderr) = run(detect(folder.clone())).await;
    assert!(ok, "{stderr}");
    assert!(folder.join("a.png").is_file() && folder.join("b.png").is_file());
    let file = d.join("one.png");
    let (ok, stderr) = run(detect(file.clone())).await;
    assert!(ok, "{stderr}");
    assert!(file.is_file());

    // bid: --draw on a file is refused before anything is posted.
    let bid = |draw: Option<&Path>, image: &str| {
        let mut a: Vec<std::ffi::OsString> = vec![
            "bid".into(),
            "--market".into(),
            market.url.clone().into(),
            "--key".into(),
            key.clone().into_os_string(),
            "--model".into(),
            model.as_str().into(),
            "--price".into(),
            "10000".into(),
        ];
        if let Some(p) = draw {
            a.push("--draw".into());
            a.push(p.as_os_str().to_owned());
        }
        a.push(d.join(image).into_os_string());
        a
    };
    let (ok, stderr) = run(bid(Some(&file), "a.png")).await;
    assert!(!ok);
    assert!(stderr.contains("a folder is wanted"), "{stderr}");

    // A text file as an image: named, not "input 0".
    let (ok, stderr) = run(bid(None, "notes.txt")).await;
    assert!(!ok);
    assert!(stderr.contains("notes.txt"), "{stderr}");
    assert!(!stderr.contains("input 0"), "{stderr}");
    let me = market.client(&signer).account_me().await.unwrap();
    assert_eq!(me.reserved, Stroops(0), "nothing was posted");
    market.finish().await;
}

/// A task decided by review says so in `tally bid`'s answer, with what its
/// reviews cost.
async fn bid_shows_a_task_decided_by_review(backend: Backend) {
    let market = spawn_market(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let signer = market.funded_signer(100_000_000).await;
    let model = model(&market.client(&signer)).await;
    let (key, image) = client_files(dir.path(), &signer, png(5));
    let bid = tally()
        .args(["bid", "--market", &market.url, "--key"])
        .arg(&key)
        .args(["--model", model.as_str(), "--price", "10000", "--wait"])
        .args(["--replicas", "2", "--quorum", "2", "--max-replicas", "2"])
        .args(["--review-price", "4000"])
        .arg(&image)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The two workers disagree: the task goes to review.
    for answer in [honest(), ResultBody::other()] {
        let w = market.worker(&model).await;
        let got = w.claim(1, 30_000).await.unwrap().assignments;
        assert_eq!(got.len(), 1);
        w.submit_result(got[0].assignment, &answer).await.unwrap();
    }
    // Two verified reviewers pick the same candidate.
    for _ in 0..2 {
        let r = market.verified_reviewer().await;
        let r = market.client(&r);
        let t = r.next_review().await.unwrap().expect("a review waits");
        let detections = t.candidates[0].detections.clone();
        r.submit_review(
            t.review,
            &tally_protocol::wire::ReviewRequest { detections },
        )
        .await
        .unwrap();
    }
    let out = tokio::time::timeout(Duration::from_secs(120), bid.wait_with_output())
        .await
        .expect("tally bid --wait returned once review decided")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("verified by human review") && stdout.contains("2 reviews, 8000 stroops"),
        "{stdout}"
    );
    market.finish().await;
}
both!(bid_shows_a_task_decided_by_review);
