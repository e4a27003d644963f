//! The audit: re-check a market's settlement records from
//! its public endpoints alone (`GET /v1/market`, `/v1/settlements`,
//! `/v1/tasks/{id}/evidence`, `/v1/withdrawals/{id}/evidence`, and
//! `/v1/reviewers` where reviews were paid).
//!
//! The record checks (chain, hashes, envelopes, signatures, memos, payouts,
//! no assignment paid twice) are `tally-settlement`'s [`ChainChecker`]; this
//! module adds what needs the market's evidence. Finding kinds beyond the
//! checker's:
//!
//! | kind | meaning |
//! | --- | --- |
//! | `missing_evidence` | a paid assignment's task has no (readable) evidence |
//! | `unverified_task` | a paid assignment's task is not verified, or its re-run vote reaches no quorum |
//! | `unknown_assignment` | the paid assignment has no signed result in its task's evidence |
//! | `wrong_worker` | the paid assignment's result was signed by another account than the payee |
//! | `bad_result_signature` | a result's `tally-v2` signature does not verify for its worker on this market (network and operator) |
//! | `bad_result` | a result body is not a result |
//! | `verdict_mismatch` | re-running the vote gives another consensus, agree or disagree list |
//! | `not_agreeing` | the paid assignment does not agree with the re-run consensus |
//! | `amount_mismatch` | a payout is not the sum of `price - fee` of its assignments |
//! | `review_signature` | a review's `tally-v2` signature does not verify for its reviewer on this market |
//! | `wrong_reviewer` | a paid review was signed by another account than the payee |
//! | `reviewer_not_verified` | a paid review's reviewer was not verified (by valid operator marks) when it signed the review, or when the market received it |
//! | `review_time` | a review was received more than 60 s away from its signed time |
//! | `bad_reviewer_mark` | a reviewer mark does not verify, or was not signed by the operator (the paying record's source) |
//! | `review_vote` | re-running the reviews' vote on the voted reviews does not give the published review verdict, or it does not decide |
//! | `review_not_agreeing` | a paid review is not among the reviews that decided its task |
//! | `review_amount` | a payout with reviews is not the sum of `price - fee` of its results and `review_price - fee` of its reviews |
//!
//! A task decided by review (its evidence has `review`) is not re-voted
//! from its results: its consensus must be the reviews' consensus, and a
//! paid result must agree with it ([`review`]).
//!
//! Records whose status says they paid nothing (`failed`, `expired`) are
//! checked like the others but not counted in the totals.

mod evidence;
pub(crate) mod review;

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use serde::Serialize;
use tally_protocol::wire;
use tally_protocol::{Client, Domain, TaskId};
use tally_settlement::record::status_pays;
use tally_settlement::{Asset, ChainChecker, Finding, Network, PublicKey, SettlementRecord};

use evidence::{check_task, TaskFacts};
use review::Marks;

/// What `tally audit --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub records: u64,
    pub payouts: u64,
    /// Stroops paid by the records that paid.
    pub amount: i64,
    /// Tasks whose evidence was checked.
    pub tasks: u64,
    /// Payouts of tasks whose evidence the market withholds (each a
    /// finding: nothing is paid before its evidence is public).
    pub withheld_checks: u64,
    /// Payouts for results that agreed with a verdict since undone (their
    /// worker was caught after it was paid): money lost, rules kept.
    pub revised_payouts: u64,
    /// Client withdrawals paid, each checked against its signed request.
    pub withdrawals: u64,
    /// Paid human reviews, each checked against its signed review, the
    /// reviews' vote and the operator's reviewer marks.
    pub reviews: u64,
    /// Records the market never submitted to the network (it runs without
    /// a chain server): checked like the others, but they paid nobody yet.
    pub not_submitted: u64,
    pub findings: Vec<Finding>,
}

