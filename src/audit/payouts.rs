//! The audit's payout checks: every paid assignment's task verified and its
//! result (or review) signed by the payee and agreeing, every withdrawal
//! asked for by the payee, each payout's amount the sum of what it pays
//! for; and every agreeing result paid in time ([`missing_payouts`]).

use std::collections::HashMap;

use tally_protocol::wire;
use tally_protocol::{AssignmentId, TaskId};
use tally_settlement::Finding;

use super::evidence::{check_task, TaskFacts};
use super::review::{self, ReviewFact, ReviewFacts};
use super::{Ctx, Report};

/// A payout under check: where it is (for findings), what it pays, and
/// what its assignments and withdrawals add up to so far.
struct PayoutCheck<'a> {
    at: String,
    record: &'a wire::SettlementRecord,
    payout: &'a wire::Payout,
    /// `None` when a part cannot be known (reported once elsewhere) or the
    /// sum overflows.
    sum: Option<i64>,
    /// Whether it pays for reviews (its amount finding is `review_amount`).
    has_reviews: bool,
}

impl PayoutCheck<'_> {
    /// Add a part of the payout to the sum.
    fn add(&mut self, net: Option<i64>) {
        self.sum = self.sum.zip(net).and_then(|(s, n)| s.checked_add(n));
    }
}

/// Every assignment of a payout: its task verified, and either its result
/// signed by the payee and agreeing, or its review signed by the payee,
/// deciding and by a reviewer verified then; the amount the sum of their
/// `price - fee` (`review_price - fee` for reviews).
pub(super) async fn check_payout(
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
    let mut pc = PayoutCheck {
        at,
        record,
        payout,
        sum: Some(0),
        has_reviews: false,
    };
    for (a, t) in payout.assignments.iter().zip(&payout.tasks) {
        check_assignment(ctx, &mut pc, *a, *t, report).await;
    }
    check_withdrawals(ctx, &mut pc, report).await;
    if let Some(sum) = pc.sum {
        if sum != payout.amount.0 {
            report.findings.push(Finding::new(
                if pc.has_reviews {
                    "review_amount"
                } else {
                    "amount_mismatch"
                },
                format!(
                    "{}: pays {} but its assignments earned {sum} stroops",
                    pc.at, payout.amount
                ),
            ));
        }
    }
}

/// One paid assignment of task `t`: its task's evidence checked (once per
/// task), then the result or the review it pays for.
async fn check_assignment(
    ctx: &mut Ctx<'_>,
    pc: &mut PayoutCheck<'_>,
    a: AssignmentId,
    t: TaskId,
    report: &mut Report,
) {
    ctx.paid.insert(a);
    if !ctx.tasks.contains_key(&t) {
        let (facts, findings) = check_task(ctx.client, &ctx.domain, t).await;
        report.findings.extend(findings);
        ctx.tasks.insert(t, facts);
    }
    let facts = &ctx.tasks[&t];
    if facts.net.is_none() {
        pc.sum = None;
        return; // no evidence: reported once for the task
    }
    if facts.withheld {
        pc.add(facts.net);
        report.withheld_checks += 1;
        return;
    }
    if !facts.workers.contains_key(&a) {
        if let Some(review) = facts.reviews.reviews.get(&a).cloned() {
            // A paid review (the reviews' facts are the task's).
            let reviews = facts.reviews.clone();
            check_review(ctx, pc, (a, t), &review, &reviews, report).await;
            return;
        }
    }
    pc.add(facts.net);
    check_result(pc, facts, a, t, report);
}

/// A paid review `a` of task `t`: priced, signed by the payee, deciding,
/// by a reviewer verified then.
async fn check_review(
    ctx: &mut Ctx<'_>,
    pc: &mut PayoutCheck<'_>,
    (a, t): (AssignmentId, TaskId),
    review: &ReviewFact,
    reviews: &ReviewFacts,
    report: &mut Report,
) {
    pc.has_reviews = true;
    report.reviews += 1;
    if reviews.net.is_none() {
        report.findings.push(Finding::new(
            "review_amount",
            format!(
                "{}: review {a} of task {t} is paid, but its bid has no review price",
                pc.at
            ),
        ));
    }
    pc.add(reviews.net);
    let operator = pc.record.source.clone();
    let found = match ctx.marks(report).await {
        Some(marks) => review::check_paid_review(
            &pc.at,
            a,
            &pc.payout.account,
            review,
            reviews,
            marks,
            &operator,
        ),
        None => Vec::new(), // the marks are missing: reported once
    };
    report.findings.extend(found);
}

/// A paid result `a` of task `t`: signed by the payee, agreeing with the
/// consensus (or with one since undone: a revised payout).
fn check_result(
    pc: &PayoutCheck<'_>,
    facts: &TaskFacts,
    a: AssignmentId,
    t: TaskId,
    report: &mut Report,
) {
    let at = &pc.at;
    match facts.workers.get(&a) {
        None => report.findings.push(Finding::new(
            "unknown_assignment",
            format!("{at}: task {t} has no valid signed result or review for assignment {a}"),
        )),
        Some(w) if w != &pc.payout.account => report.findings.push(Finding::new(
            "wrong_worker",
            format!("{at}: assignment {a} was done by {w}"),
        )),
        Some(_) => {}
    }
    if !facts.agree.contains(&a) && facts.revised_agree.contains(&a) {
        report.revised_payouts += 1;
    } else if !facts.agree.contains(&a) {
        report.findings.push(Finding::new(
            "not_agreeing",
            format!("{at}: assignment {a} does not agree with the consensus of task {t}"),
        ));
    }
}

/// The payout's withdrawals: each one's evidence signed on this market and
/// asked for by the payee; their amounts added to the sum.
async fn check_withdrawals(ctx: &Ctx<'_>, pc: &mut PayoutCheck<'_>, report: &mut Report) {
    let at = pc.at.clone();
    for w in &pc.payout.withdrawals {
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
                if ev.account != pc.payout.account {
                    report.findings.push(Finding::new(
                        "wrong_account",
                        format!("{at}: withdrawal {w} was asked for by {}", ev.account),
                    ));
                }
                pc.sum = pc.sum.and_then(|s| s.checked_add(ev.amount.0));
            }
        }
    }
}

/// Records written after an agreeing result was due before its absence
/// from every payout is a finding.
const PAYOUT_WITHIN_RECORDS: usize = 3;

/// Every agreeing result of a task the audit checked is paid: once its
/// task is public (and its probation over, where its worker was on
/// probation when it sent it), within [`PAYOUT_WITHIN_RECORDS`] records;
/// except a caught worker's, whose earnings are forfeit.
pub(super) async fn missing_payouts(
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
