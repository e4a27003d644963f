//! `tally serve`: run the market until SIGINT or SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tally_market::{Config, Market};
use tally_protocol::Signer;

use crate::cli::ServeArgs;

/// Serve the market the flags describe until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = config(&args).await?;
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

/// The market's configuration from the flags, each checked, with what the
/// operator should know about it logged.
async fn config(args: &ServeArgs) -> anyhow::Result<Config> {
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
    if !config.submits() {
        tracing::warn!(
            "no --horizon or --rpc: no chain server, so settlement records are written and \
             signed but never submitted, and nothing is paid on the network (records show \
             \"not_submitted\"); deposits are not followed either"
        );
    }
    anyhow::ensure!(
        args.check_price_cap > 0,
        "--check-price-cap must be a positive number of stroops"
    );
    config.check_price_cap = tally_protocol::Stroops(args.check_price_cap);
    anyhow::ensure!(
        args.check_budget >= 0,
        "--check-budget must be a number of stroops, 0 or more"
    );
    config.check_budget = tally_protocol::Stroops(args.check_budget);
    config.publish_every = Duration::from_secs(args.publish_every_secs);
    spot_checks(args, &mut config).await?;
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.check_rate),
        "--check-rate must be between 0 and 1"
    );
    config.check_rates = tally_market::checks::CheckRates::scaled(args.check_rate);
    config.holdback = std::time::Duration::from_secs(args.holdback_secs);
    Ok(config)
}

/// The golden set and the oracle that answers its variants, with `--golden`;
/// without, a warning that plain voting decides.
async fn spot_checks(args: &ServeArgs, config: &mut Config) -> anyhow::Result<()> {
    if let Some(dir) = &args.golden {
        config.golden =
            tally_market::checks::load_golden(dir).map_err(|e| anyhow::anyhow!("--golden: {e}"))?;
        config.oracle = Some(crate::oracle::SandboxOracle::start(args.check_backend).await?);
        tracing::info!(
            images = config.golden.items.len(),
            dir = %dir.display(),
            "spot checks: fresh variants of the golden images, answered by the market's detector"
        );
        tracing::info!(
            cap = args.check_price_cap,
            "spot checks are paid by the bids they protect: each task of a bid reserves two more \
             executions as its verification share (refunded when unspent); when a bid's share is \
             spent, the operator's fees pay, then its own balance; a check pays the displaced \
             task's price, capped at twice the model's median verified price and at the cap"
        );
        tracing::info!(
            every_secs = args.publish_every_secs,
            "decided tasks' evidence is published in batches; earnings settle once published"
        );
    } else {
        tracing::warn!(
            "no --golden set: no spot checks, so credibility cannot be earned and plain voting \
             decides (3 replicas, quorum 2): two colluding identities can decide any task. \
             Run with --golden DIR (private images) to weigh results by checked credibility"
        );
    }
    Ok(())
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
