//! The market's rules: what a bid, a claim, a result, a check, a vote, a
//! payment, a review, a sweep, a publication and a withdrawal do. No HTTP type
//! reaches them; they take the shared handle and a transaction.
//!
//! - [`bids`]: validating a bid, storing its inputs, reserving its money.
//! - [`checks`]: spot checks: known answers from the golden set, handed out
//!   in place of client work.
//! - [`claims`]: matching workers to tasks; exclusive, long-polled, woken by
//!   new work.
//! - [`results`]: leases, results, failures.
//! - [`review`]: human review: the operator's signed reviewer marks, the
//!   reviewers' queue, answers.
//! - [`decide`]: the vote and its outcome: verify and pay, judge late
//!   results, add a replica, fail.
//! - [`payment`]: paying agreeing results, failing tasks, closing bids with
//!   refunds.
//! - [`sweep`]: lease expiry and bid deadlines.
//! - [`publish`]: when a decided task's evidence, and what it paid, become
//!   public.
//! - [`withdrawals`]: clients' balances paid out to their own accounts,
//!   through settlement.
//! - [`admin`]: the operator's views: accounts' books, workers, bids.

pub mod admin;
pub mod bids;
pub mod checks;
pub mod claims;
pub mod decide;
pub mod payment;
pub mod publish;
pub mod results;
pub mod review;
pub mod sweep;
pub mod withdrawals;
