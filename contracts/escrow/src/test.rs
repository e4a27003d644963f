//! Tests against a real Stellar Asset Contract: every movement checked in token balances too.

extern crate std;

use soroban_sdk::{
    symbol_short,
    testutils::{
        storage::{Instance as _, Persistent as _},
        Address as _, AuthorizedFunction, AuthorizedInvocation, EnvTestConfig, Events as _,
        Ledger as _, MockAuth, MockAuthInvoke,
    },
    token::{StellarAssetClient, TokenClient},
    vec, Address, Env, Event as _, IntoVal, InvokeError, Symbol, Val, Vec,
};

use crate::{
    storage::{DataKey, DAY_IN_LEDGERS, INSTANCE_EXTEND_TO, PERSISTENT_EXTEND_TO},
    Deposit, Error, EscrowContract, EscrowContractClient, Refund, Release,
};

/// Ledger time at the start of every test.
const T0: u64 = 1_700_000_000;
/// The lock period the escrow is initialised with: one hour.
const LOCK_SECS: u64 = 3_600;
/// Tokens minted to each client.
const MINTED: i128 = 1_000_000;

/// A funded client, an initialised escrow, and the token it holds.
struct Market {
    env: Env,
    escrow: EscrowContractClient<'static>,
    token: TokenClient<'static>,
    operator: Address,
    client: Address,
}

impl Market {
    /// With every `require_auth` mocked: tests of authorisation use
    /// `mock_auths` (enforcing) or inspect `env.auths()` (recorded).
    fn new() -> Self {
        let env = test_env();
        env.mock_all_auths();
        env.ledger().with_mut(|l| l.timestamp = T0);

        let admin = Address::generate(&env);
        let sac = env.register_stellar_asset_contract_v2(admin);
        let token = TokenClient::new(&env, &sac.address());
        let operator = Address::generate(&env);
        let client = Address::generate(&env);
        StellarAssetClient::new(&env, &token.address).mint(&client, &MINTED);

        let escrow = EscrowContractClient::new(&env, &env.register(EscrowContract, ()));
        escrow.initialize(&operator, &token.address, &LOCK_SECS);

        Market {
            env,
            escrow,
            token,
            operator,
            client,
        }
    }

    /// Another client holding `MINTED` tokens.
    fn funded_client(&self) -> Address {
        let client = Address::generate(&self.env);
        StellarAssetClient::new(&self.env, &self.token.address).mint(&client, &MINTED);
        client
    }

    fn advance_to(&self, timestamp: u64) {
        self.env.ledger().with_mut(|l| l.timestamp = timestamp);
    }

    fn advance_days(&self, days: u32) {
        self.env
            .ledger()
            .with_mut(|l| l.sequence_number += days * DAY_IN_LEDGERS);
    }

    /// Ledgers left before the escrow's persistent entry under `key` is archived.
    fn ttl(&self, key: &DataKey) -> u32 {
        self.env.as_contract(&self.escrow.address, || {
            self.env.storage().persistent().get_ttl(key)
        })
    }

    /// Ledgers left before the escrow's instance (its configuration) is archived.
    fn instance_ttl(&self) -> u32 {
        self.env.as_contract(&self.escrow.address, || {
            self.env.storage().instance().get_ttl()
        })
    }

    /// From now on, until auths are mocked again, the only signature is
    /// `signer`'s, authorising exactly `escrow.fn_name(args)`.
    fn signed_only_by(&self, signer: &Address, fn_name: &str, args: Vec<Val>) {
        self.env.mock_auths(&[MockAuth {
            address: signer,
            invoke: &MockAuthInvoke {
                contract: &self.escrow.address,
                fn_name,
                args,
                sub_invokes: &[],
            },
        }]);
    }

    /// Token units the escrow contract itself holds.
    fn held(&self) -> i128 {
        self.token.balance(&self.escrow.address)
    }
}

/// An `Env` that does not write a `test_snapshots/` JSON file when dropped: those
/// files are never compared against anything, only rewritten on every run.
fn test_env() -> Env {
    Env::new_with_config(EnvTestConfig {
        capture_snapshot_at_drop: false,
    })
}

