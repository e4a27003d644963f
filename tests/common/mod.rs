//! Test helpers: spawn a market on port 0 with a fresh database (SQLite
//! always, PostgreSQL when `TALLY_TEST_POSTGRES_URL` is set), typed clients
//! for its parties, and the ledger invariant check run after each scenario.
#![allow(dead_code)]

pub mod cdp;
pub mod golden;

use std::sync::Arc;
use std::time::Duration;

use tally_market::{Config, Market};
use tally_protocol::wire::{BidRequest, OfferRequest, ResultRequest};
use tally_protocol::{Client, Detection, Sha256Hex, Signer, Stroops};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Run a scenario on SQLite and on PostgreSQL: `both!(name)` makes
/// `name::sqlite` and `name::postgres` tests out of `async fn name(Backend)`.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::common::postgres_url().is_some() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            }
        }
    };
}

/// The PostgreSQL server to test against; in CI its absence is a failure.
pub fn postgres_url() -> Option<String> {
    match std::env::var("TALLY_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!("CI must run the PostgreSQL tests: set TALLY_TEST_POSTGRES_URL");
            }
            eprintln!("skipping the PostgreSQL variant: TALLY_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

/// A fresh, empty database URL for one test.
pub async fn fresh_db(backend: Backend, dir: &tempfile::TempDir) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("market.db").display()),
        Backend::Postgres => {
            let base = postgres_url().expect("postgres url");
            let name = format!(
                "tally_test_{}",
                &hex::encode(Signer::generate().seed())[..16]
            );
            let admin = sqlx::PgPool::connect(&base)
                .await
                .expect("connect to PostgreSQL");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&admin)
                .await
                .expect("create test database");
            admin.close().await;
            let mut url = url::Url::parse(&base).expect("postgres url parses");
            url.set_path(&name);
            url.to_string()
        }
    }
}

/// A market running on a random port.
pub struct TestMarket {
    pub url: String,
    pub operator: Signer,
    pub market: Arc<Market>,
    pub db_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
    /// This market made its PostgreSQL database: `finish` drops it (after
    /// any second market on it has finished).
    owns_db: bool,
}

pub struct Options {
    pub lease: Duration,
    pub fee_bps: u32,
    pub tweak: fn(&mut Config),
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lease: Duration::from_secs(30),
            fee_bps: 250,
            tweak: |_| {},
        }
    }
}

/// A second market process on the same database as `first`.
pub async fn spawn_second_market(first: &TestMarket) -> TestMarket {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::new(&first.db_url, first.operator.clone());
    config.sweep_every = Duration::from_millis(50);
    start(config, first.db_url.clone(), first.operator.clone(), dir).await
}

/// A second market process on `first`'s database following deposits (every
/// 20 ms) at the chain server `set` names in its configuration; its jobs
/// run, no server of its own.
pub async fn deposit_follower(first: &TestMarket, set: impl FnOnce(&mut Config)) -> Arc<Market> {
    let mut config = Config::new(&first.db_url, first.operator.clone());
    set(&mut config);
    config.deposit_poll = Duration::from_millis(20);
    let follower = Market::open(config).await.unwrap();
    follower.spawn_jobs();
    follower
}

/// Two market processes' worth of markets on one fresh PostgreSQL database,
/// the second already hearing the first's notifications; `None` (skipped,
/// with a message) without `TALLY_TEST_POSTGRES_URL`.
pub async fn two_markets_on_postgres() -> Option<(TestMarket, TestMarket)> {
    postgres_url()?;
    let first = spawn_market(Backend::Postgres).await;
    let second = spawn_second_market(&first).await;
    second.market.relaying().await;
    Some((first, second))
}

pub async fn spawn_market(backend: Backend) -> TestMarket {
    spawn_market_with(backend, Options::default()).await
}

/// [`spawn_market_with`] the default options but for `tweak`.
pub async fn spawn_tweaked(backend: Backend, tweak: fn(&mut Config)) -> TestMarket {
    let mut opts = Options::default();
    opts.tweak = tweak;
    spawn_market_with(backend, opts).await
}

