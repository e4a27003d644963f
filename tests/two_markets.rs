//! Two `tally serve` processes on one PostgreSQL database under load, one
//! of them killed with SIGKILL in the middle: its workers move to the other
//! process, the leases it handed out expire there, and in the end every
//! task is verified, every agreeing result is paid exactly once, the ledger
//! balances and `tally audit` passes. Without `TALLY_TEST_POSTGRES_URL` the
//! test is skipped, unless `CI` is set.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tally_protocol::wire::OfferRequest;
use tally_protocol::{BidId, Client, Signer, Stroops};

/// `tally serve` on `db`, leases of 2 s, settling every 100 ms.
async fn serve(dir: &Path, db: &str, addr: &str, name: &str) -> tokio::process::Child {
    serve_process(
        dir,
        db,
        addr,
        name,
        &["--lease-secs", "2", "--settle-every", "100ms"],
    )
    .await
}

/// A worker that claims and answers on its market until `stop`; if its
/// market goes away it moves to `fallback`. Counts its results in `done`.
fn spawn_worker(
    signer: Signer,
    home: String,
    fallback: String,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut c = Client::new(&home, Some(signer.clone()));
        while !stop.load(Ordering::Relaxed) {
            let claimed = match c.claim(4, 200).await {
                Ok(got) => got.assignments,
                Err(_) => {
                    c = Client::new(&fallback, Some(signer.clone()));
                    continue;
                }
            };
            for a in claimed {
                // A result refused because the market died meanwhile is
                // simply lost with its lease; the task runs again.
                if c.submit_result(a.assignment, &honest()).await.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_markets_on_one_database_one_killed_mid_load_lose_nothing_and_pay_once() {
    if postgres_url().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_db(Backend::Postgres, &dir).await;
    let operator = Signer::generate();
    std::fs::write(dir.path().join("operator.key"), operator.secret()).unwrap();
    let (a_addr, b_addr) = (free_addr(), free_addr());
    let (a_url, b_url) = (format!("http://{a_addr}"), format!("http://{b_addr}"));
    let mut a = serve(dir.path(), &db, &a_addr, "a").await;
    let mut b = serve(dir.path(), &db, &b_addr, "b").await;

    let client = Signer::generate();
    Client::new(&a_url, Some(operator))
        .credit(client.account(), Stroops(1_000_000_000))
        .await
        .unwrap();
    let on_a = Client::new(&a_url, Some(client.clone()));
    let on_b = Client::new(&b_url, Some(client.clone()));
    let model = model(&on_a).await;

    // Twelve workers, half on each market, all offering the model.
    let (stop, done) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let mut workers = Vec::new();
    for i in 0..12 {
        let signer = Signer::generate();
        let home = if i % 2 == 0 { &a_url } else { &b_url };
        Client::new(home, Some(signer.clone()))
            .post_offer(&OfferRequest {
                models: vec![model.clone()],
                min_price: Stroops(0),
                capacity: 8,
            })
            .await
            .unwrap();
        workers.push(spawn_worker(
            signer,
            home.clone(),
            // Workers of the killed market move to the survivor.
            if i % 2 == 0 {
                b_url.clone()
            } else {
                a_url.clone()
            },
            Arc::clone(&stop),
            Arc::clone(&done),
        ));
    }

    // Four bids of 15 images, two through each market.
    let mut bids: Vec<BidId> = Vec::new();
    for i in 0..4u8 {
        let images: Vec<Vec<u8>> = (0..15).map(|j| png(i * 15 + j)).collect();
        let via = if i % 2 == 0 { &on_a } else { &on_b };
        bids.push(
            via.bid_images(bid_request(&model, 10_000), &images)
                .await
                .unwrap()
                .bid,
        );
    }

    // Mid-load, market A dies without warning.
    let started = Instant::now();
    while done.load(Ordering::Relaxed) < 40 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the markets made no progress"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    a.kill().await.unwrap();
    let killed_at = done.load(Ordering::Relaxed);

    // Every bid finishes on the survivor: each wait returns when the bid
    // changes, whichever process decided.
    for bid in &bids {
        let mut status = on_b.bid(*bid).await.unwrap();
        while status.status != tally_protocol::wire::BidState::Done {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "bid {bid} never finished: {status:?}"
            );
            let seen = status.tasks.iter().filter(|t| t.status.is_final()).count();
            status = on_b.bid_wait(*bid, seen, 2_000).await.unwrap();
        }
        assert!(
            status
                .tasks
                .iter()
                .all(|t| t.status == tally_protocol::wire::TaskState::Verified),
            "every task of bid {bid} verified: {status:?}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let results = done.load(Ordering::Relaxed);
    println!("{killed_at} results before the kill, {results} in all");

    // Settlement on the survivor pays everything that agreed.
    let store = tally_market::db::Db::connect(&db).await.unwrap();
    let agreed =
        tally_market::db::query("SELECT id, payout_seq FROM assignments WHERE status = 'agreed'")
            .fetch_all(&store)
            .await
            .unwrap();
    assert!(agreed.len() >= 60, "at least one agreeing result per task");
    let anon = Client::new(&b_url, None);
    let records = records_paying(&anon, agreed.len(), Duration::from_secs(150)).await;
    assert_eq!(
        assert_paid_exactly_once(&store, &records).await,
        agreed.len()
    );
    audit_cli_passes(&b_url).await;
    b.kill().await.unwrap();
    store.close().await;
}
