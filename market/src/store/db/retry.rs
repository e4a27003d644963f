//! Transactions the database aborts to break a lock cycle or a
//! serialisation conflict (PostgreSQL's `40P01 deadlock detected`,
//! `40001`) are run again, from the start, inside the market: a client or
//! worker never sees one. Each write path is one function that opens its
//! transaction, does its work and commits; [`Db::retrying`] runs it up to
//! [`ATTEMPTS`] times with jittered, doubling pauses (so two victims of one
//! cycle do not meet again in step). Nothing a write path does outside its
//! transaction happens before its commit, so running it again is safe.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Db;
use crate::error::Result;

/// Runs of one write path at most (the first one included).
pub const ATTEMPTS: u32 = 10;

/// The first pause; each later one doubles, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(2);
const MAX_PAUSE: Duration = Duration::from_millis(250);

/// The pause before run `attempt + 1`: the doubling step times a random
/// factor in [0.5, 1.5).
fn pause(attempt: u32) -> Duration {
    let step = FIRST_PAUSE
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_PAUSE);
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    let jitter = 0.5 + (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64;
    step.mul_f64(jitter)
}

impl Db {
    /// Run `write` (one whole transaction: begin, work, commit) and run it
    /// again while the database aborts it as a deadlock or serialisation
    /// victim ([`crate::error::MarketError::is_retryable`]), at most
    /// [`ATTEMPTS`] times in all; every retry is logged (with the
    /// database's message) and counted (`tally_db_retries_total`).
    pub async fn retrying<T, F, Fut>(&self, what: &'static str, mut write: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 1;
        loop {
            match write().await {
                Err(e) if e.is_retryable() && attempt < ATTEMPTS => {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(what, attempt, error = %e, "transaction aborted by the database; running it again");
                    tokio::time::sleep(pause(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Transactions run again since start-up ([`Db::retrying`]).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::MarketError;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn pauses_double_with_jitter_and_stay_bounded() {
        for attempt in 1..40 {
            let p = pause(attempt);
            let step = FIRST_PAUSE
                .saturating_mul(1 << attempt.min(16))
                .min(MAX_PAUSE);
            assert!(p >= step / 2 && p < step * 3 / 2, "{attempt}: {p:?}");
        }
    }

    #[tokio::test]
    async fn only_retryable_errors_are_run_again_and_at_most_attempts_times() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Db::connect(&url).await.unwrap();
        let runs = &AtomicU32::new(0);
        let r: Result<()> = db
            .retrying("test", move || async move {
                runs.fetch_add(1, Ordering::Relaxed);
                Err(MarketError::Commit("disk full".into()))
            })
            .await;
        assert!(r.is_err());
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        assert_eq!(db.retries(), 0);
        let r = db
            .retrying("test", move || async move {
                Ok::<_, MarketError>(runs.fetch_add(1, Ordering::Relaxed))
            })
            .await;
        assert_eq!(r.unwrap(), 1);

        // Deadlock victims: run again until they get through, or give up
        // after ATTEMPTS runs with the database's error.
        let runs = &AtomicU32::new(0);
        let r = db
            .retrying("test", move || async move {
                match runs.fetch_add(1, Ordering::Relaxed) {
                    0 | 1 => Err(deadlock()),
                    n => Ok(n),
                }
            })
            .await;
        assert_eq!(r.unwrap(), 2);
        assert_eq!(db.retries(), 2);
        runs.store(0, Ordering::Relaxed);
        let r: Result<()> = db
            .retrying("test", move || async move {
                runs.fetch_add(1, Ordering::Relaxed);
                Err(deadlock())
            })
            .await;
        assert!(r.unwrap_err().is_retryable());
        assert_eq!(runs.load(Ordering::Relaxed), ATTEMPTS);
        assert_eq!(db.retries(), 2 + u64::from(ATTEMPTS) - 1);
    }

    /// What PostgreSQL answers a transaction it picked to break a lock cycle.
    #[derive(Debug)]
    struct Deadlock;

    impl std::fmt::Display for Deadlock {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("deadlock detected")
        }
    }

    impl std::error::Error for Deadlock {}

    impl sqlx::error::DatabaseError for Deadlock {
        fn message(&self) -> &str {
            "deadlock detected"
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some("40P01".into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn deadlock() -> MarketError {
        MarketError::Db(sqlx::Error::Database(Box::new(Deadlock)))
    }
}
