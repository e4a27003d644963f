//! Admission end to end: the sample YOLOX model and the tiny model are
//! admitted; every hostile variant is refused with the right code and a
//! message naming the problem; no input, however broken, makes it panic.

use std::path::PathBuf;

use proptest::prelude::*;
use tally_model::build::{self, Message};
use tally_model::{admit, Policy, Refusal};

fn refused(bytes: &[u8]) -> Refusal {
    admit(bytes, &Policy::default()).expect_err("the model must be refused")
}

fn assert_refused(bytes: &[u8], code: &str, mentions: &[&str]) {
    let r = refused(bytes);
    assert_eq!(r.code(), code, "{r}");
    let message = r.to_string();
    for m in mentions {
        assert!(message.contains(m), "{message:?} should mention {m:?}");
    }
}

/// The sample model, from `$TALLY_ASSETS`, `assets/` or `../shared/assets`.
fn sample_model() -> Option<Vec<u8>> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut dirs: Vec<PathBuf> = std::env::var_os("TALLY_ASSETS")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    dirs.push(repo.join("assets"));
    dirs.push(repo.join("../shared/assets"));
    let found = dirs
        .iter()
        .map(|d| d.join("models/yolox_nano.onnx"))
        .find(|p| p.is_file());
    match found {
        Some(p) => Some(std::fs::read(&p).expect("read the sample model")),
        None => {
            let tried: Vec<_> = dirs.iter().map(|d| d.display().to_string()).collect();
            let why = format!("models/yolox_nano.onnx is in none of {tried:?} (set TALLY_ASSETS)");
            if std::env::var_os("CI").is_some() {
                panic!("CI must run the sample-model test: {why}");
            }
            eprintln!("skipping the sample-model test: {why}");
            None
        }
    }
}

#[test]
fn the_sample_yolox_model_is_admitted() {
    let Some(bytes) = sample_model() else { return };
    let info = admit(&bytes, &Policy::default()).expect("the sample model is admitted");
    assert_eq!(info.input_name, "images");
    assert_eq!(info.input_size, 416);
    assert_eq!(info.output_name, "output");
    assert_eq!(info.anchors, Some(3549));
    assert_eq!(info.classes, Some(80));
    assert_eq!(info.opset, 11);
    assert_eq!(info.bytes, bytes.len());
    assert!(info.nodes > 100, "{info:?}");
}

#[test]
fn external_data_is_refused_wherever_it_hides() {
    for location in ["worker.key", "../worker.key", "/etc/passwd"] {
        let shown = format!("{location:?}");
        assert_refused(
            &build::with_external_initializer(location),
            "external_data",
            &["initializer \"C\"", &shown, "outside the model"],
        );
        assert_refused(
            &build::with_external_in_subgraph(location),
            "external_data",
            &["subgraph", "then_branch", "If", &shown],
        );
        assert_refused(
            &build::with_external_sparse_initializer(location),
            "external_data",
            &["sparse initializer \"S\"", &shown],
        );
        assert_refused(
            &build::with_external_attribute(location),
            "external_data",
            &["attribute \"value\"", "node \"leak\"", "Constant", &shown],
        );
    }
}

#[test]
fn data_location_external_alone_is_refused() {
    use build::onnx::*;
    // data_location = EXTERNAL with no external_data entries still tells a
    // runtime to look outside the model.
    let t = tensor_header("T", &[1], FLOAT).int(14, 1);
    let g = graph(
        "g",
        vec![node(
            "Constant",
            "c",
            &[],
            &["t"],
            vec![attr_tensor("value", t)],
        )],
        vec![],
        vec![],
        vec![],
    );
    let bytes = model(g, vec![opset("", 11)]).into_bytes();
    assert_refused(
        &bytes,
        "external_data",
        &["attribute \"value\"", "external data)"],
    );
}

