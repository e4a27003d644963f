//! The audit (DESIGN "Audit"): re-check a market's settlement records from
//! its public endpoints alone (`GET /v1/market`, `/v1/settlements`,
//! `/v1/tasks/{id}/evidence`).
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
//! | `bad_result_signature` | a result's `tally-v1` signature does not verify for its worker |
//! | `bad_result` | a result body is not a result |
//! | `verdict_mismatch` | re-running the vote gives another consensus, agree or disagree list |
//! | `not_agreeing` | the paid assignment does not agree with the re-run consensus |
//! | `amount_mismatch` | a payout is not the sum of `price - fee` of its assignments |
//!
//! Records whose status says they paid nothing (`failed`, `expired`) are
//! checked like the others but not counted in the totals.

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use serde::Serialize;
use tally_protocol::vote::{self, Ballot};
use tally_protocol::wire::{self, Evidence, TaskState};
use tally_protocol::{AccountId, AssignmentId, Client, TaskId};
use tally_settlement::record::status_pays;
use tally_settlement::{Asset, ChainChecker, Finding, Network, PublicKey, SettlementRecord};

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
    /// Payouts of spot checks, whose evidence is withheld (amount checked only).
    pub withheld_checks: u64,
    /// Payouts for results that agreed with a verdict since undone (their
    /// worker was caught after it was paid): money lost, rules kept.
    pub revised_payouts: u64,
    /// Client withdrawals paid, each checked against its signed request.
    pub withdrawals: u64,
    pub findings: Vec<Finding>,
}

