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
mod payouts;
mod records;
pub(crate) mod review;

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use serde::Serialize;
use tally_protocol::wire;
use tally_protocol::{Client, Domain, TaskId};
use tally_settlement::{Asset, ChainChecker, Finding, Network, PublicKey};

use evidence::TaskFacts;
use payouts::missing_payouts;
use records::Walk;
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
    let checker = ChainChecker::new()
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
    let mut walk = Walk::new(checker);
    walk.all(&mut ctx, &mut report).await?;
    report.tasks = ctx.tasks.len() as u64;
    let missing = missing_payouts(&ctx, &walk.record_times).await;
    report.findings.extend(missing);
    report.ok = report.findings.is_empty();
    Ok(report)
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
