//! Models built in code: [`tiny_yolox`], a runnable 32x32 YOLOX-shaped
//! detector that admission accepts, and hostile variants of it that
//! admission must refuse (used by this crate's, the market's and the
//! worker's tests). [`Message`] and [`onnx`] write any other.

pub mod onnx;
mod writer;

pub use writer::Message;

use onnx::*;

/// Input side of [`tiny_yolox`].
pub const TINY_SIDE: u32 = 32;
/// Anchors of [`tiny_yolox`]'s output: 16 + 4 + 1 for strides 8, 16, 32.
pub const TINY_ANCHORS: usize = 21;
/// Values per anchor of [`tiny_yolox`]'s output: box, objectness, 80 classes.
pub const TINY_ROW: usize = 85;
/// The class [`tiny_yolox`] sees (16, "dog").
pub const TINY_CLASS: usize = 16;

/// [`tiny_yolox`]'s constant output: all zero but anchor 0 (stride 8, cell
/// 0,0), a box centred at (4, 4) of 16 x 16 pixels in the letterboxed
/// image, objectness 0.9 and class [`TINY_CLASS`] 0.9 (score 0.81).
pub fn tiny_output() -> Vec<f32> {
    let mut out = vec![0.0; TINY_ANCHORS * TINY_ROW];
    let ln2 = std::f32::consts::LN_2;
    out[..5].copy_from_slice(&[0.5, 0.5, ln2, ln2, 0.9]);
    out[5 + TINY_CLASS] = 0.9;
    out
}

/// The pieces of the tiny model, for a variant to change before [`Tiny::bytes`].
struct Tiny {
    tag: String,
    /// The constant output, initializer `C`.
    c: Message,
    extra_nodes: Vec<Message>,
    add_domain: Option<String>,
    sparse: Vec<Message>,
    input_dims: Vec<i64>,
    extra_outputs: Vec<Message>,
    opsets: Vec<Message>,
    /// Fields appended to the ModelProto.
    model_tail: Message,
}

impl Tiny {
    fn new(tag: &str) -> Tiny {
        let side = i64::from(TINY_SIDE);
        Tiny {
            tag: tag.to_string(),
            c: tensor_f32(
                "C",
                &[1, TINY_ANCHORS as i64, TINY_ROW as i64],
                &tiny_output(),
            ),
            extra_nodes: Vec::new(),
            add_domain: None,
            sparse: Vec::new(),
            input_dims: vec![1, 3, side, side],
            extra_outputs: Vec::new(),
            opsets: vec![opset("", 11)],
            model_tail: Message::new(),
        }
    }

    /// `output = ReduceMean(images, axes=[1,2,3], keepdims=0) * zero + C`:
    /// the image is read, the output is `C`.
    fn bytes(self) -> Vec<u8> {
        let mut add = node("Add", "add", &["nothing", "C"], &["output"], vec![]);
        if let Some(domain) = &self.add_domain {
            add = in_domain(add, domain);
        }
        let mut nodes = vec![
            node(
                "ReduceMean",
                "mean",
                &["images"],
                &["mean"],
                vec![attr_ints("axes", &[1, 2, 3]), attr_int("keepdims", 0)],
            ),
            node("Mul", "mul", &["mean", "zero"], &["nothing"], vec![]),
            add,
        ];
        nodes.extend(self.extra_nodes);
        let out_dims = [1, TINY_ANCHORS as i64, TINY_ROW as i64];
        let mut outputs = vec![value_info("output", FLOAT, &out_dims)];
        outputs.extend(self.extra_outputs);
        let graph = graph(
            &format!("tiny-yolox-{}", self.tag),
            nodes,
            vec![tensor_f32("zero", &[], &[0.0]), self.c],
            vec![value_info("images", FLOAT, &self.input_dims)],
            outputs,
        )
        .string(
            10,
            &format!("tiny YOLOX-shaped detector, tag {:?}", self.tag),
        )
        .messages(15, self.sparse);
        let mut bytes = model(graph, self.opsets).into_bytes();
        bytes.extend_from_slice(self.model_tail.as_bytes());
        bytes
    }
}

/// A valid, runnable opset-11 model: input `images` float32 [1, 3, 32, 32],
/// output `output` float32 [1, 21, 85], always [`tiny_output`] (one
/// confident "dog"). `tag` goes in the graph's name and doc string, so
/// different tags give different bytes.
pub fn tiny_yolox(tag: &str) -> Vec<u8> {
    Tiny::new(tag).bytes()
}

/// The tiny model with `C` stored as external data at `location`.
pub fn with_external_initializer(location: &str) -> Vec<u8> {
    let mut t = Tiny::new("external-initializer");
    t.c = external_tensor("C", &[1, TINY_ANCHORS as i64, TINY_ROW as i64], location);
    t.bytes()
}

/// A subgraph with no input whose one node, a Constant, has an external
/// `value` tensor.
fn leaky_branch(name: &str, location: &str) -> Message {
    let value = attr_tensor("value", external_tensor("secret", &[4], location));
    graph(
        name,
        vec![node(
            "Constant",
            &format!("{name}-const"),
            &[],
            &[name],
            vec![value],
        )],
        vec![],
        vec![],
        vec![value_info(name, FLOAT, &[4])],
    )
}

