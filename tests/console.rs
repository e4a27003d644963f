//! The web console in a real browser: a market with a verified task and a
//! settlement record, then Debian's headless Chromium loads each page
//! (`--dump-dom` to read what it shows, `--screenshot` to keep a picture
//! of it in `target/console-screenshots/`). The bid page gets the client's
//! seed in its URL hash (`#/bids/{id}?seed=S...`, a test-only shortcut: the
//! page takes it and drops it from the URL), signs its requests in the
//! browser, and draws the consensus boxes on the input image. Pages load
//! with `?live=0`: a headless browser's virtual clock stops while a request
//! is open, and a live page always holds one (the event stream, a long-poll).
//!
//! Without `/usr/bin/chromium` the test is skipped, unless `CI` is set.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::cdp::{Browser, CHROMIUM, HEADLESS};
use common::*;
use tally_protocol::wire::{BidRequest, TaskState};
use tally_protocol::Stroops;

/// A bid on [`scene`] for three replicas, quorum two, at 10,000 stroops.
async fn scene_bid(
    client: &tally_protocol::Client,
    model: &tally_protocol::Sha256Hex,
) -> tally_protocol::wire::BidCreated {
    let req = BidRequest {
        replicas: Some(3),
        quorum: Some(2),
        ..bid_request(model, 10_000)
    };
    client.bid_images(req, &[scene()]).await.unwrap()
}

/// Run Chromium headless on `url` with `args`; its stdout.
async fn chromium(url: &str, args: &[String]) -> String {
    let profile = tempfile::tempdir().expect("tempdir");
    let mut cmd = tokio::process::Command::new(CHROMIUM);
    cmd.args(HEADLESS)
        .arg("--virtual-time-budget=5000")
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("chromium did not finish on {url} within 90 s"))
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn dom(url: &str) -> String {
    chromium(url, &["--dump-dom".to_string()]).await
}

async fn screenshot(url: &str, dir: &Path, name: &str) {
    let path = dir.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&path);
    chromium(
        url,
        &[
            format!("--screenshot={}", path.display()),
            "--window-size=1280,900".to_string(),
        ],
    )
    .await;
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "{name}.png was not written ({size} bytes)");
    println!("screenshot: {}", path.display());
}

fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

