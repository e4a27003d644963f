//! The audit's walk of the settlement chain: every page of records, each
//! checked by `tally-settlement`'s [`ChainChecker`] (chain, hashes,
//! envelopes, signatures, memos), counted in the totals when it pays, no
//! withdrawal paid twice, and its payouts handed to [`check_payout`].

use std::collections::HashSet;

use anyhow::Context;
use tally_protocol::wire;
use tally_settlement::record::status_pays;
use tally_settlement::{Asset, ChainChecker, Finding, Network, PublicKey, SettlementRecord};

use super::payouts::check_payout;
use super::{Ctx, Report};

/// The walk's state: the chain checker, the withdrawals paid so far and
/// when each record was written.
pub(super) struct Walk {
    pub(super) checker: ChainChecker,
    withdrawals_paid: HashSet<i64>,
    /// When each record was written, in chain order.
    pub(super) record_times: Vec<chrono::DateTime<chrono::Utc>>,
}

impl Walk {
    /// A walk checking records with `checker`.
    pub(super) fn new(checker: ChainChecker) -> Walk {
        Walk {
            checker,
            withdrawals_paid: HashSet::new(),
            record_times: Vec::new(),
        }
    }

    /// Check every record the market lists, page by page, and their
    /// payouts; a page with no later record ends the walk as a finding.
    pub(super) async fn all(
        &mut self,
        ctx: &mut Ctx<'_>,
        report: &mut Report,
    ) -> anyhow::Result<()> {
        let mut after = 0;
        loop {
            let page = ctx
                .client
                .settlements(after)
                .await
                .with_context(|| format!("GET /v1/settlements?after={after}"))?;
            let Some(last) = page.records.iter().map(|r| r.seq).max() else {
                return Ok(());
            };
            for record in &page.records {
                self.record(record, report);
                for payout in &record.payouts {
                    check_payout(ctx, record, payout, report).await;
                }
            }
            if last <= after {
                report.findings.push(Finding::new(
                    "broken_chain",
                    format!("GET /v1/settlements?after={after} returned no later record"),
                ));
                return Ok(());
            }
            after = last;
        }
    }

    /// One record: the chain checks, the totals, no withdrawal paid twice.
    fn record(&mut self, record: &wire::SettlementRecord, report: &mut Report) {
        report.records += 1;
        if record.status == tally_settlement::record::STATUS_NOT_SUBMITTED {
            report.not_submitted += 1;
        }
        self.record_times.extend(record.created_at);
        match to_record(record) {
            Ok(r) => report.findings.extend(self.checker.check(&r)),
            Err(detail) => report.findings.push(Finding::new(
                "bad_record",
                format!("record {}: {detail}", record.seq),
            )),
        }
        if !status_pays(&record.status) {
            return;
        }
        for w in record.payouts.iter().flat_map(|p| &p.withdrawals) {
            if !self.withdrawals_paid.insert(*w) {
                report.findings.push(Finding::new(
                    "paid_twice",
                    format!("record {}: withdrawal {w} was paid before", record.seq),
                ));
            }
        }
        report.payouts += record.payouts.len() as u64;
        report.amount = report
            .amount
            .saturating_add(record.payouts.iter().map(|p| p.amount.0).sum());
    }
}

/// The wire record as the settlement crate's type; why not, if it fails.
fn to_record(r: &wire::SettlementRecord) -> Result<SettlementRecord, String> {
    let payouts = r
        .payouts
        .iter()
        .map(|p| {
            let mut payout = tally_settlement::Payout::new(
                PublicKey::parse(p.account.as_str()).map_err(|e| e.to_string())?,
                tally_settlement::Stroops(p.amount.0),
                p.assignments.iter().map(|a| a.0).collect(),
            );
            payout.withdrawals = p.withdrawals.clone();
            payout.op = match p.op {
                wire::PayoutKind::Payment => tally_settlement::PayoutOp::Payment,
                wire::PayoutKind::CreateAccount => tally_settlement::PayoutOp::CreateAccount,
                wire::PayoutKind::ClaimableBalance => tally_settlement::PayoutOp::ClaimableBalance,
            };
            Ok(payout)
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(SettlementRecord {
        seq: r.seq,
        prev_hash: r.prev_hash.clone(),
        hash: r.hash.clone(),
        network: Network::from_passphrase(&r.network).map_err(|e| e.to_string())?,
        source: PublicKey::parse(r.source.as_str()).map_err(|e| e.to_string())?,
        asset: Asset::parse(&r.asset).map_err(|e| e.to_string())?,
        payouts,
        envelope_xdr: r.envelope_xdr.clone(),
        tx_hash: r.tx_hash.clone(),
        status: r.status.clone(),
    })
}