#[test]
fn foreign_operators_functions_and_training_are_refused() {
    assert_refused(
        &build::with_custom_domain("com.evil"),
        "custom_domain",
        &["node \"add\"", "\"Add\"", "\"com.evil\""],
    );
    assert_refused(&build::with_opset(99), "opset", &["99", "7 to 21"]);
    assert_refused(&build::with_opset(6), "opset", &["version 6"]);
    assert_refused(&build::with_function(), "model_functions", &["functions"]);
    assert_refused(&build::with_training_info(), "training_info", &["training"]);
    assert_refused(
        &build::with_metadata("ort_config", "{}"),
        "runtime_metadata",
        &["\"ort_config\""],
    );
    assert_refused(
        &build::with_metadata("onnxruntime.session", "x"),
        "runtime_metadata",
        &["onnxruntime"],
    );
    admit(&build::with_metadata("author", "me"), &Policy::default())
        .expect("plain metadata is fine");
}

#[test]
fn unknown_fields_are_refused() {
    assert_refused(
        &build::with_unknown_field(),
        "unknown_field",
        &["TensorProto", "field 17"],
    );
    let mut bytes = build::tiny_yolox("x");
    bytes.extend(Message::new().int(99, 1).into_bytes());
    assert_refused(&bytes, "unknown_field", &["ModelProto", "field 99"]);
}

#[test]
fn subgraph_nesting_is_bounded() {
    let policy = Policy::default();
    admit(&build::with_nested_subgraphs(policy.max_depth), &policy).expect("max depth is fine");
    assert_refused(
        &build::with_nested_subgraphs(policy.max_depth + 1),
        "too_deep",
        &["9 deep", "at most 8"],
    );
}

#[test]
fn only_the_yolox_layout_is_admitted() {
    for dims in [
        &[1, 3, 33, 33][..],
        &[1, 3, 32, 64],
        &[1, 1, 32, 32],
        &[2, 3, 32, 32],
        &[1, 3, 4096, 4096],
        &[1, 3, 0, 0],
        &[1, 3, 32],
    ] {
        assert_refused(
            &build::with_input_shape(dims),
            "model_family",
            &["input \"images\"", "[1, 3, S, S]"],
        );
    }
    assert_refused(&build::with_two_outputs(), "model_family", &["2 outputs"]);
    // An output whose anchor count does not match the input side.
    assert_refused(
        &build::with_input_shape(&[1, 3, 64, 64]),
        "model_family",
        &["output \"output\"", "[1, 84, 5 + classes]"],
    );
}

#[test]
fn empty_too_large_and_garbage_are_refused() {
    assert_refused(&[], "empty", &["empty"]);
    let tiny = build::tiny_yolox("x");
    let small = Policy {
        max_bytes: 100,
        ..Policy::default()
    };
    assert_eq!(admit(&tiny, &small).unwrap_err().code(), "too_large");
    assert_refused(b"this is not an onnx model", "malformed", &[]);
    // A field given twice (a second graph) would be merged by protobuf runtimes.
    let mut twice = tiny.clone();
    twice.extend(Message::new().message(7, Message::new()).into_bytes());
    assert_refused(&twice, "malformed", &["given twice", "graph"]);
}

#[test]
fn every_truncation_is_refused() {
    let tiny = build::tiny_yolox("x");
    for cut in 0..tiny.len() {
        let r = refused(&tiny[..cut]);
        assert!(!r.to_string().is_empty());
    }
}

#[test]
fn long_hostile_strings_are_cut_in_messages() {
    let long = "a".repeat(10_000);
    let message = refused(&build::with_external_initializer(&long)).to_string();
    assert!(message.len() < 400, "{message}");
    let message = refused(&build::with_custom_domain(&long)).to_string();
    assert!(message.len() < 400, "{message}");
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = admit(&bytes, &Policy::default());
    }

    #[test]
    fn mutated_models_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = build::with_external_in_subgraph("worker.key");
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        // Whatever the flips did, the verdict is the same every time.
        let policy = Policy::default();
        prop_assert_eq!(admit(&bytes, &policy), admit(&bytes, &policy));
    }
}