/// [`spawn_market_with`] the default options but for a `lease`.
pub async fn spawn_leased(backend: Backend, lease: Duration) -> TestMarket {
    let opts = Options {
        lease,
        ..Options::default()
    };
    spawn_market_with(backend, opts).await
}

/// The market's errors (an internal error's cause above all) in the test's
/// output: shown with a failing test, captured with a passing one.
fn log_errors() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("error"))
        .with_test_writer()
        .try_init();
}

pub async fn spawn_market_with(backend: Backend, opts: Options) -> TestMarket {
    log_errors();
    let dir = tempfile::tempdir().expect("tempdir");
    let db_url = fresh_db(backend, &dir).await;
    let operator = Signer::generate();
    let mut config = Config::new(&db_url, operator.clone());
    config.lease = opts.lease;
    config.fee_bps = opts.fee_bps;
    config.sweep_every = Duration::from_millis(50);
    (opts.tweak)(&mut config);
    let mut market = start(config, db_url, operator, dir).await;
    market.owns_db = backend == Backend::Postgres;
    market
}

async fn start(
    config: Config,
    db_url: String,
    operator: Signer,
    dir: tempfile::TempDir,
) -> TestMarket {
    let market = Market::open(config).await.expect("market opens");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let m = Arc::clone(&market);
    let task = tokio::spawn(async move {
        tally_market::serve(listener, m, async {
            let _ = rx.await;
        })
        .await
        .expect("market serves");
    });
    TestMarket {
        url,
        operator,
        market,
        db_url,
        stop: Some(tx),
        task: Some(task),
        _dir: dir,
        owns_db: false,
    }
}

impl TestMarket {
    /// The network and operator this market's signatures are bound to.
    pub fn domain(&self) -> tally_protocol::Domain {
        self.market.domain.clone()
    }

    pub fn client(&self, signer: &Signer) -> Client {
        Client::new(&self.url, Some(signer.clone())).with_domain(self.domain())
    }

    pub fn anonymous(&self) -> Client {
        Client::new(&self.url, None)
    }

    /// Runs `q` on the market's database in a transaction of its own, as an
    /// operator editing the database behind the market's back would.
    pub async fn write(&self, q: tally_market::db::Query<'_>) {
        let mut tx = self.market.db.begin().await.unwrap();
        q.execute(&mut tx).await.unwrap();
        tx.commit().await.unwrap();
    }

    /// The one row `q` reads from the market's database.
    pub async fn read_one(&self, q: tally_market::db::Query<'_>) -> tally_market::db::Row {
        q.fetch_one(&self.market.db).await.unwrap()
    }

    /// `tally audit` of this market, asserted clean.
    pub async fn audit_ok(&self) -> tally::audit::Report {
        let report = tally::audit::audit(&self.anonymous()).await.unwrap();
        assert!(report.ok, "{}", report.summary());
        report
    }

    /// Settles what is due now, then [`TestMarket::audit_ok`].
    pub async fn settle_and_audit_ok(&self) -> tally::audit::Report {
        tally_market::settle::settle_now(&self.market)
            .await
            .unwrap();
        self.audit_ok().await
    }

    /// `tally audit` of this market fails with a finding of `kind`.
    pub async fn audit_finds(&self, kind: &str) -> tally::audit::Report {
        let report = tally::audit::audit(&self.anonymous()).await.unwrap();
        assert!(!report.ok);
        assert!(
            report.findings.iter().any(|f| f.kind == kind),
            "{}",
            report.summary()
        );
        report
    }

    /// A new account's key, the account marked verified to review by the operator.
    pub async fn verified_reviewer(&self) -> Signer {
        let signer = Signer::generate();
        self.client(&self.operator)
            .mark_reviewer(signer.account(), true)
            .await
            .expect("mark");
        signer
    }

