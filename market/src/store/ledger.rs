//! The double-entry ledger: every movement of money is a posting whose
//! entries sum to zero, kept next to a running balance per (book, owner).
//!
//! Books: `external` (money from outside; negative by the amount deposited),
//! `available` (a client's spendable balance), `reserved` (held for open
//! bids), `earned` (a worker's unpaid earnings), `fees` (the operator's),
//! `paid` (sent out in settlement transactions).

use tally_protocol::{AccountId, AssignmentId, BidId, Stroops, TaskId};

use crate::db::{int, text};
use crate::db::{placeholders, query, Db, Executor, WriteTx};
use crate::error::{MarketError, Result};
use crate::now_ms;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Book {
    External,
    Available,
    Reserved,
    Earned,
    Fees,
    Paid,
    /// Withdrawals asked for, not yet in a settlement record.
    Withdrawing,
}

impl Book {
    pub fn as_str(self) -> &'static str {
        match self {
            Book::External => "external",
            Book::Available => "available",
            Book::Reserved => "reserved",
            Book::Earned => "earned",
            Book::Fees => "fees",
            Book::Paid => "paid",
            Book::Withdrawing => "withdrawing",
        }
    }
    /// Every book but `external` must never go negative.
    pub fn may_go_negative(self) -> bool {
        self == Book::External
    }
}

/// What a posting is: its kind, stored with it and with each of its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posting {
    /// Money credited to an account (operator's credit, a deposit seen on the network).
    Deposit,
    /// A bid's price set aside from its client's available balance.
    Reserve,
    /// What a bid set aside and did not spend, back to its client.
    Refund,
    /// Agreeing results paid: the client's reserve to the worker's earnings and the fee.
    Earn,
    /// A spot check funded from the displaced bid's verification share.
    CheckFund,
    /// A client's withdrawal set aside for settlement.
    Withdraw,
    /// Earnings and withdrawals moved into a settlement record.
    Settle,
    /// A settlement record the network refused: its payouts back to unpaid.
    Unsettle,
    /// A result's pay taken back because a decision was revised.
    Revise,
    /// A caught worker's unsettled earnings back to the clients they came from.
    Forfeit,
}

impl Posting {
    pub fn as_str(self) -> &'static str {
        match self {
            Posting::Deposit => "deposit",
            Posting::Reserve => "reserve",
            Posting::Refund => "refund",
            Posting::Earn => "earn",
            Posting::CheckFund => "check_fund",
            Posting::Withdraw => "withdraw",
            Posting::Settle => "settle",
            Posting::Unsettle => "unsettle",
            Posting::Revise => "revise",
            Posting::Forfeit => "forfeit",
        }
    }
}

impl std::fmt::Display for Posting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a posting refers to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cause {
    pub bid: Option<BidId>,
    pub task: Option<TaskId>,
    pub assignment: Option<AssignmentId>,
    pub settlement: Option<u64>,
}

impl Cause {
    /// A posting about bid `bid` as a whole.
    pub fn of_bid(bid: BidId) -> Cause {
        Cause {
            bid: Some(bid),
            ..Cause::default()
        }
    }
}

/// One leg of a posting.
pub struct Leg<'a> {
    pub book: Book,
    pub owner: &'a str,
    pub amount: i64,
}

