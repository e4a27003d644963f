//! Tally escrow: clients' bid funds held on-chain, paid out to workers only by the operator.
//!
//! A client deposits tokens into its own escrow. The operator (the market)
//! pays a worker for a verified task result with `release`, at most once per
//! (task, worker) and never more than that client's escrow holds. Whatever
//! has not been released goes back to the client with `refund`: on the
//! client's word alone once the lock period after its last deposit has passed,
//! or earlier if the operator co-signs.
//!
//! - [`error`]: the error codes.
//! - `storage`: the one `DataKey` enum and the `read_`/`write_` helpers.
//! - events: [`Deposit`], [`Release`], [`Refund`], one per movement of funds.
#![no_std]

use soroban_sdk::{contract, contractevent, contractimpl, token, Address, Env};

pub mod error;
mod storage;

#[cfg(test)]
mod test;

pub use error::Error;
use storage::EscrowEntry;

/// Funds moved from `client` into its escrow.
///
/// Topics `["deposit", client]`, data the amount (`i128`).
#[contractevent(topics = ["deposit"], data_format = "single-value")]
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Deposit {
    #[topic]
    pub client: Address,
    pub amount: i128,
}

/// Funds moved from `client`'s escrow to `worker` for `task`.
///
/// Topics `["release", client, worker, task]`, data the amount (`i128`).
#[contractevent(topics = ["release"], data_format = "single-value")]
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Release {
    #[topic]
    pub client: Address,
    #[topic]
    pub worker: Address,
    #[topic]
    pub task: u64,
    pub amount: i128,
}

/// Funds moved from `client`'s escrow back to `client`.
///
/// Topics `["refund", client]`, data the amount (`i128`).
#[contractevent(topics = ["refund"], data_format = "single-value")]
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Refund {
    #[topic]
    pub client: Address,
    pub amount: i128,
}

#[contract]
pub struct EscrowContract;

#[contractimpl]
impl EscrowContract {
    /// Sets the operator, the token held, and the lock period; callable once.
    ///
    /// The operator must authorise its own appointment. Deploy and initialise
    /// in one transaction (or check `operator()` and `token()` afterwards):
    /// until `initialize` runs, anyone may call it.
    pub fn initialize(
        env: Env,
        operator: Address,
        token: Address,
        lock_secs: u64,
    ) -> Result<(), Error> {
        if storage::is_initialized(&env) {
            return Err(Error::AlreadyInitialized);
        }
        operator.require_auth();
        storage::write_operator(&env, &operator);
        storage::write_token(&env, &token);
        storage::write_lock_secs(&env, lock_secs);
        storage::extend_instance(&env);
        Ok(())
    }

    /// Moves `amount` of the token from `client` into its escrow; returns the new balance.
    ///
    /// Every deposit (re)starts the client's lock: it may refund alone from
    /// `now + lock_secs` on, never earlier than an unlock time it already had.
    pub fn deposit(env: Env, client: Address, amount: i128) -> Result<i128, Error> {
        client.require_auth();
        check_amount(amount)?;
        let token = storage::read_token(&env)?;
        let lock_secs = storage::read_lock_secs(&env)?;
        storage::extend_instance(&env);

        let entry = storage::read_escrow(&env, &client);
        let lock_end = env
            .ledger()
            .timestamp()
            .checked_add(lock_secs)
            .ok_or(Error::Overflow)?;
        let entry = EscrowEntry {
            balance: entry.balance.checked_add(amount).ok_or(Error::Overflow)?,
            unlock_at: entry.unlock_at.max(lock_end),
        };
        storage::write_escrow(&env, &client, &entry);

        token::TokenClient::new(&env, &token).transfer(
            &client,
            env.current_contract_address(),
            &amount,
        );
        Deposit { client, amount }.publish(&env);
        Ok(entry.balance)
    }

    /// Pays `amount` from `client`'s escrow to `worker` for `task`; operator only.
    ///
    /// Each (task, worker) pair is paid at most once. Returns the client's
    /// remaining escrow balance.
    pub fn release(
        env: Env,
        client: Address,
        task: u64,
        worker: Address,
        amount: i128,
    ) -> Result<i128, Error> {
        storage::read_operator(&env)?.require_auth();
        check_amount(amount)?;
        let token = storage::read_token(&env)?;
        storage::extend_instance(&env);

        if storage::read_released(&env, task, &worker) {
            return Err(Error::AlreadyReleased);
        }
        let balance = withdraw(&env, &client, amount)?;
        storage::write_released(&env, task, &worker, amount);

        token::TokenClient::new(&env, &token).transfer(
            &env.current_contract_address(),
            &worker,
            &amount,
        );
        Release {
            client,
            worker,
            task,
            amount,
        }
        .publish(&env);
        Ok(balance)
    }

    /// Returns `amount` of `client`'s unreleased escrow to `client`.
    ///
    /// Needs the client's authorisation. Before the client's unlock time it
    /// also needs `approved` and the operator's authorisation; `approved`
    /// always demands the operator's authorisation. Returns the remaining
    /// escrow balance.
    pub fn refund(env: Env, client: Address, amount: i128, approved: bool) -> Result<i128, Error> {
        client.require_auth();
        if approved {
            storage::read_operator(&env)?.require_auth();
        }
        check_amount(amount)?;
        let token = storage::read_token(&env)?;
        storage::extend_instance(&env);

        let unlock_at = storage::read_escrow(&env, &client).unlock_at;
        if !approved && env.ledger().timestamp() < unlock_at {
            return Err(Error::Locked);
        }
        let balance = withdraw(&env, &client, amount)?;

        token::TokenClient::new(&env, &token).transfer(
            &env.current_contract_address(),
            &client,
            &amount,
        );
        Refund { client, amount }.publish(&env);
        Ok(balance)
    }

    /// Token units held for `client`.
    pub fn balance(env: Env, client: Address) -> i128 {
        storage::read_escrow(&env, &client).balance
    }

    /// Ledger timestamp from which `client` may refund without the operator (0 if it never deposited).
    pub fn unlock_at(env: Env, client: Address) -> u64 {
        storage::read_escrow(&env, &client).unlock_at
    }

    /// Whether `worker` has been paid for `task`.
    pub fn released(env: Env, task: u64, worker: Address) -> bool {
        storage::read_released(&env, task, &worker)
    }

    pub fn operator(env: Env) -> Result<Address, Error> {
        storage::read_operator(&env)
    }

    pub fn token(env: Env) -> Result<Address, Error> {
        storage::read_token(&env)
    }

    pub fn lock_secs(env: Env) -> Result<u64, Error> {
        storage::read_lock_secs(&env)
    }
}

fn check_amount(amount: i128) -> Result<(), Error> {
    if amount > 0 {
        Ok(())
    } else {
        Err(Error::InvalidAmount)
    }
}

/// Takes `amount` out of `client`'s escrow bookkeeping; returns what is left.
fn withdraw(env: &Env, client: &Address, amount: i128) -> Result<i128, Error> {
    let mut entry = storage::read_escrow(env, client);
    if amount > entry.balance {
        return Err(Error::InsufficientEscrow);
    }
    entry.balance = entry.balance.checked_sub(amount).ok_or(Error::Overflow)?;
    storage::write_escrow(env, client, &entry);
    Ok(entry.balance)
}