/// One node of a recorded authorisation tree: `contract.function(args)`.
fn invocation(
    contract: &Address,
    function: Symbol,
    args: Vec<Val>,
    sub_invocations: std::vec::Vec<AuthorizedInvocation>,
) -> AuthorizedInvocation {
    AuthorizedInvocation {
        function: AuthorizedFunction::Contract((contract.clone(), function, args)),
        sub_invocations,
    }
}

/// What a host-level authorisation failure looks like through a `try_` client call.
fn auth_failure<T>() -> Result<T, Result<Error, InvokeError>> {
    Err(Err(InvokeError::Abort))
}

#[test]
fn deposit_then_release_to_two_workers_moves_tokens() {
    let m = Market::new();
    let (w1, w2) = (Address::generate(&m.env), Address::generate(&m.env));

    assert_eq!(m.escrow.deposit(&m.client, &1_000), 1_000);
    assert_eq!(m.escrow.balance(&m.client), 1_000);
    assert_eq!(m.escrow.unlock_at(&m.client), T0 + LOCK_SECS);
    assert_eq!(m.token.balance(&m.client), MINTED - 1_000);
    assert_eq!(m.held(), 1_000);

    assert_eq!(m.escrow.release(&m.client, &7, &w1, &300), 700);
    assert_eq!(m.escrow.release(&m.client, &7, &w2, &200), 500);

    assert_eq!(m.escrow.balance(&m.client), 500);
    assert_eq!(m.token.balance(&w1), 300);
    assert_eq!(m.token.balance(&w2), 200);
    assert_eq!(m.held(), 500);
    assert_eq!(m.token.balance(&m.client), MINTED - 1_000);
    assert!(m.escrow.released(&7, &w1));
    assert!(m.escrow.released(&7, &w2));
    assert!(!m.escrow.released(&8, &w1));
}

#[test]
fn deposit_and_release_require_exactly_the_right_signers() {
    let m = Market::new();
    let worker = Address::generate(&m.env);

    m.escrow.deposit(&m.client, &1_000);
    assert_eq!(
        m.env.auths(),
        std::vec![(
            m.client.clone(),
            invocation(
                &m.escrow.address,
                symbol_short!("deposit"),
                (&m.client, 1_000_i128).into_val(&m.env),
                // The client's signature covers the token transfer it causes.
                std::vec![invocation(
                    &m.token.address,
                    symbol_short!("transfer"),
                    (&m.client, &m.escrow.address, 1_000_i128).into_val(&m.env),
                    std::vec![],
                )],
            )
        )]
    );

    m.escrow.release(&m.client, &1, &worker, &100);
    assert_eq!(
        m.env.auths(),
        std::vec![(
            m.operator.clone(),
            invocation(
                &m.escrow.address,
                symbol_short!("release"),
                (&m.client, 1_u64, &worker, 100_i128).into_val(&m.env),
                std::vec![],
            )
        )]
    );
}

#[test]
fn release_without_operator_auth_fails() {
    let m = Market::new();
    let worker = Address::generate(&m.env);
    m.escrow.deposit(&m.client, &1_000);

    // The client, the worker, anyone but the operator: not enough.
    let args: Vec<Val> = (&m.client, 1_u64, &worker, 500_i128).into_val(&m.env);
    for signer in [&m.client, &worker] {
        m.signed_only_by(signer, "release", args.clone());
        assert_eq!(
            m.escrow.try_release(&m.client, &1, &worker, &500),
            auth_failure()
        );
    }
    assert_eq!(m.token.balance(&worker), 0);
    assert_eq!(m.escrow.balance(&m.client), 1_000);
    assert!(!m.escrow.released(&1, &worker));

    // The same call signed by the operator goes through.
    m.signed_only_by(&m.operator, "release", args);
    m.escrow.release(&m.client, &1, &worker, &500);
    assert_eq!(m.token.balance(&worker), 500);
}

