//! The escrow's error codes: stable numbers that clients and the market match on.

use soroban_sdk::contracterror;

/// Every way an escrow call can be refused.
///
/// The numbers are part of the contract's interface (they appear in the
/// contract spec and in failed transaction results): never renumber a variant,
/// only append new ones.
#[contracterror]
#[derive(Copy, Clone, Debug, Eq, PartialEq, PartialOrd, Ord)]
#[repr(u32)]
pub enum Error {
    /// `initialize` was called on a contract that already has an operator.
    AlreadyInitialized = 1,
    /// A call other than `initialize` was made before `initialize`.
    NotInitialized = 2,
    /// An amount was zero or negative.
    InvalidAmount = 3,
    /// A release or refund asked for more than the client's escrow holds.
    InsufficientEscrow = 4,
    /// This (task, worker) pair has already been paid.
    AlreadyReleased = 5,
    /// A refund without operator approval before the client's unlock time.
    Locked = 6,
    /// An escrow balance or unlock time would overflow.
    Overflow = 7,
}
