//! ONNX messages written with [`Message`]: tensors, value infos, nodes,
//! attributes, graphs and models (field numbers from onnx.proto).

use super::writer::Message;

/// TensorProto.DataType values used here.
pub const FLOAT: i64 = 1;
pub const BOOL: i64 = 9;
pub const INT64: i64 = 7;

/// TensorProto with its dims (1), data_type (2) and name (8), no data yet.
pub fn tensor_header(name: &str, dims: &[i64], data_type: i64) -> Message {
    Message::new()
        .ints(1, dims)
        .int(2, data_type)
        .string(8, name)
}

/// A float32 tensor with its values in raw_data (9), little-endian.
pub fn tensor_f32(name: &str, dims: &[i64], values: &[f32]) -> Message {
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    tensor_header(name, dims, FLOAT).bytes(9, &raw)
}

/// A StringStringEntryProto: key (1), value (2).
pub fn entry(key: &str, value: &str) -> Message {
    Message::new().string(1, key).string(2, value)
}

/// A float32 tensor whose data is external: external_data (13) entries
/// location, offset 0 and the length of its data, data_location (14) EXTERNAL.
pub fn external_tensor(name: &str, dims: &[i64], location: &str) -> Message {
    let length = 4 * dims.iter().product::<i64>();
    tensor_header(name, dims, FLOAT)
        .message(13, entry("location", location))
        .message(13, entry("offset", "0"))
        .message(13, entry("length", &length.to_string()))
        .int(14, 1)
}

/// A ValueInfoProto: name (1), type (2) = TypeProto.tensor_type (1) =
/// {elem_type (1), shape (2) = TensorShapeProto {dim (1) = {dim_value (1)}}}.
pub fn value_info(name: &str, elem_type: i64, dims: &[i64]) -> Message {
    let shape = Message::new().messages(1, dims.iter().map(|d| Message::new().int(1, *d)));
    let tensor = Message::new().int(1, elem_type).message(2, shape);
    Message::new()
        .string(1, name)
        .message(2, Message::new().message(1, tensor))
}

/// A NodeProto: input (1), output (2), name (3), op_type (4), attribute (5).
pub fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<Message>,
) -> Message {
    let m = inputs.iter().fold(Message::new(), |m, i| m.string(1, i));
    outputs
        .iter()
        .fold(m, |m, o| m.string(2, o))
        .string(3, name)
        .string(4, op)
        .messages(5, attrs)
}

/// The same node in another domain (7).
pub fn in_domain(node: Message, domain: &str) -> Message {
    node.string(7, domain)
}

/// AttributeProto: name (1), type (20) and one value field.
fn attribute(name: &str, attr_type: i64) -> Message {
    Message::new().string(1, name).int(20, attr_type)
}

/// An INT attribute: i (3).
pub fn attr_int(name: &str, v: i64) -> Message {
    attribute(name, 2).int(3, v)
}

/// An INTS attribute: ints (8).
pub fn attr_ints(name: &str, vs: &[i64]) -> Message {
    attribute(name, 7).ints(8, vs)
}

/// A TENSOR attribute: t (5).
pub fn attr_tensor(name: &str, t: Message) -> Message {
    attribute(name, 4).message(5, t)
}

/// A GRAPH attribute: g (6).
pub fn attr_graph(name: &str, g: Message) -> Message {
    attribute(name, 5).message(6, g)
}

/// A GraphProto: node (1), name (2), initializer (5), doc_string (10),
/// input (11), output (12).
pub fn graph(
    name: &str,
    nodes: Vec<Message>,
    initializers: Vec<Message>,
    inputs: Vec<Message>,
    outputs: Vec<Message>,
) -> Message {
    Message::new()
        .messages(1, nodes)
        .string(2, name)
        .messages(5, initializers)
        .messages(11, inputs)
        .messages(12, outputs)
}

/// An OperatorSetIdProto: domain (1), version (2).
pub fn opset(domain: &str, version: i64) -> Message {
    Message::new().string(1, domain).int(2, version)
}

/// A ModelProto: ir_version (1), producer_name (2), graph (7), opset_import (8).
pub fn model(graph: Message, opsets: Vec<Message>) -> Message {
    Message::new()
        .int(1, 7)
        .string(2, "tally-model")
        .message(7, graph)
        .messages(8, opsets)
}
