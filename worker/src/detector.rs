//! A loaded YOLOX model: image bytes in, detections out.
//!
//! A [`Detector`] is `Send + Sync`: the claim loop shares one through an
//! `Arc` and calls [`Detector::detect`] from `spawn_blocking`. `ort` runs a
//! session through `&mut`, so each session sits behind a mutex; with
//! `sessions = N`, N inferences run at once.

use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use image::error::DecodingError;
use image::{ImageError, ImageFormat, ImageReader, RgbImage};
use ort::session::Session;
use ort::value::TensorRef;
use tally_protocol::Detection;

use crate::backend::{self, Backend, BackendChoice};
use crate::yolox::{self, Letterbox};
use crate::Error;

/// Images wider or taller than this are refused before decoding.
pub const MAX_IMAGE_SIDE: u32 = 16_384;

/// How to load a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectorOptions {
    pub backend: BackendChoice,
    /// Threads one inference may use (ONNX Runtime's intra-op threads).
    pub threads: usize,
    /// Sessions, i.e. inferences that can run at the same time.
    pub sessions: usize,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        DetectorOptions {
            backend: BackendChoice::Auto,
            threads: 1,
            sessions: 1,
        }
    }
}

/// The result of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectOutput {
    /// Size of the original image.
    pub width: u32,
    pub height: u32,
    /// Best first, boxes in original-image pixels.
    pub detections: Vec<Detection>,
    /// Bytes in to detections out.
    pub elapsed_ms: f64,
    /// Decoding the image file (part of `elapsed_ms`).
    pub decode_ms: f64,
    /// The model run alone (part of `elapsed_ms`).
    pub infer_ms: f64,
}

struct Slot {
    session: Session,
    /// The NCHW input, reused between runs.
    input: Vec<f32>,
}

/// A YOLOX model ready to run on one backend.
pub struct Detector {
    backend: Backend,
    size: usize,
    input_name: String,
    output_name: String,
    slots: Vec<Mutex<Slot>>,
    next: AtomicUsize,
}

impl Detector {
    /// Loads the model file at `path` with one session.
    pub fn load(
        path: impl AsRef<Path>,
        backend: BackendChoice,
        threads: usize,
    ) -> Result<Self, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, backend, threads)
    }

    /// Loads a model from its ONNX bytes with one session.
    pub fn from_bytes(model: &[u8], backend: BackendChoice, threads: usize) -> Result<Self, Error> {
        Self::with_options(
            model,
            &DetectorOptions {
                backend,
                threads,
                sessions: 1,
            },
        )
    }

    /// Loads a model from its ONNX bytes, once it has passed admission.
    ///
    /// The runtime gets the bytes alone, never a path: admission has refused
    /// anything that would make it open a file (external data).
    pub fn with_options(model: &[u8], options: &DetectorOptions) -> Result<Self, Error> {
        // Size is the caller's limit to set (market upload, worker fetch); safety is not.
        let policy = tally_model::Policy {
            max_bytes: usize::MAX,
            ..tally_model::Policy::default()
        };
        tally_model::admit(model, &policy)?;
        let (backend, env) = backend::activate(options.backend)?;
        let mut slots = Vec::with_capacity(options.sessions.max(1));
        for _ in 0..options.sessions.max(1) {
            let session = backend::session(backend, &env, model, options.threads)?;
            slots.push(session);
        }
        let (input_name, size) = input_of(&slots[0])?;
        let output_name = match slots[0].outputs() {
            [output] => output.name().to_string(),
            other => {
                return Err(Error::unsupported_model(format!(
                    "expected one output, the model has {}",
                    other.len()
                )))
            }
        };
        let slots = slots
            .into_iter()
            .map(|session| {
                Mutex::new(Slot {
                    session,
                    input: vec![0.0; 3 * size * size],
                })
            })
            .collect();
        Ok(Detector {
            backend,
            size,
            input_name,
            output_name,
            slots,
            next: AtomicUsize::new(0),
        })
    }

    /// The backend running this model.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Side of the square model input (416 for YOLOX-Nano).
    pub fn input_size(&self) -> usize {
        self.size
    }

    /// Decodes `image` (JPEG, PNG, WebP, BMP) and detects objects in it.
    pub fn detect(&self, image: &[u8]) -> Result<DetectOutput, Error> {
        let start = Instant::now();
        let rgb = decode_image(image)?;
        let decode_ms = ms_since(start);
        let (detections, infer_ms) = self.detect_rgb(&rgb)?;
        Ok(DetectOutput {
            width: rgb.width(),
            height: rgb.height(),
            detections,
            elapsed_ms: ms_since(start),
            decode_ms,
            infer_ms,
        })
    }

    /// Detects objects in a decoded image; returns them with the model-run milliseconds.
    pub fn detect_rgb(&self, rgb: &RgbImage) -> Result<(Vec<Detection>, f64), Error> {
        let lb = Letterbox::new(rgb.width(), rgb.height(), self.size);
        let mut slot = self.slot();
        let Slot { session, input } = &mut *slot;
        yolox::letterbox_into(rgb.as_raw(), &lb, input);

        let started = Instant::now();
        let tensor = TensorRef::from_array_view(([1, 3, self.size, self.size], &input[..]))
            .map_err(|e| Error::model("input tensor", e))?;
        let outputs = session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(|e| Error::model("inference failed", e))?;
        let infer_ms = ms_since(started);

        let output = outputs
            .get(&self.output_name)
            .ok_or_else(|| Error::unsupported_model("the model returned no output"))?;
        let (shape, data) = output
            .try_extract_tensor::<f32>()
            .map_err(|e| Error::model("output is not a float tensor", e))?;
        let anchors = yolox::anchor_count(self.size);
        let row_len = match **shape {
            [1, n, row] if n as usize == anchors && row > 5 => row as usize,
            _ => {
                return Err(Error::unsupported_model(format!(
                    "expected output [1, {anchors}, 5 + classes], got {:?}",
                    &**shape
                )))
            }
        };
        Ok((yolox::decode(data, row_len, &lb), infer_ms))
    }

    /// A free session, else the next one in turn (waiting for it).
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        let n = self.slots.len();
        let first = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            if let Ok(guard) = self.slots[(first + i) % n].try_lock() {
                return guard;
            }
        }
        // A panic inside ort while holding a slot leaves only scratch data behind.
        self.slots[first].lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The input's name and square side, checked to be `[1, 3, S, S]` with S a multiple of 32.