    /// The operator credits `account` with `amount`.
    pub async fn credit(&self, account: &tally_protocol::AccountId, amount: i64) {
        self.client(&self.operator)
            .credit(account, Stroops(amount))
            .await
            .expect("credit");
    }

    /// A new account's key, the account credited with `amount`.
    pub async fn funded_signer(&self, amount: i64) -> Signer {
        let signer = Signer::generate();
        self.credit(signer.account(), amount).await;
        signer
    }

    /// A client account credited with `amount`.
    pub async fn funded_client(&self, amount: i64) -> Client {
        let signer = self.funded_signer(amount).await;
        self.client(&signer)
    }

    /// A worker that has offered `model`.
    pub async fn worker(&self, model: &Sha256Hex) -> Client {
        let c = self.client(&Signer::generate());
        c.post_offer(&OfferRequest {
            models: vec![model.clone()],
            min_price: Stroops(0),
            capacity: 8,
        })
        .await
        .expect("offer");
        c
    }

    /// A client account credited with `amount`, and the tiny YOLOX model
    /// it uploaded ([`model`]).
    pub async fn client_with_model(&self, amount: i64) -> (Client, Sha256Hex) {
        with_model(self.funded_client(amount).await).await
    }

    /// `N` workers that have offered `model`, made one after another.
    pub async fn workers<const N: usize>(&self, model: &Sha256Hex) -> [Client; N] {
        let mut out = Vec::with_capacity(N);
        for _ in 0..N {
            out.push(self.worker(model).await);
        }
        out.try_into().map_err(|_| ()).expect("N workers")
    }

    /// Assert the ledger's invariants, then stop the market.
    pub async fn finish(mut self) {
        let breaches = tally_market::ledger::check_invariants(&self.market.db)
            .await
            .expect("invariant check runs");
        assert!(
            breaches.is_empty(),
            "ledger invariants broken: {breaches:?}"
        );
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        self.market.db.close().await;
        if self.owns_db {
            drop_db(&self.db_url).await;
        }
    }
}

/// Drop a test's PostgreSQL database, whoever is still connected to it.
async fn drop_db(db_url: &str) {
    let name = url::Url::parse(db_url).expect("database url parses").path()[1..].to_string();
    assert!(
        name.starts_with("tally_test_"),
        "not a test database: {name}"
    );
    let admin = sqlx::PgPool::connect(&postgres_url().expect("postgres url"))
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await
        .expect("drop the test database");
    admin.close().await;
}

