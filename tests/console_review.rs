//! Human review in the web console, in a real browser: a bid with a review
//! price, two workers who disagree, so its task goes to review; the
//! operator marks two reviewers verified; one answers through the API, the
//! other in headless Chromium on the console's `#/review` page, which signs
//! the answer in the browser (WebCrypto Ed25519) after the reviewer clicks
//! "Pick" on the same candidate and "Sign and submit". The two agreeing
//! reviews decide the task with that candidate; the review signed in the
//! browser is in the task's public evidence and its signature checks; the
//! worker whose answer was picked and both reviewers are paid (the other
//! worker nothing), settlement writes the record and `tally audit` passes
//! (the tampered-signature side is `tests/audit_review.rs`). A key
//! that is not a verified reviewer gets the page's "not a verified
//! reviewer" message, and a verified reviewer with nothing left to review
//! gets "Nothing to review". Screenshots go to `target/console-screenshots/`.
//!
//! Without `/usr/bin/chromium` the test is skipped, unless `CI` is set.

mod common;
#[path = "common/review_page.rs"]
mod review_page;

use std::path::{Path, PathBuf};

use common::cdp::{CHROMIUM, HEADLESS};
use common::*;
use review_page::{review_in_console, reviews_on_task_page, ticket_arrives_in_console};
use tally_protocol::wire::{ReviewRequest, TaskState};
use tally_protocol::{Detection, Signer, Stroops};

/// Chromium headless on `url` (the console's snapshot mode) with `args`:
/// its stdout.
async fn chromium(url: &str, args: &[String]) -> String {
    let profile = tempfile::tempdir().expect("tempdir");
    let out = tokio::process::Command::new(CHROMIUM)
        .args(HEADLESS)
        .arg("--virtual-time-budget=5000")
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(90), out)
        .await
        .expect("chromium finished within 90 s")
        .expect("chromium runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// The same detections in any order (the vote orders its consensus its
/// own way), up to float noise of a vote's averaging.
fn same_detections(a: &[Detection], b: &[Detection]) -> bool {
    let sorted = |d: &[Detection]| {
        let mut d = d.to_vec();
        d.sort_by(|x, y| {
            (x.class_id, x.bbox[0], x.bbox[1])
                .partial_cmp(&(y.class_id, y.bbox[0], y.bbox[1]))
                .unwrap()
        });
        d
    };
    let (a, b) = (sorted(a), sorted(b));
    a.len() == b.len()
        && a.iter().zip(&b).all(|(x, y)| {
            x.class_id == y.class_id
                && x.label == y.label
                && (x.score - y.score).abs() < 1e-9
                && x.bbox
                    .iter()
                    .zip(&y.bbox)
                    .all(|(p, q)| (p - q).abs() < 1e-9)
        })
}

/// Whether Chromium is here to run the page (in CI its absence fails).
fn have_chromium() -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "CI must run the console's review test: install chromium (apt-get install -y chromium)"
        );
    }
    eprintln!(
        "skipping the console's review test: {CHROMIUM} is missing (apt-get install -y chromium)"
    );
    false
}

