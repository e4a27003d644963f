//! `tally serve`: run the market until SIGINT or SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tally_market::{Config, Market};
use tally_protocol::Signer;

use crate::cli::ServeArgs;

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let operator = Signer::load(&args.operator_key).context("--operator-key")?;
    let mut config = Config::new(&args.db, operator);
    config.network = super::network_passphrase(&args.network);
    config.asset = args.asset.clone();
    config.fee_bps = args.fee_bps;
    anyhow::ensure!(args.fee_bps <= 10_000, "--fee-bps must be at most 10000");
    config.lease = Duration::from_secs(args.lease_secs.max(1));
    config.settle_every = super::parse_duration(&args.settle_every).context("--settle-every")?;
    anyhow::ensure!(
        (1..=100).contains(&args.settle_max_ops),
        "--settle-max-ops must be between 1 and 100 (a Stellar transaction holds at most 100 operations)"
    );
    config.settle_max_ops = args.settle_max_ops;
    config.horizon = args.horizon.clone();
    config.rpc = args.rpc.clone();
    if let Some(dir) = &args.golden {
        config.golden =
            tally_market::checks::load_golden(dir).map_err(|e| anyhow::anyhow!("--golden: {e}"))?;
        tracing::info!(
            images = config.golden.items.len(),
            dir = %dir.display(),
            "spot checks: golden set loaded"
        );
    }
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.check_rate),
        "--check-rate must be between 0 and 1"
    );
    config.check_rates.new = args.check_rate;
    config.check_rates.trusted = (args.check_rate / 5.0).min(args.check_rate);
    config.holdback = std::time::Duration::from_secs(args.holdback_secs);
    let market = Market::open(config)
        .await
        .with_context(|| format!("opening the database {}", args.db))?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        db = market.db.engine(),
        operator = %market.config.operator.account(),
        fee_bps = market.config.fee_bps,
        "market serving"
    );
    spawn_self_audit(&market, addr, Duration::from_secs(args.audit_every_secs));
    tally_market::serve(listener, market, super::shutdown_signal()).await?;
    tracing::info!("market stopped");
    Ok(ExitCode::SUCCESS)
}

/// Every `every` (the first time soon after start), run the same checks as
/// `tally audit` against this market over its own HTTP API and keep the
/// report for `GET /v1/audit` (the console shows it).
fn spawn_self_audit(market: &std::sync::Arc<Market>, addr: std::net::SocketAddr, every: Duration) {
    if every.is_zero() {
        return;
    }
    let m = std::sync::Arc::clone(market);
    tokio::spawn(async move {
        let url = format!("http://{addr}");
        let client = tally_protocol::Client::new(&url, None);
        let mut shutdown = m.shutdown_signal();
        let mut wait = Duration::from_secs(5);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            wait = every;
            match crate::audit::audit(&client).await {
                Ok(report) => {
                    if !report.ok {
                        tracing::error!(
                            findings = report.findings.len(),
                            "the market's own audit found discrepancies"
                        );
                    }
                    let summary = report.to_wire();
                    *m.audit.lock().expect("audit report") = Some(summary);
                }
                Err(e) => tracing::warn!(error = %e, "the market's own audit could not run"),
            }
        }
    });
}
