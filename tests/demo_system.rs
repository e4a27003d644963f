//! `tally demo --json` run as a user would: the built binary, its JSON; and
//! a fresh clone of the repository holds the assets the demo needs.

mod worker_process;

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use tally::assets::{MODEL_FILE, MODEL_SHA256};
use worker_process::{assets, skip};

/// `tally demo ARGS` run from a directory with nothing beside it: its JSON.
fn demo(args: &[&str]) -> serde_json::Value {
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("demo")
        .args(args)
        .current_dir(elsewhere.path())
        .output()
        .expect("tally demo runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo {args:?} failed ({}): {stderr}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document on stdout")
}

/// The labels a demo's JSON says it saw.
fn labels(v: &serde_json::Value) -> Vec<&str> {
    let labels = v["labels"].as_array().unwrap();
    labels.iter().map(|l| l.as_str().unwrap()).collect()
}

#[test]
fn the_demo_verifies_every_image_pays_only_honest_workers_and_passes_the_audit() {
    let Some(assets) = assets() else { return };
    if std::env::var_os("TALLY_ASSETS").is_none() {
        let own = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
        assert_eq!(assets, own, "the repository's own assets come first");
    }
    // From a directory with nothing beside it: `TALLY_ASSETS`, when set, is
    // inherited and obeyed; unset, the demo finds the repository's assets.
    let v = demo(&["--workers", "4", "--faulty", "1", "--json"]);
    let images = std::fs::read_dir(assets.join("images")).unwrap().count() as u64;
    assert_eq!(v["tasks"], images);
    assert_eq!(v["verified"], images, "every sample image is verified");
    let labels = labels(&v);
    for expected in ["dog", "person", "horse", "giraffe", "bicycle"] {
        assert!(
            labels.contains(&expected),
            "{expected} missing from {labels:?}"
        );
    }
    assert_eq!(v["faulty_paid"], 0, "the faulty worker is never paid");
    assert!(v["paid"].as_i64().unwrap() > 0);
    assert!(
        v["payouts"].as_u64().unwrap() >= 3,
        "three honest workers were paid"
    );
    assert_eq!(v["audit_ok"], true);
}

/// `tally demo --review`: every image goes to review (the two workers
/// disagree), two scripted reviewers decide each with the honest answer,
/// both are paid for every image, the faulty worker never, and the audit
/// (which checks the signed reviews and marks) passes.
#[test]
fn the_review_demo_decides_every_image_by_review() {
    let Some(assets) = assets() else { return };
    let v = demo(&["--review", "--json"]);
    let images = std::fs::read_dir(assets.join("images")).unwrap().count() as u64;
    assert_eq!(v["tasks"], images);
    assert_eq!(v["verified"], images, "every image verified");
    assert_eq!(v["reviewed"], images, "every image decided by review");
    assert_eq!(v["faulty_paid"], 0, "the faulty worker is never paid");
    // Two agreeing reviews per image at 4,000 stroops less the 2.5 % fee.
    assert_eq!(v["review_paid"], images * 2 * (4_000 - 100));
    assert_eq!(v["audit_ok"], true, "{}", v["findings"]);
    let labels = labels(&v);
    assert!(
        labels.contains(&"dog"),
        "the honest answer was picked: {labels:?}"
    );
}

#[test]
fn the_demo_without_assets_says_how_to_get_them() {
    // `TALLY_ASSETS` is obeyed even though the repository has its own.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["demo", "--json"])
        .env("TALLY_ASSETS", empty.path())
        .current_dir(empty.path())
        .output()
        .expect("tally demo runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("yolox_nano.onnx")
            && stderr.contains("sha256")
            && stderr.contains(&empty.path().display().to_string()),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs")
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What is committed is enough: a clone of this checkout's HEAD holds the
/// sample model (tracked, with its sha256), its licence, and images with
/// their reference detections.
#[test]
fn a_fresh_clone_holds_the_assets_the_demo_needs() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"));
    let top = git(source, &["rev-parse", "--show-toplevel"]);
    if !top.status.success() {
        return skip("the source tree is not a git checkout");
    }
    let top = PathBuf::from(String::from_utf8(top.stdout).unwrap().trim());
    let dir = tempfile::tempdir().unwrap();
    let clone = dir.path().join("clone");
    let out = git(
        dir.path(),
        &["clone", "--quiet", top.to_str().unwrap(), "clone"],
    );
    assert!(
        out.status.success(),
        "git clone: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let assets = clone.join("assets");
    let model_path = format!("assets/{MODEL_FILE}");
    let tracked = git(&clone, &["ls-files", "--error-unmatch", &model_path]);
    assert!(
        tracked.status.success(),
        "{model_path} is not tracked by git"
    );
    let model = std::fs::read(assets.join(MODEL_FILE)).expect("the clone has the model");
    assert_eq!(model.len(), 3_713_911);
    assert_eq!(sha256_hex(&model), MODEL_SHA256);
    let line = std::fs::read_to_string(assets.join("models/yolox_nano.onnx.sha256")).unwrap();
    assert_eq!(line.trim(), format!("{MODEL_SHA256}  yolox_nano.onnx"));
    let licence = std::fs::read_to_string(assets.join("models/LICENSE")).unwrap();
    assert!(licence.contains("Apache License") && licence.contains("Version 2.0"));
    let readme = std::fs::read_to_string(assets.join("README.md")).unwrap();
    for credit in [
        "Megvii-BaseDetection",
        "hamacom2004jp/iinfer",
        "pjreddie/darknet",
    ] {
        assert!(
            readme.contains(credit),
            "assets/README.md does not credit {credit}"
        );
    }
    let images = tally::assets::images(&assets).unwrap();
    assert!(images.len() >= 5, "too few sample images: {images:?}");
    for image in &images {
        let stem = image.file_stem().unwrap().to_str().unwrap();
        let expected = assets.join("expected").join(format!("{stem}.json"));
        assert!(expected.is_file(), "no {}", expected.display());
    }
}