#[test]
fn refund_without_client_auth_fails() {
    let m = Market::new();
    m.escrow.deposit(&m.client, &1_000);
    m.advance_to(T0 + LOCK_SECS);

    // After the lock, with no signature at all.
    m.env.set_auths(&[]);
    assert_eq!(
        m.escrow.try_refund(&m.client, &1_000, &false),
        auth_failure()
    );

    // The operator alone can not pull a client's funds out, approved or not.
    for approved in [false, true] {
        let args = (&m.client, 1_000_i128, approved).into_val(&m.env);
        m.signed_only_by(&m.operator, "refund", args);
        assert_eq!(
            m.escrow.try_refund(&m.client, &1_000, &approved),
            auth_failure()
        );
    }
    assert_eq!(m.escrow.balance(&m.client), 1_000);
    assert_eq!(m.held(), 1_000);
}

#[test]
fn second_release_for_the_same_task_and_worker_is_already_released() {
    let m = Market::new();
    let worker = Address::generate(&m.env);
    m.escrow.deposit(&m.client, &1_000);
    m.escrow.release(&m.client, &42, &worker, &100);

    assert_eq!(
        m.escrow.try_release(&m.client, &42, &worker, &100),
        Err(Ok(Error::AlreadyReleased))
    );
    // A different amount, or the funds of another client, make no difference.
    let other = m.funded_client();
    m.escrow.deposit(&other, &1_000);
    assert_eq!(
        m.escrow.try_release(&other, &42, &worker, &1),
        Err(Ok(Error::AlreadyReleased))
    );
    assert_eq!(m.token.balance(&worker), 100);
    assert_eq!(m.escrow.balance(&m.client), 900);
    assert_eq!(m.escrow.balance(&other), 1_000);
}

#[test]
fn release_beyond_the_clients_escrow_is_insufficient_escrow() {
    let m = Market::new();
    let other = m.funded_client();
    let worker = Address::generate(&m.env);
    m.escrow.deposit(&m.client, &1_000);
    m.escrow.deposit(&other, &5_000);

    // The contract holds 6,000, but only 1,000 of it is this client's.
    assert_eq!(
        m.escrow.try_release(&m.client, &1, &worker, &1_001),
        Err(Ok(Error::InsufficientEscrow))
    );
    let stranger = Address::generate(&m.env);
    assert_eq!(
        m.escrow.try_release(&stranger, &1, &worker, &1),
        Err(Ok(Error::InsufficientEscrow))
    );
    // A failed release does not use up the (task, worker) pair.
    assert!(!m.escrow.released(&1, &worker));
    assert_eq!(m.escrow.release(&m.client, &1, &worker, &1_000), 0);
    assert_eq!(m.held(), 5_000);
    assert_eq!(m.escrow.balance(&other), 5_000);
}

#[test]
fn refund_before_the_lock_ends_is_locked() {
    let m = Market::new();
    m.escrow.deposit(&m.client, &1_000);

    m.advance_to(T0 + LOCK_SECS - 1);
    assert_eq!(
        m.escrow.try_refund(&m.client, &1_000, &false),
        Err(Ok(Error::Locked))
    );
    assert_eq!(m.escrow.balance(&m.client), 1_000);
    assert_eq!(m.token.balance(&m.client), MINTED - 1_000);
}

#[test]
fn refund_after_the_lock_returns_unreleased_funds() {
    let m = Market::new();
    let worker = Address::generate(&m.env);
    m.escrow.deposit(&m.client, &1_000);
    m.escrow.release(&m.client, &1, &worker, &400);

    m.advance_to(T0 + LOCK_SECS);
    // What was released is gone for good.
    assert_eq!(
        m.escrow.try_refund(&m.client, &1_000, &false),
        Err(Ok(Error::InsufficientEscrow))
    );
    assert_eq!(m.escrow.refund(&m.client, &600, &false), 0);
    assert_eq!(
        m.env.auths(),
        std::vec![(
            m.client.clone(),
            invocation(
                &m.escrow.address,
                symbol_short!("refund"),
                (&m.client, 600_i128, false).into_val(&m.env),
                std::vec![],
            )
        )]
    );
    assert_eq!(m.token.balance(&m.client), MINTED - 400);
    assert_eq!(m.token.balance(&worker), 400);
    assert_eq!(m.held(), 0);
}

