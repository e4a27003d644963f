//! Cross-checks against the reference implementations, through Python:
//! ONNX Runtime runs the tiny model and gets the expected output, and
//! models written by the `onnx` package itself (external data in an
//! initializer and in an If branch) are read and refused, so admission
//! reads the real format, not only this crate's writer.
//!
//! Without `python3` and the `onnx` and `onnxruntime` packages these skip
//! with a message; with `CI` set they fail instead.

use std::path::Path;
use std::process::Command;

use tally_model::build::{self, TINY_CLASS};
use tally_model::{admit, Policy};

/// A scratch folder for a test that needs `python3` to import `modules`;
/// `None` (the test skips, or fails in CI) if it cannot.
fn python_with(modules: &str) -> Option<tempfile::TempDir> {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let why = format!("python3 cannot import {modules} (pip install onnx onnxruntime)");
        if std::env::var_os("CI").is_some() {
            panic!("CI must run the Python cross-checks: {why}");
        }
        eprintln!("skipping: {why}");
        return None;
    }
    Some(tempfile::tempdir().unwrap())
}

/// Runs `script` with `args`, returns its stdout; panics with its stderr.
fn python(script: &str, args: &[&Path]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

const RUN_TINY: &str = r#"
import sys
import numpy as np
import onnx
import onnxruntime as ort
onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
image = np.random.default_rng(7).random((1, 3, 32, 32), dtype=np.float32)
(out,) = session.run(None, {"images": image})
print(list(out.shape))
print(" ".join(repr(float(v)) for v in out.ravel()))
"#;

#[test]
fn onnxruntime_runs_the_tiny_model() {
    let Some(dir) = python_with("numpy, onnx, onnxruntime") else {
        return;
    };
    let path = dir.path().join("tiny.onnx");
    std::fs::write(&path, build::tiny_yolox("python")).unwrap();
    let out = python(RUN_TINY, &[&path]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("[1, 21, 85]"));
    let values: Vec<f32> = lines
        .next()
        .expect("values")
        .split(' ')
        .map(|v| v.parse().expect("a float"))
        .collect();
    assert_eq!(values, build::tiny_output());
    assert!(
        values[4] * values[5 + TINY_CLASS] > 0.5,
        "one confident detection"
    );
}

/// Writes, with the `onnx` package, the tiny model's structure three ways:
/// clean, with its constant as external data, and with an external tensor
/// in an If branch.
const WRITE_MODELS: &str = r#"
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import set_external_data

def tiny(extra_nodes=(), c=None):
    if c is None:
        c = numpy_helper.from_array(np.zeros((1, 21, 85), np.float32), "C")
    zero = numpy_helper.from_array(np.zeros((), np.float32), "zero")
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["nothing", "C"], ["output"]),
        *extra_nodes,
    ]
    graph = helper.make_graph(
        nodes, "python",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 21, 85])],
        [zero, c],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])

def external(name, shape):
    t = numpy_helper.from_array(np.zeros(shape, np.float32), name)
    set_external_data(t, location="worker.key", offset=0, length=4 * int(np.prod(shape)))
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    return t

def branch(name):
    const = helper.make_node("Constant", [], [name], value=external("secret", [4]))
    return helper.make_graph([const], name, [], [helper.make_tensor_value_info(name, TensorProto.FLOAT, [4])])

cond = helper.make_node("Constant", [], ["cond"], value=helper.make_tensor("t", TensorProto.BOOL, [], [True]))
leak = helper.make_node("If", ["cond"], ["leaked"], then_branch=branch("then"), else_branch=branch("else"))
for path, model in [
    (sys.argv[1], tiny()),
    (sys.argv[2], tiny(c=external("C", [1, 21, 85]))),
    (sys.argv[3], tiny(extra_nodes=[cond, leak])),
]:
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
"#;

#[test]
fn models_written_by_the_onnx_package_are_judged_the_same() {
    let Some(dir) = python_with("numpy, onnx") else {
        return;
    };
    let paths = ["clean.onnx", "external.onnx", "subgraph.onnx"].map(|n| dir.path().join(n));
    python(WRITE_MODELS, &[&paths[0], &paths[1], &paths[2]]);
    let read = |i: usize| std::fs::read(&paths[i]).unwrap();
    let policy = Policy::default();

    let info = admit(&read(0), &policy).expect("the clean model is admitted");
    assert_eq!(
        (info.input_size, info.anchors, info.classes),
        (32, Some(21), Some(80))
    );

    for (i, place) in [(1, "initializer \"C\""), (2, "in a subgraph")] {
        let r = admit(&read(i), &policy).expect_err("external data is refused");
        assert_eq!(r.code(), "external_data", "{r}");
        let message = r.to_string();
        assert!(message.contains(place), "{message}");
        assert!(message.contains("\"worker.key\""), "{message}");
    }
}