/// An 800x600 picture with a few shapes, for the boxes to sit on.
pub fn scene() -> Vec<u8> {
    let img = image::RgbImage::from_fn(800, 600, |x, y| {
        let sky = y < 330;
        let in_dog = (133..324).contains(&x) && (207..542).contains(&y);
        let in_car = (466..691).contains(&x) && (78..171).contains(&y);
        if in_dog {
            image::Rgb([150, 105, 60])
        } else if in_car {
            image::Rgb([200, 40, 40])
        } else if sky {
            image::Rgb([150, 190, (200 + y / 6) as u8])
        } else {
            image::Rgb([70, (120 + (x % 40)) as u8, 60])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

/// A small real image (PNG), distinct per `seed`.
pub fn png(seed: u8) -> Vec<u8> {
    let img =
        image::RgbImage::from_fn(32, 24, |x, y| image::Rgb([x as u8 * 8, y as u8 * 10, seed]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

/// The bytes the market stores and serves for an uploaded image: its
/// canonical encoding (`tally_market::canonical`).
pub fn canonical(upload: &[u8]) -> Vec<u8> {
    tally_market::canonical::encode(&image::load_from_memory(upload).expect("an image"))
}

/// A bid for `images` at `price` with default replicas.
pub fn bid_request(model: &Sha256Hex, price: i64) -> BidRequest {
    BidRequest {
        max_replicas: Some(5),
        deadline_secs: 600,
        ..BidRequest::new(model.clone(), Stroops(price))
    }
}

/// A bid at `price` whose tasks want two replicas that must both agree,
/// and go to review at `review_price` when they do not.
pub fn review_bid(model: &Sha256Hex, price: i64, review_price: i64) -> BidRequest {
    BidRequest {
        replicas: Some(2),
        quorum: Some(2),
        max_replicas: Some(2),
        review_price: Some(Stroops(review_price)),
        ..bid_request(model, price)
    }
}

pub fn det(class_id: u32, score: f64, bbox: [f64; 4]) -> Detection {
    Detection {
        class_id,
        label: tally_protocol::labels::label(class_id).to_string(),
        score,
        bbox,
    }
}

/// `c`'s balance, in stroops.
pub async fn balance(c: &Client) -> i64 {
    c.account_me().await.unwrap().balance.0
}

/// `w` submits `result` for assignment `id`, accepted: the market's answer.
pub async fn submit(
    w: &Client,
    id: tally_protocol::AssignmentId,
    result: &ResultRequest,
) -> tally_protocol::wire::AssignmentOutcome {
    w.submit_result(id, result).await.expect("result accepted")
}

/// The HTTP status the market refused `r` with (panics if it was not refused).
pub fn refused_status<T: std::fmt::Debug>(r: Result<T, tally_protocol::Error>) -> u16 {
    r.unwrap_err().status().expect("an HTTP status").as_u16()
}

/// A result of `detections` that took `elapsed_ms`.
fn answer(detections: Vec<Detection>, elapsed_ms: f64) -> ResultRequest {
    ResultRequest {
        detections,
        elapsed_ms,
    }
}

/// The honest answer every test worker agrees on.
pub fn honest() -> ResultRequest {
    let dog = det(16, 0.83, [133.0, 207.0, 324.0, 542.0]);
    answer(vec![dog, det(2, 0.81, [466.0, 78.0, 691.0, 171.0])], 12.0)
}

/// The honest answer with float noise, as another backend would give it.
pub fn honest_noisy() -> ResultRequest {
    let dog = det(16, 0.825, [133.4, 206.6, 324.3, 542.2]);
    answer(vec![dog, det(2, 0.812, [466.2, 78.4, 690.8, 171.3])], 110.0)
}

/// A review picking [`honest`]'s detections.
pub fn honest_review() -> tally_protocol::wire::ReviewRequest {
    tally_protocol::wire::ReviewRequest {
        detections: honest().detections,
    }
}

/// A wrong answer.
pub fn wrong() -> ResultRequest {
    answer(vec![det(0, 0.9, [10.0, 10.0, 50.0, 90.0])], 1.0)
}

/// `client`, and the tiny YOLOX model it uploaded ([`model`]).
pub async fn with_model(client: Client) -> (Client, Sha256Hex) {
    let model = model(&client).await;
    (client, model)
}

/// Upload the tiny YOLOX model (the market admits only real detectors).
pub async fn model(client: &Client) -> Sha256Hex {
    client
        .upload_model(tally_model::build::tiny_yolox("tests"))
        .await
        .expect("upload")
        .model
}

/// Other canned answers.
pub struct ResultBody;

impl ResultBody {
    /// A third, different answer (a cat where others saw a dog).
    pub fn other() -> ResultRequest {
        answer(vec![det(15, 0.7, [300.0, 300.0, 400.0, 420.0])], 3.0)
    }
}

/// The data of the server-sent events completed by the next chunk of
/// `stream` (which must come within 30 s), trimmed; `buf` keeps what is
/// left of a frame for the next call.
pub async fn sse_data(stream: &mut reqwest::Response, buf: &mut String) -> Vec<String> {
    let chunk = tokio::time::timeout(Duration::from_secs(30), stream.chunk())
        .await
        .expect("an event within 30 s")
        .unwrap()
        .expect("the stream stays open");
    buf.push_str(&String::from_utf8_lossy(&chunk));
    let mut data = Vec::new();
    while let Some(end) = buf.find("\n\n") {
        let frame: String = buf.drain(..end + 2).collect();
        let lines = frame.lines().filter_map(|l| l.strip_prefix("data:"));
        data.extend(lines.map(|d| d.trim().to_string()));
    }
    data
}

/// `signer`'s seed in `dir/name`, readable by its owner only; its path.
pub fn key_file(dir: &std::path::Path, name: &str, signer: &Signer) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, signer.secret()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

/// Runs `cmd`, its stdin closed, to its end: whether it succeeded, its
/// stdout and its stderr.
pub async fn outcome(cmd: &mut tokio::process::Command) -> (bool, String, String) {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A free local address to listen on.
pub fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// A folder for `tally serve` child processes: the SQLite file `db` in it,
/// the operator's key written to `operator.key`, a free address to listen
/// on and the market's URL there.
pub struct ServeDir {
    pub dir: tempfile::TempDir,
    pub db: String,
    pub operator: Signer,
    pub addr: String,
    pub url: String,
}

impl ServeDir {
    pub fn new() -> ServeDir {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("market.db").display());
        let operator = Signer::generate();
        std::fs::write(dir.path().join("operator.key"), operator.secret()).unwrap();
        let addr = free_addr();
        let url = format!("http://{addr}");
        ServeDir {
            dir,
            db,
            operator,
            addr,
            url,
        }
    }

    /// [`serve_process`] here, named `serve`, with `extra` flags.
    pub async fn serve(&self, extra: &[&str]) -> tokio::process::Child {
        serve_process(self.dir.path(), &self.db, &self.addr, "serve", extra).await
    }

    /// A client of the market served here, `amount` credited by its operator.
    pub async fn funded_client(&self, amount: i64) -> Client {
        let client = Client::new(&self.url, Some(Signer::generate()));
        Client::new(&self.url, Some(self.operator.clone()))
            .credit(client.signer().unwrap().account(), Stroops(amount))
            .await
            .unwrap();
        client
    }

    /// [`ServeDir::funded_client`], and the tiny YOLOX model it uploaded.
    pub async fn client_with_model(&self, amount: i64) -> (Client, Sha256Hex) {
        with_model(self.funded_client(amount).await).await
    }

    /// A worker of the market served here that offers `model`, 64 tasks at once.
    pub async fn worker(&self, model: &Sha256Hex) -> Client {
        let w = Client::new(&self.url, Some(Signer::generate()));
        w.post_offer(&OfferRequest {
            models: vec![model.clone()],
            min_price: Stroops(0),
            capacity: 64,
        })
        .await
        .unwrap();
        w
    }
}

/// `tally serve` as a child process on `db` at `addr`, with the operator
/// key in `dir/operator.key`, `extra` flags, and its log in `dir/{name}.log`;
/// returns once it answers `/healthz`.
pub async fn serve_process(
    dir: &std::path::Path,
    db: &str,
    addr: &str,
    name: &str,
    extra: &[&str],
) -> tokio::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))
        .unwrap();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["serve", "--listen", addr, "--db", db, "--operator-key"])
        .arg(dir.join("operator.key"))
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("tally serve starts");
    let probe = Client::new(&format!("http://{addr}"), None);
    let started = std::time::Instant::now();
    while probe.healthz().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "tally serve {name} did not come up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child
}

/// Move every result's finish time `ms` into the past, as if that much
/// time had gone by since the workers answered.
pub async fn age_results(market: &TestMarket, ms: i64) {
    let mut tx = market.market.db.begin().await.unwrap();
    tally_market::db::query("UPDATE assignments SET finished_at = finished_at - $1")
        .bind(ms)
        .execute(&mut tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Every settlement record, paging with `after` until a page comes back empty.
pub async fn all_records(c: &Client) -> Vec<tally_protocol::wire::SettlementRecord> {
    let mut out: Vec<tally_protocol::wire::SettlementRecord> = Vec::new();
    loop {
        let after = out.last().map_or(0, |r| r.seq);
        let page = c.settlements(after).await.expect("settlements").records;
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

/// Every agreeing result in `store` is paid by exactly one of `records`,
/// the one its `payout_seq` names; nothing else is paid; the ledger's
/// invariants hold. How many results agreed.
pub async fn assert_paid_exactly_once(
    store: &tally_market::db::Db,
    records: &[tally_protocol::wire::SettlementRecord],
) -> usize {
    let mut paid_by: std::collections::HashMap<tally_protocol::AssignmentId, Vec<u64>> =
        Default::default();
    for r in records {
        for id in r.payouts.iter().flat_map(|p| &p.assignments) {
            paid_by.entry(*id).or_default().push(r.seq);
        }
    }
    let breaches = tally_market::ledger::check_invariants(store).await.unwrap();
    assert!(breaches.is_empty(), "{breaches:?}");
    let agreed =
        tally_market::db::query("SELECT id, payout_seq FROM assignments WHERE status = 'agreed'")
            .fetch_all(store)
            .await
            .unwrap();
    for row in &agreed {
        let id = tally_protocol::AssignmentId(row.try_get("id").unwrap());
        let seq: Option<i64> = row.try_get("payout_seq").unwrap();
        let by = paid_by.remove(&id).unwrap_or_default();
        assert_eq!(by.len(), 1, "assignment {id} paid by records {by:?}");
        assert_eq!(seq, Some(by[0] as i64), "assignment {id}");
    }
    assert!(paid_by.is_empty(), "paid but not agreeing: {paid_by:?}");
    agreed.len()
}

/// `tally audit --market URL --json`: whether it exited 0, and its report.
pub async fn audit_cli(url: &str) -> (bool, serde_json::Value) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["audit", "--market", url, "--json"])
        .output()
        .await
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "audit printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

/// `tally audit --market URL --json` exits 0 and reports all consistent.
pub async fn audit_cli_passes(url: &str) {
    let (ok, report) = audit_cli(url).await;
    assert!(ok, "{report}");
    assert_eq!(report["ok"], true);
}

/// The settlement records once they pay at least `due` assignments in
/// all, read again every 50 ms; fails when that takes longer than `limit`.
pub async fn records_paying(
    anon: &Client,
    due: usize,
    limit: Duration,
) -> Vec<tally_protocol::wire::SettlementRecord> {
    let started = std::time::Instant::now();
    loop {
        let records = all_records(anon).await;
        let paid: usize = records
            .iter()
            .flat_map(|r| &r.payouts)
            .map(|p| p.assignments.len())
            .sum();
        if paid >= due {
            return records;
        }
        assert!(
            started.elapsed() < limit,
            "settlement stalled at {paid} of {due}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A task two workers disagree on, of a bid that pays for review: one
/// image, two replicas that must both agree (`answers`, one per worker),
/// so the task goes to review. The client, the bid and the two workers.
pub struct Disputed {
    pub client: Client,
    pub bid: tally_protocol::wire::BidCreated,
    pub workers: Vec<Client>,
}

impl TestMarket {
    pub async fn disputed(
        &self,
        image: Vec<u8>,
        price: i64,
        review_price: i64,
        answers: [ResultRequest; 2],
    ) -> Disputed {
        let (client, model) = self.client_with_model(100_000_000).await;
        let bid = client
            .bid_images(review_bid(&model, price, review_price), &[image])
            .await
            .expect("bid");
        let mut workers = Vec::new();
        for answer in answers {
            let w = self.worker(&model).await;
            let got = w.claim(1, 5_000).await.expect("claim").assignments;
            assert_eq!(got.len(), 1, "each worker gets the task's one replica");
            w.submit_result(got[0].assignment, &answer)
                .await
                .expect("result");
            workers.push(w);
        }
        let status = client.bid(bid.bid).await.expect("bid status");
        assert_eq!(
            status.tasks[0].status,
            tally_protocol::wire::TaskState::Review,
            "no consensus: the task waits for review"
        );
        Disputed {
            client,
            bid,
            workers,
        }
    }
}
