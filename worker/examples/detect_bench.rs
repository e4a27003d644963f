//! Per-image latency of one backend, to compare with `bench/python_baseline.py`.
//!
//! ```text
//! cargo run --release -p tally-worker --example detect_bench -- \
//!     [--backend auto|onnxruntime|tract] [--threads 1] [--iterations 30] \
//!     [--draw DIR] MODEL IMAGE...
//! ```
//!
//! Prints, per image, the median end-to-end time (bytes -> detections), the
//! model run, the image decoding and the rest (letterbox + box decoding +
//! NMS). With `--synthetic-640x480` it also re-encodes the first image as a
//! 640x480 JPEG and reports the same for it.

use std::path::PathBuf;

use image::imageops::FilterType;
use tally_worker::bench::percentile;
use tally_worker::{draw, BackendChoice, Detector, DetectorOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut options = DetectorOptions::default();
    let (mut iterations, mut draw_dir, mut synthetic) = (30usize, None::<PathBuf>, false);
    let mut paths = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = || args.next().expect("missing value");
        match arg.as_str() {
            "--backend" => options.backend = value().parse::<BackendChoice>().unwrap(),
            "--threads" => options.threads = value().parse().unwrap(),
            "--iterations" => iterations = value().parse().unwrap(),
            "--draw" => draw_dir = Some(PathBuf::from(value())),
            "--synthetic-640x480" => synthetic = true,
            _ => paths.push(PathBuf::from(arg)),
        }
    }
    assert!(
        paths.len() >= 2,
        "usage: detect_bench [options] MODEL IMAGE..."
    );
    let model = std::fs::read(paths.remove(0)).unwrap();
    let detector = Detector::with_options(&model, &options).unwrap();
    println!(
        "backend {}, threads {}, {iterations} iterations",
        detector.backend(),
        options.threads
    );

    let mut inputs: Vec<(String, Vec<u8>)> = paths
        .iter()
        .map(|p| (p.display().to_string(), std::fs::read(p).unwrap()))
        .collect();
    if synthetic {
        let first = image::load_from_memory(&inputs[0].1).unwrap();
        let small = first.resize_exact(640, 480, FilterType::Triangle).to_rgb8();
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(&small)
            .unwrap();
        inputs.push(("640x480.jpg".into(), jpeg));
    }

    for (name, bytes) in &inputs {
        let first = detector.detect(bytes).unwrap();
        let (mut total, mut infer, mut decode, mut rest) = (vec![], vec![], vec![], vec![]);
        for _ in 0..iterations {
            let out = detector.detect(bytes).unwrap();
            total.push(out.elapsed_ms);
            infer.push(out.infer_ms);
            decode.push(out.decode_ms);
            rest.push(out.elapsed_ms - out.infer_ms - out.decode_ms);
        }
        println!(
            "{name}: {:.2} ms end to end, {:.2} ms model, {:.2} ms jpeg decode, \
             {:.2} ms pre+post, {} detections",
            percentile(&mut total, 50.0),
            percentile(&mut infer, 50.0),
            percentile(&mut decode, 50.0),
            percentile(&mut rest, 50.0),
            first.detections.len()
        );
        if let Some(dir) = &draw_dir {
            let file = PathBuf::from(name).with_extension("png");
            let out = dir.join(file.file_name().unwrap());
            draw::save_annotated(bytes, &first.detections, &out).unwrap();
            println!("  drawn to {}", out.display());
        }
    }
}