impl Report {
    /// The human summary: totals, then "all consistent" or one line per finding.
    pub fn summary(&self) -> String {
        let mut out = if self.not_submitted > 0 && self.not_submitted == self.records {
            format!(
                "{} records, {} payouts, {} stroops settled, {} tasks checked\n\
                 no record was submitted (the market has no chain server): nothing was paid on the network\n",
                self.records, self.payouts, self.amount, self.tasks
            )
        } else {
            let mut out = format!(
                "{} records, {} payouts, {} stroops paid, {} tasks checked\n",
                self.records, self.payouts, self.amount, self.tasks
            );
            if self.not_submitted > 0 {
                out.push_str(&format!(
                    "{} of the records were never submitted: what they settle was not paid on the network\n",
                    self.not_submitted
                ));
            }
            out
        };
        if self.withheld_checks > 0 {
            out.push_str(&format!(
                "{} paid results had their evidence withheld\n",
                self.withheld_checks
            ));
        }
        if self.revised_payouts > 0 {
            out.push_str(&format!(
                "{} paid results agreed with a verdict since undone (a worker caught after payout)\n",
                self.revised_payouts
            ));
        }
        if self.reviews > 0 {
            out.push_str(&format!(
                "{} paid reviews checked against their signatures, the reviews' vote and the reviewer marks\n",
                self.reviews
            ));
        }
        if self.findings.is_empty() {
            out.push_str("all consistent\n");
        }
        for f in &self.findings {
            out.push_str(&format!("{}: {}\n", f.kind, f.detail));
        }
        out
    }
}

impl Report {
    /// The report as the market publishes its own audit (`GET /v1/audit`).
    pub fn to_wire(&self) -> wire::SelfAudit {
        wire::SelfAudit {
            ok: self.ok,
            records: self.records,
            payouts: self.payouts,
            amount: self.amount,
            tasks: self.tasks,
            withheld_checks: self.withheld_checks,
            revised_payouts: self.revised_payouts,
            withdrawals: self.withdrawals,
            findings: self
                .findings
                .iter()
                .map(|f| wire::AuditFinding {
                    kind: f.kind.clone(),
                    detail: f.detail.clone(),
                })
                .collect(),
            audited_at: chrono_now(),
        }
    }
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    tally_market::to_time(tally_market::now_ms())
}

