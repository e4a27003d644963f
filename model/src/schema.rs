//! The field tables of the ONNX messages admission reads (numbers from
//! onnx.proto, ONNX 1.17 and later), and [`read`], which checks a message's
//! fields against its table: unknown numbers, wrong wire types and a
//! singular field given twice are refused.
//!
//! A singular field given twice would be merged (or the last kept) by a
//! protobuf runtime; refusing it means what admission checks is exactly
//! what a runtime sees.

use crate::refusal::Refusal;
use crate::wire::{self, Value};

/// The wire shape a field must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Varint,
    Fixed32,
    Len,
    /// A repeated varint field: one value each, or packed.
    PackedVarint,
    /// A repeated 32-bit field: one value each, or packed.
    PackedFixed32,
    /// A repeated 64-bit field: one value each, or packed.
    PackedFixed64,
}

/// One known field.
pub(crate) struct Spec {
    pub number: u32,
    pub name: &'static str,
    pub kind: Kind,
    pub repeated: bool,
}

/// One message's known fields.
pub(crate) struct Schema {
    pub message: &'static str,
    pub fields: &'static [Spec],
}

const fn one(number: u32, name: &'static str, kind: Kind) -> Spec {
    Spec {
        number,
        name,
        kind,
        repeated: false,
    }
}

const fn many(number: u32, name: &'static str, kind: Kind) -> Spec {
    Spec {
        number,
        name,
        kind,
        repeated: true,
    }
}

use Kind::*;

pub(crate) const MODEL: Schema = Schema {
    message: "ModelProto",
    fields: &[
        one(1, "ir_version", Varint),
        one(2, "producer_name", Len),
        one(3, "producer_version", Len),
        one(4, "domain", Len),
        one(5, "model_version", Varint),
        one(6, "doc_string", Len),
        one(7, "graph", Len),
        many(8, "opset_import", Len),
        many(14, "metadata_props", Len),
        many(20, "training_info", Len),
        many(25, "functions", Len),
        many(26, "configuration", Len),
    ],
};

pub(crate) const GRAPH: Schema = Schema {
    message: "GraphProto",
    fields: &[
        many(1, "node", Len),
        one(2, "name", Len),
        many(5, "initializer", Len),
        one(10, "doc_string", Len),
        many(11, "input", Len),
        many(12, "output", Len),
        many(13, "value_info", Len),
        many(14, "quantization_annotation", Len),
        many(15, "sparse_initializer", Len),
        many(16, "metadata_props", Len),
    ],
};

pub(crate) const NODE: Schema = Schema {
    message: "NodeProto",
    fields: &[
        many(1, "input", Len),
        many(2, "output", Len),
        one(3, "name", Len),
        one(4, "op_type", Len),
        many(5, "attribute", Len),
        one(6, "doc_string", Len),
        one(7, "domain", Len),
        one(8, "overload", Len),
        many(9, "metadata_props", Len),
        many(10, "device_configurations", Len),
    ],
};

pub(crate) const ATTRIBUTE: Schema = Schema {
    message: "AttributeProto",
    fields: &[
        one(1, "name", Len),
        one(2, "f", Fixed32),
        one(3, "i", Varint),
        one(4, "s", Len),
        one(5, "t", Len),
        one(6, "g", Len),
        many(7, "floats", PackedFixed32),
        many(8, "ints", PackedVarint),
        many(9, "strings", Len),
        many(10, "tensors", Len),
        many(11, "graphs", Len),
        one(13, "doc_string", Len),
        one(14, "tp", Len),
        many(15, "type_protos", Len),
        one(20, "type", Varint),
        one(21, "ref_attr_name", Len),
        one(22, "sparse_tensor", Len),
        many(23, "sparse_tensors", Len),
    ],
};

pub(crate) const TENSOR: Schema = Schema {
    message: "TensorProto",
    fields: &[
        many(1, "dims", PackedVarint),
        one(2, "data_type", Varint),
        one(3, "segment", Len),
        many(4, "float_data", PackedFixed32),
        many(5, "int32_data", PackedVarint),
        many(6, "string_data", Len),
        many(7, "int64_data", PackedVarint),
        one(8, "name", Len),
        one(9, "raw_data", Len),
        many(10, "double_data", PackedFixed64),
        many(11, "uint64_data", PackedVarint),
        one(12, "doc_string", Len),
        many(13, "external_data", Len),
        one(14, "data_location", Varint),
        many(16, "metadata_props", Len),
    ],
};

pub(crate) const SEGMENT: Schema = Schema {
    message: "TensorProto.Segment",
    fields: &[one(1, "begin", Varint), one(2, "end", Varint)],
};

pub(crate) const SPARSE_TENSOR: Schema = Schema {
    message: "SparseTensorProto",
    fields: &[
        one(1, "values", Len),
        one(2, "indices", Len),
        many(3, "dims", PackedVarint),
    ],
};

pub(crate) const STRING_ENTRY: Schema = Schema {
    message: "StringStringEntryProto",
    fields: &[one(1, "key", Len), one(2, "value", Len)],
};

pub(crate) const OPSET_ID: Schema = Schema {
    message: "OperatorSetIdProto",
    fields: &[one(1, "domain", Len), one(2, "version", Varint)],
};