/// An If node (on a true constant) whose branches are `then_branch` and
/// `else_branch`, with its output `out`.
fn if_node(name: &str, out: &str, then_branch: Message, else_branch: Message) -> Vec<Message> {
    let cond = format!("{name}-cond");
    let truth = tensor_header("truth", &[], BOOL).bytes(9, &[1]);
    vec![
        node(
            "Constant",
            &cond,
            &[],
            &[&cond],
            vec![attr_tensor("value", truth)],
        ),
        node(
            "If",
            name,
            &[&cond],
            &[out],
            vec![
                attr_graph("then_branch", then_branch),
                attr_graph("else_branch", else_branch),
            ],
        ),
    ]
}

/// The tiny model plus an If node whose branches each hold a Constant node
/// with an external tensor at `location`.
pub fn with_external_in_subgraph(location: &str) -> Vec<u8> {
    let mut t = Tiny::new("external-in-subgraph");
    t.extra_nodes = if_node(
        "leak",
        "leaked",
        leaky_branch("then", location),
        leaky_branch("else", location),
    );
    t.bytes()
}

/// The tiny model with If nodes nested `depth` deep (the innermost
/// branches hold a harmless Constant).
pub fn with_nested_subgraphs(depth: usize) -> Vec<u8> {
    fn level(d: usize) -> Message {
        let nodes = if d == 0 {
            let one = attr_tensor("value", tensor_f32("one", &[1], &[1.0]));
            vec![node("Constant", "inner", &[], &["x"], vec![one])]
        } else {
            if_node(&format!("if{d}"), "x", level(d - 1), level(d - 1))
        };
        graph(
            "branch",
            nodes,
            vec![],
            vec![],
            vec![value_info("x", FLOAT, &[1])],
        )
    }
    let mut t = Tiny::new("nested");
    if depth > 0 {
        t.extra_nodes = if_node("outer", "nested", level(depth - 1), level(depth - 1));
    }
    t.bytes()
}

/// The tiny model plus a sparse initializer whose values are external.
pub fn with_external_sparse_initializer(location: &str) -> Vec<u8> {
    let mut t = Tiny::new("external-sparse");
    let indices = tensor_header("S_indices", &[1], INT64).bytes(9, &[0; 8]);
    t.sparse = vec![Message::new()
        .message(1, external_tensor("S", &[1], location))
        .message(2, indices)
        .ints(3, &[4])];
    t.bytes()
}

/// The tiny model plus a Constant node whose `value` tensor is external.
pub fn with_external_attribute(location: &str) -> Vec<u8> {
    let mut t = Tiny::new("external-attribute");
    let value = attr_tensor("value", external_tensor("K", &[4], location));
    t.extra_nodes = vec![node("Constant", "leak", &[], &["k"], vec![value])];
    t.bytes()
}

/// The tiny model with its Add node in `domain`, which it also imports.
pub fn with_custom_domain(domain: &str) -> Vec<u8> {
    let mut t = Tiny::new("custom-domain");
    t.add_domain = Some(domain.to_string());
    t.opsets.push(opset(domain, 1));
    t.bytes()
}

/// The tiny model importing standard opset `version` instead of 11.
pub fn with_opset(version: i64) -> Vec<u8> {
    let mut t = Tiny::new("opset");
    t.opsets = vec![opset("", version)];
    t.bytes()
}

/// The tiny model whose `C` carries TensorProto field 17, unknown to ONNX 1.17.
pub fn with_unknown_field() -> Vec<u8> {
    let mut t = Tiny::new("unknown-field");
    t.c = t.c.string(17, "hidden");
    t.bytes()
}

/// The tiny model plus a model-local function (ModelProto field 25).
pub fn with_function() -> Vec<u8> {
    let mut t = Tiny::new("function");
    // FunctionProto: name (1), domain (10).
    t.model_tail = Message::new().message(25, Message::new().string(1, "f").string(10, "local"));
    t.bytes()
}

/// The tiny model plus an (empty) TrainingInfoProto (ModelProto field 20).
pub fn with_training_info() -> Vec<u8> {
    let mut t = Tiny::new("training");
    t.model_tail = Message::new().message(20, Message::new());
    t.bytes()
}

/// The tiny model with a metadata entry (ModelProto field 14).
pub fn with_metadata(key: &str, value: &str) -> Vec<u8> {
    let mut t = Tiny::new("metadata");
    t.model_tail = Message::new().message(14, entry(key, value));
    t.bytes()
}

/// The tiny model declaring input dims `dims` (it will not run).
pub fn with_input_shape(dims: &[i64]) -> Vec<u8> {
    let mut t = Tiny::new("input-shape");
    t.input_dims = dims.to_vec();
    t.bytes()
}

/// The tiny model with a second output, a copy of the first.
pub fn with_two_outputs() -> Vec<u8> {
    let mut t = Tiny::new("two-outputs");
    t.extra_nodes = vec![node("Identity", "copy", &["output"], &["copy"], vec![])];
    let dims = [1, TINY_ANCHORS as i64, TINY_ROW as i64];
    t.extra_outputs = vec![value_info("copy", FLOAT, &dims)];
    t.bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{admit, Policy};

    #[test]
    fn tiny_yolox_is_admitted() {
        let info = admit(&tiny_yolox("unit"), &Policy::default()).expect("admitted");
        assert_eq!(info.input_name, "images");
        assert_eq!(info.input_size, TINY_SIDE);
        assert_eq!(info.output_name, "output");
        assert_eq!(info.anchors, Some(TINY_ANCHORS as u64));
        assert_eq!(info.classes, Some(80));
        assert_eq!(info.opset, 11);
        assert_eq!(info.nodes, 3);
    }

    #[test]
    fn tags_change_the_bytes() {
        assert_ne!(tiny_yolox("a"), tiny_yolox("b"));
        assert_eq!(tiny_yolox("a"), tiny_yolox("a"));
    }
}
