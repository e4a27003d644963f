//! The repository's assets as a spot-check golden set, and the helpers the
//! trust tests share: known answers, one-assignment claims, check records.

use std::path::{Path, PathBuf};

use tally_protocol::wire::{Assignment, ResultRequest};
use tally_protocol::Client;

use super::TestMarket;

pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets")
}

pub fn golden() -> tally_market::checks::Golden {
    tally_market::checks::load_golden(&golden_dir()).unwrap()
}

/// The reference answer of the golden image whose pixels `bytes` carry.
pub fn answer_for(bytes: &[u8]) -> Option<ResultRequest> {
    let pixels = image::load_from_memory(bytes).ok()?.into_rgb8();
    golden()
        .items
        .iter()
        .find(|i| image::load_from_memory(&i.bytes).unwrap().into_rgb8() == pixels)
        .map(|i| ResultRequest {
            detections: i.reference.clone(),
            elapsed_ms: 20.0,
        })
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
