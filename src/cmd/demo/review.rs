//! `tally demo --review`: human review on this machine. Two workers that
//! never agree (one honest running the real detector, one faulty), a bid
//! that pays for review, so every task goes to review; two reviewers the
//! operator marks verified through the API each take the next review, run
//! the same detector on the image themselves and pick the candidate that
//! agrees with what they see. Then who was paid for each reviewed task,
//! and the audit, which checks the signed reviews and the operator's marks.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tally_protocol::vote;
use tally_protocol::wire::{BidRequest, Evidence, ReviewRequest};
use tally_protocol::{AccountId, AssignmentId, Client, Signer, Stroops, TaskId};
use tally_worker::Detector;
use tokio::sync::watch;

use super::{
    bid_until_done, exit_code, funded_client, labels_of, Outcome, Paid, Sample, Workers, PRICE,
};
use crate::cli::DemoArgs;
use crate::local::LocalMarket;

/// Stroops per review, fee included.
const REVIEW_PRICE: i64 = 4_000;

/// The review demo: every task goes to review, two scripted reviewers decide.
pub(super) async fn run(args: DemoArgs, started: Instant) -> anyhow::Result<ExitCode> {
    let sample = Sample::load(&args.backend)?;
    let n = sample.images.len() as i64;
    // No spot checks: they would bar the faulty worker at once, and the
    // honest one alone could not fill a task's second replica.
    let lm = LocalMarket::start("sqlite", |c| {
        c.settle_every = Duration::from_secs(1);
        c.lease = Duration::from_secs(60);
    })
    .await?;
    // Each task reserves two replicas and every review it may need.
    let per_task = PRICE * 2 + REVIEW_PRICE * i64::from(tally_protocol::review::MAX_REVIEWS);
    let (client, model) = funded_client(&lm, per_task * n, &sample.model_bytes).await?;
    let mut workers = Workers::start(&lm, &model, &sample, [false, true])?;
    workers.ready(&lm).await?;
    let reviewers = [Signer::generate(), Signer::generate()];
    let reviewing = start_reviewers(&lm, &sample, &reviewers, workers.stopping()).await?;

    let req = BidRequest {
        replicas: Some(2),
        quorum: Some(2),
        max_replicas: Some(2),
        deadline_secs: 600,
        review_price: Some(Stroops(REVIEW_PRICE)),
        ..BidRequest::new(model, Stroops(PRICE))
    };
    let status = bid_until_done(&lm, &client, req, &sample, !args.json, &mut workers).await?;
    let mut answered = 0usize;
    for h in reviewing {
        answered += h.await.context("a reviewer crashed")??;
    }
    tally_market::settle::settle_now(&lm.market).await?;
    let report = crate::audit::audit(&lm.client(Signer::generate())).await?;
    let records = client.settlements(0).await?.records;
    let mut evidence: Vec<Evidence> = Vec::new();
    for t in &status.tasks {
        evidence.push(client.evidence(t.task).await?);
    }
    let out = Outcome {
        status: &status,
        records: &records,
        report: &report,
        paid: Paid::count(&records, &workers),
        seconds: started.elapsed().as_secs_f64(),
    };
    let who = Who {
        workers: &workers,
        reviewers: &reviewers,
    };
    let ok = show(&out, &who, &sample, &evidence, answered, args.json);
    lm.finish().await?;
    Ok(exit_code(ok))
}

/// Mark two reviewers verified (the operator's signed marks) and start
/// them, with the sample detector, until `stop`.
async fn start_reviewers(
    lm: &LocalMarket,
    sample: &Sample,
    reviewers: &[Signer],
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<anyhow::Result<usize>>>> {
    let operator = lm.client(lm.operator.clone());
    for r in reviewers {
        operator
            .mark_reviewer(r.account(), true)
            .await
            .context("marking a reviewer verified")?;
    }
    let detector = {
        let (bytes, backend) = (sample.model_bytes.clone(), sample.backend);
        tokio::task::spawn_blocking(move || Detector::from_bytes(&bytes, backend, 1))
            .await
            .context("loading the model crashed")?
            .map_err(|e| {
                anyhow::anyhow!("the reviewers' detector: {}", tally_worker::one_line(&e))
            })?
    };
    let detector = Arc::new(detector);
    let mut reviewing = Vec::new();
    for r in reviewers {
        let c = lm.client(r.clone());
        let (d, stop) = (Arc::clone(&detector), stop.clone());
        reviewing.push(tokio::spawn(reviewer(c, d, stop)));
    }
    Ok(reviewing)
}

/// Who is who in the review demo.
struct Who<'a> {
    workers: &'a Workers,
    reviewers: &'a [Signer],
}

impl Who<'_> {
    /// `honest worker 1a2b3c4d…`, `reviewer 2 …`, or the account's start.
    fn role(&self, a: &AccountId) -> String {
        if let Some((s, f, _)) = self.workers.list.iter().find(|(s, _, _)| s.account() == a) {
            let kind = if *f { "faulty worker" } else { "honest worker" };
            return format!("{kind} {}…", &s.account().as_str()[..8]);
        }
        match self.reviewers.iter().position(|r| r.account() == a) {
            Some(i) => format!("reviewer {} {}…", i + 1, &a.as_str()[..8]),
            None => format!("{}…", &a.as_str()[..8]),
        }
    }
}