fn contains_all(page: &str, dom: &str, wanted: &[&str]) {
    for w in wanted {
        assert!(
            dom.contains(w),
            "the {page} page does not show {w:?}; its DOM:\n{dom}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_pages_in_chromium() {
    if !Path::new(CHROMIUM).exists() {
        if std::env::var_os("CI").is_some() {
            panic!("CI must run the console's browser test: install chromium (apt-get install -y chromium)");
        }
        eprintln!("skipping the console's browser test: {CHROMIUM} is missing (apt-get install -y chromium)");
        return;
    }
    let market = spawn_tweaked(Backend::Sqlite, |c| {
        c.settle_every = Duration::from_secs(3600)
    })
    .await;

    // The console itself: the page, its assets, their types and policy.
    let http = reqwest::Client::new();
    let index = http.get(format!("{}/", market.url)).send().await.unwrap();
    assert_eq!(index.status(), 200);
    assert!(index.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = index.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    let js = http
        .get(format!("{}/console/console.js", market.url))
        .send()
        .await
        .unwrap();
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let missing = http
        .get(format!("{}/console/nope.js", market.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // A client's bid with one picture; three workers answer, one wrongly.
    let signer = market.funded_signer(100_000_000).await;
    let client = market.client(&signer);
    let model = model(&client).await;
    let bid = scene_bid(&client, &model).await;
    let task = bid.tasks[0];
    let mut workers = Vec::new();
    for answer in [ResultBody::other(), honest(), honest_noisy()] {
        let w = market.worker(&model).await;
        let got = w.claim(1, 5_000).await.unwrap().assignments;
        assert_eq!(got.len(), 1, "each worker gets the task");
        w.submit_result(got[0].assignment, &answer).await.unwrap();
        workers.push(w.signer().unwrap().account().to_string());
    }
    let status = client.bid(bid.bid).await.unwrap();
    assert_eq!(status.tasks[0].status, TaskState::Verified);
    // A later bid clears at another price: the newest clearing price.
    let later = client
        .bid_images(
            BidRequest {
                replicas: Some(2),
                quorum: Some(2),
                max_replicas: Some(2),
                ..bid_request(&model, 12_000)
            },
            &[png(9)],
        )
        .await
        .unwrap();
    // Its answer: a dog and a cat whose boxes share a corner.
    let corner = tally_protocol::wire::ResultRequest {
        detections: vec![
            det(16, 0.83, [100.0, 100.0, 300.0, 300.0]),
            det(15, 0.80, [100.0, 100.0, 250.0, 280.0]),
        ],
        elapsed_ms: 3.0,
    };
    for _ in 0..2 {
        let w = market.worker(&model).await;
        let got = w.claim(1, 5_000).await.unwrap().assignments;
        w.submit_result(got[0].assignment, &corner).await.unwrap();
    }
    let prices = market
        .anonymous()
        .market()
        .await
        .unwrap()
        .recent_clearing_prices;
    assert_eq!(
        prices.first(),
        Some(&Stroops(12_000)),
        "newest first: {prices:?}"
    );
    assert_eq!(
        client.bid(later.bid).await.unwrap().tasks[0].status,
        TaskState::Verified
    );
    // Open work at another price, for the market page's price levels.
    let other = market.funded_client(100_000_000).await;
    other
        .bid_images(bid_request(&model, 25_000), &[png(7), png(8)])
        .await
        .unwrap();
    tally_market::settle::settle_now(&market.market)
        .await
        .unwrap();
    let records = market.anonymous().settlements(0).await.unwrap().records;
    assert!(!records.is_empty(), "a settlement record was written");
    let tx_hash = records[0].tx_hash.clone();

    let shots = screenshots_dir();
    let base = &market.url;

    // Market: the counts, the open price levels, the workers online.
    let url = format!("{base}/#/?live=0");
    let page = dom(&url).await;
    contains_all(
        "market",
        &page,
        &[
            "id=\"market-stats\"",
            "data-stat=\"verified\"",
            "Open tasks by price level",
            "0.0025 XLM",
            // The chart runs oldest to newest: its last point is the newest.
            "data-last=\"12000\"",
            "last 0.0012 XLM",
            // The API's documentation is a click away.
            "href=\"/docs\"",
            &workers[0],
            &workers[1],
            &workers[2],
        ],
    );
    screenshot(&url, &shots, "market").await;

    // Task evidence: the vote, every worker, the signatures, the consensus.
    let url = format!("{base}/#/tasks/{task}?live=0");
    let page = dom(&url).await;
    contains_all(
        "task evidence",
        &page,
        &[
            &format!("Task {task}"),
            "id=\"results\"",
            "agreed",
            "disagreed",
            "✓ valid",
            "data-label=\"dog\"",
            "data-label=\"car\"",
            "id=\"task-canvas\"",
            &workers[0],
            &workers[1],
            &workers[2],
        ],
    );
    assert!(!page.contains("✗ invalid"), "every signature checks");
    screenshot(&url, &shots, "task").await;

    // Labels never hide one another: the dog's and the cat's boxes share
    // their top-left corner, their tags do not overlap.
    let url = format!("{base}/#/tasks/{}?live=0", later.tasks[0]);
    let page = dom(&url).await;
    let tags = page
        .split("data-tags=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("the task's canvas records its tags: {page}"))
        .replace("&quot;", "\"");
    let tags: Vec<[f64; 4]> = serde_json::from_str(&tags).expect("tags are JSON");
    assert_eq!(tags.len(), 2, "{tags:?}");
    let (a, b) = (tags[0], tags[1]);
    assert!(
        !(a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]),
        "the tags overlap: {tags:?}"
    );
    screenshot(&url, &shots, "task-shared-corner").await;

    // Settlements: the record, its transaction, the chain check, and the
    // market's own audit (run here as `tally serve` runs it).
    let report = market.audit_ok().await;
    *market.market.audit.lock().unwrap() = Some(report.to_wire());
    let url = format!("{base}/#/settlements?live=0");
    let page = dom(&url).await;
    contains_all(
        "settlements",
        &page,
        &[
            &tx_hash,
            "data-status=\"not_submitted\"",
            "never submitted",
            "Would pay by",
            "Chain intact",
            "data-ok=\"true\"",
            "tally audit",
            "own audit: all consistent",
        ],
    );
    // This market has no chain server: no explorer link to a transaction
    // that was never sent, no "Paid by".
    assert!(
        !page.contains(&format!("explorer/testnet/tx/{tx_hash}")) && !page.contains("Paid by"),
        "{page}"
    );
    screenshot(&url, &shots, "settlements").await;

    // A failed self-audit: its findings grouped by kind, each kind once
    // with its count (here made up: the page only shows the report).
    let mut failed = report.to_wire();
    failed.ok = false;
    failed.findings = (0..7)
        .map(|i| tally_protocol::wire::AuditFinding {
            kind: if i < 5 {
                "unpaid_agreement"
            } else {
                "bad_amount"
            }
            .into(),
            detail: format!("made-up finding {i}"),
        })
        .collect();
    *market.market.audit.lock().unwrap() = Some(failed);
    let page = dom(&url).await;
    contains_all(
        "settlements with a failed audit",
        &page,
        &[
            "data-kind=\"unpaid_agreement\"",
            "unpaid agreement</strong> · 5 findings",
            "data-kind=\"bad_amount\"",
            "bad amount</strong> · 2 findings",
            "made-up finding 6",
        ],
    );
    assert_eq!(page.matches("data-kind=\"unpaid_agreement\"").count(), 1);
    screenshot(&url, &shots, "settlements-audit-failed").await;

    // The affected task's page says so above its evidence; another task's
    // page does not.
    let mut failed = report.to_wire();
    failed.ok = false;
    failed.findings = vec![tally_protocol::wire::AuditFinding {
        kind: "unpaid_agreement".into(),
        detail: format!("task {task}: an agreeing result was never paid"),
    }];
    *market.market.audit.lock().unwrap() = Some(failed);
    let url = format!("{base}/#/tasks/{task}?live=0");
    let page = dom(&url).await;
    contains_all(
        "a task the audit found wrong",
        &page,
        &[
            "id=\"task-audit\"",
            "1 discrepancy on this task",
            "an agreeing result was never paid",
        ],
    );
    screenshot(&url, &shots, "task-audit-failed").await;
    let other = dom(&format!("{base}/#/tasks/{}?live=0", task.0 + 1000)).await;
    assert!(!other.contains("task-audit"), "{other}");

    // Amounts in stroops, as the CLI prints them, where the reader asks.
    let url = format!("{base}/#/settlements?live=0&units=stroops");
    let page = dom(&url).await;
    contains_all(
        "settlements in stroops",
        &page,
        &["data-units=\"stroops\"", " stroops</"],
    );
    assert!(!page.contains(" XLM</"), "{page}");

    // A worker's public record, with its hours once they have ended (the
    // results are moved two hours back, as if the time had passed).
    age_results(&market, 7_200_000).await;
    let url = format!("{base}/#/workers/{}?live=0", workers[1]);
    let page = dom(&url).await;
    contains_all(
        "worker",
        &page,
        &[
            "Public record",
            "Credibility",
            "id=\"record\"",
            "Credibility at the end of each hour",
            "1 agreed, 0 outvoted",
            "last 0.6000",
            "id=\"seed\"",
        ],
    );
    screenshot(&url, &shots, "worker").await;

    // The bid, signed in the browser: status, consensus, the image.
    let url = format!("{base}/#/bids/{}?live=0&seed={}", bid.bid, signer.secret());
    let page = dom(&url).await;
    contains_all(
        "bid",
        &page,
        &[
            &format!("Bid {}", bid.bid),
            "id=\"bid-status\"",
            "data-status=\"done\"",
            // Done: what was not spent is refunded, nothing is reserved.
            "Refunded",
            &format!("id=\"task-{task}\""),
            "data-label=\"dog\"",
            "data-label=\"car\"",
            &format!("id=\"bid-canvas-{task}\""),
            "data-image=\"input\"",
            signer.account().as_str(),
        ],
    );
    assert!(
        !page.contains(&signer.secret()),
        "the seed is gone from the page"
    );
    assert!(!page.contains(">Reserved<"), "a done bid reserves nothing");
    screenshot(&url, &shots, "bid").await;

    // Without the key, the bid page asks for it and shows nothing private.
    let page = dom(&format!("{base}/#/bids/{}?live=0", bid.bid)).await;
    contains_all("bid without a key", &page, &["id=\"seed\""]);
    assert!(!page.contains("data-label=\"dog\""));

    market.finish().await;
}

/// Live pages on the real clock, driven over the DevTools protocol: the
/// market page and a bid page are open while workers answer; both change
/// in place (no reload) as the market pushes its decisions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_pages_update_live_in_chromium() {
    let Some(browser) = Browser::launch() else {
        return;
    };
    let market = spawn_market(Backend::Sqlite).await;
    let (client, model) = market.client_with_model(100_000_000).await;
    let bid = scene_bid(&client, &model).await;
    let task = bid.tasks[0];
    let base = &market.url;
    let limit = Duration::from_secs(30);

    let overview = browser.open(&format!("{base}/#/")).await;
    overview.wait_for("#live.on", "live", limit).await;
    overview
        .wait_for("[data-stat=\"verified\"] .num", "0", limit)
        .await;
    let secret = client.signer().unwrap().secret();
    let page = browser
        .open(&format!("{base}/#/bids/{}?seed={secret}", bid.bid))
        .await;
    page.wait_for("#bid-live", "Waiting for the market", limit)
        .await;
    for p in [&overview, &page] {
        p.eval("window.sameDocument = true").await;
    }
    let before = page.html().await;
    assert!(
        !before.contains("data-status=\"done\""),
        "nothing decided yet"
    );
    assert!(!before.contains("data-label=\"dog\""));

    for answer in [honest(), honest_noisy()] {
        let w = market.worker(&model).await;
        let got = w.claim(1, 5_000).await.unwrap().assignments;
        assert_eq!(got.len(), 1, "each worker gets the task");
        w.submit_result(got[0].assignment, &answer).await.unwrap();
    }

    page.wait_for("#bid-live", "The bid is done", limit).await;
    let after = page.html().await;
    for wanted in [
        "data-status=\"done\"".to_string(),
        format!("id=\"bid-canvas-{task}\""),
        "data-label=\"dog\"".to_string(),
    ] {
        assert!(after.contains(&wanted), "the live bid page lacks {wanted}");
    }
    assert!(!after.contains(&secret), "the seed is gone from the page");
    // Each worker's result is an overlay the client ticks on and off: the
    // picture is redrawn with its boxes, then without them again.
    let canvas = format!("document.getElementById('bid-canvas-{task}').toDataURL()");
    let toggle = "(() => { const t = [...document.querySelectorAll('#bid-tasks input[data-layer]')]
        .find((i) => !i.checked); if (!t) return null; t.click(); return t.dataset.layer; })()";
    let untick = "(() => { const t = document.querySelector(`#bid-tasks input[data-layer=\"${window.ticked}\"]`);
        t.click(); return t.checked; })()";
    let plain = page.eval(&canvas).await;
    let layer = page.eval(toggle).await;
    assert!(
        layer.is_string(),
        "a worker's overlay, off at first, to tick"
    );
    let with_worker = page.eval(&canvas).await;
    assert_ne!(
        plain, with_worker,
        "ticking a worker's overlay draws its boxes"
    );
    page.eval(&format!("window.ticked = {layer}")).await;
    assert_eq!(page.eval(untick).await, serde_json::json!(false));
    assert_eq!(
        page.eval(&canvas).await,
        plain,
        "unticked, the picture is as before"
    );
    overview
        .wait_for("#events", &format!("Task {task}"), limit)
        .await;
    overview
        .wait_for("#events", &format!("Bid {} done", bid.bid), limit)
        .await;
    overview
        .wait_for("[data-stat=\"verified\"] .num", "1", limit)
        .await;
    for p in [&overview, &page] {
        assert_eq!(
            p.eval("window.sameDocument === true").await,
            serde_json::json!(true),
            "updated in place, not reloaded"
        );
    }
    let shots = screenshots_dir();
    for (p, name) in [(&page, "bid-live"), (&overview, "market-live")] {
        let path = shots.join(format!("{name}.png"));
        let size = p.screenshot(&path).await;
        assert!(size > 10_000, "{name}.png is {size} bytes");
        println!("screenshot: {}", path.display());
    }
    market.finish().await;
}
