//! `tally bench market --markets N`: N `tally serve` processes on one
//! database (PostgreSQL when N > 1), the same workers and clients spread
//! over them round-robin, and the verified tasks per second of all of them.
//! The processes run with `tally serve`'s defaults (settling every 10 s).

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;
use tally_protocol::wire::OfferRequest;
use tally_protocol::{Client, Signer, Stroops};

use super::tiny_png;

/// One `tally serve` child on `db`, listening on a free local port.
async fn serve(dir: &Path, db: &str, i: usize) -> anyhow::Result<(tokio::process::Child, String)> {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let log = std::fs::File::create(dir.join(format!("market-{i}.log")))?;
    let child = tokio::process::Command::new(std::env::current_exe()?)
        .args([
            "serve",
            "--listen",
            &addr.to_string(),
            "--db",
            db,
            "--operator-key",
        ])
        .arg(dir.join("operator.key"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting tally serve")?;
    let url = format!("http://{addr}");
    let probe = Client::new(&url, None);
    let started = Instant::now();
    while probe.healthz().await.is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            bail!(
                "market {i} did not come up; its log is {}",
                dir.join(format!("market-{i}.log")).display()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((child, url))
}

/// N `tally serve` processes on one fresh database.
struct Fleet {
    /// The PostgreSQL server given (`--db`), if any.
    base: String,
    url: String,
    postgres: bool,
    operator: Signer,
    children: Vec<tokio::process::Child>,
    urls: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Fleet {
    async fn start(db: &str, markets: usize) -> anyhow::Result<Fleet> {
        if markets == 0 {
            bail!("--markets must be at least 1");
        }
        let postgres = db.starts_with("postgres://") || db.starts_with("postgresql://");
        if markets > 1 && !postgres {
            bail!("--markets {markets} needs --db postgres://...: several market processes share one PostgreSQL database");
        }
        let dir = tempfile::tempdir()?;
        let url = if postgres {
            crate::local::fresh_postgres(db).await?
        } else {
            format!("sqlite://{}", dir.path().join("bench.db").display())
        };
        let operator = Signer::generate();
        std::fs::write(dir.path().join("operator.key"), operator.secret())?;
        let (mut children, mut urls) = (Vec::new(), Vec::new());
        // The first creates the schema; the others start once it exists.
        for i in 0..markets {
            let (child, u) = serve(dir.path(), &url, i).await?;
            children.push(child);
            urls.push(u);
        }
        Ok(Fleet {
            base: db.to_string(),
            url,
            postgres,
            operator,
            children,
            urls,
            _dir: dir,
        })
    }

    /// A client credited with `amount`, as seen through each market, and
    /// the benchmark model it uploaded.
    async fn client(
        &self,
        amount: i64,
    ) -> anyhow::Result<(Vec<Client>, tally_protocol::Sha256Hex)> {
        let client = Signer::generate();
        Client::new(&self.urls[0], Some(self.operator.clone()))
            .credit(client.account(), Stroops(amount))
            .await?;
        let clients: Vec<Client> = self
            .urls
            .iter()
            .map(|u| Client::new(u, Some(client.clone())))
            .collect();
        let model = clients[0]
            .upload_model(tally_model::build::tiny_yolox("bench"))
            .await?
            .model;
        Ok((clients, model))
    }

    fn engine(&self) -> &'static str {
        if self.postgres {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// Stop the markets and drop a fresh PostgreSQL database.
    async fn stop(self) -> anyhow::Result<()> {
        for mut c in self.children {
            let _ = c.kill().await;
        }
        if self.postgres {
            crate::local::drop_postgres(&self.base, &self.url).await?;
        }
        Ok(())
    }
}

/// `tally bench market --markets N`: verified tasks per second with the
/// workers and the bids spread over N `tally serve` processes on one
/// database.
pub async fn run(
    db: &str,
    tasks: usize,
    workers: usize,
    markets: usize,
) -> anyhow::Result<serde_json::Value> {
    let fleet = Fleet::start(db, markets).await?;
    let store = tally_market::db::Db::connect(&fleet.url).await?;

    let price = 100;
    let (clients, model) = fleet.client(price * 5 * tasks as i64).await?;
    let done = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for w in offering_workers(&fleet.urls, workers, &model, 64).await? {
        handles.push(tokio::spawn(super::throughput_worker(w, Arc::clone(&done))));
    }
    let started = Instant::now();
    super::post_bids(&clients, &model, price, tasks, &tiny_png()).await?;
    wait_verified(&store, tasks, started).await?;
    let secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.await;
    }
    store.close().await;
    let engine = fleet.engine();
    fleet.stop().await?;
    Ok(json!({
        "bench": "market",
        "tasks_per_sec": tasks as f64 / secs,
        "tasks": tasks,
        "workers": workers,
        "markets": markets,
        "db": engine,
        "seconds": secs,
        "processes": true,
    }))
}

/// One worker client per `workers`, on the markets in turn, each offering
/// `model` for `capacity` tasks at once.
async fn offering_workers(
    urls: &[String],
    workers: usize,
    model: &tally_protocol::Sha256Hex,
    capacity: u32,
) -> anyhow::Result<Vec<Client>> {
    let mut out = Vec::with_capacity(workers);
    for i in 0..workers {
        let w = Client::new(&urls[i % urls.len()], Some(Signer::generate()));
        w.post_offer(&OfferRequest {
            models: vec![model.clone()],
            min_price: Stroops(0),
            capacity,
        })
        .await?;
        out.push(w);
    }
    Ok(out)
}

/// Wait until `tasks` tasks are verified, sampled from the database every
/// 5 ms (decisions of every process); 10 minutes at most.
async fn wait_verified(
    store: &tally_market::db::Db,
    tasks: usize,
    started: Instant,
) -> anyhow::Result<()> {
    let verified = || async {
        tally_market::db::query("SELECT COUNT(*) AS n FROM tasks WHERE status = 'verified'")
            .fetch_one(store)
            .await
            .and_then(|r| tally_market::db::int(&r, "n"))
    };
    while (verified().await? as usize) < tasks {
        if started.elapsed() > Duration::from_secs(600) {
            bail!(
                "only {} of {tasks} tasks verified after 10 minutes",
                verified().await?
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// Claims waiting in one market, from its `/metrics`.
async fn waiting(http: &reqwest::Client, url: &str) -> anyhow::Result<usize> {
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix("tally_claims_waiting "))
        .and_then(|v| v.trim().parse().ok())
        .context("no tally_claims_waiting in /metrics")
}

/// `tally bench claims --markets N`: workers long-poll N `tally serve`
/// processes on one database; each bid is posted to the next market in
/// turn, so with N > 1 every bid has waiting claims in other processes (a bid placed in one wakes claims
/// waiting in the others through LISTEN/NOTIFY).
pub async fn claims(
    db: &str,
    workers: usize,
    bids: usize,
    markets: usize,
) -> anyhow::Result<serde_json::Value> {
    let fleet = Fleet::start(db, markets).await?;
    let urls = fleet.urls.clone();
    let (clients, model) = fleet.client(1_000_000_000).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tally_protocol::TaskId, Instant)>();
    let done = Arc::new(AtomicBool::new(false));
    for w in offering_workers(&urls, workers, &model, 4).await? {
        tokio::spawn(super::claims_worker(w, tx.clone(), Arc::clone(&done)));
    }
    let http = reqwest::Client::new();
    let (mut ack, mut all) = (Vec::new(), Vec::new());
    for i in 0..bids {
        // Start each bid with every worker waiting, in every market.
        loop {
            let mut n = 0;
            for u in &urls {
                n += waiting(&http, u).await?;
            }
            if n >= workers {
                break;
            }
            // `/metrics` reads the database (market statistics): asked
            // every few milliseconds it would load the markets measured.
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let (first, last) = super::time_claims(&clients[i % markets], &model, i, &mut rx).await?;
        ack.push(first);
        all.push(last);
    }
    done.store(true, Ordering::Relaxed);
    let engine = fleet.engine();
    fleet.stop().await?;
    Ok(json!({
        "bench": "claims",
        "workers": workers,
        "bids": bids,
        "markets": markets,
        "db": engine,
        "ack_ms_p50": super::percentile(&mut ack.clone(), 0.5),
        "ack_ms_p99": super::percentile(&mut ack, 0.99),
        "all_replicas_ms_p50": super::percentile(&mut all.clone(), 0.5),
        "all_replicas_ms_p99": super::percentile(&mut all, 0.99),
    }))
}