/// Audit the market behind `client` (which needs no key).
pub async fn audit(client: &Client) -> anyhow::Result<Report> {
    let market = client.market().await.context("GET /v1/market")?;
    let operator = PublicKey::parse(market.operator.as_str()).context("the market's operator")?;
    let network = Network::from_passphrase(&market.network).context("the market's network")?;
    let asset = Asset::parse(&market.asset).context("the market's asset")?;
    let mut checker = ChainChecker::new()
        .expect_source(operator)
        .expect_network(network)
        .expect_asset(asset);
    let mut report = Report {
        ok: false,
        records: 0,
        payouts: 0,
        amount: 0,
        tasks: 0,
        withheld_checks: 0,
        revised_payouts: 0,
        withdrawals: 0,
        reviews: 0,
        not_submitted: 0,
        findings: Vec::new(),
    };
    let mut ctx = Ctx {
        client,
        domain: Domain::new(market.network.clone(), market.operator.clone()),
        tasks: HashMap::new(),
        marks: None,
        paid: HashSet::new(),
    };
    let mut record_times = Vec::new();
    let mut withdrawals_paid: HashSet<i64> = HashSet::new();
    let mut after = 0;
    loop {
        let page = client
            .settlements(after)
            .await
            .with_context(|| format!("GET /v1/settlements?after={after}"))?;
        let Some(last) = page.records.iter().map(|r| r.seq).max() else {
            break;
        };
        for record in &page.records {
            report.records += 1;
            if record.status == tally_settlement::record::STATUS_NOT_SUBMITTED {
                report.not_submitted += 1;
            }
            record_times.extend(record.created_at);
            match to_record(record) {
                Ok(r) => report.findings.extend(checker.check(&r)),
                Err(detail) => report.findings.push(Finding::new(
                    "bad_record",
                    format!("record {}: {detail}", record.seq),
                )),
            }
            if status_pays(&record.status) {
                for w in record.payouts.iter().flat_map(|p| &p.withdrawals) {
                    if !withdrawals_paid.insert(*w) {
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
            for payout in &record.payouts {
                check_payout(&mut ctx, record, payout, &mut report).await;
            }
        }
        if last <= after {
            report.findings.push(Finding::new(
                "broken_chain",
                format!("GET /v1/settlements?after={after} returned no later record"),
            ));
            break;
        }
        after = last;
    }
    report.tasks = ctx.tasks.len() as u64;
    let missing = missing_payouts(&ctx, &record_times).await;
    report.findings.extend(missing);
    report.ok = report.findings.is_empty();
    Ok(report)
}

/// Records written after an agreeing result was due before its absence
/// from every payout is a finding.
const PAYOUT_WITHIN_RECORDS: usize = 3;

/// Every agreeing result of a task the audit checked is paid: once its
/// task is public (and its probation over, where its worker was on
/// probation when it sent it), within [`PAYOUT_WITHIN_RECORDS`] records;
/// except a caught worker's, whose earnings are forfeit.
async fn missing_payouts(
    ctx: &Ctx<'_>,
    record_times: &[chrono::DateTime<chrono::Utc>],
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let (holdback_ms, trusted_after) = match ctx.client.market().await {
        Ok(m) => (
            (m.holdback_secs as i64).saturating_mul(1000),
            m.trusted_after,
        ),
        Err(e) => {
            findings.push(Finding::new(
                "missing_evidence",
                format!("GET /v1/market: {e}"),
            ));
            return findings;
        }
    };
    let mut caught: HashMap<tally_protocol::AccountId, bool> = HashMap::new();
    let mut tasks: Vec<_> = ctx.tasks.iter().collect();
    tasks.sort_by_key(|(t, _)| **t);
    for (task, facts) in tasks {
        if facts.withheld || facts.net.is_none_or(|n| n <= 0) {
            continue;
        }
        let Some(published) = facts.published_at else {
            continue;
        };
        let mut unpaid: Vec<_> = facts
            .agree
            .iter()
            .filter(|a| !ctx.paid.contains(a))
            .collect();
        unpaid.sort();
        for a in unpaid {
            let Some(worker) = facts.workers.get(a) else {
                continue;
            };
            let passed = facts.passed_at_submit.get(a).copied().unwrap_or(0);
            let probation_end = if passed < trusted_after {
                facts
                    .signed_at
                    .get(a)
                    .copied()
                    .unwrap_or(i64::MAX)
                    .saturating_add(holdback_ms)
            } else {
                0
            };
            let due = published.timestamp_millis().max(probation_end);
            let later = record_times
                .iter()
                .filter(|t| t.timestamp_millis() > due)
                .count();
            if later < PAYOUT_WITHIN_RECORDS {
                continue;
            }
            if !caught.contains_key(worker) {
                let c = ctx
                    .client
                    .worker_record(worker)
                    .await
                    .map(|r| r.caught)
                    .unwrap_or(false);
                caught.insert(worker.clone(), c);
            }
            if caught[worker] {
                continue;
            }
            findings.push(Finding::new(
                "missing_payout",
                format!(
                    "task {task}: assignment {a} of {worker} agreed but is in no payout of the {later} records written since it was due"
                ),
            ));
        }
    }
    findings
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

/// What the audit keeps between payouts: each task's facts, and the
/// reviewer marks once a paid review needed them.
struct Ctx<'c> {
    client: &'c Client,
    /// The market every signature must be bound to.
    domain: Domain,
    tasks: HashMap<TaskId, TaskFacts>,
    /// `None`: not fetched yet; `Some(None)`: could not be fetched (reported).
    marks: Option<Option<Marks>>,
    /// Every assignment a payout names.
    paid: HashSet<tally_protocol::AssignmentId>,
}

impl Ctx<'_> {
    /// The published reviewer marks, fetched on first use.
    async fn marks(&mut self, report: &mut Report) -> Option<&mut Marks> {
        if self.marks.is_none() {
            let fetched = match self.client.reviewer_marks().await {
                Ok(m) => Some(Marks::new(m.marks, self.domain.clone())),
                Err(e) => {
                    report.findings.push(Finding::new(
                        "missing_evidence",
                        format!("GET /v1/reviewers (the reviewer marks): {e}"),
                    ));
                    None
                }
            };
            self.marks = Some(fetched);
        }
        self.marks.as_mut().and_then(Option::as_mut)
    }
}

/// Every assignment of a payout: its task verified, and either its result
/// signed by the payee and agreeing, or its review signed by the payee,
/// deciding and by a reviewer verified then; the amount the sum of their
/// `price - fee` (`review_price - fee` for reviews).
async fn check_payout(
    ctx: &mut Ctx<'_>,
    record: &wire::SettlementRecord,
    payout: &wire::Payout,
    report: &mut Report,
) {
    let at = format!("record {}, payout to {}", record.seq, payout.account);
    if payout.tasks.len() != payout.assignments.len() {
        report.findings.push(Finding::new(
            "bad_record",
            format!(
                "{at}: {} tasks for {} assignments",
                payout.tasks.len(),
                payout.assignments.len()
            ),
        ));
        return;
    }
    let mut sum: Option<i64> = Some(0);
    let mut has_reviews = false;
    for (a, t) in payout.assignments.iter().zip(&payout.tasks) {
        ctx.paid.insert(*a);
        if !ctx.tasks.contains_key(t) {
            let (facts, findings) = check_task(ctx.client, &ctx.domain, *t).await;
            report.findings.extend(findings);
            ctx.tasks.insert(*t, facts);
        }
        let facts = &ctx.tasks[t];
        if facts.net.is_none() {
            sum = None;
            continue; // no evidence: reported once for the task
        }
        if facts.withheld {
            sum = sum.zip(facts.net).and_then(|(s, n)| s.checked_add(n));
            report.withheld_checks += 1;
            continue;
        }
        if !facts.workers.contains_key(a) {
            if let Some(review) = facts.reviews.reviews.get(a).cloned() {
                // A paid review (the reviews' facts are the task's).
                has_reviews = true;
                report.reviews += 1;
                let net = facts.reviews.net;
                if net.is_none() {
                    report.findings.push(Finding::new(
                        "review_amount",
                        format!(
                            "{at}: review {a} of task {t} is paid, but its bid has no review price"
                        ),
                    ));
                }
                sum = sum.zip(net).and_then(|(s, n)| s.checked_add(n));
                let reviews = facts.reviews.clone();
                let operator = record.source.clone();
                let found = match ctx.marks(report).await {
                    Some(marks) => review::check_paid_review(
                        &at,
                        *a,
                        &payout.account,
                        &review,
                        &reviews,
                        marks,
                        &operator,
                    ),
                    None => Vec::new(), // the marks are missing: reported once
                };
                report.findings.extend(found);
                continue;
            }
        }
        sum = sum.zip(facts.net).and_then(|(s, n)| s.checked_add(n));
        match facts.workers.get(a) {
            None => report.findings.push(Finding::new(
                "unknown_assignment",
                format!("{at}: task {t} has no valid signed result or review for assignment {a}"),
            )),
            Some(w) if w != &payout.account => report.findings.push(Finding::new(
                "wrong_worker",
                format!("{at}: assignment {a} was done by {w}"),
            )),
            Some(_) => {}
        }
        if !facts.agree.contains(a) && facts.revised_agree.contains(a) {
            report.revised_payouts += 1;
        } else if !facts.agree.contains(a) {
            report.findings.push(Finding::new(
                "not_agreeing",
                format!("{at}: assignment {a} does not agree with the consensus of task {t}"),
            ));
        }
    }
    for w in &payout.withdrawals {
        match ctx.client.withdrawal_evidence(*w).await {
            Err(e) => report.findings.push(Finding::new(
                "missing_evidence",
                format!("{at}: withdrawal {w}: {e}"),
            )),
            Ok(ev) => {
                report.withdrawals += 1;
                if let Err(e) = ev.verify(&ctx.domain) {
                    report.findings.push(Finding::new(
                        "bad_withdrawal",
                        format!("{at}: withdrawal {w}: {e}"),
                    ));
                }
                if ev.account != payout.account {
                    report.findings.push(Finding::new(
                        "wrong_account",
                        format!("{at}: withdrawal {w} was asked for by {}", ev.account),
                    ));
                }
                sum = sum.and_then(|s| s.checked_add(ev.amount.0));
            }
        }
    }
    if let Some(sum) = sum {
        if sum != payout.amount.0 {
            report.findings.push(Finding::new(
                if has_reviews {
                    "review_amount"
                } else {
                    "amount_mismatch"
                },
                format!(
                    "{at}: pays {} but its assignments earned {sum} stroops",
                    payout.amount
                ),
            ));
        }
    }
}
