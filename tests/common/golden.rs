//! The repository's assets as a spot-check golden set, and the helpers the
//! trust tests share: known answers, one-assignment claims, check records.

use std::path::{Path, PathBuf};

use tally_protocol::wire::{Assignment, ResultRequest};
use tally_protocol::{Client, Detection, Sha256Hex};

use super::TestMarket;

pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets")
}

pub fn golden() -> tally_market::checks::Golden {
    tally_market::checks::load_golden(&golden_dir()).unwrap()
}

/// What the simulated detector of these tests sees in an image: the
/// expected answer of the repository's sample whose pixels it has
/// (`assets/expected`), else one or two boxes drawn from a hash of its
/// pixels, inside the picture. A pure function of the decoded pixels, so
/// the same picture in any encoding gets the same answer.
pub fn detect(bytes: &[u8]) -> Vec<Detection> {
    let Ok(img) = image::load_from_memory(bytes) else {
        return Vec::new();
    };
    let pixels = img.into_rgb8();
    if let Some(known) = samples().get(&Sha256Hex::of(pixels.as_raw())) {
        return known.clone();
    }
    let (w, h) = (f64::from(pixels.width()), f64::from(pixels.height()));
    let seed = Sha256Hex::of(pixels.as_raw());
    let b = hex::decode(seed.as_str()).unwrap();
    let unit = |i: usize| f64::from(b[i]) / 255.0;
    (0..1 + (b[0] % 2) as usize)
        .map(|k| {
            let (x, y) = (unit(1 + 4 * k) * w * 0.5, unit(2 + 4 * k) * h * 0.5);
            let (bw, bh) = (
                w * (0.2 + 0.3 * unit(3 + 4 * k)),
                h * (0.2 + 0.3 * unit(4 + 4 * k)),
            );
            let class_id = u32::from(b[10 + k]) % 80;
            Detection {
                class_id,
                label: tally_protocol::labels::label(class_id).to_string(),
                score: 0.5 + 0.4 * unit(12 + k),
                bbox: [x, y, (x + bw).min(w), (y + bh).min(h)],
            }
        })
        .collect()
}

/// The samples' expected answers, by the sha256 of their decoded pixels
/// (read once).
fn samples() -> &'static std::collections::HashMap<Sha256Hex, Vec<Detection>> {
    static SAMPLES: std::sync::OnceLock<std::collections::HashMap<Sha256Hex, Vec<Detection>>> =
        std::sync::OnceLock::new();
    SAMPLES.get_or_init(|| {
        let dir = golden_dir();
        let mut out = std::collections::HashMap::new();
        for entry in std::fs::read_dir(dir.join("images")).unwrap() {
            let path = entry.unwrap().path();
            let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
            let pixels = image::load_from_memory(&std::fs::read(&path).unwrap())
                .unwrap()
                .into_rgb8();
            let json =
                std::fs::read_to_string(dir.join("expected").join(format!("{stem}.json"))).unwrap();
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            out.insert(
                Sha256Hex::of(pixels.as_raw()),
                serde_json::from_value(v["detections"].clone()).unwrap(),
            );
        }
        out
    })
}

/// An honest worker's answer to any input: what [`detect`] sees.
pub fn answer_for(bytes: &[u8]) -> Option<ResultRequest> {
    Some(ResultRequest {
        detections: detect(bytes),
        elapsed_ms: 20.0,
    })
}

/// The market's detector in these tests: [`detect`].
pub fn oracle() -> tally_market::checks::OracleRef {
    tally_market::checks::OracleRef::from_fn(detect)
}

/// A market configuration with the repository's assets as its golden set,
/// the simulated detector answering checks, and decisions public at once.
pub fn with_checks(c: &mut tally_market::Config) {
    c.golden = golden();
    c.oracle = Some(oracle());
    c.publish_every = std::time::Duration::ZERO;
}

/// [`with_checks`], with the rates checks are drawn at for a worker's first
/// results, for new workers and for trusted ones.
pub fn with_check_rates(c: &mut tally_market::Config, first: f64, new: f64, trusted: f64) {
    with_checks(c);
    c.check_rates.first = first;
    c.check_rates.new = new;
    c.check_rates.trusted = trusted;
}

/// Waits until the market has `n` checks of `model` made ahead.
pub async fn checks_ready(market: &TestMarket, model: &Sha256Hex, n: usize) {
    market.market.check_pool.wait_ready(model, n).await;
}

/// One assignment, waiting up to 5 s for it.
pub async fn claim_one(w: &Client) -> Assignment {
    let mut got = w.claim(1, 5_000).await.expect("claim").assignments;
    assert_eq!(got.len(), 1);
    got.remove(0)
}

/// Sets a worker's check record, as if it had passed `passed` checks.
pub async fn set_checks(market: &TestMarket, worker: &Client, passed: i64) {
    let mut tx = market.market.db.begin().await.unwrap();
    tally_market::db::query("UPDATE workers SET checks_passed = $1 WHERE account = $2")
        .bind(passed)
        .bind(worker.signer().unwrap().account().as_str())
        .execute(&mut tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}
