//! `tally detect`: run the detector locally, as a worker would.
//!
//! Images are decoded before the model is loaded, so a broken first file
//! fails fast; decoding and inference run in `spawn_blocking`, and any
//! image that cannot be read or decoded ends the run with one line naming it.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context};
use serde::Serialize;
use tally_protocol::Detection;
use tally_worker::detector::decode_image;
use tally_worker::{draw, one_line, BackendChoice, Detector};

use crate::cli::DetectArgs;

/// `tally detect --json`: one document for the whole run.
#[derive(Debug, Serialize)]
struct Report {
    images: Vec<ImageReport>,
    backend: &'static str,
}

#[derive(Debug, Serialize)]
struct ImageReport {
    path: String,
    width: u32,
    height: u32,
    detections: Vec<Detection>,
    /// Decoding plus inference, in milliseconds (model loading excluded).
    elapsed_ms: f64,
    /// The model run alone.
    infer_ms: f64,
}

pub async fn run(args: DetectArgs) -> anyhow::Result<ExitCode> {
    let backend: BackendChoice = args
        .backend
        .parse()
        .map_err(anyhow::Error::msg)
        .context("--backend")?;
    let model = tokio::fs::read(&args.model)
        .await
        .with_context(|| format!("--model {}", args.model.display()))?;
    let mut detector: Option<Arc<Detector>> = None;
    let mut report = Report {
        images: Vec::with_capacity(args.images.len()),
        backend: "",
    };
    for (i, path) in args.images.iter().enumerate() {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let started = Instant::now();
        let (rgb, bytes) = tokio::task::spawn_blocking(move || (decode_image(&bytes), bytes))
            .await
            .context("decoding crashed")?;
        let rgb = rgb.map_err(|e| anyhow!("{}: {}", path.display(), one_line(&e)))?;
        let decode_ms = ms_since(started);

        let detector = match &detector {
            Some(d) => Arc::clone(d),
            None => {
                let d = Arc::new(load(&args.model, model.clone(), backend, args.threads).await?);
                report.backend = d.backend().name();
                detector.insert(d).clone()
            }
        };
        let started = Instant::now();
        let (width, height) = (rgb.width(), rgb.height());
        let (detections, infer_ms) = tokio::task::spawn_blocking(move || detector.detect_rgb(&rgb))
            .await
            .context("inference crashed")?
            .map_err(|e| anyhow!("{}: {}", path.display(), one_line(&e)))?;
        let elapsed_ms = decode_ms + ms_since(started);

        // --draw FILE.png draws the first image; --draw DIR (an existing
        // folder, or a path ending in /) each image as DIR/NAME.png, as
        // `bid` and `review` do.
        let target = match &args.draw {
            Some(d) => draw_target(d, path, i)?,
            None => None,
        };
        if let Some(out) = target {
            let dets = detections.clone();
            tokio::task::spawn_blocking(move || draw::save_annotated(&bytes, &dets, &out))
                .await
                .context("drawing crashed")?
                .map_err(|e| anyhow!("--draw: {}", one_line(&e)))?;
        }
        let image = ImageReport {
            path: path.display().to_string(),
            width,
            height,
            detections,
            elapsed_ms,
            infer_ms,
        };
        if !args.json && !write_stdout(&human(&image, report.backend))? {
            return Ok(ExitCode::SUCCESS);
        }
        report.images.push(image);
    }
    if args.json {
        write_stdout(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else if let Some(out) = &args.draw {
        if is_folder(out) {
            eprintln!("drew {} image(s) into {}", args.images.len(), out.display());
        } else {
            eprintln!("drew {} into {}", args.images[0].display(), out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `--draw` names a folder: one that exists, or a path ending in `/`.
fn is_folder(p: &Path) -> bool {
    p.is_dir()
        || p.as_os_str()
            .to_string_lossy()
            .ends_with(std::path::MAIN_SEPARATOR)
}

/// Where `--draw d` puts image `i` (at `path`): `d` itself for the first
/// image when it is a file, `d/NAME.png` for each when it is a folder.
fn draw_target(d: &Path, path: &Path, i: usize) -> anyhow::Result<Option<std::path::PathBuf>> {
    if is_folder(d) {
        std::fs::create_dir_all(d).with_context(|| format!("--draw {}", d.display()))?;
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("image");
        return Ok(Some(d.join(format!("{name}.png"))));
    }
    Ok((i == 0).then(|| d.to_path_buf()))
}

/// Loads the model off the async runtime.
async fn load(
    path: &Path,
    model: Vec<u8>,
    backend: BackendChoice,
    threads: usize,
) -> anyhow::Result<Detector> {
    tokio::task::spawn_blocking(move || Detector::from_bytes(&model, backend, threads.max(1)))
        .await
        .context("loading the model crashed")?
        .map_err(|e| anyhow!("--model {}: {}", path.display(), one_line(&e)))
}

/// One line per image, then one per detection.
fn human(image: &ImageReport, backend: &str) -> String {
    let mut out = format!(
        "{}: {}x{}, {} detection{}, {:.1} ms ({backend})\n",
        image.path,
        image.width,
        image.height,
        image.detections.len(),
        if image.detections.len() == 1 { "" } else { "s" },
        image.elapsed_ms,
    );
    for d in &image.detections {
        let [x1, y1, x2, y2] = d.bbox;
        out.push_str(&format!(
            "  {:<14} {:.2}  [{x1:.1}, {y1:.1}, {x2:.1}, {y2:.1}]\n",
            d.label, d.score
        ));
    }
    out
}

/// Writes to stdout; `false` when the reader has gone (`| head`), which is no error.
fn write_stdout(text: &str) -> anyhow::Result<bool> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("writing to stdout"),
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}