/// A reviewer with the page open while nothing waits gets the review as
/// soon as a task goes to review (the page waits on the market's long poll).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_review_page_waits_for_work() {
    if !have_chromium() {
        return;
    }
    let market = spawn_market(Backend::Sqlite).await;
    let reviewer = market.verified_reviewer().await;
    let dispute = async {
        market
            .disputed(scene(), 10_000, 40_000, [honest(), ResultBody::other()])
            .await;
    };
    let candidates = ticket_arrives_in_console(&market.url, &reviewer.secret(), dispute)
        .await
        .expect("the page hands over the review when it arrives");
    assert_eq!(candidates, 2);
    market.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_in_the_console_decides_a_disputed_task() {
    if !have_chromium() {
        return;
    }
    // Settled only when the test says so: it reads the unpaid earnings first.
    let market = spawn_tweaked(Backend::Sqlite, |c| {
        c.settle_every = std::time::Duration::from_secs(3600)
    })
    .await;
    let shots = screenshots_dir();

    // A bid that asks for review; its two workers disagree.
    let Disputed {
        client,
        bid,
        workers,
    } = market
        .disputed(scene(), 10_000, 40_000, [honest(), ResultBody::other()])
        .await;
    let task = bid.tasks[0];

    // Two reviewers marked verified by the operator; a third key is not.
    let operator = market.client(&market.operator);
    let (r1, r2, r3, stranger) = (
        Signer::generate(),
        Signer::generate(),
        Signer::generate(),
        Signer::generate(),
    );
    for r in [&r1, &r2] {
        operator.mark_reviewer(r.account(), true).await.unwrap();
    }

    // A key that is not a verified reviewer: the page says so.
    let shot = shots.join("review-not-reviewer.png");
    let refused = review_in_console(&market.url, &stranger.secret(), 0, &shot)
        .await
        .expect_err("an unverified key has nothing to answer");
    let refused = refused.to_string();
    assert!(
        refused.contains("not a verified reviewer"),
        "the page explains the refusal: {refused}"
    );
    assert!(shot.exists(), "{} was written", shot.display());
    println!("screenshot: {}", shot.display());

    // Reviewer 1 answers through the API with the first candidate.
    let api = market.client(&r1);
    let ticket = api
        .next_review()
        .await
        .unwrap()
        .expect("a review waits for reviewer 1");
    assert_eq!(ticket.task, task);
    assert_eq!(ticket.price, Stroops(40_000));
    assert_eq!(ticket.candidates.len(), 2, "two disagreeing results");
    let chosen = ticket.candidates[0].detections.clone();
    let outcome = api
        .submit_review(
            ticket.review,
            &ReviewRequest {
                detections: chosen.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        outcome.task_status,
        TaskState::Review,
        "one review alone does not decide"
    );

    // Reviewer 2 answers in the browser, picking the same candidate.
    let shot = shots.join("review.png");
    let shown = review_in_console(&market.url, &r2.secret(), 0, &shot)
        .await
        .expect("reviewer 2 answers in the console");
    assert_eq!(
        shown, "verified",
        "the page shows the task decided by the two agreeing reviews"
    );
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "review.png is {size} bytes");
    println!("screenshot: {}", shot.display());

    // The task is verified with the picked candidate.
    let status = client.bid(bid.bid).await.unwrap();
    assert_eq!(status.tasks[0].status, TaskState::Verified);
    let consensus = status.tasks[0].consensus.clone().expect("a consensus");
    assert!(
        same_detections(&consensus, &chosen),
        "the consensus is the picked candidate: {consensus:?} vs {chosen:?}"
    );
    // The client sees that review decided it, and what the reviews cost.
    assert!(status.tasks[0].reviewed);
    assert_eq!(status.tasks[0].reviews, 2);
    assert_eq!(status.tasks[0].review_cost, Stroops(2 * 40_000));
    let seed = client.signer().unwrap().secret();
    let url = format!("{}/#/bids/{}?live=0&seed={seed}", market.url, bid.bid);
    let page = chromium(&url, &["--dump-dom".into()]).await;
    assert!(
        page.contains("data-reviewed=\"true\"") && page.contains("decided by review: 2 reviews"),
        "the bid page shows the review: {page}"
    );
    let shot = shots.join("bid-reviewed.png");
    chromium(
        &url,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,900".into(),
        ],
    )
    .await;
    println!("screenshot: {}", shot.display());

    // The review signed in the browser is public evidence, and it checks.
    let evidence = market.anonymous().evidence(task).await.unwrap();
    let signed = evidence
        .reviews
        .iter()
        .find(|r| &r.reviewer == r2.account())
        .expect("the browser's review is in the evidence");
    let said = signed
        .verify(&market.domain())
        .expect("the signature made in the browser checks");
    assert_eq!(
        said.detections, chosen,
        "the page sent the candidate verbatim"
    );
    assert_eq!(evidence.reviews.len(), 2);

    // The task's evidence page shows both reviews, each signature checked
    // in the browser, both in the agreeing group.
    let rows = reviews_on_task_page(&market.url, task.0, &shots.join("task-reviewed.png"))
        .await
        .expect("the task page shows its reviews");
    assert_eq!(
        rows,
        vec![("agreed".to_string(), "\u{2713} valid".to_string()); 2],
        "each review on the task page"
    );

    // Paid: the worker whose answer the reviewers picked, and both
    // reviewers; not the other worker. Settled, and the audit re-checks it all.
    let fee = |p: i64| p * 250 / 10_000;
    let earned = |c: &tally_protocol::Client| {
        let c = c.clone();
        async move { c.account_me().await.unwrap().earned_unpaid.0 }
    };
    let picked_worker = evidence
        .results
        .iter()
        .position(|r| same_detections(&r.request().unwrap().detections, &chosen))
        .expect("a worker gave the picked answer");
    for (i, w) in workers.iter().enumerate() {
        let want = if i == picked_worker {
            10_000 - fee(10_000)
        } else {
            0
        };
        assert_eq!(earned(w).await, want, "worker {i}");
    }
    for r in [&r1, &r2] {
        assert_eq!(earned(&market.client(r)).await, 40_000 - fee(40_000));
    }
    tally_market::settle::settle_now(&market.market)
        .await
        .expect("settles");
    audit_cli_passes(&market.url).await;

    // A verified reviewer with nothing left to review.
    operator.mark_reviewer(r3.account(), true).await.unwrap();
    let shot = shots.join("review-empty.png");
    let empty = review_in_console(&market.url, &r3.secret(), 0, &shot)
        .await
        .expect_err("nothing is left to review")
        .to_string();
    assert!(
        empty.contains("Nothing to review"),
        "the page says nothing waits: {empty}"
    );

    market.finish().await;
}
