//! `GET /v1/settlements`: the hash-chained settlement records, a page at a
//! time.

use tally_protocol::wire::*;
use tally_settlement::record::{STATUS_NOT_SUBMITTED, STATUS_PENDING};

use crate::db::{int, json, parse, query, text};
use crate::error::Result;
use crate::{to_time, Market};

/// `after` as a stored sequence number: one beyond any (`i64::MAX`) when it
/// does not fit, so a huge `after` lists nothing instead of wrapping to a
/// negative number that lists everything.
fn seq_bound(after: u64) -> i64 {
    i64::try_from(after).unwrap_or(i64::MAX)
}

/// `GET /v1/settlements?after=seq`: records in order, at most `limit`; a pending record reads `not_submitted` where the market submits
/// none.
pub async fn settlements(m: &Market, after: u64, limit: u32) -> Result<SettlementPage> {
    let rows = query(
        "SELECT seq, prev_hash, hash, network, source, asset, payouts, envelope_xdr, tx_hash, status, created_at
         FROM settlements WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(seq_bound(after))
    .bind(i64::from(limit))
    .fetch_all(&m.db)
    .await?;
    let mut records = Vec::with_capacity(rows.len());
    for r in rows {
        records.push(SettlementRecord {
            seq: int(&r, "seq")? as u64,
            prev_hash: text(&r, "prev_hash")?,
            hash: text(&r, "hash")?,
            network: text(&r, "network")?,
            source: parse(&text(&r, "source")?, "source")?,
            asset: text(&r, "asset")?,
            payouts: json(&text(&r, "payouts")?, "payouts")?,
            envelope_xdr: text(&r, "envelope_xdr")?,
            tx_hash: text(&r, "tx_hash")?,
            status: match text(&r, "status")? {
                s if s == STATUS_PENDING && !m.config.submits() => STATUS_NOT_SUBMITTED.into(),
                s => s,
            },
            created_at: Some(to_time(int(&r, "created_at")?)),
        });
    }
    Ok(SettlementPage { records })
}

#[cfg(test)]
mod seq_tests {
    #[test]
    fn a_huge_after_lists_nothing_rather_than_everything() {
        assert_eq!(super::seq_bound(7), 7);
        assert_eq!(super::seq_bound(i64::MAX as u64), i64::MAX);
        assert_eq!(super::seq_bound(u64::MAX), i64::MAX);
        assert_eq!(super::seq_bound(1 << 63), i64::MAX);
    }
}
