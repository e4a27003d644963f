//! Settlement over real HTTP and a real database: earnings netted into
//! hash-chained records (one payout per worker), the ledger moving
//! `earned -> paid`, paging, concurrent settlers, a market killed while it
//! settles, and the network fee per verified task. Submission against a
//! stand-in Horizon server is in `settlement/submission.rs`.

mod common;
mod stand_in;
#[path = "settlement/submission.rs"]
mod submission;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::*;
use tally_market::settle::settle_now;
use tally_protocol::wire::SettlementRecord;
use tally_protocol::{AccountId, Client, Stroops};
use tally_settlement::GENESIS_PREV_HASH;

/// Workers claim a few tasks each in turn, then answer honestly, until no
/// work is left (claiming before answering gives every task all its
/// replicas); returns how many results went in.
pub async fn work_all(workers: &[Client]) -> usize {
    let mut n = 0;
    loop {
        let mut held = Vec::new();
        for w in workers {
            held.push(w.claim(8, 0).await.expect("claim").assignments);
        }
        if held.iter().all(Vec::is_empty) {
            return n;
        }
        for (w, got) in workers.iter().zip(held) {
            for a in got {
                w.submit_result(a.assignment, &honest())
                    .await
                    .expect("result");
                n += 1;
            }
        }
    }
}

fn quiet(c: &mut tally_market::Config) {
    c.settle_every = Duration::from_secs(3600);
    c.settle_max_ops = 2;
}

async fn earnings_settle_into_chained_records_with_one_payout_per_worker(backend: Backend) {
    let market = spawn_tweaked(backend, quiet).await;
    let (client, model) = market.client_with_model(1_000_000_000).await;
    let workers = market.workers::<5>(&model).await;
    let price = 10_000;
    let images: Vec<Vec<u8>> = (0..30).map(png).collect();
    client
        .bid_images(bid_request(&model, price), &images)
        .await
        .unwrap();
    let results = work_all(&workers).await;
    assert!(
        results >= 60,
        "30 tasks x 2 or 3 agreeing replicas: {results}"
    );

    // Three settlers at once write each batch once: 5 workers, 2 per record.
    let m = &market.market;
    let (a, b, c) = tokio::join!(settle_now(m), settle_now(m), settle_now(m));
    assert_eq!(a.unwrap() + b.unwrap() + c.unwrap(), 3);
    assert_eq!(settle_now(m).await.unwrap(), 0, "nothing is due twice");

    let anon = market.anonymous();
    let records = all_records(&anon).await;
    let seqs = |rs: &[SettlementRecord]| rs.iter().map(|r| r.seq).collect::<Vec<_>>();
    assert_eq!(seqs(&records), [1, 2, 3]);
    assert_eq!(seqs(&anon.settlements(1).await.unwrap().records), [2, 3]);
    assert!(anon.settlements(3).await.unwrap().records.is_empty());

    let net = price - price * 250 / 10_000;
    let mut paid: HashMap<AccountId, i64> = HashMap::new();
    let mut seen = HashSet::new();
    let mut prev = GENESIS_PREV_HASH.to_string();
    for r in &records {
        assert_eq!(r.prev_hash, prev, "record {} chains", r.seq);
        prev = r.hash.clone();
        assert_eq!(
            r.status, "not_submitted",
            "no server: kept for export, and said to be unsent"
        );
        let env = tally_settlement::decode_envelope(&r.envelope_xdr).unwrap();
        assert_eq!(env.fee, 100 * r.payouts.len() as u32, "base fee x ops");
        assert_eq!(
            env.seq, r.seq as i64,
            "sequence numbers from 1, never reused"
        );
        assert_eq!(env.payments.len(), r.payouts.len());
        for p in &r.payouts {
            assert_eq!(p.amount.0, net * p.assignments.len() as i64);
            assert_eq!(p.tasks.len(), p.assignments.len());
            assert!(paid.insert(p.account.clone(), p.amount.0).is_none());
            assert!(p.assignments.iter().all(|a| seen.insert(*a)));
        }
    }
    assert_eq!(paid.len(), 5, "one payout per worker for all its tasks");
    assert_eq!(seen.len(), results, "every agreeing result paid once");
    for w in &workers {
        let me = w.account_me().await.unwrap();
        assert_eq!(me.earned_unpaid, Stroops(0));
        assert_eq!(me.paid_total.0, paid[&me.account]);
    }
    let report = tally::audit::audit(&anon).await.unwrap();
    assert!(report.ok, "{:?}", report.findings);
    assert_eq!(
        (report.records, report.payouts, report.amount),
        (3, 5, results as i64 * net)
    );
    market.finish().await;
}
both!(earnings_settle_into_chained_records_with_one_payout_per_worker);

