//! What spot checks are configured with: the operator's golden set (models
//! and private images), the market's own detector that answers checks
//! ([`Oracle`]), and how often claims get a check ([`CheckRates`]). Loaded
//! at start-up; the checks themselves are made and judged in `checks.rs`.

use std::path::Path;
use std::sync::Arc;

use futures::future::BoxFuture;
use image::RgbImage;
use tally_protocol::{Detection, Sha256Hex};

/// The market's own detector, which answers the checks it makes.
pub trait Oracle: Send + Sync {
    /// The detections of `model` (its admitted bytes) on the canonical image `image`.
    fn detect(
        &self,
        model: &Sha256Hex,
        model_bytes: Arc<Vec<u8>>,
        image: Vec<u8>,
    ) -> BoxFuture<'static, std::result::Result<Vec<Detection>, String>>;
}

/// A shared [`Oracle`] in the configuration.
#[derive(Clone)]
pub struct OracleRef(pub Arc<dyn Oracle>);

impl OracleRef {
    /// A detector that is a plain function of the image bytes (the
    /// simulated detectors of the benchmarks and tests).
    pub fn from_fn(f: fn(&[u8]) -> Vec<Detection>) -> OracleRef {
        struct Pure(fn(&[u8]) -> Vec<Detection>);
        impl Oracle for Pure {
            fn detect(
                &self,
                _model: &Sha256Hex,
                _model_bytes: Arc<Vec<u8>>,
                image: Vec<u8>,
            ) -> BoxFuture<'static, std::result::Result<Vec<Detection>, String>> {
                let f = self.0;
                Box::pin(async move { Ok(f(&image)) })
            }
        }
        OracleRef(Arc::new(Pure(f)))
    }
}

impl std::fmt::Debug for OracleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Oracle")
    }
}

/// One image of the golden set: its decoded pixels, never served as they are.
#[derive(Debug, Clone)]
pub struct GoldenItem {
    pub model: Sha256Hex,
    pub name: String,
    pub pixels: Arc<RgbImage>,
}

/// The operator's golden set: models and the images checks are made from.
#[derive(Debug, Clone, Default)]
pub struct Golden {
    /// Model bytes, stored in the market at start (after admission).
    pub models: Vec<Vec<u8>>,
    pub items: Vec<GoldenItem>,
}

impl Golden {
    /// The models the golden set covers.
    pub fn model_hashes(&self) -> Vec<Sha256Hex> {
        let mut v: Vec<Sha256Hex> = self.items.iter().map(|i| i.model.clone()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// The bytes of `model`, if the golden set holds it.
    pub fn model_bytes(&self, model: &Sha256Hex) -> Option<Arc<Vec<u8>>> {
        self.models
            .iter()
            .find(|b| &Sha256Hex::of(b) == model)
            .map(|b| Arc::new(b.clone()))
    }
}

/// How often a claim gets a check instead of client work.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckRates {
    /// For a worker that has passed no check yet: its results would weigh
    /// next to nothing, so it is checked first.
    pub first: f64,
    /// For workers that have passed fewer than `trusted_after` checks.
    pub new: f64,
    pub trusted: f64,
    pub trusted_after: u64,
    /// How often a task a lone trusted result would verify gets one more
    /// ordinary replica first (voting as spot-checking).
    pub rerun: f64,
}

impl Default for CheckRates {
    /// Every claim until a first check is passed, a twentieth of the claims
    /// of a worker whose single result cannot yet verify a task at the
    /// default confidence (its votes count as checks too), a two-hundredth
    /// after, plus as many re-runs.
    fn default() -> Self {
        use tally_protocol::trust::{checks_for, ASSUMED_SABOTEURS, DEFAULT_CONFIDENCE};
        CheckRates {
            first: 1.0,
            new: 0.05,
            trusted: 0.005,
            trusted_after: checks_for(ASSUMED_SABOTEURS, DEFAULT_CONFIDENCE),
            rerun: 0.005,
        }
    }
}

impl CheckRates {
    /// The rates with `new` for new workers: trusted workers get a tenth of
    /// it as spot checks and a tenth as re-runs.
    pub fn scaled(new: f64) -> CheckRates {
        CheckRates {
            new,
            trusted: new / 10.0,
            rerun: new / 10.0,
            ..CheckRates::default()
        }
    }

    pub fn for_worker(&self, passed: u64) -> f64 {
        if passed == 0 {
            self.first
        } else if passed < self.trusted_after {
            self.new
        } else {
            self.trusted
        }
    }
}

/// Golden images are scaled down to at most this many pixels a side when loaded.
pub const MAX_GOLDEN_SIDE: u32 = 800;

/// Reads a golden set laid out as `models/*.onnx` (one model) and `images/*`.
/// Every model must pass admission and every image decode; an `expected/`
/// folder beside them is not read (checks are answered by the market's detector).
pub fn load_golden(dir: &Path) -> std::result::Result<Golden, String> {
    let read_dir = |sub: &str| -> std::result::Result<Vec<std::path::PathBuf>, String> {
        let mut v: Vec<_> = std::fs::read_dir(dir.join(sub))
            .map_err(|e| format!("{}: {e}", dir.join(sub).display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        v.sort();
        Ok(v)
    };
    let mut golden = Golden::default();
    let mut model_hash = None;
    for path in read_dir("models")? {
        if path.extension().and_then(|e| e.to_str()) != Some("onnx") {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        tally_model::admit(&bytes, &tally_model::Policy::default())
            .map_err(|r| format!("{}: {r}", path.display()))?;
        if model_hash.is_some() {
            return Err(format!(
                "{}: one model per golden set (its images are checks of that model)",
                dir.display()
            ));
        }
        model_hash = Some(Sha256Hex::of(&bytes));
        golden.models.push(bytes);
    }
    let model = model_hash.ok_or_else(|| format!("{}: no models/*.onnx", dir.display()))?;
    for path in read_dir("images")? {
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut pixels = image::load_from_memory(&bytes)
            .map_err(|e| format!("{}: not a decodable image: {e}", path.display()))?
            .into_rgb8();
        // Detectors see a few hundred pixels a side; a smaller source keeps
        // making variants cheap.
        let (w, h) = pixels.dimensions();
        if w.max(h) > MAX_GOLDEN_SIDE {
            let scale = f64::from(MAX_GOLDEN_SIDE) / f64::from(w.max(h));
            let (nw, nh) = (
                ((f64::from(w) * scale).round() as u32).max(1),
                ((f64::from(h) * scale).round() as u32).max(1),
            );
            pixels =
                image::imageops::resize(&pixels, nw, nh, image::imageops::FilterType::Triangle);
        }
        golden.items.push(GoldenItem {
            model: model.clone(),
            name: stem.to_string(),
            pixels: Arc::new(pixels),
        });
    }
    if golden.items.is_empty() {
        return Err(format!("{}: no images", dir.display()));
    }
    Ok(golden)
}
