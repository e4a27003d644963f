//! `tally account` (any role: what the market holds for this key) and
//! `tally admin ...` (the operator's commands), each signed with its key.

use std::process::ExitCode;

use anyhow::Context;
use tally_protocol::{AccountId, Client, Signer, Stroops};

use crate::cli::{AccountArgs, AdminCommand};

pub async fn show(args: AccountArgs) -> anyhow::Result<ExitCode> {
    let signer = Signer::load(&args.key).context("--key")?;
    let client = Client::new(&args.market, Some(signer));
    let me = client.account_me().await.context("asking the market")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&me)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("account        {}", me.account);
    println!("balance        {} stroops available", me.balance.0);
    println!("reserved       {} stroops for open bids", me.reserved.0);
    println!(
        "earned unpaid  {} stroops ({} held on probation)",
        me.earned_unpaid.0, me.held.0
    );
    println!("paid out       {} stroops", me.paid_total.0);
    println!("fees paid      {} stroops", me.fees_paid.0);
    println!(
        "reputation     {} agreed, {} disagreed, {} timed out",
        me.reputation.agreed, me.reputation.disagreed, me.reputation.timed_out
    );
    println!(
        "credibility    {:.6} ({} spot checks passed, {} failed)",
        me.credibility, me.checks.passed, me.checks.failed
    );
    println!(
        "deposit memo   {} (pay the operator's account with this text memo to credit this account)",
        me.deposit_memo
    );
    let deposits = client.deposits().await.context("asking for deposits")?;
    for d in deposits.deposits.iter().take(10) {
        println!(
            "deposit        {} {} stroops {} {}{}",
            d.created_at.format("%Y-%m-%d %H:%M:%S"),
            d.amount.0,
            d.asset,
            d.status,
            d.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn admin(cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AdminCommand::Credit {
            market,
            key,
            account,
            amount,
        } => {
            anyhow::ensure!(amount > 0, "--amount must be a positive number of stroops");
            let account: AccountId = account
                .trim()
                .parse()
                .map_err(|e| anyhow::anyhow!("--account {account}: {e}"))?;
            let operator = Signer::load(&key).context("--key")?;
            let client = Client::new(&market, Some(operator));
            let view = client
                .credit(&account, Stroops(amount))
                .await
                .context("crediting")?;
            println!(
                "credited {amount} stroops to {}; balance now {} stroops",
                view.account, view.balance.0
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
