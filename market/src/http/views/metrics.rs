//! `GET /metrics`: the market's counters and gauges in the Prometheus text
//! format, from one table.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::error::Result;
use crate::Market;

/// `GET /metrics` in the Prometheus text format.
pub async fn metrics(m: &Market) -> Result<String> {
    let stats = super::market_stats(m).await?;
    let c = &m.metrics;
    let counters: [(&str, &str, u64); 17] = [
        ("requests_total", "HTTP requests served.", c.requests.load(Ordering::Relaxed)),
        ("bids_total", "Bids accepted.", c.bids.load(Ordering::Relaxed)),
        ("claims_total", "Assignments handed out.", c.claims.load(Ordering::Relaxed)),
        ("claim_looks_total", "Looks for work by claims, those that found nothing included.", c.claim_looks.load(Ordering::Relaxed)),
        ("db_retries_total", "Transactions the database aborted (deadlock, serialization failure) and the market ran again.", m.db.retries()),
        ("db_statements_total", "Statements sent to the database by this process.", crate::db::statements()),
        ("results_total", "Results received.", c.results.load(Ordering::Relaxed)),
        ("failures_total", "Failures reported by workers.", c.failures.load(Ordering::Relaxed)),
        ("tasks_verified_total", "Tasks verified by the vote.", c.verified.load(Ordering::Relaxed)),
        ("tasks_failed_total", "Tasks failed without a verdict.", c.failed.load(Ordering::Relaxed)),
        ("tasks_to_review_total", "Tasks without consensus sent to human review.", c.to_review.load(Ordering::Relaxed)),
        ("tasks_reviewed_total", "Tasks verified by human reviews.", c.reviewed.load(Ordering::Relaxed)),
        ("reviews_total", "Reviews answered.", c.reviews.load(Ordering::Relaxed)),
        ("leases_expired_total", "Leases that ran out.", c.expired.load(Ordering::Relaxed)),
        ("paid_results_total", "Agreeing results paid.", c.paid_results.load(Ordering::Relaxed)),
        ("settlements_total", "Settlement records written.", c.settlements.load(Ordering::Relaxed)),
        ("replays_total", "Replayed requests refused.", c.replays.load(Ordering::Relaxed)),
    ];
    let mut out = String::new();
    for (name, help, v) in counters {
        let _ = writeln!(
            out,
            "# HELP tally_{name} {help}\n# TYPE tally_{name} counter\ntally_{name} {v}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP tally_tasks Tasks by state.\n# TYPE tally_tasks gauge"
    );
    for (state, n) in [
        ("open", stats.open_tasks),
        ("running", stats.running_tasks),
        ("verified", stats.verified_tasks),
        ("failed", stats.failed_tasks),
        ("review", stats.review_tasks),
    ] {
        let _ = writeln!(out, "tally_tasks{{state=\"{state}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP tally_workers_online Workers seen in the last minute.\n# TYPE tally_workers_online gauge\ntally_workers_online {}",
        stats.workers_online
    );
    let _ = writeln!(
        out,
        "# HELP tally_claims_waiting Claims long-polling for work.\n# TYPE tally_claims_waiting gauge\ntally_claims_waiting {}",
        m.waiters.len()
    );
    Ok(out)
}
