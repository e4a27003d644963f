//! The sample images give the reference detections, on both backends.
//!
//! Assets come from `TALLY_ASSETS` or the repository's `assets/`; without
//! them these tests say so and pass (in CI they fail). Without
//! `libonnxruntime` the ONNX Runtime tests say what is missing and pass,
//! unless `TALLY_REQUIRE_ONNXRUNTIME=1` or `CI` is set: then they fail.
//!
//! `ort` binds one backend per process, so every test here runs its body in
//! a child process of its own: the test binary re-runs itself filtered to
//! that one test (see `in_own_process`).

mod common;

use std::process::Command;
use std::sync::Arc;

use common::assets;
use tally_protocol::{iou, Detection};
use tally_worker::backend::{self, locate_onnxruntime};
use tally_worker::{Backend, BackendChoice, Detector, DetectorOptions, Error};

const CHILD_ENV: &str = "TALLY_TEST_CHILD";

/// Runs `body` in a fresh process: this test binary, filtered to `name`.
fn in_own_process(name: &str, body: impl FnOnce()) {
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        body();
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .output()
        .expect("re-run the test binary");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{name} failed in its own process");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{name} did not run in its child process"
    );
}

/// Whether this run must not skip the ONNX Runtime tests.
fn onnxruntime_required() -> bool {
    std::env::var("TALLY_REQUIRE_ONNXRUNTIME").is_ok_and(|v| v == "1")
        || std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Whether the ONNX Runtime tests can run here; panics when they must but cannot.
fn onnxruntime_present() -> bool {
    match locate_onnxruntime() {
        Ok(path) => {
            println!("onnxruntime: {}", path.display());
            true
        }
        Err(why) if onnxruntime_required() => {
            panic!("ONNX Runtime is required here (CI or TALLY_REQUIRE_ONNXRUNTIME=1): {why}")
        }
        Err(why) => {
            println!("skipping onnxruntime test: {why}");
            false
        }
    }
}

#[derive(serde::Deserialize)]
struct Expected {
    image: String,
    width: u32,
    height: u32,
    detections: Vec<Detection>,
}

/// Differences between `got` and the reference, as sentences; empty when they match.
///
/// A reference detection matches one of the same class with IoU >= 0.9 and
/// score within 0.03; one scoring below 0.33 may be missing (it may fall
/// under the 0.3 threshold on another backend). Nothing unmatched may score
/// above 0.35.
fn mismatches(expected: &[Detection], got: &[Detection]) -> Vec<String> {
    let mut used = vec![false; got.len()];
    let mut problems = Vec::new();
    for want in expected {
        let found = got.iter().enumerate().position(|(i, d)| {
            !used[i]
                && d.class_id == want.class_id
                && iou(&d.bbox, &want.bbox) >= 0.9
                && (d.score - want.score).abs() <= 0.03
        });
        match found {
            Some(i) => used[i] = true,
            None if want.score < 0.33 => {}
            None => problems.push(format!("missing {want:?}")),
        }
    }
    for (d, used) in got.iter().zip(used) {
        if !used && d.score > 0.35 {
            problems.push(format!("extra {d:?}"));
        }
    }
    problems
}

fn check_every_image(choice: BackendChoice, want: Backend) {
    let Some(assets) = assets() else { return };
    let detector = Detector::load(assets.join("models/yolox_nano.onnx"), choice, 1).unwrap();
    assert_eq!(detector.backend(), want);
    let mut names: Vec<_> = std::fs::read_dir(assets.join("expected"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert!(names.len() >= 5, "expected/ holds {} files", names.len());
    let mut failures = Vec::new();
    for path in names {
        let expected: Expected = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let bytes = std::fs::read(assets.join("images").join(&expected.image)).unwrap();
        let out = detector.detect(&bytes).unwrap();
        assert_eq!((out.width, out.height), (expected.width, expected.height));
        println!(
            "{want} {}: {:.1} ms ({:.1} ms model), {} detections",
            expected.image,
            out.elapsed_ms,
            out.infer_ms,
            out.detections.len()
        );
        for problem in mismatches(&expected.detections, &out.detections) {
            failures.push(format!("{}: {problem}", expected.image));
        }
    }
    assert!(failures.is_empty(), "{want}:\n{}", failures.join("\n"));
}

fn check_broken_images(choice: BackendChoice) {
    let Some(assets) = assets() else { return };
    let detector = Detector::load(assets.join("models/yolox_nano.onnx"), choice, 1).unwrap();
    let jpeg = std::fs::read(assets.join("images/dog.jpg")).unwrap();
    let truncated = &jpeg[..jpeg.len() / 2];
    let inputs: [(&str, &[u8]); 4] = [
        ("truncated jpeg", truncated),
        ("jpeg header only", &jpeg[..600]),
        ("text file", b"detections: none, this is a text file\n"),
        ("empty", b""),
    ];
    for (what, bytes) in inputs {
        match detector.detect(bytes) {
            Err(Error::Image(_)) => {}
            other => panic!("{what}: expected Error::Image, got {other:?}"),
        }
    }
    // The detector still works afterwards.
    assert!(!detector.detect(&jpeg).unwrap().detections.is_empty());
}

#[test]
fn onnxruntime_matches_expected_detections() {
    in_own_process("onnxruntime_matches_expected_detections", || {
        if onnxruntime_present() {
            check_every_image(BackendChoice::OnnxRuntime, Backend::OnnxRuntime);
        }
    });
}

#[test]
fn tract_matches_expected_detections() {
    in_own_process("tract_matches_expected_detections", || {
        check_every_image(BackendChoice::Tract, Backend::Tract);
    });
}

#[test]
fn onnxruntime_reports_undecodable_images_as_image_errors() {
    in_own_process(
        "onnxruntime_reports_undecodable_images_as_image_errors",
        || {
            if onnxruntime_present() {
                check_broken_images(BackendChoice::OnnxRuntime);
            }
        },
    );
}

#[test]
fn tract_reports_undecodable_images_as_image_errors() {
    in_own_process("tract_reports_undecodable_images_as_image_errors", || {
        check_broken_images(BackendChoice::Tract);
    });
}

#[test]
fn auto_prefers_onnxruntime_when_it_is_found() {
    in_own_process("auto_prefers_onnxruntime_when_it_is_found", || {
        let Some(assets) = assets() else { return };
        let detector = Detector::load(
            assets.join("models/yolox_nano.onnx"),
            BackendChoice::Auto,
            1,
        )
        .unwrap();
        let want = if onnxruntime_present() {
            Backend::OnnxRuntime
        } else {
            Backend::Tract
        };
        assert_eq!(detector.backend(), want);
        assert_eq!(backend::active(), Some(want));
    });
}

#[test]
fn a_process_keeps_the_backend_it_started_with() {
    in_own_process("a_process_keeps_the_backend_it_started_with", || {
        let Some(assets) = assets() else { return };
        let model = std::fs::read(assets.join("models/yolox_nano.onnx")).unwrap();
        Detector::from_bytes(&model, BackendChoice::Tract, 1).unwrap();
        match Detector::from_bytes(&model, BackendChoice::OnnxRuntime, 1) {
            Err(Error::BackendConflict { requested, active }) => {
                assert_eq!((requested, active), (Backend::OnnxRuntime, Backend::Tract))
            }
            other => panic!("expected a conflict, got {:?}", other.map(|d| d.backend())),
        }
        let again = Detector::from_bytes(&model, BackendChoice::Auto, 1).unwrap();
        assert_eq!(again.backend(), Backend::Tract);
    });
}

#[test]
fn parallel_detections_from_spawn_blocking_agree() {
    in_own_process("parallel_detections_from_spawn_blocking_agree", || {
        let Some(assets) = assets() else { return };
        let model = std::fs::read(assets.join("models/yolox_nano.onnx")).unwrap();
        let options = DetectorOptions {
            backend: BackendChoice::Auto,
            threads: 1,
            sessions: 2,
        };
        let detector = Arc::new(Detector::with_options(&model, &options).unwrap());
        let image = Arc::new(std::fs::read(assets.join("images/person.jpg")).unwrap());
        let alone = detector.detect(&image).unwrap().detections;
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let results = runtime.block_on(async {
            let tasks: Vec<_> = (0..4)
                .map(|_| {
                    let (detector, image) = (detector.clone(), image.clone());
                    tokio::task::spawn_blocking(move || detector.detect(&image))
                })
                .collect();
            let mut results = Vec::new();
            for t in tasks {
                results.push(t.await.unwrap().unwrap().detections);
            }
            results
        });
        for r in results {
            assert_eq!(r, alone);
        }
    });
}

#[test]
fn a_model_that_is_not_onnx_is_refused_before_any_runtime_sees_it() {
    in_own_process(
        "a_model_that_is_not_onnx_is_refused_before_any_runtime_sees_it",
        || match Detector::from_bytes(b"not an onnx model", BackendChoice::Tract, 1) {
            Err(Error::Refused(r)) => assert_eq!(r.code(), "malformed", "{r}"),
            other => panic!(
                "expected Error::Refused, got {:?}",
                other.map(|d| d.backend())
            ),
        },
    );
}

#[test]
fn mismatches_accept_tolerances_and_reject_extras() {
    let d = |class_id, score, bbox| Detection {
        class_id,
        label: String::new(),
        score,
        bbox,
    };
    let reference = [
        d(16, 0.83, [0.0, 0.0, 100.0, 100.0]),
        d(0, 0.31, [0.0, 0.0, 10.0, 10.0]),
    ];
    let close = [d(16, 0.85, [1.0, 0.0, 100.0, 101.0])];
    assert!(mismatches(&reference, &close).is_empty());
    let far = [d(16, 0.87, [0.0, 0.0, 100.0, 100.0])];
    assert_eq!(mismatches(&reference, &far).len(), 2);
    let extra = [close[0].clone(), d(2, 0.36, [5.0, 5.0, 6.0, 6.0])];
    assert_eq!(mismatches(&reference, &extra).len(), 1);
}
