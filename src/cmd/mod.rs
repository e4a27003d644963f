//! What each subcommand does.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::cli::{Cli, Command, KeysCommand};

pub mod account;
pub mod assets;
pub mod audit;
pub mod bench;
pub mod bid;
pub mod demo;
pub mod detect;
pub mod keys;
pub mod review;
pub mod serve;
pub mod work;

/// Logs go to stderr, coloured only on a terminal (a log file or pipe gets
/// plain text); `RUST_LOG` overrides the level.
pub fn init_logging(verbose: u8, quiet: bool) {
    let default = match verbose {
        0 if quiet => "warn,ort=error,tract=error",
        0 => "info,sqlx=warn,ort=warn,tract=warn",
        1 => "debug,sqlx=warn,hyper=info",
        _ => "trace",
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Run one command; the exit code says whether it succeeded.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Keys(KeysCommand::Generate { out }) => keys::generate(out.as_deref()),
        Command::Keys(KeysCommand::Address { key }) => keys::address(&key),
        Command::Account(args) => account::show(args).await,
        Command::Withdraw(args) => account::withdraw(args).await,
        Command::Review(args) => review::run(args).await,
        Command::Admin(cmd) => account::admin(cmd).await,
        Command::Serve(args) => serve::run(args).await,
        Command::Work(args) => work::run(args).await,
        Command::Bid(args) => bid::run(args).await,
        Command::Assets(cmd) => assets::run(cmd).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Bench(args) => bench::run(args.which).await,
        Command::Detect(args) => detect::run(args).await,
        Command::Audit(args) => audit::run(args).await,
        Command::InferChild(_) => bail!("the inference child runs only as a worker's child"),
    }
}

/// Parse `10s`, `500ms`, `2m`, `1h` or plain seconds.
impl crate::cli::MarketKey {
    /// A client of `--market` signing with `--key`.
    pub fn client(&self) -> anyhow::Result<tally_protocol::Client> {
        use anyhow::Context as _;
        let signer = tally_protocol::Signer::load(&self.key).context("--key")?;
        Ok(tally_protocol::Client::new(&self.market, Some(signer)))
    }
}

pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .with_context(|| format!("{s:?} is not a duration like 10s or 500ms"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => bail!("{s:?} is not a duration like 10s or 500ms"),
    })
}

/// Resolve `testnet`, `public` or a passphrase.
pub fn network_passphrase(s: &str) -> String {
    match s {
        "testnet" => "Test SDF Network ; September 2015".into(),
        "public" | "mainnet" | "pubnet" => "Public Global Stellar Network ; September 2015".into(),
        other => other.into(),
    }
}

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// An error as one line for the terminal: its chain of causes, with the
/// ways of not reaching a market said plainly (once, with what to try)
/// instead of the HTTP stack's nested messages.
pub fn explain(e: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in e.chain() {
        let http = cause.downcast_ref::<reqwest::Error>().or_else(|| {
            match cause.downcast_ref::<tally_protocol::Error>() {
                Some(tally_protocol::Error::Http(h)) => Some(h),
                _ => None,
            }
        });
        if let Some(h) = http {
            parts.push(unreachable(h));
            break;
        }
        parts.push(cause.to_string());
    }
    parts.join(": ")
}

/// What a failed request to a market means, in words a user can act on.
fn unreachable(e: &reqwest::Error) -> String {
    let market = e
        .url()
        .map(|u| format!("{}://{}", u.scheme(), u.authority()))
        .unwrap_or_else(|| "the market".into());
    // The innermost cause says what happened (refused, timed out, TLS).
    let mut root: &dyn std::error::Error = e;
    let mut all = Vec::new();
    while let Some(next) = root.source() {
        all.push(next.to_string());
        root = next;
    }
    let why = root.to_string();
    let said = all.join(" ");
    if e.is_builder() {
        return format!(
            "--market is not a market URL ({why}); give one like http://127.0.0.1:8080"
        );
    }
    if said.contains("InvalidContentType") || said.contains("corrupt message") {
        let plain = market.replacen("https://", "http://", 1);
        return format!(
            "{market} did not answer in TLS: the market speaks plain HTTP there (as `tally serve` \
             does); try {plain}"
        );
    }
    if e.is_connect() {
        return format!(
            "cannot connect to the market at {market} ({why}): is `tally serve` running there, \
             and is --market right?"
        );
    }
    if e.is_timeout() {
        return format!("the market at {market} did not answer in time");
    }
    if e.is_decode() {
        return format!("the answer from {market} is not what a market sends ({why}): is --market a Tally market?");
    }
    format!("talking to the market at {market}: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }
}
