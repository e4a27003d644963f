//! Storage layout: one `DataKey` enum, and `read_`/`write_` helpers that keep entries alive.
//!
//! Configuration (operator, token, lock period) lives in instance storage, which
//! shares the contract's own lifetime. Per-client escrows and the per-(task,
//! worker) release markers live in persistent storage: a persistent entry whose
//! TTL runs out is archived, never deleted, so it can be restored but can not
//! silently come back as "absent". That matters most for release markers: were
//! they temporary entries, an expired marker would let the same (task, worker)
//! be paid twice.

use soroban_sdk::{contracttype, Address, Env};

use crate::error::Error;

/// Ledgers close roughly every five seconds.
pub(crate) const DAY_IN_LEDGERS: u32 = 17_280;

/// Instance storage (the configuration) is extended to this many ledgers ahead...
pub(crate) const INSTANCE_EXTEND_TO: u32 = 30 * DAY_IN_LEDGERS;
/// ...whenever fewer than this many remain.
pub(crate) const INSTANCE_THRESHOLD: u32 = INSTANCE_EXTEND_TO - DAY_IN_LEDGERS;

/// Persistent entries (escrows, release markers) are extended to this many ledgers ahead...
pub(crate) const PERSISTENT_EXTEND_TO: u32 = 90 * DAY_IN_LEDGERS;
/// ...whenever fewer than this many remain.
pub(crate) const PERSISTENT_THRESHOLD: u32 = PERSISTENT_EXTEND_TO - 30 * DAY_IN_LEDGERS;

/// Every key the contract stores anything under.
#[contracttype]
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum DataKey {
    /// Instance: the address allowed to release funds and approve early refunds.
    Operator,
    /// Instance: the token (a Stellar Asset Contract) the escrow holds.
    Token,
    /// Instance: seconds a deposit keeps the client's funds locked.
    LockSecs,
    /// Persistent: one client's escrow.
    Escrow(Address),
    /// Persistent: present once (task, worker) has been paid; holds the amount.
    Released(u64, Address),
}

/// What the contract holds for one client.
#[contracttype]
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct EscrowEntry {
    /// Token units held for the client and not yet released or refunded.
    pub balance: i128,
    /// Ledger timestamp (seconds) from which the client may refund alone.
    pub unlock_at: u64,
}

/// Keeps the contract instance (and with it the configuration) alive.
pub fn extend_instance(env: &Env) {
    env.storage()
        .instance()
        .extend_ttl(INSTANCE_THRESHOLD, INSTANCE_EXTEND_TO);
}

fn extend_persistent(env: &Env, key: &DataKey) {
    env.storage()
        .persistent()
        .extend_ttl(key, PERSISTENT_THRESHOLD, PERSISTENT_EXTEND_TO);
}

pub fn is_initialized(env: &Env) -> bool {
    env.storage().instance().has(&DataKey::Operator)
}

pub fn read_operator(env: &Env) -> Result<Address, Error> {
    env.storage()
        .instance()
        .get(&DataKey::Operator)
        .ok_or(Error::NotInitialized)
}

pub fn write_operator(env: &Env, operator: &Address) {
    env.storage().instance().set(&DataKey::Operator, operator);
}

pub fn read_token(env: &Env) -> Result<Address, Error> {
    env.storage()
        .instance()
        .get(&DataKey::Token)
        .ok_or(Error::NotInitialized)
}

pub fn write_token(env: &Env, token: &Address) {
    env.storage().instance().set(&DataKey::Token, token);
}

pub fn read_lock_secs(env: &Env) -> Result<u64, Error> {
    env.storage()
        .instance()
        .get(&DataKey::LockSecs)
        .ok_or(Error::NotInitialized)
}

pub fn write_lock_secs(env: &Env, lock_secs: u64) {
    env.storage().instance().set(&DataKey::LockSecs, &lock_secs);
}

/// The client's escrow; an empty one (balance 0, unlock time 0) if they never deposited.
pub fn read_escrow(env: &Env, client: &Address) -> EscrowEntry {
    let key = DataKey::Escrow(client.clone());
    match env.storage().persistent().get(&key) {
        Some(entry) => {
            extend_persistent(env, &key);
            entry
        }
        None => EscrowEntry::default(),
    }
}

pub fn write_escrow(env: &Env, client: &Address, entry: &EscrowEntry) {
    let key = DataKey::Escrow(client.clone());
    env.storage().persistent().set(&key, entry);
    extend_persistent(env, &key);
}

pub fn read_released(env: &Env, task: u64, worker: &Address) -> bool {
    let key = DataKey::Released(task, worker.clone());
    let released = env.storage().persistent().has(&key);
    if released {
        extend_persistent(env, &key);
    }
    released
}

pub fn write_released(env: &Env, task: u64, worker: &Address, amount: i128) {
    let key = DataKey::Released(task, worker.clone());
    env.storage().persistent().set(&key, &amount);
    extend_persistent(env, &key);
}
