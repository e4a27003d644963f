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
"""

import hashlib
import json
import os
from decimal import Decimal

import stellar_sdk
from stellar_sdk import Account, Asset, Keypair, TransactionBuilder

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
    for dest, asset, amount in payments:
        builder.append_payment_op(destination=dest, asset=parse_asset(asset), amount=units(amount))
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
        "payments": [{"destination": d, "asset": a, "amount": n} for d, a, n in payments],
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