#[test]
fn early_refund_with_operator_approval_needs_both_signatures() {
    let m = Market::new();
    m.escrow.deposit(&m.client, &1_000);

    assert_eq!(m.escrow.refund(&m.client, &250, &true), 750);
    let signers: std::vec::Vec<Address> = m.env.auths().into_iter().map(|(a, _)| a).collect();
    assert_eq!(signers, std::vec![m.client.clone(), m.operator.clone()]);
    assert_eq!(m.token.balance(&m.client), MINTED - 750);
    assert_eq!(m.held(), 750);

    // The client signing alone and claiming approval is not enough.
    let args = (&m.client, 750_i128, true).into_val(&m.env);
    m.signed_only_by(&m.client, "refund", args);
    assert_eq!(m.escrow.try_refund(&m.client, &750, &true), auth_failure());
    assert_eq!(m.escrow.balance(&m.client), 750);
}

#[test]
fn a_later_deposit_extends_the_lock() {
    let m = Market::new();
    m.escrow.deposit(&m.client, &1_000);
    m.advance_to(T0 + 1_000);
    m.escrow.deposit(&m.client, &1);
    assert_eq!(m.escrow.unlock_at(&m.client), T0 + 1_000 + LOCK_SECS);

    m.advance_to(T0 + LOCK_SECS);
    assert_eq!(
        m.escrow.try_refund(&m.client, &1_001, &false),
        Err(Ok(Error::Locked))
    );
    m.advance_to(T0 + 1_000 + LOCK_SECS);
    assert_eq!(m.escrow.refund(&m.client, &1_001, &false), 0);
}

#[test]
fn zero_or_negative_amounts_are_invalid() {
    let m = Market::new();
    let worker = Address::generate(&m.env);
    for amount in [0, -1, i128::MIN] {
        assert_eq!(
            m.escrow.try_deposit(&m.client, &amount),
            Err(Ok(Error::InvalidAmount))
        );
    }
    m.escrow.deposit(&m.client, &1_000);
    m.advance_to(T0 + LOCK_SECS);
    for amount in [0, -1, i128::MIN] {
        assert_eq!(
            m.escrow.try_release(&m.client, &1, &worker, &amount),
            Err(Ok(Error::InvalidAmount))
        );
        assert_eq!(
            m.escrow.try_refund(&m.client, &amount, &false),
            Err(Ok(Error::InvalidAmount))
        );
    }
    assert_eq!(m.escrow.balance(&m.client), 1_000);
    assert_eq!(m.held(), 1_000);
}

#[test]
fn deposit_overflowing_the_escrow_balance_is_overflow() {
    let m = Market::new();
    let rich = Address::generate(&m.env);
    StellarAssetClient::new(&m.env, &m.token.address).mint(&rich, &i128::MAX);
    m.escrow.deposit(&rich, &i128::MAX);

    assert_eq!(m.escrow.try_deposit(&rich, &1), Err(Ok(Error::Overflow)));
    assert_eq!(m.escrow.balance(&rich), i128::MAX);
    assert_eq!(m.held(), i128::MAX);
}

#[test]
fn entries_in_use_are_kept_alive() {
    let m = Market::new();
    let other = m.funded_client();
    let worker = Address::generate(&m.env);
    let escrow_key = DataKey::Escrow(m.client.clone());

    m.escrow.deposit(&m.client, &1_000);
    assert_eq!(m.ttl(&escrow_key), PERSISTENT_EXTEND_TO);
    assert_eq!(m.instance_ttl(), INSTANCE_EXTEND_TO);

    // Any call keeps the configuration alive; an entry untouched for 20 days ages.
    m.advance_days(20);
    m.escrow.deposit(&other, &1);
    assert_eq!(m.instance_ttl(), INSTANCE_EXTEND_TO);
    assert_eq!(
        m.ttl(&escrow_key),
        PERSISTENT_EXTEND_TO - 20 * DAY_IN_LEDGERS
    );

    // Below the threshold, touching the escrow extends it again; new markers start full.
    m.advance_days(20);
    m.escrow.release(&m.client, &1, &worker, &100);
    assert_eq!(m.ttl(&escrow_key), PERSISTENT_EXTEND_TO);
    assert_eq!(
        m.ttl(&DataKey::Released(1, worker.clone())),
        PERSISTENT_EXTEND_TO
    );
    assert_eq!(m.instance_ttl(), INSTANCE_EXTEND_TO);
}

