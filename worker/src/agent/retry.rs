//! Retrying calls to a market that may be down: which errors are worth
//! another try, and the exponential backoff between tries.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// Whether trying again later may succeed: the market is unreachable,
/// overloaded or failing inside.
pub fn is_transient(e: &tally_protocol::Error) -> bool {
    match e {
        tally_protocol::Error::Http(_) => true,
        tally_protocol::Error::Api { status, .. } => {
            *status >= 500 || *status == 429 || *status == 408
        }
        _ => false,
    }
}

/// `op` until it succeeds or fails for good, backing off on transient
/// errors; `Ok(None)` when `stop` fires first.
pub(super) async fn retry<T, F, Fut>(
    what: &str,
    stop: &watch::Receiver<bool>,
    mut op: F,
) -> Result<Option<T>, tally_protocol::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tally_protocol::Error>>,
{
    let mut stop = stop.clone();
    let mut backoff = Backoff::new();
    loop {
        let result = tokio::select! {
            r = op() => r,
            _ = stop.wait_for(|s| *s) => return Ok(None),
        };
        match result {
            Ok(v) => return Ok(Some(v)),
            Err(e) if is_transient(&e) => tokio::select! {
                () = backoff.wait(what, &e) => {}
                _ = stop.wait_for(|s| *s) => return Ok(None),
            },
            Err(e) => return Err(e),
        }
    }
}

/// Exponential backoff: 100 ms, doubling, at most 5 s.
pub(super) struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    pub(super) fn new() -> Self {
        Backoff { next: Self::FIRST }
    }

    pub(super) fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    /// The next delay; doubles the one after it.
    fn step(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        now
    }

    pub(super) async fn wait(&mut self, what: &str, error: &tally_protocol::Error) {
        self.wait_for(what, &crate::one_line(error)).await
    }

    /// [`Self::wait`] with the reason already put in words.
    pub(super) async fn wait_for(&mut self, what: &str, why: &str) {
        let delay = self.step();
        tracing::warn!(
            retry_in_ms = delay.as_millis() as u64,
            "market unreachable while {what}: {why}"
        );
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unreachable_or_failing_markets_are_retried() {
        let api = |status| tally_protocol::Error::Api {
            status,
            code: "x".into(),
            message: "y".into(),
        };
        assert!(is_transient(&api(503)));
        assert!(is_transient(&api(429)));
        assert!(!is_transient(&api(401)));
        assert!(!is_transient(&api(409)));
        assert!(!is_transient(&tally_protocol::Error::InvalidSeed));
    }

    #[test]
    fn backoff_doubles_up_to_five_seconds() {
        let mut b = Backoff::new();
        let waits: Vec<u128> = (0..8).map(|_| b.step().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        assert_eq!(b.step(), Duration::from_millis(100));
    }
}
