//! The inference child: confined first, then a loop of load and detect.
//!
//! It reads requests on stdin and answers on stdout (see [`super::wire`]);
//! it holds no key, talks to no market, and can open no file but the
//! runtime's libraries. Everything it answers is checked again by the parent.

use std::collections::HashMap;
use std::io::{self, BufReader, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;

use tally_protocol::Sha256Hex;

use super::confine::{self, Confinement, SYSTEM_LIBRARIES};
use super::wire::{self, Detected, Hello, Reply, Request};
use crate::backend::{self, BackendChoice};
use crate::{Detector, DetectorOptions, Error};

/// How the parent started the child (its command-line flags).
#[derive(Debug, Clone)]
pub struct ChildOptions {
    /// `OnnxRuntime` (with `ort_dylib`) or `Tract`: the parent has resolved `Auto`.
    pub backend: BackendChoice,
    pub ort_dylib: Option<PathBuf>,
    pub threads: usize,
    pub memory_mb: u64,
}

/// Runs the child until its stdin closes. Call it before any thread is started.
pub fn main(options: ChildOptions) -> ExitCode {
    let mut readable: Vec<PathBuf> = SYSTEM_LIBRARIES.iter().map(PathBuf::from).collect();
    if let Some(dir) = options.ort_dylib.as_ref().and_then(|p| p.parent()) {
        readable.push(dir.to_path_buf());
    }
    let confined = confine::confine(&Confinement {
        memory_bytes: options.memory_mb.saturating_mul(1 << 20),
        readable,
    });
    match &options.ort_dylib {
        // The runtime is found through this variable alone: nothing is searched for.
        Some(path) => std::env::set_var("ORT_DYLIB_PATH", path),
        None => std::env::remove_var("ORT_DYLIB_PATH"),
    }
    let mut input = BufReader::new(io::stdin().lock());
    let mut output = BufWriter::new(io::stdout().lock());
    let hello = match backend::activate(options.backend) {
        Ok((backend, _)) => Reply::Hello(Hello {
            backend: backend.name().to_string(),
            confinement: confined.lines,
            landlock: confined.landlock,
        }),
        Err(e) => Reply::ModelError {
            message: e.to_string(),
        },
    };
    let started = matches!(hello, Reply::Hello(_));
    if wire::write_blocking(&mut output, &hello, b"").is_err() || !started {
        return ExitCode::FAILURE;
    }
    let detector_options = DetectorOptions {
        backend: options.backend,
        threads: options.threads.max(1),
        sessions: 1,
    };
    let mut models: HashMap<Sha256Hex, Detector> = HashMap::new();
    loop {
        let (request, payload) = match wire::read_blocking::<Request>(&mut input) {
            Ok(Some(frame)) => frame,
            Ok(None) => return ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("inference child: bad request from the worker: {e}");
                return ExitCode::FAILURE;
            }
        };
        let reply = match request {
            Request::Load { model } => load(&mut models, model, &payload, &detector_options),
            Request::Detect { model, cpu_secs } => match models.get(&model) {
                None => Reply::ModelError {
                    message: format!("model {model} is not loaded"),
                },
                Some(detector) => {
                    confine::cpu_budget(cpu_secs);
                    detect(detector, &payload)
                }
            },
        };
        if wire::write_blocking(&mut output, &reply, b"").is_err() {
            return ExitCode::FAILURE;
        }
    }
}

fn load(
    models: &mut HashMap<Sha256Hex, Detector>,
    model: Sha256Hex,
    bytes: &[u8],
    options: &DetectorOptions,
) -> Reply {
    if Sha256Hex::of(bytes) != model {
        return Reply::ModelError {
            message: format!("the bytes sent for model {model} do not hash to it"),
        };
    }
    match Detector::with_options(bytes, options) {
        Ok(detector) => {
            let input_size = detector.input_size() as u32;
            models.insert(model, detector);
            Reply::Loaded { input_size }
        }
        Err(e) => Reply::ModelError {
            message: crate::one_line(&e),
        },
    }
}

fn detect(detector: &Detector, image: &[u8]) -> Reply {
    match detector.detect(image) {
        Ok(out) => Reply::Detected(Detected {
            width: out.width,
            height: out.height,
            detections: out.detections,
            elapsed_ms: out.elapsed_ms,
            infer_ms: out.infer_ms,
        }),
        Err(e @ Error::Image(_)) => Reply::InputError {
            message: crate::one_line(&e),
        },
        Err(e) => Reply::ModelError {
            message: crate::one_line(&e),
        },
    }
}