impl Report {
    /// The human summary: totals, then "all consistent" or one line per finding.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "{} records, {} payouts, {} stroops paid, {} tasks checked\n",
            self.records, self.payouts, self.amount, self.tasks
        );
        if self.withheld_checks > 0 {
            out.push_str(&format!(
                "{} paid results were spot checks or client tasks whose answer is in use as one (evidence withheld; amounts checked)\n",
                self.withheld_checks
            ));
        }
        if self.revised_payouts > 0 {
            out.push_str(&format!(
                "{} paid results agreed with a verdict since undone (a worker caught after payout)\n",
                self.revised_payouts
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

/// What the evidence of one task establishes.
#[derive(Default)]
struct TaskFacts {
    /// Worker of each signed result whose signature verifies.
    workers: HashMap<AssignmentId, AccountId>,
    /// Agreeing results by the auditor's own re-run of the vote.
    agree: HashSet<AssignmentId>,
    /// `price - fee` of one agreeing result, when the evidence was read.
    net: Option<i64>,
    /// A spot check whose evidence the market withholds.
    withheld: bool,
    /// Results that agreed with an earlier verdict, undone since.
    revised_agree: HashSet<AssignmentId>,
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
        findings: Vec::new(),
    };
    let mut tasks: HashMap<TaskId, TaskFacts> = HashMap::new();
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
                check_payout(client, record.seq, payout, &mut tasks, &mut report).await;
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
    report.tasks = tasks.len() as u64;
    report.ok = report.findings.is_empty();
    Ok(report)
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

/// Every assignment of a payout: its task verified, its result signed by
/// the payee and agreeing; the amount their `price - fee`.
async fn check_payout(
    client: &Client,
    seq: u64,
    payout: &wire::Payout,
    tasks: &mut HashMap<TaskId, TaskFacts>,
    report: &mut Report,
) {
    let at = format!("record {seq}, payout to {}", payout.account);
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
    for (a, t) in payout.assignments.iter().zip(&payout.tasks) {
        if !tasks.contains_key(t) {
            let (facts, findings) = check_task(client, *t).await;
            report.findings.extend(findings);
            tasks.insert(*t, facts);
        }
        let facts = &tasks[t];
        sum = match (sum, facts.net) {
            (Some(s), Some(n)) => s.checked_add(n),
            _ => None,
        };
        if facts.net.is_none() {
            continue; // no evidence: reported once for the task
        }
        if facts.withheld {
            report.withheld_checks += 1;
            continue;
        }
        match facts.workers.get(a) {
            None => report.findings.push(Finding::new(
                "unknown_assignment",
                format!("{at}: task {t} has no valid signed result for assignment {a}"),
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
        match client.withdrawal_evidence(*w).await {
            Err(e) => report.findings.push(Finding::new(
                "missing_evidence",
                format!("{at}: withdrawal {w}: {e}"),
            )),
            Ok(ev) => {
                report.withdrawals += 1;
                if let Err(e) = ev.verify() {
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
                "amount_mismatch",
                format!(
                    "{at}: pays {} but its assignments earned {sum} stroops",
                    payout.amount
                ),
            ));
        }
    }
}

/// Where the bid bought a confidence: every voted result's weight is the
/// credibility its recorded check record gives, and the agreeing group's
/// credibility under those weights is the recorded one and reaches the bid's.
fn check_weights(
    at: &str,
    confidence: f64,
    voted: &vote::Verdict,
    weights: &[tally_protocol::trust::Weight],
    recorded: Option<f64>,
) -> Vec<Finding> {
    use tally_protocol::trust::{credibility, weighed_credibility, ASSUMED_SABOTEURS};
    let mut findings = Vec::new();
    for w in weights {
        let expected = credibility(ASSUMED_SABOTEURS, w.checks);
        if (expected - w.credibility).abs() > 1e-9 {
            findings.push(Finding::new(
                "bad_weight",
                format!(
                    "{at}: assignment {} weighs {} but its check record ({} passed, {} failed) gives {expected}",
                    w.assignment, w.credibility, w.checks.passed, w.checks.failed
                ),
            ));
        }
    }
    for id in voted.agree.iter().chain(&voted.disagree) {
        if !weights.iter().any(|w| &w.assignment == id) {
            findings.push(Finding::new(
                "bad_weight",
                format!("{at}: voted assignment {id} has no recorded weight"),
            ));
        }
    }
    let fair: Vec<_> = weights
        .iter()
        .map(|w| tally_protocol::trust::Weight {
            credibility: credibility(ASSUMED_SABOTEURS, w.checks),
            ..w.clone()
        })
        .collect();
    let p = weighed_credibility(voted, &fair);
    match recorded {
        Some(r) if (r - p).abs() <= 1e-9 => {}
        other => findings.push(Finding::new(
            "bad_credibility",
            format!("{at}: the agreeing group's credibility is {p}, the evidence says {other:?}"),
        )),
    }
    if p < confidence {
        findings.push(Finding::new(
            "below_confidence",
            format!("{at}: verified at credibility {p}, below the bid's {confidence}"),
        ));
    }
    findings
}

/// Read and check one task's evidence: signatures, then the vote re-run.
async fn check_task(client: &Client, task: TaskId) -> (TaskFacts, Vec<Finding>) {
    let mut findings = Vec::new();
    let mut facts = TaskFacts::default();
    let ev: Evidence = match client.evidence(task).await {
        Ok(ev) if ev.task == task => ev,
        Ok(ev) => {
            findings.push(Finding::new(
                "missing_evidence",
                format!("task {task}: the evidence is for task {}", ev.task),
            ));
            return (facts, findings);
        }
        Err(e) => {
            findings.push(Finding::new(
                "missing_evidence",
                format!("task {task}: {e}"),
            ));
            return (facts, findings);
        }
    };
    let at = format!("task {task}");
    if ev.status != TaskState::Verified {
        findings.push(Finding::new(
            "unverified_task",
            format!("{at} is {}", ev.status.as_str()),
        ));
    }
    facts.net = ev
        .price
        .fee_bps(ev.fee_bps)
        .and_then(|fee| ev.price.checked_sub(fee))
        .map(|net| net.0);
    if ev.withheld {
        facts.withheld = true;
        return (facts, findings);
    }
    facts.revised_agree = ev
        .revisions
        .iter()
        .flat_map(|r| r.verdict.agree.iter().copied())
        .collect();
    let mut ballots = Vec::new();
    let mut late = Vec::new();
    for r in &ev.results {
        if let Err(e) = r.verify() {
            findings.push(Finding::new(
                "bad_result_signature",
                format!(
                    "{at}: result of assignment {} by {}: {e}",
                    r.assignment, r.worker
                ),
            ));
            continue;
        }
        let request = match r.request() {
            Ok(req) => req,
            Err(e) => {
                findings.push(Finding::new(
                    "bad_result",
                    format!("{at}: result of assignment {}: {e}", r.assignment),
                ));
                continue;
            }
        };
        facts.workers.insert(r.assignment, r.worker.clone());
        if ev.excluded.contains(&r.assignment) {
            // A worker caught before the decision: neither voted nor judged.
            continue;
        }
        let ballot = Ballot {
            assignment: r.assignment,
            detections: request.detections,
        };
        if ev.voted.contains(&r.assignment) {
            ballots.push(ballot);
        } else {
            late.push(ballot);
        }
    }
    let Some(published) = ev.verdict else {
        findings.push(Finding::new(
            "unverified_task",
            format!("{at} has no verdict"),
        ));
        return (facts, findings);
    };
    if ballots.len() != ev.voted.len() {
        findings.push(Finding::new(
            "verdict_mismatch",
            format!(
                "{at}: {} results voted but {} valid ones are published",
                ev.voted.len(),
                ballots.len()
            ),
        ));
    }
    // The market's rule, re-run: the vote on `voted`, later results judged
    // against its consensus alone.
    let mut rerun = vote::vote(&ev.params, &ballots);
    if let Some(confidence) = ev.params.confidence {
        findings.extend(check_weights(
            &at,
            confidence,
            &rerun,
            &ev.weights,
            ev.credibility,
        ));
    }
    for b in &late {
        if vote::agrees(&ev.params, &rerun.consensus, &b.detections) {
            rerun.agree.push(b.assignment);
        } else {
            rerun.disagree.push(b.assignment);
        }
    }
    rerun.agree.sort();
    rerun.disagree.sort();
    if !rerun.is_verified(&ev.params) {
        findings.push(Finding::new(
            "unverified_task",
            format!(
                "{at}: the re-run vote has {} agreeing results, quorum {}",
                rerun.agree.len(),
                ev.params.quorum
            ),
        ));
    }
    for (what, same) in [
        ("consensus", rerun.consensus == published.consensus),
        ("agree list", rerun.agree == published.agree),
        ("disagree list", rerun.disagree == published.disagree),
    ] {
        if !same {
            findings.push(Finding::new(
                "verdict_mismatch",
                format!("{at}: the published {what} is not what the vote gives"),
            ));
        }
    }
    facts.agree = rerun.agree.into_iter().collect();
    (facts, findings)
}
