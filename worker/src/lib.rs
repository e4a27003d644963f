//! tally-worker: the node agent that sells this computer's spare cycles.
//!
//! This half of the crate turns an image into detections, the way every
//! honest worker must so that the market's vote can compare them:
//!
//! - [`backend`]: which engine runs the model, ONNX Runtime (found and loaded
//!   at run time) or tract (pure Rust), both through the `ort` API; one per process.
//! - [`yolox`]: YOLOX pre-processing (Pillow-exact letterbox) and
//!   post-processing (grid decode, threshold, class-wise NMS).
//! - [`detector`]: a loaded model, `Send + Sync`: image bytes in, detections out.
//! - [`draw`]: boxes and labels drawn on the image, for people to check.
//! - [`sanity`]: what detections must look like before the worker signs them.
//! - [`bench`]: end-to-end and model-only latency, as `tally bench inference` reports it.
//! - [`error`]: the crate's one error type.
//!
//! The other half sells the cycles:
//!
//! - [`cache`]: models on disk by sha256, verified, written atomically.
//! - [`sandbox`]: inference in confined child processes (Landlock, rlimits,
//!   no network, no key): a client's model is hostile input.
//! - [`agent`]: the claim loop: offer, claim, infer, heartbeat, submit, retry, drain.
//!
//! The worker never links the server stack: its only Tally dependency is
//! `tally-protocol`.

pub mod agent;
pub mod backend;
pub mod bench;
pub mod cache;
pub mod detector;
pub mod draw;
pub mod error;
pub mod sandbox;
pub mod sanity;
pub mod yolox;

pub use backend::{Backend, BackendChoice};
pub use bench::{bench_inference, InferenceBench};
pub use detector::{DetectOutput, Detector, DetectorOptions};
pub use error::{one_line, Error};
