//! Results from both inference engines voted together: the verdict the
//! market writes is the verdict an auditor gets re-running the vote from the
//! written evidence, byte for byte, on every sample image.
//!
//! `ort` binds one backend per process, so each engine detects in a child
//! process of its own (this test binary re-run, filtered to one test) and
//! hands its detections over as JSON, the form a worker sends them in.
//! Skips like the asset tests without the assets or ONNX Runtime.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::assets;
use tally_protocol::vote::{self, Ballot, Numbers, Verdict, VoteParams};
use tally_protocol::{AssignmentId, Detection};
use tally_worker::backend::locate_onnxruntime;
use tally_worker::{BackendChoice, Detector};

const CHILD_ENV: &str = "TALLY_TEST_CHILD";
const OUT_ENV: &str = "TALLY_TEST_DETECTIONS";

/// The sample images, by name.
fn images(assets: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(assets.join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// In a child process: every sample image's detections on `backend`,
/// written as JSON (one list per image) to the file `OUT_ENV` names.
fn detect_all(backend: BackendChoice) {
    let assets = assets().expect("the parent found the assets");
    let detector = Detector::load(assets.join("models/yolox_nano.onnx"), backend, 1).unwrap();
    let all: Vec<Vec<Detection>> = images(&assets)
        .iter()
        .map(|p| {
            detector
                .detect(&std::fs::read(p).unwrap())
                .unwrap()
                .detections
        })
        .collect();
    let out = std::env::var(OUT_ENV).unwrap();
    std::fs::write(out, serde_json::to_vec(&all).unwrap()).unwrap();
}

#[test]
fn child_detects_on_onnxruntime() {
    if std::env::var(CHILD_ENV).as_deref() == Ok("child_detects_on_onnxruntime") {
        detect_all(BackendChoice::OnnxRuntime);
    }
}

#[test]
fn child_detects_on_tract() {
    if std::env::var(CHILD_ENV).as_deref() == Ok("child_detects_on_tract") {
        detect_all(BackendChoice::Tract);
    }
}

/// The JSON text of each image's detections on one engine, from a child.
fn detections_in_child(name: &str, dir: &Path) -> Vec<String> {
    let out = dir.join(format!("{name}.json"));
    let run = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .env(OUT_ENV, &out)
        .output()
        .expect("re-run the test binary");
    assert!(
        run.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let all: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    // Each image's list as a worker would write it into its signed result.
    all.iter().map(|v| v.to_string()).collect()
}

/// The market's vote on results given as JSON, written; and the verdict an
/// auditor reads back and the one it gets voting on the same JSON.
fn decide_and_audit(results: &[(i64, &str)]) -> (String, Verdict, Verdict) {
    let p = VoteParams::default();
    let read = |results: &[(i64, &str)]| -> Vec<Ballot> {
        results
            .iter()
            .map(|(id, text)| Ballot {
                assignment: AssignmentId(*id),
                detections: serde_json::from_str(text).unwrap(),
            })
            .collect()
    };
    let written = serde_json::to_string(&vote::vote(&p, &read(results))).unwrap();
    let published: Verdict = serde_json::from_str(&written).unwrap();
    let mut reversed = results.to_vec();
    reversed.reverse();
    let rerun = vote::vote_as(published.numbers, &p, &read(&reversed));
    (written, published, rerun)
}

#[test]
fn both_engines_voted_together_give_the_verdict_the_audit_re_runs_byte_for_byte() {
    let Some(assets) = assets() else { return };
    if let Err(why) = locate_onnxruntime() {
        let must = std::env::var_os("CI").is_some_and(|v| !v.is_empty())
            || std::env::var("TALLY_REQUIRE_ONNXRUNTIME").is_ok_and(|v| v == "1");
        assert!(!must, "ONNX Runtime is required here: {why}");
        println!("skipping: ONNX Runtime is not available: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ort = detections_in_child("child_detects_on_onnxruntime", dir.path());
    let tract = detections_in_child("child_detects_on_tract", dir.path());
    let names = images(&assets);
    assert_eq!((ort.len(), tract.len()), (names.len(), names.len()));
    // The engines do differ, or this would prove nothing.
    assert!(
        ort.iter().zip(&tract).any(|(a, b)| a != b),
        "ONNX Runtime and tract gave identical detections"
    );
    let mut float_losses = 0;
    for ((name, o), t) in names.iter().zip(&ort).zip(&tract) {
        let name = name.file_name().unwrap().to_string_lossy();
        for results in [
            vec![(1, o.as_str()), (2, t.as_str())],
            vec![(5, t.as_str()), (9, o.as_str()), (11, o.as_str())],
            vec![
                (3, t.as_str()),
                (4, o.as_str()),
                (6, t.as_str()),
                (8, o.as_str()),
            ],
        ] {
            let (written, published, rerun) = decide_and_audit(&results);
            assert_eq!(published.numbers, Numbers::Grid);
            assert_eq!(
                serde_json::to_string(&rerun).unwrap(),
                written,
                "{name}: the audit's re-run differs from the market's verdict"
            );
            assert_eq!(rerun, published, "{name}");
            assert!(
                published.disagree.is_empty() && published.agree.len() == results.len(),
                "{name}: the engines disagree: {published:?}"
            );
            assert!(!published.consensus.is_empty(), "{name}: nothing found");
            // What the float rule did with the same results.
            let p = VoteParams::default();
            let ballots: Vec<Ballot> = results
                .iter()
                .map(|(id, text)| Ballot {
                    assignment: AssignmentId(*id),
                    detections: serde_json::from_str(text).unwrap(),
                })
                .collect();
            let float = vote::vote_as(Numbers::Float, &p, &ballots);
            let back: Verdict =
                serde_json::from_str(&serde_json::to_string(&float).unwrap()).unwrap();
            float_losses += usize::from(back != float);
        }
    }
    println!(
        "{} images, 3 mixes each: identical verdicts on the grid; the float rule's written verdict differed from its re-run {float_losses} times",
        names.len()
    );
}
