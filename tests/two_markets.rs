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

/// Two `tally serve` processes, `a` and `b`, on one fresh PostgreSQL
/// database, their logs in `dir` (`a.log`, `b.log`).
struct Pair {
    dir: tempfile::TempDir,
    db: String,
    operator: Signer,
    addrs: [String; 2],
    urls: [String; 2],
    a: tokio::process::Child,
    b: tokio::process::Child,
}

async fn two_serves() -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_db(Backend::Postgres, &dir).await;
    let operator = Signer::generate();
    std::fs::write(dir.path().join("operator.key"), operator.secret()).unwrap();
    let addrs = [free_addr(), free_addr()];
    let urls = addrs.clone().map(|a| format!("http://{a}"));
    let a = serve(dir.path(), &db, &addrs[0], "a").await;
    let b = serve(dir.path(), &db, &addrs[1], "b").await;
    Pair {
        dir,
        db,
        operator,
        addrs,
        urls,
        a,
        b,
    }
}

/// A new worker whose offer (`model`, any price) is posted through `url`.
async fn offering_worker(url: &str, model: &tally_protocol::Sha256Hex) -> Signer {
    let signer = Signer::generate();
    Client::new(url, Some(signer.clone()))
        .post_offer(&OfferRequest {
            models: vec![model.clone()],
            min_price: Stroops(0),
            capacity: 8,
        })
        .await
        .unwrap();
    signer
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

/// The `n` a `SELECT COUNT(*) AS n ...` query counts.
async fn count(store: &tally_market::db::Db, sql: &str) -> i64 {
    let row = tally_market::db::query(sql).fetch_one(store).await.unwrap();
    row.try_get::<i64>("n").unwrap()
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_markets_on_one_database_one_killed_mid_load_lose_nothing_and_pay_once() {
    if postgres_url().is_none() {
        return;
    }
    let Pair {
        dir: _dir,
        db,
        operator,
        urls: [a_url, b_url],
        mut a,
        mut b,
        ..
    } = two_serves().await;

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
        let home = if i % 2 == 0 { &a_url } else { &b_url };
        workers.push(spawn_worker(
            offering_worker(home, &model).await,
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

/// What the clients and workers of the kill test saw: every answer with a
/// status of 500 or more, and how many requests got through.
#[derive(Default)]
struct Seen {
    server_errors: std::sync::Mutex<Vec<String>>,
    answered: AtomicUsize,
}

impl Seen {
    /// Note a request's outcome: a 5xx is kept; a refused connection (the
    /// killed market) or a 4xx (a lease lost meanwhile) is part of the game.
    fn note<T>(&self, what: &str, r: &Result<T, tally_protocol::Error>) {
        match r {
            Ok(_) => {
                self.answered.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) if e.status().is_some_and(|s| s.is_server_error()) => {
                self.server_errors
                    .lock()
                    .unwrap()
                    .push(format!("{what}: {e}"));
            }
            Err(e) if e.status().is_some() => {
                self.answered.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {}
        }
    }
}

/// A worker taking turns between the two markets: claims, heartbeats now
/// and then, walks away from one assignment in twenty (its lease expires),
/// reports a failure on another, answers the rest, each request on the
/// other market when one does not answer.
fn spawn_roaming_worker(
    signer: Signer,
    urls: [String; 2],
    first: usize,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    seen: Arc<Seen>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let clients = urls.map(|u| Client::new(&u, Some(signer.clone())));
        let mut turn = first;
        while !stop.load(Ordering::Relaxed) {
            turn += 1;
            let c = &clients[turn % 2];
            let claimed = c.claim(3, 200).await;
            seen.note("claim", &claimed);
            let Ok(claimed) = claimed else {
                // A killed market refuses at once: no spinning on it.
                tokio::task::yield_now().await;
                continue;
            };
            for (k, a) in claimed.assignments.into_iter().enumerate() {
                if a.assignment.0 % 20 == 3 {
                    // Walked away from: its lease expires in the sweep,
                    // next to the decisions.
                    continue;
                }
                for c in [c, &clients[(turn + 1) % 2]] {
                    if k % 3 == 0 {
                        seen.note("heartbeat", &c.heartbeat(a.assignment).await);
                    }
                    let r = if a.assignment.0 % 20 == 7 {
                        c.report_failure(a.assignment, "out of memory")
                            .await
                            .map(|_| ())
                    } else {
                        c.submit_result(a.assignment, &honest()).await.map(|_| ())
                    };
                    seen.note("result", &r);
                    match r {
                        Ok(()) => {
                            done.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        // Refused (the lease lost meanwhile): done with it.
                        Err(e) if e.status().is_some() => break,
                        // The market is gone: the other one.
                        Err(_) => {}
                    }
                }
            }
        }
    })
}

/// A client posting `bids` bids of `images` images, taking turns between
/// the markets (the other one when a market does not answer), withdrawing
/// a little after each; the bids it knows it placed.
async fn client_load(
    signer: Signer,
    urls: [String; 2],
    model: tally_protocol::Sha256Hex,
    seed: u8,
    bids: usize,
    images: usize,
    seen: Arc<Seen>,
) -> Vec<BidId> {
    let clients = urls.map(|u| Client::new(&u, Some(signer.clone())));
    let mut placed = Vec::new();
    for i in 0..bids {
        let pngs: Vec<Vec<u8>> = (0..images)
            .map(|j| png(seed.wrapping_mul(64).wrapping_add((i * images + j) as u8)))
            .collect();
        for attempt in 0..200usize {
            let c = &clients[(i + attempt) % 2];
            let r = c.bid_images(bid_request(&model, 10_000), &pngs).await;
            seen.note("bid", &r);
            match r {
                Ok(created) => {
                    placed.push(created.bid);
                    break;
                }
                Err(e) if e.status().is_some() => panic!("bid refused: {e}"),
                Err(_) => tokio::task::yield_now().await,
            }
        }
        for c in &clients {
            let r = c.withdraw(Stroops(1_000)).await;
            seen.note("withdrawal", &r);
            if r.is_ok() {
                break;
            }
        }
        // Read the bid back through both markets (and the long poll).
        for c in &clients {
            if let Some(bid) = placed.last() {
                seen.note("bid status", &c.bid_wait(*bid, 0, 100).await);
            }
        }
    }
    placed
}

/// Bids each client of the kill test places, and images per bid.
const BIDS: usize = 6;
const IMAGES: usize = 15;

/// Two markets on one fresh PostgreSQL database, loaded by sixteen workers
/// and four clients taking turns between them; market A is killed with
/// SIGKILL five times while it decides, and restarted each time. No client
/// or worker ever gets a 5xx answer, every task ends final, every agreeing
/// result is paid exactly once, and the audit passes. The markets' logs
/// say how many transactions PostgreSQL aborted and the market ran again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_market_killed_five_times_under_load_never_answers_5xx_and_loses_nothing() {
    if postgres_url().is_none() {
        return;
    }
    let started = Instant::now();
    let Pair {
        dir,
        db,
        operator,
        addrs,
        urls,
        mut a,
        mut b,
    } = two_serves().await;
    let seen = Arc::new(Seen::default());

    let admin = Client::new(&urls[1], Some(operator));
    let clients: Vec<Signer> = (0..4).map(|_| Signer::generate()).collect();
    for c in &clients {
        admin
            .credit(c.account(), Stroops(1_000_000_000))
            .await
            .unwrap();
    }
    let model = model(&Client::new(&urls[0], Some(clients[0].clone()))).await;

    let (stop, done) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let mut workers = Vec::new();
    for i in 0..16 {
        workers.push(spawn_roaming_worker(
            offering_worker(&urls[i % 2], &model).await,
            urls.clone(),
            i,
            Arc::clone(&stop),
            Arc::clone(&done),
            Arc::clone(&seen),
        ));
    }
    let loads: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(k, c)| {
            tokio::spawn(client_load(
                c.clone(),
                urls.clone(),
                model.clone(),
                k as u8,
                BIDS,
                IMAGES,
                Arc::clone(&seen),
            ))
        })
        .collect();

    // Five times, once another hundred results are in: kill A in the
    // middle of its decisions, then start it again on the same database.
    for kill in 0..5 {
        let due = 50 + 100 * kill;
        while done.load(Ordering::Relaxed) < due {
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "stalled at {} results before kill {kill}",
                done.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        a.kill().await.unwrap();
        a = serve(dir.path(), &db, &addrs[0], "a").await;
    }
    let mut bids = Vec::new();
    for (k, l) in loads.into_iter().enumerate() {
        bids.extend(l.await.unwrap().into_iter().map(|bid| (k, bid)));
    }
    assert_eq!(bids.len(), 4 * BIDS, "every client placed its bids");

    // Every task in the database ends final (bids a killed market took
    // but could not acknowledge included), every bid done.
    let store = tally_market::db::Db::connect(&db).await.unwrap();
    loop {
        let open = count(
            &store,
            "SELECT COUNT(*) AS n FROM tasks WHERE status NOT IN ('verified', 'failed')",
        )
        .await;
        let bids_open = count(
            &store,
            "SELECT COUNT(*) AS n FROM bids WHERE status <> 'done' AND kind = 'client'",
        )
        .await;
        if open == 0 && bids_open == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "{open} tasks and {bids_open} bids still open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    for (k, bid) in &bids {
        let status = Client::new(&urls[0], Some(clients[*k].clone()))
            .bid(*bid)
            .await;
        seen.note("bid status", &status);
        assert!(status.unwrap().tasks.iter().all(|t| t.status.is_final()));
    }
    let anon = Client::new(&urls[1], None);

    let agreed = tally_market::db::query("SELECT id FROM assignments WHERE status = 'agreed'")
        .fetch_all(&store)
        .await
        .unwrap();
    assert!(
        agreed.len() >= 4 * BIDS * IMAGES,
        "at least one agreeing result per task"
    );
    let records = records_paying(&anon, agreed.len(), Duration::from_secs(60)).await;
    assert_eq!(
        assert_paid_exactly_once(&store, &records).await,
        agreed.len()
    );
    audit_cli_passes(&urls[1]).await;
    audit_cli_passes(&urls[0]).await;
    let errors = seen.server_errors.lock().unwrap().clone();
    assert!(errors.is_empty(), "answers of 500 or more: {errors:#?}");

    // How often PostgreSQL broke a lock cycle and the market ran the
    // transaction again, and that no such error reached anyone.
    let log = |name: &str| std::fs::read_to_string(dir.path().join(format!("{name}.log"))).unwrap();
    let logs = format!("{}\n{}", log("a"), log("b"));
    let retried: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("running it again"))
        .collect();
    for line in &retried {
        println!("{line}");
    }
    let retries = retried.len();
    let deadlocks = logs.lines().filter(|l| l.contains("deadlock")).count();
    let internal = logs
        .lines()
        .filter(|l| l.contains("internal error"))
        .count();
    println!(
        "{} results, {} answered requests, {retries} transactions run again ({deadlocks} log lines name a deadlock), {internal} internal errors, {:.1} s",
        done.load(Ordering::Relaxed),
        seen.answered.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(internal, 0, "internal errors in the logs");
    b.kill().await.unwrap();
    a.kill().await.unwrap();
    store.close().await;
}

/// A real lock cycle on PostgreSQL: two write transactions, each holding
/// one row the other then wants. The server aborts one of them as the
/// deadlock victim (`40P01`); `Db::retrying` runs it again, and both
/// transactions' writes are in, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_victim_is_run_again_and_both_writes_land_once() {
    if postgres_url().is_none() {
        return;
    }
    use tally_market::db::{query, Db};
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Db::connect(&fresh_db(Backend::Postgres, &dir).await)
            .await
            .unwrap(),
    );
    query("CREATE TABLE cycle (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)")
        .execute(&*db)
        .await
        .unwrap();
    query("INSERT INTO cycle (id, n) VALUES (1, 0), (2, 0)")
        .execute(&*db)
        .await
        .unwrap();
    // Both hold their first row before either asks for its second (on
    // their first run only: a run again goes straight through).
    let both_hold = Arc::new(tokio::sync::Barrier::new(2));
    let writer = |first: i64, second: i64| {
        let (db, both_hold) = (Arc::clone(&db), Arc::clone(&both_hold));
        tokio::spawn(async move {
            let runs = &AtomicUsize::new(0);
            let (db2, both_hold) = (&*db, &*both_hold);
            db.retrying("cycle", move || async move {
                let run = runs.fetch_add(1, Ordering::Relaxed);
                let mut tx = db2.begin().await?;
                query("UPDATE cycle SET n = n + 1 WHERE id = $1")
                    .bind(first)
                    .execute(&mut tx)
                    .await?;
                if run == 0 {
                    both_hold.wait().await;
                }
                query("UPDATE cycle SET n = n + 1 WHERE id = $1")
                    .bind(second)
                    .execute(&mut tx)
                    .await?;
                tx.commit().await
            })
            .await
            .map(|()| runs.load(Ordering::Relaxed))
        })
    };
    let (one, two) = (writer(1, 2), writer(2, 1));
    let runs = [one.await.unwrap().unwrap(), two.await.unwrap().unwrap()];
    assert_eq!(
        runs.iter().sum::<usize>(),
        3,
        "one victim, run once more: {runs:?}"
    );
    assert_eq!(db.retries(), 1);
    let rows = query("SELECT n FROM cycle ORDER BY id")
        .fetch_all(&*db)
        .await
        .unwrap();
    let n: Vec<i64> = rows.iter().map(|r| r.try_get("n").unwrap()).collect();
    assert_eq!(n, [2, 2], "each transaction's two writes, once");
    db.close().await;
}
