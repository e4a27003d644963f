//! Spot checks: tasks whose answer the market knows, handed to workers in
//! place of client work and indistinguishable from it.
//!
//! The known answers come from the operator's golden set (`--golden DIR`:
//! `models/*.onnx`, `images/*`, `expected/<image>.json`, the layout of the
//! repository's `assets/`). When a claim would take a client task of a
//! model the golden set covers, the market may instead (with probability
//! [`CheckRates::for_worker`]: high for workers with few passed checks, low
//! for trusted ones) hand the worker a check at the same price: a task of a
//! bid the market itself places, funded from the operator's fee income (or
//! its own available balance when fees fall short), on
//! a fresh byte variant of a golden image (a random comment inserted into
//! the file: the pixels, hence the right answer, are the same; the bytes
//! and the sha256 never repeat). The check's result is judged against the
//! known answer alone: a pass is paid and counted; a failure is counted,
//! and a worker that fails a check is caught (credibility 0, no more work).
//! A check's evidence is never public: its image may be used again.
//!
//! - `harvest`: known answers harvested from client tasks verified at very
//!   high credibility, used beside the golden set.

mod harvest;

pub(crate) use harvest::{in_use as harvest_in_use, keep as harvest, withdraw as unharvest};
pub use harvest::{HARVEST_CREDIBILITY, MAX_AGE_MS, MAX_USES};

use std::path::Path;

use tally_protocol::vote::{self, VoteParams};
use tally_protocol::{AccountId, BidId, Detection, Sha256Hex, Stroops, TaskId};

use crate::db::{query, WriteTx};
use crate::error::{MarketError, Result};
use crate::ledger::{self, Book, Cause, Leg};
use crate::{now_ms, Market};

/// One image of the golden set and its known answer.
#[derive(Debug, Clone)]
pub struct GoldenItem {
    pub model: Sha256Hex,
    pub name: String,
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub reference: Vec<Detection>,
}

/// The operator's golden set: models and their known answers.
#[derive(Debug, Clone, Default)]
pub struct Golden {
    /// Model bytes, stored in the market at start (after admission).
    pub models: Vec<Vec<u8>>,
    pub items: Vec<GoldenItem>,
}

/// How often a claim gets a check instead of client work.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckRates {
    /// For workers that have passed fewer than `trusted_after` checks.
    pub new: f64,
    pub trusted: f64,
    pub trusted_after: u64,
}

impl Default for CheckRates {
    /// A quarter of the claims of a worker whose single result cannot yet
    /// verify a task at the default confidence, a twentieth after.
    fn default() -> Self {
        use tally_protocol::trust::{checks_for, ASSUMED_SABOTEURS, DEFAULT_CONFIDENCE};
        CheckRates {
            new: 0.25,
            trusted: 0.05,
            trusted_after: checks_for(ASSUMED_SABOTEURS, DEFAULT_CONFIDENCE),
        }
    }
}

impl CheckRates {
    pub fn for_worker(&self, passed: u64) -> f64 {
        if passed < self.trusted_after {
            self.new
        } else {
            self.trusted
        }
    }
}

/// Reads a golden set laid out as `models/*.onnx`, `images/*`, `expected/<stem>.json`.
/// Every image must have its expected detections; every model must pass admission.
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
                "{}: one model per golden set (its images' answers are that model's)",
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
        let expected = dir.join("expected").join(format!("{stem}.json"));
        let json = std::fs::read_to_string(&expected).map_err(|e| {
            format!(
                "{}: {e} (every golden image needs its answer)",
                expected.display()
            )
        })?;
        // `{ "detections": [...] }` (the assets' layout) or a bare list.
        let value: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| format!("{}: {e}", expected.display()))?;
        let list = value.get("detections").cloned().unwrap_or(value);
        let reference: Vec<Detection> =
            serde_json::from_value(list).map_err(|e| format!("{}: {e}", expected.display()))?;
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (width, height) = image::ImageReader::new(std::io::Cursor::new(&bytes))
            .with_guessed_format()
            .map_err(|e| format!("{}: {e}", path.display()))?
            .into_dimensions()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        golden.items.push(GoldenItem {
            model: model.clone(),
            name: stem.to_string(),
            bytes,
            width,
            height,
            reference,
        });
    }
    if golden.items.is_empty() {
        return Err(format!(
            "{}: no images with expected answers",
            dir.display()
        ));
    }
    Ok(golden)
}

