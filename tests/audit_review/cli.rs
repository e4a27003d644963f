//! The reviewer's and the operator's commands against a real market: the
//! operator marks two reviewers with `tally admin reviewers add`, each takes
//! the disputed task with `tally review` and answers it (`--pick`,
//! `--detections`), the task is decided by their reviews, and `tally
//! audit` checks the paid reviews.

use serde_json::Value;
use tally_protocol::Signer;

use crate::common::*;

const TALLY: &str = env!("CARGO_BIN_EXE_tally");

/// Run `tally args...`: exit status, stdout, stderr.
async fn tally(args: &[&str]) -> (bool, String, String) {
    outcome(tokio::process::Command::new(TALLY).args(args)).await
}

/// `tally args...` must succeed; its stdout.
async fn ok(args: &[&str]) -> String {
    let (success, stdout, stderr) = tally(args).await;
    assert!(success, "tally {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// The index of the candidate holding the honest answer in a ticket.
fn honest_candidate(ticket: &Value) -> usize {
    let honest = serde_json::to_value(honest().detections).unwrap();
    ticket["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c["detections"] == honest)
        .unwrap_or_else(|| panic!("no honest candidate in {ticket}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewers_decide_through_the_cli_and_the_audit_checks_them() {
    let market = spawn_market(Backend::Sqlite).await;
    let url = market.url.clone();
    // The task in review is the market's only one: `tally review` finds it.
    let task = market
        .disputed(png(3), 1_000, 40_000, [honest(), wrong()])
        .await
        .bid
        .tasks[0]
        .to_string();

    let dir = tempfile::tempdir().unwrap();
    let op = key_file(dir.path(), "operator.key", &market.operator);
    let op = op.to_str().unwrap();
    let as_operator = ["--market", url.as_str(), "--key", op];
    let reviewers = [Signer::generate(), Signer::generate(), Signer::generate()];
    let keys: Vec<String> = reviewers
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let p = key_file(dir.path(), &format!("reviewer{i}.key"), r);
            p.to_str().unwrap().to_string()
        })
        .collect();
    let (r0, r1) = (
        reviewers[0].account().as_str(),
        reviewers[1].account().as_str(),
    );

    // Not marked yet: refused, one line naming the problem.
    let (success, _, stderr) = tally(&["review", "--market", &url, "--key", &keys[0]]).await;
    assert!(!success);
    assert!(stderr.contains("is not a verified reviewer"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    let added = ok(&[&["admin", "reviewers", "add", r0, r1][..], &as_operator].concat()).await;
    assert_eq!(added.matches("verified to review").count(), 2, "{added}");
    assert!(
        added.contains(market.operator.account().as_str()),
        "{added}"
    );

    // Shown, not answered (no terminal): the ticket and how to answer.
    let shown = ok(&["review", "--market", &url, "--key", &keys[0]]).await;
    assert!(shown.contains("[1]") && shown.contains("[2]"), "{shown}");
    assert!(
        shown.contains(&format!("--task {task} --pick N")),
        "{shown}"
    );
    // A candidate that does not exist: refused before anything is sent.
    let (success, _, stderr) = tally(&[
        "review", "--market", &url, "--key", &keys[0], "--task", &task, "--pick", "9",
    ])
    .await;
    assert!(!success);
    assert!(stderr.contains("candidates 1 to 2"), "{stderr}");
    // The same review again, as JSON; answered by picking.
    let json: Value =
        serde_json::from_str(&ok(&["review", "--market", &url, "--key", &keys[0], "--json"]).await)
            .unwrap();
    assert!(
        shown.contains(&format!("review {} of task", json["ticket"]["review"])),
        "the same review is shown again until it is answered: {shown}"
    );
    // Numbered from 1, as shown.
    let pick = (honest_candidate(&json["ticket"]) + 1).to_string();
    let answered = ok(&[
        "review", "--market", &url, "--key", &keys[0], "--task", &task, "--pick", &pick,
    ])
    .await;
    assert!(answered.contains("still under review"), "{answered}");

    // The second reviewer answers with a file of detections.
    let file = dir.path().join("answer.json");
    std::fs::write(&file, serde_json::to_string(&honest().detections).unwrap()).unwrap();
    let file = file.to_str().unwrap();
    let decided: Value = serde_json::from_str(
        &ok(&[
            "review",
            "--market",
            &url,
            "--key",
            &keys[1],
            "--detections",
            file,
            "--json",
        ])
        .await,
    )
    .unwrap();
    assert_eq!(decided["outcome"]["task_status"], "verified", "{decided}");
    assert_eq!(
        ok(&["review", "--market", &url, "--key", &keys[0]])
            .await
            .trim(),
        "nothing to review"
    );
    // A third reviewer marked now finds nothing: the task is decided.
    ok(&[
        "admin",
        "reviewers",
        "add",
        reviewers[2].account().as_str(),
        "--market",
        &url,
        "--key",
        op,
    ])
    .await;
    assert_eq!(
        ok(&["review", "--market", &url, "--key", &keys[2]])
            .await
            .trim(),
        "nothing to review",
        "a decided task is no longer offered"
    );

    // The marks: public, listed with each account's standing.
    let listed = ok(&["admin", "reviewers", "list", "--market", &url]).await;
    assert_eq!(listed.matches("verified since").count(), 3, "{listed}");
    assert!(!listed.contains("BAD:"), "{listed}");
    let removed = ok(&[&["admin", "reviewers", "remove", r1][..], &as_operator].concat()).await;
    assert!(
        removed.contains("no longer verified to review"),
        "{removed}"
    );
    let marks: Value = serde_json::from_str(
        &ok(&["admin", "reviewers", "list", r1, "--market", &url, "--json"]).await,
    )
    .unwrap();
    assert_eq!(marks["marks"].as_array().unwrap().len(), 2, "{marks}");

    // Settled and audited: both reviews paid and checked; taking the
    // second reviewer's mark back later changes nothing.
    tally_market::settle::settle_now(&market.market)
        .await
        .unwrap();
    let report: Value =
        serde_json::from_str(&ok(&["audit", "--market", &url, "--json"]).await).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["reviews"], 2, "{report}");
    market.finish().await;
}

/// `tally demo --review --json` from a folder with nothing beside it: every
/// sample image decided by the two scripted reviewers for the honest
/// worker's answer, reviewers paid, the faulty worker not, the audit clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_review_demo_decides_every_image_by_review_and_passes_the_audit() {
    if tally::assets::find().is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run this test: {}",
            tally::assets::missing_message()
        );
        eprintln!("skipping: {}", tally::assets::missing_message());
        return;
    }
    let elsewhere = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(TALLY)
        .args(["demo", "--review", "--json"])
        .current_dir(elsewhere.path())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo --review failed: {stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let images = v["tasks"].as_u64().unwrap();
    assert!(images >= 5, "{v}");
    assert_eq!(v["reviewed"], images, "every image went to review: {v}");
    assert_eq!(v["verified"], images, "{v}");
    assert_eq!(v["faulty_paid"], 0, "{v}");
    assert_eq!(v["audit_ok"], true, "{v}");
    // Two agreeing reviews per image, each paid review_price - 2.5 %.
    assert_eq!(v["review_paid"], images * 2 * 3_900, "{v}");
    for label in ["dog", "bird", "giraffe", "horse", "person"] {
        assert!(
            v["labels"].as_array().unwrap().iter().any(|l| l == label),
            "the reviewed answers are the detector's: {label} missing from {v}"
        );
    }
}
