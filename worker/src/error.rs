//! The crate's one error type: what can go wrong between image bytes and detections.

use std::path::PathBuf;

use crate::backend::Backend;

/// Everything the inference half of the worker can fail with.
///
/// A worker reports `Image` and `Model` to the market as a task failure
/// (the client sent something we cannot run); `BackendUnavailable` and
/// `BackendConflict` are configuration problems of this machine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not a decodable image (unknown format, truncated, too large).
    #[error("undecodable image: {0}")]
    Image(#[source] image::ImageError),

    /// The model failed admission: it must not be run at all (external
    /// data, foreign operators, not the supported family, ...).
    #[error("model refused: {0}")]
    Refused(#[from] tally_model::Refusal),

    /// The model could not be loaded or run.
    #[error("model error: {context}")]
    Model {
        context: String,
        #[source]
        source: Option<ort::Error>,
    },

    /// The requested backend cannot be used on this machine.
    #[error("backend {backend} unavailable: {reason}")]
    BackendUnavailable { backend: Backend, reason: String },

    /// `ort` holds one backend per process (a global API table, set once):
    /// this process already runs `active`, so `requested` cannot be loaded.
    #[error(
        "this process already uses the {active} backend; {requested} needs a process of its own"
    )]
    BackendConflict { requested: Backend, active: Backend },

    /// Reading a model or writing a picture failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Encoding the annotated picture failed.
    #[error("cannot write annotated image: {0}")]
    Encode(#[source] image::ImageError),
}

impl Error {
    /// A model error with a cause from `ort`.
    pub(crate) fn model(context: impl Into<String>, source: ort::Error) -> Self {
        Error::Model {
            context: context.into(),
            source: Some(source),
        }
    }

    /// A model error found by our own checks (shapes, types).
    pub(crate) fn unsupported_model(context: impl Into<String>) -> Self {
        Error::Model {
            context: context.into(),
            source: None,
        }
    }
}

/// An error and its causes on one line, without repeating a cause its
/// parent already quotes.
pub fn one_line(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}
