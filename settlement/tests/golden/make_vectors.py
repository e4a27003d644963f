#!/usr/bin/env python3
"""Golden payment-transaction vectors for tally-settlement, made with stellar-sdk.

Regenerate ONLY on purpose (the Rust test `tests/golden.rs` compares the
Rust builder byte for byte against the checked-in output):

    python3 settlement/tests/golden/make_vectors.py

Everything is deterministic: keys come from fixed 32-byte seeds
(sha256 of a label), sequence numbers, time bounds and memo hashes are
fixed, and ed25519 signatures are deterministic. Running the script twice
writes the same file.

Amounts are integer stroops in the JSON; stellar-sdk takes decimal strings
of whole units, so they are converted with Decimal (never floats).

Each payment is `(destination, asset, amount)` or `(destination, asset,
amount, op)` with `op` one of the Rust `PayoutOp` names:

- `payment` (the default, not written to the JSON): a Payment op;
- `create_account`: a CreateAccount op, starting balance = amount, asset
  always `native`;
- `claimable_balance`: a CreateClaimableBalance op with one claimant, the
  destination, under an unconditional predicate.

New vectors are appended; the ones before them must stay byte-identical.
"""

import hashlib
import json
import os
from decimal import Decimal

import stellar_sdk
from stellar_sdk import Account, Asset, Claimant, ClaimPredicate, Keypair, TransactionBuilder

TESTNET = "Test SDF Network ; September 2015"
PUBLIC = "Public Global Stellar Network ; September 2015"
CUSTOM = "Tally Local Network ; 2025"