/// Stores the golden set's models (admitted when loaded) so checks can name them.
pub(crate) async fn store_golden_models(db: &crate::db::Db, config: &crate::Config) -> Result<()> {
    if config.golden.models.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    for bytes in &config.golden.models {
        query(
            "INSERT INTO models (hash, bytes, size, uploaded_by, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (hash) DO NOTHING",
        )
        .bind(Sha256Hex::of(bytes).as_str())
        .bind(bytes.as_slice())
        .bind(bytes.len() as i64)
        .bind(config.operator.account().as_str())
        .bind(now_ms())
        .execute(&mut tx)
        .await?;
    }
    tx.commit().await
}

/// The same picture in new bytes: a random comment segment right after
/// the JPEG start marker, or a random text chunk after the PNG header.
pub fn variant(bytes: &[u8]) -> Vec<u8> {
    let mut salt = [0u8; 16];
    let _ = getrandom::fill(&mut salt);
    let salt = hex::encode(salt);
    if bytes.starts_with(&[0xFF, 0xD8]) {
        let mut out = Vec::with_capacity(bytes.len() + 40);
        out.extend_from_slice(&bytes[..2]);
        out.extend_from_slice(&[0xFF, 0xFE]);
        out.extend_from_slice(&((salt.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(salt.as_bytes());
        out.extend_from_slice(&bytes[2..]);
        return out;
    }
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.starts_with(PNG) && bytes.len() > 33 {
        // Signature (8) + IHDR chunk (4 length + 4 type + 13 data + 4 crc).
        let mut data = b"Comment\0".to_vec();
        data.extend_from_slice(salt.as_bytes());
        let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
        let mut typed = b"tEXt".to_vec();
        typed.extend_from_slice(&data);
        chunk.extend_from_slice(&typed);
        chunk.extend_from_slice(&crc32(&typed).to_be_bytes());
        let mut out = bytes[..33].to_vec();
        out.extend_from_slice(&chunk);
        out.extend_from_slice(&bytes[33..]);
        return out;
    }
    bytes.to_vec()
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A uniform draw in `[0, 1)`.
pub(crate) fn draw() -> f64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// A known answer for a check of `model` on `worker`'s claim, at random:
/// a golden item, or one harvested from client work (at most half the
/// time while the golden set covers the model); `None` when there is none.
pub(crate) async fn choose(
    tx: &mut WriteTx<'_>,
    m: &Market,
    model: &Sha256Hex,
    worker: &AccountId,
) -> Result<Option<GoldenItem>> {
    let golden: Vec<&GoldenItem> = m
        .config
        .golden
        .items
        .iter()
        .filter(|i| &i.model == model)
        .collect();
    let harvested = harvest::available(tx, model, worker).await?;
    let share = if golden.is_empty() {
        1.0
    } else {
        (harvested as f64 / (harvested as f64 + golden.len() as f64)).min(0.5)
    };
    if harvested > 0 && draw() < share {
        return harvest::take(tx, model, worker).await;
    }
    if golden.is_empty() {
        return Ok(None);
    }
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    Ok(Some(
        golden[(u64::from_le_bytes(b) % golden.len() as u64) as usize].clone(),
    ))
}

/// A new check task of one replica for `item`, at `price`, funded from the
/// operator's fees (else its available balance) and already taken by the
/// claiming worker; `None` when neither can pay for it. Runs inside the claim's transaction.
pub(crate) async fn create(
    tx: &mut WriteTx<'_>,
    m: &Market,
    item: &GoldenItem,
    price: Stroops,
    lease_ms: i64,
) -> Result<Option<(TaskId, Sha256Hex)>> {
    let operator = m.config.operator.account().as_str().to_string();
    let now = now_ms();
    // Fees pay for checks; when they fall short, the operator's own
    // available balance does (credited like any account's). Look before
    // posting (a refused posting may already have written), holding the
    // rows on PostgreSQL so concurrent claims cannot spend the same money;
    // SQLite's single writer already serialises them.
    let lock = if tx.is_postgres() { " FOR UPDATE" } else { "" };
    let mut held = [0i64; 2];
    for (i, book) in [Book::Fees, Book::Available].into_iter().enumerate() {
        held[i] = query(format!(
            "SELECT amount FROM balances WHERE book = $1 AND owner = $2{lock}"
        ))
        .bind(book.as_str())
        .bind(operator.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get::<i64>("amount"))
        .transpose()?
        .unwrap_or(0);
    }
    let [fees, available] = held;
    if fees >= price.0 {
        ledger::post(
            tx,
            "check_fund",
            Cause::default(),
            &[
                Leg {
                    book: Book::Fees,
                    owner: &operator,
                    amount: -price.0,
                },
                Leg {
                    book: Book::Available,
                    owner: &operator,
                    amount: price.0,
                },
            ],
        )
        .await?;
    } else if available < price.0 {
        return Ok(None);
    }
    let params = VoteParams {
        quorum: 1,
        ..VoteParams::default()
    };
    let bid = BidId(
        query(
            "INSERT INTO bids (client, model, price, replicas, quorum, max_replicas, params, fee_bps, reserved, status, deadline_at, created_at, kind)
             VALUES ($1, $2, $3, 1, 1, 1, $4, $5, $3, 'open', $6, $7, 'check') RETURNING id",
        )
        .bind(operator.as_str())
        .bind(item.model.as_str())
        .bind(price.0)
        .bind(serde_json::to_string(&params).expect("params serialize"))
        .bind(i64::from(m.config.fee_bps))
        .bind(now + 10 * lease_ms.max(60_000))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .try_get::<i64>("id")?,
    );
    crate::bids::reserve_for(tx, bid, &operator, price).await?;
    let bytes = variant(&item.bytes);
    let input = Sha256Hex::of(&bytes);
    crate::bids::store_input(tx, &input, &bytes, item.width, item.height, now).await?;
    let task: i64 = query(
        "INSERT INTO tasks (bid_id, input, model, price, status, wanted, taken, max_replicas, created_at)
         VALUES ($1, $2, $3, $4, 'running', 1, 1, 1, $5) RETURNING id",
    )
    .bind(bid.0)
    .bind(input.as_str())
    .bind(item.model.as_str())
    .bind(price.0)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    query("INSERT INTO checks (task_id, item, reference) VALUES ($1, $2, $3)")
        .bind(task)
        .bind(item.name.as_str())
        .bind(serde_json::to_string(&item.reference).expect("detections serialize"))
        .execute(&mut *tx)
        .await?;
    m.metrics
        .checks
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(Some((TaskId(task), input)))
}

/// The known answer of a check task.
pub(crate) async fn reference(tx: &mut WriteTx<'_>, task: TaskId) -> Result<Vec<Detection>> {
    let r = query("SELECT reference FROM checks WHERE task_id = $1")
        .bind(task.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| MarketError::Corrupt(format!("check task {task} has no known answer")))?;
    crate::db::json(&crate::db::text(&r, "reference")?, "check reference")
}

/// Whether `detections` pass the check whose answer is `reference`.
pub fn passes(params: &VoteParams, reference: &[Detection], detections: &[Detection]) -> bool {
    vote::agrees(params, reference, detections)
}

/// Counts a check's outcome in the worker's record; a failure catches it.
pub(crate) async fn record(tx: &mut WriteTx<'_>, worker: &AccountId, passed: bool) -> Result<()> {
    let sql = if passed {
        "UPDATE workers SET checks_passed = checks_passed + 1 WHERE account = $1"
    } else {
        "UPDATE workers SET checks_failed = checks_failed + 1, caught_at = COALESCE(caught_at, $2) WHERE account = $1"
    };
    let mut q = query(sql).bind(worker.as_str());
    if !passed {
        q = q.bind(now_ms());
        tracing::warn!(%worker, "a worker failed a spot check: caught");
    }
    q.execute(&mut *tx).await?;
    if !passed {
        forfeit(tx, worker).await?;
    }
    Ok(())
}

/// A caught worker's unsettled earnings go back to the clients whose tasks
/// paid them (checks' to the operator), in one `forfeit` posting naming
/// each assignment.
async fn forfeit(tx: &mut WriteTx<'_>, worker: &AccountId) -> Result<()> {
    let n = crate::payment::give_back(tx, "forfeit", worker, None).await?;
    if n > 0 {
        tracing::warn!(%worker, results = n, "a caught worker's unsettled earnings go back to its clients");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_keep_the_pixels_and_never_repeat_the_bytes() {
        let img =
            image::RgbImage::from_fn(16, 8, |x, y| image::Rgb([x as u8 * 9, y as u8 * 20, 7]));
        for format in [image::ImageFormat::Png, image::ImageFormat::Jpeg] {
            let mut buf = std::io::Cursor::new(Vec::new());
            img.write_to(&mut buf, format).unwrap();
            let original = buf.into_inner();
            let (a, b) = (variant(&original), variant(&original));
            assert_ne!(a, original, "{format:?}");
            assert_ne!(a, b, "{format:?}");
            let decode = |bytes: &[u8]| image::load_from_memory(bytes).unwrap().into_rgb8();
            assert_eq!(decode(&a), decode(&original), "{format:?}");
            assert_eq!(decode(&b), decode(&original), "{format:?}");
        }
    }

    #[test]
    fn new_workers_are_checked_more_than_trusted_ones() {
        let r = CheckRates::default();
        assert!(r.for_worker(0) > r.for_worker(100));
        assert_eq!(r.for_worker(r.trusted_after), r.trusted);
    }
}
