//! Build + sign + encode throughput of 100-op payment transactions.
//!
//! ```text
//! cargo run --release -p tally-settlement --example bench [-- TXS]
//! python3 settlement/bench/python_baseline.py     # the stellar-sdk baseline
//! ```

use tally_settlement::bench::{bench_build_sign, bench_build_sign_threads};

fn main() {
    let txs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    bench_build_sign_threads(100, txs / 10, 1); // warm up
    let one = bench_build_sign_threads(100, txs, 1);
    let all = bench_build_sign(100, txs);
    for r in [one, all] {
        println!("{}", serde_json::to_string(&r).unwrap());
    }
}