def seed(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def keypair(label: str) -> Keypair:
    return Keypair.from_raw_ed25519_seed(seed(label))


def account(label: str) -> str:
    return keypair(label).public_key


def parse_asset(text: str) -> Asset:
    if text == "native":
        return Asset.native()
    code, issuer = text.split(":")
    return Asset(code, issuer)


def units(stroops: int) -> str:
    return str(Decimal(stroops).scaleb(-7))


def append_op(builder, payment):
    dest, asset, amount, op = (*payment, "payment")[:4]
    if op == "payment":
        builder.append_payment_op(destination=dest, asset=parse_asset(asset), amount=units(amount))
    elif op == "create_account":
        assert asset == "native", "create_account pays native lumens only"
        builder.append_create_account_op(destination=dest, starting_balance=units(amount))
    elif op == "claimable_balance":
        claimant = Claimant(destination=dest, predicate=ClaimPredicate.predicate_unconditional())
        builder.append_create_claimable_balance_op(
            asset=parse_asset(asset), amount=units(amount), claimants=[claimant]
        )
    else:
        raise ValueError(f"unknown op {op!r}")


def payment_json(payment):
    dest, asset, amount, op = (*payment, "payment")[:4]
    out = {"destination": dest, "asset": asset, "amount": amount}
    if op != "payment":
        out["op"] = op
    return out


def vector(name, network, source_label, seq, base_fee, min_time, max_time, memo_label, payments):
    kp = keypair(source_label)
    memo_hash = seed(memo_label)
    # Account.sequence is the account's current sequence; the builder uses +1.
    builder = TransactionBuilder(
        source_account=Account(kp.public_key, seq - 1),
        network_passphrase=network,
        base_fee=base_fee,
    )
    builder.add_time_bounds(min_time, max_time)
    builder.add_hash_memo(memo_hash)
    for payment in payments:
        append_op(builder, payment)
    envelope = builder.build()
    envelope.sign(kp)
    return {
        "name": name,
        "network": network,
        "source_seed_hex": seed(source_label).hex(),
        "source_secret": kp.secret,
        "source": kp.public_key,
        "seq": seq,
        "base_fee": base_fee,
        "min_time": min_time,
        "max_time": max_time,
        "memo_hash": memo_hash.hex(),
        "payments": [payment_json(p) for p in payments],
        "fee": base_fee * len(payments),
        "envelope_xdr": envelope.to_xdr(),
        "tx_hash": envelope.hash_hex(),
    }


def main():
    issuer4 = account("issuer-usdc")
    issuer12 = account("issuer-tally")
    usdc = f"USDC:{issuer4}"
    five = f"ABCDE:{issuer12}"
    twelve = f"TALLYCREDITS:{issuer12}"
    one = f"X:{issuer4}"
    vectors = [
        vector(
            "testnet_native_1op", TESTNET, "operator-a", 4294967297, 100,
            1700000000, 1700000300, "memo-1",
            [(account("worker-0"), "native", 1234567)],
        ),
        vector(
            "public_alphanum4_3ops", PUBLIC, "operator-b", 123456789012345, 100,
            1700000000, 1700003600, "memo-2",
            [
                (account("worker-1"), usdc, 1),
                (account("worker-2"), usdc, 25000000),
                (account("worker-3"), one, 99999999999),
            ],
        ),
        vector(
            "custom_alphanum12_100ops", CUSTOM, "operator-c", 2, 100,
            0, 1800000000, "memo-3",
            [
                (account(f"worker-{i}"), twelve if i % 3 else five, 1000 + i * 7919)
                for i in range(100)
            ],
        ),
        vector(
            "testnet_mixed_100ops_fee1000", TESTNET, "operator-a", 9223372036854775806, 1000,
            1, 0, "memo-4",
            [
                (account(f"worker-{i % 17}"), "native" if i % 2 else usdc, 2 ** 62 + i)
                for i in range(100)
            ],
        ),
        vector(
            "public_native_max_amount", PUBLIC, "operator-b", 1, 100,
            0, 0, "memo-5",
            [(account("worker-9"), "native", 2 ** 63 - 1)],
        ),
        # Payouts that cannot fail on a missing destination account.
        vector(
            "testnet_create_account_1op", TESTNET, "operator-a", 4294967298, 100,
            1700000000, 1700000300, "memo-6",
            [(account("new-worker-0"), "native", 10000000, "create_account")],
        ),
        vector(
            "public_claimable_native_1op", PUBLIC, "operator-b", 7, 100,
            0, 1700003600, "memo-7",
            [(account("new-worker-1"), "native", 2 ** 63 - 1, "claimable_balance")],
        ),
        vector(
            "testnet_claimable_alphanum4_3ops", TESTNET, "operator-a", 5, 200,
            1700000000, 1700000300, "memo-8",
            [
                (account("worker-1"), usdc, 1, "claimable_balance"),
                (account("worker-2"), one, 25000000, "claimable_balance"),
                (account("new-worker-2"), usdc, 99999999999, "claimable_balance"),
            ],
        ),
        vector(
            "custom_claimable_alphanum12_2ops", CUSTOM, "operator-c", 3, 100,
            0, 1800000000, "memo-9",
            [
                (account("worker-3"), twelve, 5000000, "claimable_balance"),
                (account("worker-4"), five, 7, "claimable_balance"),
            ],
        ),
        vector(
            "testnet_native_mixed_ops", TESTNET, "operator-a", 4294967299, 100,
            1700000000, 1700000300, "memo-10",
            [
                (account("worker-0"), "native", 1234567),
                (account("new-worker-3"), "native", 10000000, "create_account"),
                (account("new-worker-4"), "native", 5000, "claimable_balance"),
                (account("worker-5"), "native", 42),
            ],
        ),
        vector(
            "public_credit_mixed_ops", PUBLIC, "operator-b", 123456789012346, 100,
            1700000000, 1700003600, "memo-11",
            [
                (account("worker-1"), usdc, 300),
                (account("new-worker-5"), usdc, 700, "claimable_balance"),
                (account("new-worker-6"), "native", 15000000, "create_account"),
                (account("worker-6"), twelve, 11, "claimable_balance"),
                (account("worker-7"), five, 13),
            ],
        ),
        vector(
            "custom_mixed_100ops_fee1000", CUSTOM, "operator-c", 9223372036854775806, 1000,
            1, 0, "memo-12",
            [
                (
                    account(f"payee-{i}"),
                    "native" if i % 3 == 1 or i % 4 == 0 else [usdc, twelve, five][i % 3],
                    2 ** 62 + i,
                    ["payment", "create_account", "claimable_balance"][i % 3],
                )
                for i in range(100)
            ],
        ),
    ]
    out = {
        "generator": f"stellar-sdk {stellar_sdk.__version__}",
        "regenerate": "python3 settlement/tests/golden/make_vectors.py",
        "vectors": vectors,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {len(vectors)} vectors to {path}")


if __name__ == "__main__":
    main()
