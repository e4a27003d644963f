//! Settlement batches: unpaid earnings netted per
//! worker into hash-chained records, each paid by one signed Stellar
//! payment transaction with one operation per worker.
//!
//! A batch is one database transaction: allocate the next record `seq` and
//! the next transaction sequence number, collect the agreeing assignments
//! not yet paid, build, sign and seal the record, store it, set the
//! assignments' `payout_seq`, and move each payout `earned -> paid` in the
//! ledger. A crash before the commit leaves nothing behind, after it
//! everything: no payout is made twice or lost.
//!
//! The first statement of a batch updates the one `settlement_state` row.
//! That is the lock serialising settlers: in-process on SQLite (one writer),
//! across processes on PostgreSQL (the row lock, held to the commit), so two
//! settlers never build the same batch, and [`settle_now`] may run beside
//! the periodic job.
//!
//! Sequence numbers: `settlement_state.next_tx_seq` is the number the next
//! transaction carries; each record takes it and stores it + 1 in the same
//! transaction, so no number is handed out twice while a record holding it
//! may still apply. When it is unknown (NULL: a fresh database, or a record
//! that did not apply) it is read from the operator's account when a
//! Horizon / RPC server is configured, and starts at 1 otherwise (records
//! are then kept for export only). With a server, a new record is built
//! only when no other is in flight: the network takes one transaction per
//! account per ledger anyway, and a record that never applies then stalls
//! nothing behind it. Submission and failure handling are in [`submit`].
//!
//! - [`batch`]: one record written in one database transaction.
//! - [`collect`]: what the next record pays.
//! - [`submit`]: submission to Horizon / Stellar RPC and its outcomes.

mod batch;
mod collect;
pub mod submit;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tally_protocol::wire;
use tally_settlement::{Asset, Keypair, Network, PayoutOp, PublicKey, Submitter};

use crate::config::Config;
use crate::db::{int, query, text, WriteTx};
use crate::error::{MarketError, Result};
use crate::ledger::{self, Book, Cause, Leg};
use crate::Market;

use batch::{settle_batch, Batch};
pub(crate) use collect::Probation;

/// Fee per operation in stroops (the network's minimum base fee).
pub const BASE_FEE: u32 = 100;
/// How long a signed settlement transaction stays valid (its max time).
pub const VALIDITY_SECS: u64 = 300;
/// At most this many assignments are paid by one record.
pub const MAX_ASSIGNMENTS: i64 = 20_000;

/// What signs and names every record of this market. The key comes from
/// the configuration and is never stored or logged.
pub struct Operator {
    keypair: Keypair,
    pub network: Network,
    pub asset: Asset,
}

impl Operator {
    /// The operator of `config`: its key, network and asset.
    pub fn from_config(config: &Config) -> Result<Operator> {
        Ok(Operator {
            keypair: Keypair::from_seed(&config.operator.seed()),
            network: Network::from_passphrase(&config.network)?,
            asset: Asset::parse(&config.asset)?,
        })
    }

    /// The operator's account, the source of every record.
    pub fn account(&self) -> PublicKey {
        self.keypair.public_key()
    }
}

/// Settle everything that is due now: as many records as it takes without
/// a submission server, at most one with one. Returns how many were written.
pub async fn settle_now(m: &Market) -> Result<usize> {
    let submitter = submit::submitter(&m.config)?;
    settle_with(m, submitter.as_ref()).await
}

/// [`settle_now`] with an explicit submission server (or none).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn settle_with(m: &Market, submitter: Option<&Submitter>) -> Result<usize> {
    let op = Operator::from_config(&m.config)?;
    let mut written = 0;
    loop {
        // Network I/O stays outside the database transaction.
        let synced = match submitter {
            Some(sub) if next_tx_seq(m).await?.is_none() => {
                match sub.account_sequence(&op.account()).await? {
                    Some(current) => Some(current.checked_add(1).ok_or_else(|| {
                        MarketError::Corrupt("account sequence overflows".into())
                    })?),
                    None => {
                        tracing::warn!(account = %op.account(), "the operator account does not exist on the network; nothing is settled");
                        return Ok(written);
                    }
                }
            }
            _ => None,
        };
        let payees = match submitter {
            Some(sub) => payees(m, sub, op.asset).await?,
            None => HashMap::new(),
        };
        let batch = Batch {
            op: &op,
            synced,
            submitting: submitter.is_some(),
            payees: &payees,
        };
        match settle_batch(m, &batch).await? {
            Some(_) => written += 1,
            None => return Ok(written),
        }
        if submitter.is_some() {
            return Ok(written);
        }
    }
}