/// 500 tasks x 3 replicas by 5 workers between two settlements: one record
/// of 5 operations, 500 stroops of fee, 1 stroop per verified task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netting_keeps_the_network_fee_at_one_stroop_per_verified_task() {
    let market = spawn_tweaked(Backend::Sqlite, |c| {
        c.settle_every = Duration::from_secs(3600)
    })
    .await;
    let (client, model) = market.client_with_model(1_000_000_000).await;
    let workers = market.workers::<5>(&model).await;
    let tasks = 500;
    for half in 0..2 {
        let images: Vec<Vec<u8>> = (0..tasks / 2).map(|i| png((i + half) as u8)).collect();
        client
            .bid_images(bid_request(&model, 10_000), &images)
            .await
            .unwrap();
    }
    work_all(&workers).await;
    settle_now(&market.market).await.unwrap();
    let records = all_records(&market.anonymous()).await;
    let ops: usize = records.iter().map(|r| r.payouts.len()).sum();
    let fee: u64 = records
        .iter()
        .map(|r| {
            u64::from(
                tally_settlement::decode_envelope(&r.envelope_xdr)
                    .unwrap()
                    .fee,
            )
        })
        .sum();
    let per_task = fee as f64 / tasks as f64;
    println!(
        "settlement fee: {fee} stroops for {tasks} verified tasks ({ops} ops in {} records): \
         {per_task:.2} stroops per verified task",
        records.len()
    );
    assert!(per_task <= 1.0, "{per_task} stroops per verified task");
    market.finish().await;
}

/// `tally serve` as a child process, settling every 50 ms, 2 payouts per record.
async fn serve(at: &ServeDir) -> tokio::process::Child {
    at.serve(&["--settle-every", "50ms", "--settle-max-ops", "2"])
        .await
}

/// SIGKILL `tally serve` again and again while it settles (right after a
/// record appears, and at other moments), restart it on the same SQLite
/// file: every agreeing result is paid exactly once, the audit passes, and
/// the ledger balances.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_market_killed_while_settling_pays_every_agreeing_result_exactly_once() {
    let at = ServeDir::new();
    let url = at.url.clone();
    let mut child = serve(&at).await;
    let anon = Client::new(&url, None);
    let (client, model) = at.client_with_model(1_000_000_000).await;
    let mut workers = Vec::new();
    for _ in 0..5 {
        workers.push(at.worker(&model).await);
    }
    let rounds = 8u8;
    let per_round = 12u8;
    let mut results = 0;
    for round in 0..rounds {
        let images: Vec<Vec<u8>> = (0..per_round).map(|i| png(round * per_round + i)).collect();
        client
            .bid_images(bid_request(&model, 10_000), &images)
            .await
            .unwrap();
        let before = all_records(&anon).await.len();
        results += work_all(&workers).await;
        if round % 2 == 0 {
            // Right after a record appears: likely inside the next batch.
            while all_records(&anon).await.len() == before {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(u64::from(round) * 13 % 60)).await;
        }
        child.kill().await.unwrap();
        child = serve(&at).await;
    }
    let records = records_paying(&anon, results, Duration::from_secs(30)).await;

    audit_cli_passes(&url).await;
    child.kill().await.unwrap();
    let store = tally_market::db::Db::connect(&at.db).await.unwrap();
    assert_eq!(assert_paid_exactly_once(&store, &records).await, results);
    println!("{} records after {rounds} kills", records.len());
    store.close().await;
}
