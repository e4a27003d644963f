//! A market on this machine: a fresh database (a temporary SQLite file, or a
//! new database on a PostgreSQL server), served on a random local port.
//! Used by `tally demo` and the benchmarks.

use std::sync::Arc;

use anyhow::Context;
use tally_market::{Config, Market};
use tally_protocol::{Client, Signer};

/// A market on a fresh database, served on a random local port.
pub struct LocalMarket {
    pub url: String,
    pub market: Arc<Market>,
    pub operator: Signer,
    _dir: tempfile::TempDir,
    stop: tokio::sync::oneshot::Sender<()>,
    /// The PostgreSQL server URL the fresh database was made on.
    postgres: Option<String>,
}

impl LocalMarket {
    pub async fn start(db: &str, tweak: impl FnOnce(&mut Config)) -> anyhow::Result<LocalMarket> {
        let dir = tempfile::tempdir()?;
        let url = if db == "sqlite" {
            format!("sqlite://{}", dir.path().join("bench.db").display())
        } else {
            fresh_postgres(db).await?
        };
        let operator = Signer::generate();
        let mut config = Config::new(&url, operator.clone());
        tweak(&mut config);
        let market = Market::open(config).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let m = Arc::clone(&market);
        tokio::spawn(async move {
            let _ = tally_market::serve(listener, m, async {
                let _ = rx.await;
            })
            .await;
        });
        Ok(LocalMarket {
            url,
            market,
            operator,
            _dir: dir,
            stop,
            postgres: (db != "sqlite").then(|| db.to_string()),
        })
    }

    pub fn client(&self, signer: Signer) -> Client {
        Client::new(&self.url, Some(signer))
    }

    /// Stop serving and forget the database (a fresh PostgreSQL one is dropped).
    pub async fn finish(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        let db_url = self.market.db.url().to_string();
        self.market.db.close().await;
        if let Some(base) = &self.postgres {
            drop_postgres(base, &db_url).await?;
        }
        Ok(())
    }
}

/// A new database on the PostgreSQL server of `base`.
pub(crate) async fn fresh_postgres(base: &str) -> anyhow::Result<String> {
    let name = format!(
        "tally_bench_{}",
        &hex::encode(Signer::generate().seed())[..12]
    );
    admin_execute(base, &format!("CREATE DATABASE {name}")).await?;
    let mut url = url::Url::parse(base)?;
    url.set_path(&name);
    Ok(url.to_string())
}

/// Drop the database of `url` (made by [`fresh_postgres`] on `base`),
/// whoever is still connected to it.
pub(crate) async fn drop_postgres(base: &str, url: &str) -> anyhow::Result<()> {
    let name = url::Url::parse(url)?
        .path()
        .trim_start_matches('/')
        .to_string();
    anyhow::ensure!(
        name.starts_with("tally_bench_"),
        "refusing to drop {name}: not a benchmark database"
    );
    admin_execute(
        base,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )
    .await
}

/// Run one statement on the PostgreSQL server of `base`, as its admin.
async fn admin_execute(base: &str, sql: &str) -> anyhow::Result<()> {
    let admin = sqlx::PgPool::connect(base)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::query(sql).execute(&admin).await?;
    admin.close().await;
    Ok(())
}
