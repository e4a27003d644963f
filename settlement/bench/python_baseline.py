#!/usr/bin/env python3
"""Python baseline for `tally bench settle`: build + sign + base64-encode
100-op payment transactions with stellar-sdk, the same work as
`tally_settlement::bench::bench_build_sign`.

    python3 settlement/bench/python_baseline.py [--ops 100] [--txs 20] [--json]

Prints ops/s and tx/s (one line of JSON with --json).
"""

import argparse
import hashlib
import json
import time

import stellar_sdk
from stellar_sdk import Account, Asset, Keypair, TransactionBuilder

PASSPHRASE = "Test SDF Network ; September 2015"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=100)
    parser.add_argument("--txs", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    source = Keypair.from_raw_ed25519_seed(hashlib.sha256(b"bench-source").digest())
    workers = [
        Keypair.from_raw_ed25519_seed(hashlib.sha256(f"bench-worker-{i}".encode()).digest()).public_key
        for i in range(args.ops)
    ]
    native = Asset.native()

    def one(seq: int) -> str:
        builder = TransactionBuilder(Account(source.public_key, seq), PASSPHRASE, base_fee=100)
        builder.add_time_bounds(1_700_000_000, 1_700_000_300)
        builder.add_hash_memo(hashlib.sha256(seq.to_bytes(8, "big")).digest())
        for i, dest in enumerate(workers):
            builder.append_payment_op(dest, native, f"{(i + 1) * 1000 / 1e7:.7f}")
        envelope = builder.build()
        envelope.sign(source)
        return envelope.to_xdr()

    one(0)  # warm up
    start = time.perf_counter()
    total = 0
    for seq in range(1, args.txs + 1):
        total += len(one(seq))
    secs = time.perf_counter() - start
    report = {
        "bench": "settle-python",
        "sdk": stellar_sdk.__version__,
        "ops_per_tx": args.ops,
        "txs": args.txs,
        "ops_per_sec": args.ops * args.txs / secs,
        "tx_per_sec": args.txs / secs,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(f"stellar-sdk {stellar_sdk.__version__}: {report['ops_per_sec']:.0f} ops/s, "
              f"{report['tx_per_sec']:.2f} tx/s ({args.txs} txs x {args.ops} ops)")


if __name__ == "__main__":
    main()
