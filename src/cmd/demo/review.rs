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
use tally_protocol::{AccountId, AssignmentId, Client, Detection, Signer, Stroops, TaskId};
use tally_worker::Detector;
use tokio::sync::watch;

use super::{progress, spawn_worker, Sample, PRICE};
use crate::cli::DemoArgs;
use crate::local::LocalMarket;

/// Stroops per review, fee included.
const REVIEW_PRICE: i64 = 4_000;

pub(super) async fn run(args: DemoArgs, started: Instant) -> anyhow::Result<ExitCode> {
    let sample = Sample::load(&args)?;
    let n = sample.images.len() as i64;
    // No spot checks: they would bar the faulty worker at once, and the
    // honest one alone could not fill a task's second replica.
    let lm = LocalMarket::start("sqlite", |c| {
        c.settle_every = Duration::from_secs(1);
        c.lease = Duration::from_secs(60);
    })
    .await?;
    let operator = lm.client(lm.operator.clone());
    let client = lm.client(Signer::generate());
    // Each task reserves two replicas and every review it may need.
    let per_task = PRICE * 2 + REVIEW_PRICE * i64::from(tally_protocol::review::MAX_REVIEWS);
    operator
        .credit(client.signer().unwrap().account(), Stroops(per_task * n))
        .await?;
    let model = client.upload_model(sample.model_bytes.clone()).await?.model;

    let (stop_tx, stop_rx) = watch::channel(false);
    let dirs = tempfile::tempdir()?;
    let mut workers = Vec::new();
    for (i, faulty) in [(0, false), (1, true)] {
        let dir = dirs.path().join(format!("worker-{i}"));
        let (signer, handle) = spawn_worker(&lm, &model, &sample, dir, faulty, stop_rx.clone())?;
        workers.push((signer, faulty, handle));
    }

    // Two reviewers, verified by the operator's signed marks.
    let reviewers = [Signer::generate(), Signer::generate()];
    for r in &reviewers {
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
    for r in &reviewers {
        let c = lm.client(r.clone());
        let (d, stop) = (Arc::clone(&detector), stop_rx.clone());
        reviewing.push(tokio::spawn(reviewer(c, d, stop)));
    }

    let req = BidRequest {
        replicas: Some(2),
        quorum: Some(2),
        max_replicas: Some(2),
        deadline_secs: 600,
        review_price: Some(Stroops(REVIEW_PRICE)),
        ..BidRequest::new(model, Stroops(PRICE))
    };
    let created = client
        .bid_images(req, &sample.images)
        .await
        .context("posting the bid")?;
    let status = progress(&lm, &client, created.bid, !args.json).await?;
    stop_tx.send_replace(true);
    for (_, _, h) in workers.iter_mut() {
        let _ = h.await;
    }
    let mut answered = 0usize;
    for h in reviewing {
        answered += h.await.context("a reviewer crashed")??;
    }
    tally_market::settle::settle_now(&lm.market).await?;
    let report = crate::audit::audit(&lm.client(Signer::generate())).await?;
    let records = client.settlements(0).await?.records;

    // Who was paid, per task and in all.
    let role = |a: &AccountId| -> String {
        if let Some((s, f, _)) = workers.iter().find(|(s, _, _)| s.account() == a) {
            let kind = if *f { "faulty worker" } else { "honest worker" };
            return format!("{kind} {}…", &s.account().as_str()[..8]);
        }
        match reviewers.iter().position(|r| r.account() == a) {
            Some(i) => format!("reviewer {} {}…", i + 1, &a.as_str()[..8]),
            None => format!("{}…", &a.as_str()[..8]),
        }
    };
    let mut paid_for: HashMap<TaskId, Vec<(AssignmentId, AccountId)>> = HashMap::new();
    let (mut paid, mut faulty_paid, mut review_paid, mut payouts) = (0i64, 0i64, 0i64, 0usize);
    for r in &records {
        for p in &r.payouts {
            payouts += 1;
            paid += p.amount.0;
            if workers
                .iter()
                .any(|(s, f, _)| *f && s.account() == &p.account)
            {
                faulty_paid += p.amount.0;
            }
            if reviewers.iter().any(|s| s.account() == &p.account) {
                review_paid += p.amount.0;
            }
            for (a, t) in p.assignments.iter().zip(&p.tasks) {
                paid_for
                    .entry(*t)
                    .or_default()
                    .push((*a, p.account.clone()));
            }
        }
    }
    let mut evidence: Vec<Evidence> = Vec::new();
    for t in &status.tasks {
        evidence.push(client.evidence(t.task).await?);
    }
    let reviewed = evidence.iter().filter(|e| e.review.is_some()).count();
    let (verified, labels) = super::verified_labels(&status);
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        println!(
            "{}",
            json!({
                "tasks": status.tasks.len(), "verified": verified, "labels": labels,
                "payouts": payouts, "paid": paid, "faulty_paid": faulty_paid,
                "audit_ok": report.ok, "seconds": seconds,
                "reviewed": reviewed, "review_paid": review_paid, "reviews": answered,
                "findings": report.findings,
                "tx_hashes": records.iter().map(|r| r.tx_hash.clone()).collect::<Vec<_>>(),
            })
        );
    } else {
        println!(
            "\nThe honest and the faulty worker disagreed on every image; {} and {} (marked verified by the operator) each ran the detector on it and picked the candidate that agrees.",
            role(reviewers[0].account()),
            role(reviewers[1].account())
        );
        println!(
            "\nReviewed tasks ({reviewed}/{} decided by review, {verified} verified; {answered} reviews answered):",
            status.tasks.len()
        );
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
            for (a, who) in &paid_here {
                let amount = if ev.reviews.iter().any(|r| r.review == *a) {
                    net(ev.review_price)
                } else {
                    net(Some(ev.price))
                };
                println!("  {:<12} settled {amount:>6} stroops to {}", "", role(who));
            }
            for (s, _, _) in workers.iter().filter(|(_, f, _)| *f) {
                if !paid_here.iter().any(|(_, who)| who == s.account()) {
                    println!(
                        "  {:<12} settled      0 stroops to {}",
                        "",
                        role(s.account())
                    );
                }
            }
        }
        println!(
            "\n{review_paid} stroops settled to reviewers, {faulty_paid} to the faulty worker, {paid} in all"
        );
        super::print_ending(&records, &report, seconds);
    }
    lm.finish().await?;
    let ok = report.ok
        && verified == status.tasks.len()
        && reviewed == status.tasks.len()
        && faulty_paid == 0
        && review_paid > 0;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `dog 0.83, person 0.71`
fn labels_of(dets: &[Detection]) -> String {
    dets.iter()
        .map(|d| format!("{} {:.2}", d.label, d.score))
        .collect::<Vec<_>>()
        .join(", ")
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
