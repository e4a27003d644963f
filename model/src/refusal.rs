//! [`Refusal`]: why a model is not admitted, as a sentence that says where
//! and what, with a stable snake_case [`Refusal::code`].
//!
//! Strings taken from the model are shown through [`Shown`]: escaped, and
//! cut to [`Shown::MAX_CHARS`] characters.

use std::fmt;

/// A string from the model, escaped and cut short for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    text: String,
    cut: bool,
}

impl Shown {
    /// At most this many characters of a model's string reach a message.
    pub const MAX_CHARS: usize = 100;

    pub(crate) fn new(bytes: &[u8]) -> Shown {
        // No character takes more than 4 bytes: this prefix still shows
        // whether there are more than MAX_CHARS of them.
        let prefix = &bytes[..bytes.len().min(4 * (Self::MAX_CHARS + 1))];
        let all = String::from_utf8_lossy(prefix);
        let mut chars = all.char_indices();
        match chars.nth(Self::MAX_CHARS) {
            Some((end, _)) => Shown {
                text: all[..end].to_string(),
                cut: true,
            },
            None => Shown {
                text: all.into_owned(),
                cut: false,
            },
        }
    }

    /// The (possibly cut) text, unescaped.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)?;
        if self.cut {
            write!(f, "...")?;
        }
        Ok(())
    }
}

/// Why a model is refused. The message names where in the model the
/// problem is and what it is; [`Refusal::code`] names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the model is empty; send the bytes of an ONNX file")]
    Empty,

    #[error("the model is {bytes} bytes; the limit is {max} bytes")]
    TooLarge { bytes: usize, max: usize },

    #[error("the model is not a well-formed ONNX file: in a {message}, {detail}")]
    Malformed {
        message: &'static str,
        detail: String,
    },

    #[error(
        "a {message} carries field {number} ({wire}), which is not in the ONNX schema \
         admission knows; unknown fields are refused because a runtime might act on them"
    )]
    UnknownField {
        message: &'static str,
        number: u32,
        wire: &'static str,
    },

    #[error("{tensor} keeps its data outside the model (external data{}); models must be self-contained",
        .location.as_ref().map(|l| format!(", location {l}")).unwrap_or_default())]
    ExternalData {
        /// Which tensor, e.g. `initializer "w"`.
        tensor: String,
        location: Option<Shown>,
    },

    #[error("the model defines {count} function(s) of its own (model-local functions); only standard ONNX operators are allowed")]
    ModelFunctions { count: usize },

    #[error("the model carries training information (training_info); only an inference graph is allowed")]
    TrainingInfo,

    #[error("{what} {domain}; only the standard ONNX domain (\"\" or \"ai.onnx\") is allowed")]
    CustomDomain {
        /// e.g. `node "n3" (op "MyOp") is in domain`.
        what: String,
        domain: Shown,
    },

    #[error("{0}")]
    Opset(String),

    #[error("the model's IR version is {}; versions from 3 are accepted",
        .0.map(|v| v.to_string()).unwrap_or_else(|| "missing".into()))]
    IrVersion(Option<i64>),

    #[error("{what} nests subgraphs {depth} deep; at most {max} levels are allowed")]
    TooDeep {
        what: String,
        depth: usize,
        max: usize,
    },

    #[error("metadata key {key} is reserved for ONNX Runtime settings; models may not configure the runtime")]
    RuntimeMetadata { key: Shown },

    #[error("the model is not a YOLOX detector: {0}")]
    ModelFamily(String),
}

impl Refusal {
    /// The rule that refused the model, in snake_case.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Empty => "empty",
            Refusal::TooLarge { .. } => "too_large",
            Refusal::Malformed { .. } => "malformed",
            Refusal::UnknownField { .. } => "unknown_field",
            Refusal::ExternalData { .. } => "external_data",
            Refusal::ModelFunctions { .. } => "model_functions",
            Refusal::TrainingInfo => "training_info",
            Refusal::CustomDomain { .. } => "custom_domain",
            Refusal::Opset(_) => "opset",
            Refusal::IrVersion(_) => "ir_version",
            Refusal::TooDeep { .. } => "too_deep",
            Refusal::RuntimeMetadata { .. } => "runtime_metadata",
            Refusal::ModelFamily(_) => "model_family",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_escapes_and_cuts() {
        assert_eq!(Shown::new(b"a\"b\n").to_string(), r#""a\"b\n""#);
        let long = Shown::new("é".repeat(500).as_bytes());
        assert_eq!(long.as_str().chars().count(), Shown::MAX_CHARS);
        assert!(long.to_string().ends_with("\"..."));
        assert_eq!(Shown::new(&[0xff]).to_string(), "\"\u{fffd}\"");
        let exact = "é".repeat(Shown::MAX_CHARS);
        assert_eq!(
            Shown::new(exact.as_bytes()).to_string(),
            format!("{exact:?}")
        );
        let garbage = Shown::new(&[0xff; 1000]);
        assert!(garbage.to_string().ends_with("..."));
    }

    #[test]
    fn external_data_message_names_tensor_and_location() {
        let r = Refusal::ExternalData {
            tensor: "initializer \"w\"".into(),
            location: Some(Shown::new(b"worker.key")),
        };
        assert_eq!(
            r.to_string(),
            "initializer \"w\" keeps its data outside the model (external data, location \
             \"worker.key\"); models must be self-contained"
        );
        assert_eq!(r.code(), "external_data");
    }
}