fn input_of(session: &Session) -> Result<(String, usize), Error> {
    let [input] = session.inputs() else {
        return Err(Error::unsupported_model(format!(
            "expected one input, the model has {}",
            session.inputs().len()
        )));
    };
    let shape = input.dtype().tensor_shape().map(|s| s.to_vec());
    match shape.as_deref() {
        Some(&[1, 3, h, w]) if h == w && h >= 32 && h % 32 == 0 => {
            Ok((input.name().to_string(), h as usize))
        }
        other => Err(Error::unsupported_model(format!(
            "expected a fixed input [1, 3, S, S] (S a multiple of 32), got {other:?}"
        ))),
    }
}

/// Decodes an image file to RGB8, refusing unknown formats, truncated files and huge sizes.
pub fn decode_image(bytes: &[u8]) -> Result<RgbImage, Error> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::Image(ImageError::IoError(e)))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    reader.limits(limits);
    // The JPEG decoder fills a truncated scan with grey; Pillow refuses it, so do we.
    if reader.format() == Some(ImageFormat::Jpeg) && !jpeg_is_complete(bytes) {
        return Err(Error::Image(ImageError::Decoding(DecodingError::new(
            ImageFormat::Jpeg.into(),
            "truncated JPEG: the file ends before its end-of-image marker",
        ))));
    }
    let image = reader.decode().map_err(Error::Image)?;
    Ok(image.into_rgb8())
}

/// Whether a JPEG's marker segments and scans run, unbroken, to its EOI marker.
fn jpeg_is_complete(b: &[u8]) -> bool {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let mut i = 2;
    loop {
        // Skip to the next marker (tolerating stray bytes and fill 0xFFs).
        let Some(ff) = memchr::memchr(0xFF, &b[i.min(b.len())..]) else {
            return false;
        };
        i += ff;
        while b.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = b.get(i) else {
            return false;
        };
        i += 1;
        match marker {
            0xD9 => return true,
            0x01 | 0xD0..=0xD8 => continue, // standalone markers
            _ => {}
        }
        let Some(len) = b
            .get(i..i + 2)
            .map(|l| u16::from_be_bytes([l[0], l[1]]) as usize)
        else {
            return false;
        };
        i += len;
        if marker == 0xDA {
            // Entropy-coded data: up to a 0xFF that is neither stuffing (FF 00) nor a restart.
            loop {
                let Some(ff) = memchr::memchr(0xFF, &b[i.min(b.len())..]) else {
                    return false;
                };
                i += ff;
                match b.get(i + 1) {
                    None => return false,
                    Some(0x00 | 0xD0..=0xD7) => i += 2,
                    Some(_) => break,
                }
            }
        }
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detector_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Detector>();
    }

    #[test]
    fn jpeg_completeness_follows_segments_and_scans() {
        // SOI, APP0 (length 4), SOS (length 3) + data with stuffing and a restart, EOI.
        let whole = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xFF, 0xD9, 0xFF, 0xDA, 0x00, 0x03, 0x01, 0x12,
            0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xD9,
        ];
        assert!(jpeg_is_complete(&whole));
        // The FF D9 inside APP0 is payload, not the end: cut after it, the file is truncated.
        for cut in 2..whole.len() - 1 {
            assert!(!jpeg_is_complete(&whole[..cut]), "cut at {cut}");
        }
        let mut trailing = whole.to_vec();
        trailing.extend_from_slice(b"trailer");
        assert!(jpeg_is_complete(&trailing));
        assert!(!jpeg_is_complete(b"GIF89a"));
    }

    #[test]
    fn text_is_not_an_image() {
        let err = decode_image(b"hello, this is not a picture").unwrap_err();
        assert!(matches!(err, Error::Image(_)), "{err:?}");
    }
}
