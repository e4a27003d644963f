//! Inference latency, as `tally bench inference` reports it.
//!
//! End to end is what a worker spends on one task: decode the image,
//! letterbox, run the model, decode and suppress the boxes. The model run
//! alone is `infer`; everything else is `pre_post` (image decoding included,
//! and also reported on its own).

use std::path::Path;

use serde::Serialize;

use crate::backend::{Backend, BackendChoice};
use crate::detector::{Detector, DetectorOptions};
use crate::Error;

/// Latency percentiles over every (iteration, image) pair, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InferenceBench {
    pub backend: Backend,
    pub images: usize,
    pub iterations: usize,
    pub threads: usize,
    pub ms_p50: f64,
    pub ms_p99: f64,
    pub infer_ms_p50: f64,
    pub pre_post_ms_p50: f64,
    pub decode_ms_p50: f64,
}

/// Benchmarks the model at `model_path` on `images`, one intra-op thread.
pub fn bench_inference(
    model_path: &Path,
    backend: BackendChoice,
    images: &[Vec<u8>],
    iterations: usize,
) -> Result<InferenceBench, Error> {
    let options = DetectorOptions {
        backend,
        ..DetectorOptions::default()
    };
    bench_inference_with(model_path, &options, images, iterations)
}

/// Benchmarks with explicit detector options (threads, sessions).
///
/// Every image is run once to warm up, then `iterations` times in turn.
pub fn bench_inference_with(
    model_path: &Path,
    options: &DetectorOptions,
    images: &[Vec<u8>],
    iterations: usize,
) -> Result<InferenceBench, Error> {
    let model = std::fs::read(model_path).map_err(|source| Error::Io {
        path: model_path.to_path_buf(),
        source,
    })?;
    let detector = Detector::with_options(&model, options)?;
    for image in images {
        detector.detect(image)?;
    }
    let n = images.len() * iterations;
    let (mut total, mut infer, mut pre_post, mut decode) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for _ in 0..iterations {
        for image in images {
            let out = detector.detect(image)?;
            total.push(out.elapsed_ms);
            infer.push(out.infer_ms);
            pre_post.push(out.elapsed_ms - out.infer_ms);
            decode.push(out.decode_ms);
        }
    }
    Ok(InferenceBench {
        backend: detector.backend(),
        images: images.len(),
        iterations,
        threads: options.threads,
        ms_p50: percentile(&mut total, 50.0),
        ms_p99: percentile(&mut total, 99.0),
        infer_ms_p50: percentile(&mut infer, 50.0),
        pre_post_ms_p50: percentile(&mut pre_post, 50.0),
        decode_ms_p50: percentile(&mut decode, 50.0),
    })
}

/// Nearest-rank percentile; 0 for no samples.
pub fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&mut v, 50.0), 50.0);
        assert_eq!(percentile(&mut v, 99.0), 99.0);
        assert_eq!(percentile(&mut v, 100.0), 100.0);
        assert_eq!(percentile(&mut [3.0], 99.0), 3.0);
        assert_eq!(percentile(&mut [], 50.0), 0.0);
    }
}
