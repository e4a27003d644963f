//! The one error type of the market, and the status and code each is
//! answered with (the HTTP layer, `api.rs`, turns them into responses).
//!
//! A database error tells the client only that an internal error happened;
//! the cause goes to the log.

#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    InsufficientFunds(String),
    #[error("{0}")]
    Forbidden(String),
    /// The signer is not (or was not then) marked a verified reviewer.
    #[error("{0}")]
    NotAReviewer(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{0}")]
    TooLarge(String),
    /// A request body that did not arrive in time.
    #[error("{0}")]
    Timeout(String),
    /// The market is at a bound it keeps (the upload budget); try again.
    #[error("{0}")]
    Busy(String),
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database commit: {0}")]
    Commit(String),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("settlement: {0}")]
    Settlement(#[from] tally_settlement::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A server the market reads from (Horizon) failed or answered nonsense.
    #[error("upstream: {0}")]
    Upstream(String),
    /// The market cannot start as configured.
    #[error("configuration: {0}")]
    Config(String),
}

pub type Result<T, E = MarketError> = std::result::Result<T, E>;

impl MarketError {
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        MarketError::BadRequest {
            code,
            message: message.into(),
        }
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        MarketError::Conflict {
            code,
            message: message.into(),
        }
    }
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        MarketError::Unprocessable {
            code,
            message: message.into(),
        }
    }

    /// A deadlock or serialisation failure: the transaction may simply be run again.
    pub fn is_retryable(&self) -> bool {
        match self {
            MarketError::Db(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("40P01" | "40001"))
                    || e.message().contains("deadlock detected")
            }
            _ => false,
        }
    }

    /// The HTTP status and the machine-readable code this error is answered with.
    pub fn status_and_code(&self) -> (u16, &'static str) {
        match self {
            MarketError::BadRequest { code, .. } => (400, code),
            MarketError::Unauthorized(_) => (401, "unauthorized"),
            MarketError::InsufficientFunds(_) => (402, "insufficient_funds"),
            MarketError::Forbidden(_) => (403, "forbidden"),
            MarketError::NotAReviewer(_) => (403, "not_a_reviewer"),
            MarketError::NotFound(_) => (404, "not_found"),
            MarketError::Conflict { code, .. } => (409, code),
            MarketError::TooLarge(_) => (413, "too_large"),
            MarketError::Timeout(_) => (408, "body_timeout"),
            MarketError::Busy(_) => (503, "busy"),
            MarketError::Unprocessable { code, .. } => (422, code),
            MarketError::Db(_)
            | MarketError::Sqlite(_)
            | MarketError::Commit(_)
            | MarketError::Migrate(_)
            | MarketError::Corrupt(_)
            | MarketError::Settlement(_)
            | MarketError::Io(_)
            | MarketError::Upstream(_)
            | MarketError::Config(_) => (500, "internal"),
        }
    }
}
