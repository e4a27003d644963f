//! `tally account` (any role: what the market holds for this key) and
//! `tally admin ...` (the operator's commands), each signed with its key.

use std::process::ExitCode;

use anyhow::Context;
use tally_protocol::{AccountId, Client, Signer, Stroops};

use crate::cli::{AccountArgs, AdminCommand, AdminListArgs, WithdrawArgs};

pub async fn show(args: AccountArgs) -> anyhow::Result<ExitCode> {
    let client = args.to.client()?;
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
    if me.not_submitted.0 > 0 {
        let sent = me.paid_total.0 - me.not_submitted.0;
        if sent > 0 {
            println!("paid out       {sent} stroops");
        }
        println!(
            "not submitted  {} stroops in settlement records this market never submitted \
             (it runs without --horizon/--rpc): nothing of it was paid on the network",
            me.not_submitted.0
        );
    } else {
        println!("paid out       {} stroops", me.paid_total.0);
    }
    println!("fees paid      {} stroops", me.fees_paid.0);
    println!(
        "reputation     {} agreed, {} disagreed, {} timed out",
        me.reputation.agreed, me.reputation.disagreed, me.reputation.timed_out
    );
    println!(
        "credibility    {:.6} ({} spot checks passed, {} failed)",
        me.credibility, me.checks.passed, me.checks.failed
    );
    println!("deposit to     {}", me.deposit_address);
    println!(
        "deposit memo   {} (a payment carrying this text memo is credited to this account, whoever sends it)",
        me.deposit_memo
    );
    if me.withdrawing.0 > 0 {
        println!(
            "withdrawing    {} stroops (paid by the next settlement record)",
            me.withdrawing.0
        );
    }
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

pub async fn withdraw(args: WithdrawArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.amount > 0,
        "--amount must be a positive number of stroops"
    );
    let signer = Signer::load(&args.to.key).context("--key")?;
    let account = signer.account().clone();
    let client = Client::new(&args.to.market, Some(signer));
    let w = client
        .withdraw(Stroops(args.amount))
        .await
        .context("withdrawing")?;
    println!(
        "withdrawal {} of {} stroops to {account}: paid by the next settlement record",
        w.id, w.amount.0
    );
    Ok(ExitCode::SUCCESS)
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(ExitCode::SUCCESS)
}

fn short(account: &str) -> String {
    account.chars().take(8).collect::<String>() + "…"
}

/// `tally admin ...`: the operator's listings, reviewer marks and credits.
pub async fn admin(cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AdminCommand::Reviewers(cmd) => super::review::reviewers(cmd).await,
        AdminCommand::Accounts(args) => {
            list(
                &args,
                |c| async move { c.admin_accounts().await },
                print_accounts,
            )
            .await
        }
        AdminCommand::Workers(args) => {
            list(
                &args,
                |c| async move { c.admin_workers().await },
                print_workers,
            )
            .await
        }
        AdminCommand::Bids(args) => {
            list(&args, |c| async move { c.admin_bids().await }, print_bids).await
        }
        AdminCommand::Credit {
            to,
            account,
            amount,
        } => {
            anyhow::ensure!(amount > 0, "--amount must be a positive number of stroops");
            let account: AccountId = account
                .trim()
                .parse()
                .map_err(|e| anyhow::anyhow!("--account {account}: {e}"))?;
            let client = to.client()?;
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

/// One of the operator's listings: asked with the operator's key, printed
/// as JSON (`--json`) or as a `table`.
async fn list<T, F>(
    args: &AdminListArgs,
    ask: impl FnOnce(Client) -> F,
    table: fn(&T),
) -> anyhow::Result<ExitCode>
where
    T: serde::Serialize,
    F: std::future::Future<Output = Result<T, tally_protocol::Error>>,
{
    let all = ask(args.to.client()?).await.context("asking the market")?;
    if args.json {
        return print_json(&all);
    }
    table(&all);
    Ok(ExitCode::SUCCESS)
}

/// Every account's balances, a line each.
fn print_accounts(all: &tally_protocol::wire::AdminAccounts) {
    println!(
        "{:<58} {:>14} {:>12} {:>12} {:>12} {:>14} {:>12}",
        "account", "available", "reserved", "earned", "withdrawing", "paid", "fees"
    );
    for a in &all.accounts {
        println!(
            "{:<58} {:>14} {:>12} {:>12} {:>12} {:>14} {:>12}",
            a.account, a.available.0, a.reserved.0, a.earned.0, a.withdrawing.0, a.paid.0, a.fees.0
        );
    }
}

/// Every worker's credibility, record, pay and status, a line each.
fn print_workers(all: &tally_protocol::wire::AdminWorkers) {
    println!(
        "{:<10} {:>11} {:>7} {:>7} {:>9} {:>9} {:>12} {:>12}  status",
        "worker", "credibility", "checks", "failed", "agreed", "disagreed", "unpaid", "paid"
    );
    for w in &all.workers {
        let status = match w.caught_at {
            Some(t) => format!("CAUGHT {}", t.format("%Y-%m-%d %H:%M")),
            None => format!("seen {}", w.last_seen.format("%Y-%m-%d %H:%M:%S")),
        };
        println!(
            "{:<10} {:>11.6} {:>7} {:>7} {:>9} {:>9} {:>12} {:>12}  {status}",
            short(w.account.as_str()),
            w.credibility,
            w.checks.passed,
            w.checks.failed,
            w.reputation.agreed,
            w.reputation.disagreed,
            w.earned_unpaid.0,
            w.paid.0
        );
    }
}

/// Every bid's client, price, state and tasks, a line each.
fn print_bids(all: &tally_protocol::wire::AdminBids) {
    println!(
        "{:>6} {:<10} {:<6} {:>9} {:<5} {:>6} {:>8} {:>6} {:>12} {:>12}",
        "bid",
        "client",
        "kind",
        "price",
        "state",
        "tasks",
        "verified",
        "failed",
        "reserved",
        "spent"
    );
    for b in &all.bids {
        let state = if b.status == tally_protocol::wire::BidState::Done {
            "done"
        } else {
            "open"
        };
        println!(
            "{:>6} {:<10} {:<6} {:>9} {:<5} {:>6} {:>8} {:>6} {:>12} {:>12}",
            b.bid.0,
            short(b.client.as_str()),
            b.kind,
            b.price.0,
            state,
            b.tasks,
            b.verified,
            b.failed,
            b.reserved.0,
            b.spent.0
        );
    }
}
