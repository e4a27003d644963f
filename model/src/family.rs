//! The model family: a YOLOX detector takes one float32 image `[1, 3, S, S]`
//! (S a multiple of 32) and gives one float32 `[1, N, 5 + classes]`, N the
//! anchor count for S over strides 8, 16 and 32.

use std::fmt;

use crate::refusal::{Refusal, Shown};
use crate::schema::{self, read};
use crate::walk::MainGraph;
use crate::Policy;

/// The strides of YOLOX's three output levels.
pub const STRIDES: [u32; 3] = [8, 16, 32];

/// Number of anchor rows YOLOX outputs for an `S x S` input.
pub fn anchor_count(side: u32) -> u64 {
    STRIDES
        .iter()
        .map(|s| u64::from(side / s) * u64::from(side / s))
        .sum()
}

/// The input and output a detector was found to have.
pub(crate) struct Layout {
    pub input_name: String,
    pub input_size: u32,
    pub output_name: String,
    pub anchors: Option<u64>,
    pub classes: Option<u64>,
}

/// One dimension of a shape.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Dim {
    Value(i64),
    Param(Shown),
    Unknown,
}

/// A graph input or output: its name, element type and shape.
struct Tensor {
    /// The whole name, for [`Layout`].
    full_name: String,
    /// The name as messages show it.
    name: Shown,
    elem_type: i64,
    dims: Vec<Dim>,
}

struct Dims<'a>(&'a [Dim]);

impl fmt::Display for Dims<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            match d {
                Dim::Value(v) => write!(f, "{v}")?,
                Dim::Param(p) => write!(f, "{p}")?,
                Dim::Unknown => write!(f, "?")?,
            }
        }
        write!(f, "]")
    }
}

fn family(detail: String) -> Refusal {
    Refusal::ModelFamily(detail)
}

/// Checks the main graph's inputs and outputs against the YOLOX layout.
pub(crate) fn check(main: &MainGraph<'_>, policy: &Policy) -> Result<Layout, Refusal> {
    let mut inputs = Vec::new();
    for bytes in &main.inputs {
        let name = read(bytes, &schema::VALUE_INFO)?
            .iter()
            .find(|f| f.number == 1)
            .map_or(&[][..], |f| f.bytes());
        if !main.initializers.contains(&name) {
            inputs.push(*bytes);
        }
    }
    let [input] = inputs[..] else {
        return Err(family(format!(
            "the graph has {} inputs besides its initializers; a detector has exactly one, the image",
            inputs.len()
        )));
    };
    let [output] = main.outputs[..] else {
        return Err(family(format!(
            "the graph has {} outputs; a detector has exactly one, [1, anchors, 5 + classes]",
            main.outputs.len()
        )));
    };
    let input = tensor(input, "input")?;
    let side = image_side(&input, policy)?;
    let output = tensor(output, "output")?;
    let (anchors, classes) = rows(&output, side)?;
    Ok(Layout {
        input_name: input.full_name,
        input_size: side,
        output_name: output.full_name,
        anchors,
        classes,
    })
}

/// S of a `[1, 3, S, S]` float32 input.
fn image_side(input: &Tensor, policy: &Policy) -> Result<u32, Refusal> {
    let max = policy.max_input_side;
    let wanted =
        || format!("it must be float32 [1, 3, S, S] with S a multiple of 32 from 32 to {max}");
    if input.elem_type != 1 {
        return Err(family(format!(
            "input {} has element type {}; {}",
            input.name,
            input.elem_type,
            wanted()
        )));
    }
    match input.dims[..] {
        [Dim::Value(1), Dim::Value(3), Dim::Value(h), Dim::Value(w)]
            if h == w && h % 32 == 0 && h >= 32 && h <= i64::from(max) =>
        {
            Ok(h as u32)
        }
        _ => Err(family(format!(
            "input {} has shape {}; {}",
            input.name,
            Dims(&input.dims),
            wanted()
        ))),
    }
}

/// Anchors and classes of a `[1, N, 5 + classes]` float32 output, where static.
fn rows(output: &Tensor, side: u32) -> Result<(Option<u64>, Option<u64>), Refusal> {
    let anchors = anchor_count(side);
    let wanted = || {
        format!(
            "for a {side}x{side} input it must be float32 [1, {anchors}, 5 + classes] with at least one class"
        )
    };
    let bad = |what: String| family(format!("output {} {what}; {}", output.name, wanted()));
    if output.elem_type != 1 {
        return Err(bad(format!("has element type {}", output.elem_type)));
    }
    let shape = || format!("has shape {}", Dims(&output.dims));
    let [Dim::Value(1), n, r] = &output.dims[..] else {
        return Err(bad(shape()));
    };
    let n = match n {
        Dim::Value(v) if *v >= 0 && *v as u64 == anchors => Some(anchors),
        Dim::Value(_) => return Err(bad(shape())),
        Dim::Param(_) | Dim::Unknown => None,
    };
    let classes = match r {
        Dim::Value(v) if *v >= 6 => Some(*v as u64 - 5),
        Dim::Value(_) => return Err(bad(shape())),
        Dim::Param(_) | Dim::Unknown => None,
    };
    Ok((n, classes))
}

/// Reads a ValueInfoProto that must hold a tensor type with a shape.
fn tensor(bytes: &[u8], role: &str) -> Result<Tensor, Refusal> {
    let fields = read(bytes, &schema::VALUE_INFO)?;
    let field = |n: u32| fields.iter().find(|f| f.number == n).map(|f| f.bytes());
    let raw_name = field(1).unwrap_or_default();
    let name = Shown::new(raw_name);
    let full_name = String::from_utf8(raw_name.to_vec())
        .map_err(|_| family(format!("{role} {name} is not named in UTF-8")))?;
    let not_tensor = || family(format!("{role} {name} is not a tensor with a known type"));
    let ty = read(field(2).ok_or_else(not_tensor)?, &schema::TYPE)?;
    // TypeProto's value is a oneof: a tensor type and nothing else.
    if ty.iter().any(|f| f.number != 1 && f.number != 6) {
        return Err(not_tensor());
    }
    let tensor_type = ty.iter().find(|f| f.number == 1).ok_or_else(not_tensor)?;
    let (mut elem_type, mut shape) = (0, None);
    for f in read(tensor_type.bytes(), &schema::TENSOR_TYPE)? {
        match f.number {
            1 => elem_type = f.int(),
            _ => shape = Some(f.bytes()),
        }
    }
    let shape = shape.ok_or_else(|| family(format!("{role} {name} has no shape")))?;
    let mut dims = Vec::new();
    for d in read(shape, &schema::SHAPE)? {
        dims.push(dim(d.bytes())?);
    }
    Ok(Tensor {
        full_name,
        name,
        elem_type,
        dims,
    })
}

fn dim(bytes: &[u8]) -> Result<Dim, Refusal> {
    let mut out = Dim::Unknown;
    for f in read(bytes, &schema::DIMENSION)? {
        let next = match f.number {
            1 => Dim::Value(f.int()),
            2 => Dim::Param(Shown::new(f.bytes())),
            _ => continue,
        };
        if out != Dim::Unknown {
            return Err(Refusal::Malformed {
                message: "TensorShapeProto.Dimension",
                detail: "both dim_value and dim_param are set".into(),
            });
        }
        out = next;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_match_yolox() {
        assert_eq!(anchor_count(416), 3549);
        assert_eq!(anchor_count(640), 8400);
        assert_eq!(anchor_count(32), 21);
    }
}