/// Print the review demo's outcome (JSON or text); whether it went as it
/// should: every task verified by review, audited, the faulty worker
/// unpaid and the reviewers paid.
fn show(
    out: &Outcome,
    who: &Who,
    sample: &Sample,
    evidence: &[Evidence],
    answered: usize,
    json: bool,
) -> bool {
    let review_paid: i64 = out
        .records
        .iter()
        .flat_map(|r| &r.payouts)
        .filter(|p| who.reviewers.iter().any(|s| s.account() == &p.account))
        .map(|p| p.amount.0)
        .sum();
    let reviewed = evidence.iter().filter(|e| e.review.is_some()).count();
    let (verified, labels) = super::verified_labels(out.status);
    if json {
        println!(
            "{}",
            json!({
                "tasks": out.status.tasks.len(), "verified": verified, "labels": labels,
                "payouts": out.paid.payouts, "paid": out.paid.paid, "faulty_paid": out.paid.faulty_paid,
                "audit_ok": out.report.ok, "seconds": out.seconds,
                "reviewed": reviewed, "review_paid": review_paid, "reviews": answered,
                "findings": out.report.findings,
                "tx_hashes": out.records.iter().map(|r| r.tx_hash.clone()).collect::<Vec<_>>(),
            })
        );
    } else {
        println!(
            "\nThe honest and the faulty worker disagreed on every image; {} and {} (marked verified by the operator) each ran the detector on it and picked the candidate that agrees.",
            who.role(who.reviewers[0].account()),
            who.role(who.reviewers[1].account())
        );
        println!(
            "\nReviewed tasks ({reviewed}/{} decided by review, {verified} verified; {answered} reviews answered):",
            out.status.tasks.len()
        );
        print_reviewed(out.records, who, sample, evidence);
        println!(
            "\n{review_paid} stroops settled to reviewers, {} to the faulty worker, {} in all",
            out.paid.faulty_paid, out.paid.paid
        );
        super::print_ending(out.records, out.report, out.seconds);
    }
    out.report.ok
        && verified == out.status.tasks.len()
        && reviewed == out.status.tasks.len()
        && out.paid.faulty_paid == 0
        && review_paid > 0
}

/// Each task's answer, how it was decided, and who was paid for it.
fn print_reviewed(
    records: &[tally_protocol::wire::SettlementRecord],
    who: &Who,
    sample: &Sample,
    evidence: &[Evidence],
) {
    let mut paid_for: HashMap<TaskId, Vec<(AssignmentId, AccountId)>> = HashMap::new();
    for p in records.iter().flat_map(|r| &r.payouts) {
        for (a, t) in p.assignments.iter().zip(&p.tasks) {
            paid_for
                .entry(*t)
                .or_default()
                .push((*a, p.account.clone()));
        }
    }
    for (i, ev) in evidence.iter().enumerate() {
        let answer = match &ev.verdict {
            Some(v) if v.consensus.is_empty() => "nothing".to_string(),
            Some(v) => labels_of(&v.consensus),
            None => "-".to_string(),
        };
        let how = if ev.review.is_some() {
            "reviewed"
        } else {
            "voted"
        };
        println!(
            "  {:<12} {:<9} {how:<8} {answer}",
            sample.name(i),
            ev.status.as_str()
        );
        let net = |price: Option<Stroops>| {
            price
                .and_then(|p| p.fee_bps(ev.fee_bps).and_then(|f| p.checked_sub(f)))
                .map_or(0, |s| s.0)
        };
        // In assignment order: the workers' results, then the reviews.
        let mut paid_here = paid_for.get(&ev.task).cloned().unwrap_or_default();
        paid_here.sort_by_key(|(a, _)| *a);
        for (a, whom) in &paid_here {
            let amount = if ev.reviews.iter().any(|r| r.review == *a) {
                net(ev.review_price)
            } else {
                net(Some(ev.price))
            };
            println!(
                "  {:<12} settled {amount:>6} stroops to {}",
                "",
                who.role(whom)
            );
        }
        for (s, _, _) in who.workers.list.iter().filter(|(_, f, _)| *f) {
            if !paid_here.iter().any(|(_, whom)| whom == s.account()) {
                println!(
                    "  {:<12} settled      0 stroops to {}",
                    "",
                    who.role(s.account())
                );
            }
        }
    }
}

/// A scripted reviewer: takes the next review until told to stop, looks
/// at the image with its own detector and picks the candidate that agrees
/// best with what it sees (its own detections when none does). Returns how
/// many reviews it answered.
async fn reviewer(
    client: Client,
    detector: Arc<Detector>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<usize> {
    let mut answered = 0;
    loop {
        if *stop.borrow() {
            return Ok(answered);
        }
        // Wait on the market's long poll for work, or for the demo to end.
        let next = tokio::select! {
            r = client.next_review_wait(5_000) => r,
            _ = stop.changed() => return Ok(answered),
        };
        let ticket = match next {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!("next review: {e}");
                let _ = tokio::time::timeout(Duration::from_millis(500), stop.changed()).await;
                continue;
            }
        };
        let image = client
            .input(&ticket.input)
            .await
            .with_context(|| format!("the image of review {}", ticket.review))?;
        let d = Arc::clone(&detector);
        let seen = tokio::task::spawn_blocking(move || d.detect(&image))
            .await
            .context("inference crashed")?
            .map_err(|e| {
                anyhow::anyhow!("review {}: {}", ticket.review, tally_worker::one_line(&e))
            })?
            .detections;
        let params = ticket.params;
        let detections = ticket
            .candidates
            .iter()
            .filter(|c| vote::agrees(&params, &seen, &c.detections))
            .max_by(|a, b| {
                let f = |c: &&tally_protocol::wire::ReviewCandidate| {
                    vote::f1(&params, &seen, &c.detections)
                };
                f(a).total_cmp(&f(b))
            })
            .map(|c| c.detections.clone())
            .unwrap_or(seen);
        match client
            .submit_review(ticket.review, &ReviewRequest { detections })
            .await
        {
            Ok(_) => answered += 1,
            // Decided meanwhile by the other reviewers: nothing to do.
            Err(e) => tracing::warn!("review {}: {e}", ticket.review),
        }
    }
}
