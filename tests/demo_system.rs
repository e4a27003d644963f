//! `tally demo --json` run as a user would: the built binary, its JSON.

use std::process::Command;

fn assets() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("TALLY_ASSETS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/assets")
        });
    if dir.join("models/yolox_nano.onnx").is_file() {
        Some(dir)
    } else if std::env::var_os("CI").is_some() {
        panic!(
            "CI must run the demo test: assets not found at {}",
            dir.display()
        );
    } else {
        eprintln!(
            "skipping: assets not found at {} (set TALLY_ASSETS)",
            dir.display()
        );
        None
    }
}

#[test]
fn the_demo_verifies_every_image_pays_only_honest_workers_and_passes_the_audit() {
    let Some(assets) = assets() else { return };
    let out = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["demo", "--workers", "4", "--faulty", "1", "--json"])
        .env("TALLY_ASSETS", &assets)
        .output()
        .expect("tally demo runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed: {stderr}");
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("one JSON document on stdout");
    let images = std::fs::read_dir(assets.join("images")).unwrap().count() as u64;
    assert_eq!(v["tasks"], images);
    assert_eq!(v["verified"], images, "every sample image is verified");
    let labels: Vec<&str> = v["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
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

#[test]
fn the_demo_without_assets_says_how_to_get_them() {
    let out = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["demo", "--json"])
        .env("TALLY_ASSETS", "/nonexistent")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("tally demo runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("yolox_nano.onnx") && stderr.contains("sha256"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}
