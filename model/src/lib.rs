//! Model admission: every ONNX model is parsed here, strictly, before the
//! market stores it or a worker runs it, and anything a worker must not run
//! is refused with a [`Refusal`] that says where and what.
//!
//! Why: ONNX Runtime resolves a tensor's *external data* against the working
//! directory, so a model can read a worker's files (its secret key) and leak
//! them through its detections. Admission refuses external data anywhere,
//! operators outside the standard domain, model-local functions, training
//! info, runtime settings in metadata, fields it does not know, and any
//! model that is not a YOLOX detector.
//!
//! - `wire`: a strict protobuf wire-format reader (no protoc, no codegen).
//! - `schema`: the field tables of the ONNX messages and the strict field
//!   check (unknown numbers, wrong wire types, singular fields given twice).
//! - `walk`: walks the model, its graphs, nodes, attributes, tensors and
//!   subgraphs, and applies the safety rules.
//! - `family`: the YOLOX layout of the graph's input and output.
//! - [`refusal`]: [`Refusal`], its messages and codes.
//! - [`build`]: a tiny protobuf writer, a runnable tiny YOLOX model and the
//!   hostile variants tests use.

pub mod build;
mod family;
pub mod refusal;
mod schema;
mod walk;
mod wire;

use std::ops::RangeInclusive;

pub use family::anchor_count;
pub use refusal::Refusal;

/// What admission accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Largest model, in bytes.
    pub max_bytes: usize,
    /// Accepted versions of the standard ONNX operator set.
    pub opsets: RangeInclusive<i64>,
    /// Deepest subgraph nesting (an If inside a Loop body is depth 2).
    pub max_depth: usize,
    /// Largest input side S of `[1, 3, S, S]`.
    pub max_input_side: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_bytes: 64 << 20,
            opsets: 7..=21,
            max_depth: 8,
            max_input_side: 2048,
        }
    }
}

/// What admission learned about an admitted model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    pub ir_version: i64,
    /// The standard ONNX operator set version it imports.
    pub opset: i64,
    pub input_name: String,
    /// S of the `[1, 3, S, S]` input.
    pub input_size: u32,
    pub output_name: String,
    /// N of the `[1, N, 5 + classes]` output, when static.
    pub anchors: Option<u64>,
    /// Classes of the output, when its last dimension is static.
    pub classes: Option<u64>,
    /// Nodes in all of its graphs, subgraphs included.
    pub nodes: usize,
    pub bytes: usize,
}

/// Parses `bytes` as an ONNX model and admits it, or says why not.
pub fn admit(bytes: &[u8], policy: &Policy) -> Result<ModelInfo, Refusal> {
    if bytes.is_empty() {
        return Err(Refusal::Empty);
    }
    if bytes.len() > policy.max_bytes {
        return Err(Refusal::TooLarge {
            bytes: bytes.len(),
            max: policy.max_bytes,
        });
    }
    let walked = walk::model(bytes, policy)?;
    let layout = family::check(&walked.main, policy)?;
    Ok(ModelInfo {
        ir_version: walked.ir_version,
        opset: walked.opset,
        input_name: layout.input_name,
        input_size: layout.input_size,
        output_name: layout.output_name,
        anchors: layout.anchors,
        classes: layout.classes,
        nodes: walked.nodes,
        bytes: bytes.len(),
    })
}
