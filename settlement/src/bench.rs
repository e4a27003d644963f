//! `tally bench settle`: how fast payment batches are built, signed and encoded.
//!
//! Each transaction is a full batch as the market would make it: fresh
//! payments (distinct destinations, native asset), a new sequence number,
//! time bounds and a `MemoHash`, built, validated, signed and written as a
//! base64 envelope. Transactions are independent, so they are spread over
//! the machine's cores; [`bench_build_sign_threads`] fixes the thread count.
//! `settlement/bench/python_baseline.py` does the same with stellar-sdk.

use std::hint::black_box;
use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::amount::Stroops;
use crate::asset::Asset;
use crate::encode::TxSigner;
use crate::keys::{Keypair, PublicKey};
use crate::network::Network;
use crate::tx::{Payment, PaymentBatch, MAX_OPS};

/// The result of one benchmark run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub ops_per_sec: f64,
    pub tx_per_sec: f64,
    pub ops_per_tx: usize,
    pub txs: usize,
    pub threads: usize,
    pub seconds: f64,
}

/// Build, sign and encode `txs` transactions of `ops_per_tx` payments
/// (clamped to 1..=100) on all available cores.
pub fn bench_build_sign(ops_per_tx: usize, txs: usize) -> BenchReport {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    bench_build_sign_threads(ops_per_tx, txs, threads)
}

/// [`bench_build_sign`] on exactly `threads` threads (at least 1).
pub fn bench_build_sign_threads(ops_per_tx: usize, txs: usize, threads: usize) -> BenchReport {
    let ops = ops_per_tx.clamp(1, MAX_OPS);
    let threads = threads.clamp(1, txs.max(1));
    let source = Keypair::from_seed(&Sha256::digest(b"bench-source").into());
    let workers: Vec<PublicKey> = (0..ops)
        .map(|i| {
            Keypair::from_seed(&Sha256::digest(format!("bench-worker-{i}")).into()).public_key()
        })
        .collect();
    let source_key = source.public_key();
    let signer = TxSigner::new(source, &Network::testnet());

    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (mut signer, workers) = (signer.clone(), &workers);
            // Thread t signs transactions t, t + threads, t + 2 * threads, ...
            scope.spawn(move || {
                let mut envelope = String::with_capacity(16 * 1024);
                for n in (t..txs).step_by(threads) {
                    let batch = batch(source_key, n as i64 + 1, workers);
                    let signed = signer.sign_into(&batch, &mut envelope);
                    black_box((signed.ok(), envelope.len()));
                }
            });
        }
    });
    let seconds = start.elapsed().as_secs_f64().max(1e-9);
    BenchReport {
        ops_per_sec: (ops * txs) as f64 / seconds,
        tx_per_sec: txs as f64 / seconds,
        ops_per_tx: ops,
        txs,
        threads,
        seconds,
    }
}

fn batch(source: PublicKey, seq: i64, workers: &[PublicKey]) -> PaymentBatch {
    let memo: [u8; 32] = Sha256::digest(seq.to_be_bytes()).into();
    PaymentBatch::new(source, seq)
        .with_time_bounds(1_700_000_000, 1_700_000_300)
        .with_memo_hash(memo)
        .with_payments(
            workers.iter().enumerate().map(|(i, w)| {
                Payment::new(*w, Asset::Native, Stroops((i as i64 + 1) * 1000 + seq))
            }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_runs_and_reports_consistent_rates() {
        let report = bench_build_sign_threads(100, 8, 2);
        assert_eq!((report.ops_per_tx, report.txs, report.threads), (100, 8, 2));
        assert!(report.tx_per_sec > 0.0);
        assert!((report.ops_per_sec / report.tx_per_sec - 100.0).abs() < 1e-6);
        assert_eq!(bench_build_sign(500, 1).ops_per_tx, 100);
    }

    #[test]
    fn bench_batches_are_valid_payment_transactions() {
        let source = Keypair::from_seed(&[3; 32]);
        let workers: Vec<PublicKey> = (0..100u8)
            .map(|i| Keypair::from_seed(&[i; 32]).public_key())
            .collect();
        let b = batch(source.public_key(), 9, &workers);
        assert_eq!(b.validate().unwrap(), 10_000);
        let signed = b.sign(&source, &Network::testnet()).unwrap();
        let decoded = crate::decode::decode_envelope(&signed.envelope_xdr).unwrap();
        assert_eq!(decoded.payments.len(), 100);
    }
}