/// Post `legs` (summing to zero) as one posting of `kind`.
///
/// Fails with [`MarketError::InsufficientFunds`] when a book that may not go
/// negative would; the caller's transaction then rolls back.
pub async fn post(
    tx: &mut WriteTx<'_>,
    kind: Posting,
    cause: Cause,
    legs: &[Leg<'_>],
) -> Result<()> {
    let entries: Vec<(Cause, &Leg<'_>)> = legs.iter().map(|l| (cause, l)).collect();
    post_entries(tx, kind, &entries).await
}

/// Move `amount` from one (book, owner) to another as one posting of
/// `kind`.
pub async fn transfer(
    tx: &mut WriteTx<'_>,
    kind: Posting,
    cause: Cause,
    (from, from_owner): (Book, &str),
    (to, to_owner): (Book, &str),
    amount: i64,
) -> Result<()> {
    let legs = [
        Leg {
            book: from,
            owner: from_owner,
            amount: -amount,
        },
        Leg {
            book: to,
            owner: to_owner,
            amount,
        },
    ];
    post(tx, kind, cause, &legs).await
}

/// Post entries that each name their own cause (one decision paying several
/// results, say) as one posting of `kind`; they must sum to zero.
pub async fn post_entries(
    tx: &mut WriteTx<'_>,
    kind: Posting,
    entries: &[(Cause, &Leg<'_>)],
) -> Result<()> {
    let sum: i128 = entries.iter().map(|(_, l)| i128::from(l.amount)).sum();
    if sum != 0 {
        return Err(MarketError::Corrupt(format!(
            "posting {kind} does not balance: {sum}"
        )));
    }
    let now = now_ms();
    let posting: i64 =
        query("INSERT INTO postings (kind, created_at) VALUES ($1, $2) RETURNING id")
            .bind(kind.as_str())
            .bind(now)
            .fetch_one(&mut *tx)
            .await?
            .try_get("id")?;
    let entries: Vec<&(Cause, &Leg<'_>)> = entries.iter().filter(|(_, l)| l.amount != 0).collect();
    if entries.is_empty() {
        return Ok(());
    }
    // All entries in one statement: $1..$3 are shared, then seven per entry.
    let rows: Vec<String> = (0..entries.len())
        .map(|i| format!("($1, $2, {}, $3)", placeholders(4 + 7 * i, 7)))
        .collect();
    let mut q = query(format!(
        "INSERT INTO ledger_entries (posting, kind, book, owner, amount, bid_id, task_id, assignment_id, settlement, created_at)
         VALUES {}",
        rows.join(", ")
    ))
    .bind(posting)
    .bind(kind.as_str())
    .bind(now);
    for (cause, leg) in &entries {
        q = q
            .bind(leg.book.as_str())
            .bind(leg.owner)
            .bind(leg.amount)
            .bind(cause.bid.map(|b| b.0))
            .bind(cause.task.map(|t| t.0))
            .bind(cause.assignment.map(|a| a.0))
            .bind(cause.settlement.map(|s| s as i64));
    }
    q.execute(&mut *tx).await?;
    move_balances(tx, &entries).await
}

/// Apply the entries to the running balances, in one upsert (one row may
/// be updated once per statement, so legs on the same balance are summed
/// first); a book that may not go negative and would is refused.
async fn move_balances(tx: &mut WriteTx<'_>, entries: &[&(Cause, &Leg<'_>)]) -> Result<()> {
    let mut moves: Vec<(Book, &str, i64)> = Vec::with_capacity(entries.len());
    for (_, leg) in entries {
        match moves
            .iter_mut()
            .find(|(b, o, _)| *b == leg.book && *o == leg.owner)
        {
            Some(m) => m.2 += leg.amount,
            None => moves.push((leg.book, leg.owner, leg.amount)),
        }
    }
    // Row locks in one order (book, then owner) in every posting, so two
    // concurrent postings never wait for each other in a cycle.
    moves.sort_by(|a, b| (a.0.as_str(), a.1).cmp(&(b.0.as_str(), b.1)));
    let rows: Vec<String> = (0..moves.len())
        .map(|i| format!("({})", placeholders(1 + 3 * i, 3)))
        .collect();
    let mut q = query(format!(
        "INSERT INTO balances (book, owner, amount) VALUES {}
         ON CONFLICT (book, owner) DO UPDATE SET amount = balances.amount + excluded.amount
         RETURNING book, owner, amount",
        rows.join(", ")
    ));
    for (book, owner, amount) in &moves {
        q = q.bind(book.as_str()).bind(*owner).bind(*amount);
    }
    for r in q.fetch_all(&mut *tx).await? {
        let (book, owner, balance) = (text(&r, "book")?, text(&r, "owner")?, int(&r, "amount")?);
        let may_go_negative = moves
            .iter()
            .any(|(b, o, _)| b.as_str() == book && *o == owner && b.may_go_negative());
        if balance < 0 && !may_go_negative {
            return Err(MarketError::InsufficientFunds(format!(
                "{book} balance of {owner} would go negative by {} stroops",
                -balance
            )));
        }
    }
    Ok(())
}

/// The balance of one book of one owner.
pub async fn balance<'c>(exec: impl Executor<'c>, book: Book, owner: &str) -> Result<Stroops> {
    let row = query("SELECT amount FROM balances WHERE book = $1 AND owner = $2")
        .bind(book.as_str())
        .bind(owner)
        .fetch_optional(exec)
        .await?;
    Ok(Stroops(match row {
        Some(r) => int(&r, "amount")?,
        None => 0,
    }))
}

/// Whether `amount` can move from `external` into `available` without
/// either balance leaving the range of an `i64`.
pub fn credit_fits(external: Stroops, available: Stroops, amount: Stroops) -> bool {
    external.0.checked_sub(amount.0).is_some() && available.0.checked_add(amount.0).is_some()
}

/// Credit a client's available balance from outside (the admin endpoint);
/// a credit whose balances would overflow is refused (400).
pub async fn credit(tx: &mut WriteTx<'_>, account: &AccountId, amount: Stroops) -> Result<()> {
    let external = balance(&mut *tx, Book::External, account.as_str()).await?;
    let available = balance(&mut *tx, Book::Available, account.as_str()).await?;
    if !credit_fits(external, available, amount) {
        return Err(MarketError::bad(
            "amount_overflow",
            format!(
                "crediting {} stroops would overflow {account}'s balance of {} stroops",
                amount.0, available.0
            ),
        ));
    }
    transfer(
        tx,
        Posting::Deposit,
        Cause::default(),
        (Book::External, account.as_str()),
        (Book::Available, account.as_str()),
        amount.0,
    )
    .await
}

/// A breach of the ledger's invariants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach(pub String);

/// Check the ledger: every posting sums to zero, all entries sum to zero,
/// every running balance equals the sum of its entries, no book that may not
/// go negative is negative, and every bid's reservation covers what it spent.
pub async fn check_invariants(pool: &Db) -> Result<Vec<Breach>> {
    let mut breaches = Vec::new();
    breaches.extend(postings_balance(pool).await?);
    breaches.extend(balances_match_entries(pool).await?);
    breaches.extend(reservations_hold(pool).await?);
    Ok(breaches)
}

/// Every posting, and all entries together, sum to zero.
async fn postings_balance(pool: &Db) -> Result<Vec<Breach>> {
    let mut breaches = Vec::new();
    let rows = query(
        "SELECT posting, CAST(SUM(amount) AS BIGINT) AS total FROM ledger_entries GROUP BY posting HAVING SUM(amount) <> 0",
    )
    .fetch_all(pool)
    .await?;
    for r in rows {
        breaches.push(Breach(format!(
            "posting {} sums to {}",
            int(&r, "posting")?,
            int(&r, "total")?
        )));
    }
    let total: i64 =
        query("SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total FROM ledger_entries")
            .fetch_one(pool)
            .await?
            .try_get("total")?;
    if total != 0 {
        breaches.push(Breach(format!("all entries sum to {total}")));
    }
    Ok(breaches)
}

/// Every running balance equals the sum of its entries, and only the
/// external book goes negative.
async fn balances_match_entries(pool: &Db) -> Result<Vec<Breach>> {
    let mut breaches = Vec::new();
    let rows = query(
        "SELECT b.book, b.owner, b.amount, CAST(COALESCE(SUM(e.amount), 0) AS BIGINT) AS total
         FROM balances b LEFT JOIN ledger_entries e ON e.book = b.book AND e.owner = b.owner
         GROUP BY b.book, b.owner, b.amount",
    )
    .fetch_all(pool)
    .await?;
    for r in rows {
        let (book, owner, amount, total) = (
            text(&r, "book")?,
            text(&r, "owner")?,
            int(&r, "amount")?,
            int(&r, "total")?,
        );
        if amount != total {
            breaches.push(Breach(format!(
                "{book} of {owner}: balance {amount} but entries sum to {total}"
            )));
        }
        if amount < 0 && book != Book::External.as_str() {
            breaches.push(Breach(format!("{book} of {owner} is negative: {amount}")));
        }
    }
    Ok(breaches)
}

/// Every bid spent within its reservation, and holds in reserve what it
/// should: nothing once closed; open, what it reserved less what it spent
/// and what earlier closes refunded (a bid re-opened by backtracking
/// reserves again).
async fn reservations_hold(pool: &Db) -> Result<Vec<Breach>> {
    let mut breaches = Vec::new();
    let rows =
        query("SELECT id, reserved, spent, status FROM bids WHERE spent > reserved - refunded OR spent < 0")
            .fetch_all(pool)
            .await?;
    for r in rows {
        breaches.push(Breach(format!(
            "bid {} spent {} of a {} reservation",
            int(&r, "id")?,
            int(&r, "spent")?,
            int(&r, "reserved")?
        )));
    }
    let rows = query(
        "SELECT b.id, b.reserved - b.refunded AS reserved, b.spent, b.status,
           CAST(COALESCE(SUM(e.amount), 0) AS BIGINT) AS held
         FROM bids b LEFT JOIN ledger_entries e ON e.bid_id = b.id AND e.book = 'reserved'
         GROUP BY b.id, b.reserved, b.refunded, b.spent, b.status",
    )
    .fetch_all(pool)
    .await?;
    for r in rows {
        let (id, reserved, spent, held) = (
            int(&r, "id")?,
            int(&r, "reserved")?,
            int(&r, "spent")?,
            int(&r, "held")?,
        );
        let want = if text(&r, "status")? == "done" {
            0
        } else {
            reserved - spent
        };
        if held != want {
            breaches.push(Breach(format!(
                "bid {id} holds {held} in reserve, expected {want}"
            )));
        }
    }
    Ok(breaches)
}

#[cfg(test)]
mod tests;