/// The least amount that funds a new account: the network's minimum
/// balance of two base reserves (0.5 XLM each).
pub const MIN_NEW_ACCOUNT: i64 = 10_000_000;

/// How to pay a payee: a payment where its account exists and can hold
/// the asset; else a new account where the native amount covers the
/// minimum balance; else a claimable balance, which never fails.
/// (`exists_and_trusts`: `None` for a missing account.)
pub fn payout_op(exists_and_trusts: Option<bool>, native: bool, amount: i64) -> PayoutOp {
    match exists_and_trusts {
        Some(true) => PayoutOp::Payment,
        None if native && amount >= MIN_NEW_ACCOUNT => PayoutOp::CreateAccount,
        _ => PayoutOp::ClaimableBalance,
    }
}

/// The op of every account due a payout now, asked of the network (outside
/// any database transaction). Accounts seen able to take a payment are
/// remembered and not asked again.
async fn payees(m: &Market, sub: &Submitter, asset: Asset) -> Result<HashMap<String, PayoutOp>> {
    let rows = query(
        "SELECT a.worker AS account, CAST(SUM(e.amount) AS BIGINT) AS amount
           FROM assignments a JOIN ledger_entries e ON e.assignment_id = a.id AND e.book = 'earned'
          WHERE a.status = 'agreed' AND a.payout_seq IS NULL GROUP BY a.worker
         UNION ALL
         SELECT account, CAST(SUM(amount) AS BIGINT) AS amount FROM withdrawals
          WHERE payout_seq IS NULL GROUP BY account",
    )
    .fetch_all(&m.db)
    .await?;
    let mut due: HashMap<String, i64> = HashMap::new();
    for r in rows {
        *due.entry(text(&r, "account")?).or_default() += int(&r, "amount")?;
    }
    let mut out = HashMap::new();
    for (account, amount) in due {
        if m.payable.lock().expect("payable").contains(&account) {
            continue; // PayoutOp::Payment, the default
        }
        let key = PublicKey::parse(&account)?;
        let found = sub.payee(&key, &asset).await?;
        let op = payout_op(found, asset == Asset::Native, amount);
        if op == PayoutOp::Payment {
            m.payable.lock().expect("payable").insert(account.clone());
        }
        out.insert(account, op);
    }
    Ok(out)
}

/// The stored next transaction sequence number, if known.
pub async fn next_tx_seq(m: &Market) -> Result<Option<i64>> {
    query("SELECT next_tx_seq FROM settlement_state WHERE id = 1")
        .fetch_one(&m.db)
        .await?
        .try_get("next_tx_seq")
}

/// Post one payout's ledger movement: `earned -> paid` for its assignments
/// and `withdrawing -> paid` for its withdrawals when it is settled
/// (`settle`), the reverse when its transaction paid nothing.
pub(crate) async fn move_payout(
    tx: &mut WriteTx<'_>,
    seq: u64,
    p: &wire::Payout,
    settle: bool,
) -> Result<()> {
    let kind = if settle {
        ledger::Posting::Settle
    } else {
        ledger::Posting::Unsettle
    };
    let cause = Cause {
        settlement: Some(seq),
        ..Cause::default()
    };
    let withdrawn = if p.withdrawals.is_empty() {
        0
    } else {
        let mut q = query(format!(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total FROM withdrawals WHERE id IN ({})",
            crate::db::placeholders(1, p.withdrawals.len())
        ));
        for w in &p.withdrawals {
            q = q.bind(*w);
        }
        int(&q.fetch_one(&mut *tx).await?, "total")?
    };
    let earned = p.amount.0 - withdrawn;
    let owner = p.account.as_str();
    let sign = if settle { 1 } else { -1 };
    let mut legs = vec![Leg {
        book: Book::Paid,
        owner,
        amount: sign * p.amount.0,
    }];
    for (book, part) in [(Book::Earned, earned), (Book::Withdrawing, withdrawn)] {
        if part != 0 {
            legs.push(Leg {
                book,
                owner,
                amount: -sign * part,
            });
        }
    }
    ledger::post(tx, kind, cause, &legs).await
}

/// Start the periodic settlement job and, with a server configured, the
/// submission job.
pub fn spawn(m: &Arc<Market>) {
    let submitter = match submit::submitter(&m.config) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "no settlement submission: the client does not start");
            None
        }
    };
    let every = m.config.settle_every.max(Duration::from_millis(10));
    let market = Arc::clone(m);
    let sub = submitter.clone();
    tokio::spawn(async move {
        let mut shutdown = market.shutdown_signal();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            if let Err(e) = settle_with(&market, sub.as_ref()).await {
                tracing::error!(error = %e, "settlement failed");
            }
        }
    });
    if let Some(sub) = submitter {
        submit::spawn(m, sub);
    }
}