#[test]
fn initialize_needs_the_operators_signature() {
    let env = test_env();
    let escrow = EscrowContractClient::new(&env, &env.register(EscrowContract, ()));
    let (operator, token) = (Address::generate(&env), Address::generate(&env));

    assert_eq!(
        escrow.try_initialize(&operator, &token, &LOCK_SECS),
        auth_failure()
    );
    assert_eq!(escrow.try_operator(), Err(Ok(Error::NotInitialized)));

    env.mock_all_auths();
    escrow.initialize(&operator, &token, &LOCK_SECS);
    assert_eq!(env.auths().len(), 1);
    assert_eq!(env.auths()[0].0, operator);
    assert_eq!(escrow.operator(), operator);
}

#[test]
fn second_initialize_is_already_initialized() {
    let m = Market::new();
    let usurper = Address::generate(&m.env);
    assert_eq!(
        m.escrow.try_initialize(&usurper, &m.token.address, &0),
        Err(Ok(Error::AlreadyInitialized))
    );
    assert_eq!(m.escrow.operator(), m.operator);
    assert_eq!(m.escrow.token(), m.token.address);
    assert_eq!(m.escrow.lock_secs(), LOCK_SECS);
}

#[test]
fn calls_before_initialize_are_not_initialized() {
    let env = test_env();
    env.mock_all_auths();
    let escrow = EscrowContractClient::new(&env, &env.register(EscrowContract, ()));
    let someone = Address::generate(&env);

    assert_eq!(escrow.try_operator(), Err(Ok(Error::NotInitialized)));
    assert_eq!(escrow.try_token(), Err(Ok(Error::NotInitialized)));
    assert_eq!(
        escrow.try_deposit(&someone, &1),
        Err(Ok(Error::NotInitialized))
    );
    assert_eq!(
        escrow.try_release(&someone, &1, &someone, &1),
        Err(Ok(Error::NotInitialized))
    );
    assert_eq!(escrow.balance(&someone), 0);
    assert_eq!(escrow.unlock_at(&someone), 0);
}

#[test]
fn every_movement_publishes_an_event() {
    let m = Market::new();
    let worker = Address::generate(&m.env);
    let ours = |m: &Market| m.env.events().all().filter_by_contract(&m.escrow.address);
    // The wire format indexers see: topics name the action and the parties,
    // data is the amount. Each event is also checked against its typed struct.
    let emitted = |topics: Vec<Val>, amount: i128| {
        vec![
            &m.env,
            (m.escrow.address.clone(), topics, amount.into_val(&m.env)),
        ]
    };

    m.escrow.deposit(&m.client, &1_000);
    let topics = (symbol_short!("deposit"), &m.client).into_val(&m.env);
    assert_eq!(ours(&m), emitted(topics, 1_000));
    let deposit = Deposit {
        client: m.client.clone(),
        amount: 1_000,
    };
    assert_eq!(ours(&m), [deposit.to_xdr(&m.env, &m.escrow.address)]);

    m.escrow.release(&m.client, &9, &worker, &300);
    let topics = (symbol_short!("release"), &m.client, &worker, 9_u64).into_val(&m.env);
    assert_eq!(ours(&m), emitted(topics, 300));
    let release = Release {
        client: m.client.clone(),
        worker: worker.clone(),
        task: 9,
        amount: 300,
    };
    assert_eq!(ours(&m), [release.to_xdr(&m.env, &m.escrow.address)]);

    m.escrow.refund(&m.client, &700, &true);
    let topics = (symbol_short!("refund"), &m.client).into_val(&m.env);
    assert_eq!(ours(&m), emitted(topics, 700));
    let refund = Refund {
        client: m.client.clone(),
        amount: 700,
    };
    assert_eq!(ours(&m), [refund.to_xdr(&m.env, &m.escrow.address)]);

    // A refused call publishes nothing.
    assert!(m.escrow.try_release(&m.client, &9, &worker, &1).is_err());
    assert!(ours(&m).events().is_empty());
}