pub(crate) const VALUE_INFO: Schema = Schema {
    message: "ValueInfoProto",
    fields: &[
        one(1, "name", Len),
        one(2, "type", Len),
        one(3, "doc_string", Len),
        many(4, "metadata_props", Len),
    ],
};

/// TypeProto's `value` oneof, all of its members: admission wants a tensor.
pub(crate) const TYPE: Schema = Schema {
    message: "TypeProto",
    fields: &[
        one(1, "tensor_type", Len),
        one(4, "sequence_type", Len),
        one(5, "map_type", Len),
        one(6, "denotation", Len),
        one(7, "opaque_type", Len),
        one(8, "sparse_tensor_type", Len),
        one(9, "optional_type", Len),
    ],
};

pub(crate) const TENSOR_TYPE: Schema = Schema {
    message: "TypeProto.Tensor",
    fields: &[one(1, "elem_type", Varint), one(2, "shape", Len)],
};

pub(crate) const SHAPE: Schema = Schema {
    message: "TensorShapeProto",
    fields: &[many(1, "dim", Len)],
};

pub(crate) const DIMENSION: Schema = Schema {
    message: "TensorShapeProto.Dimension",
    fields: &[
        one(1, "dim_value", Varint),
        one(2, "dim_param", Len),
        one(3, "denotation", Len),
    ],
};

/// One checked field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
}

impl<'a> Field<'a> {
    /// The bytes of a length-delimited field (empty for any other).
    pub(crate) fn bytes(&self) -> &'a [u8] {
        match self.value {
            Value::Bytes(b) => b,
            _ => &[],
        }
    }

    /// A varint field as protobuf's int64 (two's complement).
    pub(crate) fn int(&self) -> i64 {
        match self.value {
            Value::Varint(v) => v as i64,
            _ => 0,
        }
    }
}

/// Reads the fields of `buf` as a `schema` message.
pub(crate) fn read<'a>(buf: &'a [u8], schema: &Schema) -> Result<Vec<Field<'a>>, Refusal> {
    let malformed = |detail: String| Refusal::Malformed {
        message: schema.message,
        detail,
    };
    let mut seen = 0u64;
    let mut out = Vec::new();
    for item in wire::fields(buf) {
        let (number, value) = item.map_err(|e| malformed(e.to_string()))?;
        let Some(index) = schema.fields.iter().position(|s| s.number == number) else {
            return Err(Refusal::UnknownField {
                message: schema.message,
                number,
                wire: value.wire_name(),
            });
        };
        let spec = &schema.fields[index];
        if !spec.repeated {
            if seen & (1 << index) != 0 {
                return Err(malformed(format!(
                    "field {} ({}) is given twice",
                    spec.number, spec.name
                )));
            }
            seen |= 1 << index;
        }
        check_kind(spec, &value).map_err(malformed)?;
        out.push(Field { number, value });
    }
    Ok(out)
}

fn check_kind(spec: &Spec, value: &Value<'_>) -> Result<(), String> {
    let fits = match (spec.kind, value) {
        (Varint | PackedVarint, Value::Varint(_)) => true,
        (Fixed32 | PackedFixed32, Value::Fixed32(_)) => true,
        (PackedFixed64, Value::Fixed64(_)) => true,
        (Len, Value::Bytes(_)) => true,
        (PackedVarint, Value::Bytes(b)) => {
            return wire::packed_varints(b)
                .map_err(|e| format!("field {} ({}), packed: {e}", spec.number, spec.name))
        }
        (PackedFixed32, Value::Bytes(b)) => b.len() % 4 == 0,
        (PackedFixed64, Value::Bytes(b)) => b.len() % 8 == 0,
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(format!(
            "field {} ({}) has the wrong wire type ({})",
            spec.number,
            spec.name,
            value.wire_name()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_fits_the_seen_bitset() {
        for s in [
            &MODEL,
            &GRAPH,
            &NODE,
            &ATTRIBUTE,
            &TENSOR,
            &SEGMENT,
            &SPARSE_TENSOR,
            &STRING_ENTRY,
            &OPSET_ID,
            &VALUE_INFO,
            &TYPE,
            &TENSOR_TYPE,
            &SHAPE,
            &DIMENSION,
        ] {
            assert!(s.fields.len() <= 64, "{}", s.message);
        }
    }

    #[test]
    fn unknown_twice_and_wrong_wire_type_are_refused() {
        let unknown = read(&[0x78, 1], &OPSET_ID).unwrap_err(); // field 15
        assert_eq!(unknown.code(), "unknown_field");
        let twice = read(&[0x10, 1, 0x10, 2], &OPSET_ID).unwrap_err();
        assert!(twice.to_string().contains("given twice"), "{twice}");
        let wrong = read(&[0x0d, 0, 0, 0, 0], &OPSET_ID).unwrap_err();
        assert!(wrong.to_string().contains("wrong wire type"), "{wrong}");
        // Packed and unpacked repeated fields are both fine.
        assert_eq!(
            read(&[0x08, 1, 0x08, 2, 0x0a, 2, 3, 4], &TENSOR)
                .unwrap()
                .len(),
            3
        );
        let torn = read(&[0x22, 3, 0, 0, 0], &TENSOR).unwrap_err(); // float_data, 3 bytes
        assert_eq!(torn.code(), "malformed");
    }
}
