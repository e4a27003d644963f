//! The one error type of the market, and how each maps to an HTTP answer.
//!
//! A database error tells the client only that an internal error happened;
//! the cause goes to the log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tally_protocol::wire::{ErrorBody, ErrorDetail};

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

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            MarketError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            MarketError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            MarketError::InsufficientFunds(_) => {
                (StatusCode::PAYMENT_REQUIRED, "insufficient_funds")
            }
            MarketError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            MarketError::NotAReviewer(_) => (StatusCode::FORBIDDEN, "not_a_reviewer"),
            MarketError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            MarketError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            MarketError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            MarketError::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            MarketError::Db(_)
            | MarketError::Sqlite(_)
            | MarketError::Commit(_)
            | MarketError::Migrate(_)
            | MarketError::Corrupt(_)
            | MarketError::Settlement(_)
            | MarketError::Io(_)
            | MarketError::Upstream(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for MarketError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "internal error");
            "internal error; the operator's log has the cause".to_string()
        } else {
            self.to_string()
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_string(),
                message,
            },
        };
        (status, Json(body)).into_response()
    }
}
