//! Submission to the network: a small Horizon / Stellar RPC client.
//!
//! This is the only module of the crate that does network I/O. It sends a
//! signed envelope (`POST /transactions` with form field `tx` on Horizon,
//! JSON-RPC `sendTransaction` on Stellar RPC), asks for a transaction's
//! fate by hash (`GET /transactions/{hash}` / `getTransaction`), and reads
//! an account's sequence number (`GET /accounts/{id}` / `getLedgerEntries`).
//! Answers become an [`Outcome`]; the response parsing lives in [`parse`]
//! and is tested against documented response bodies.
//!
//! The client never builds a replacement transaction: after a `Timeout` the
//! caller resends the same bytes, and only after a ledger closed past the
//! old transaction's max time with the hash still [`Outcome::NotFound`] may
//! it sign a new one.

pub mod parse;

use std::time::Duration;

use serde_json::json;
use stellar_xdr as xdr;
use stellar_xdr::WriteXdr;

use crate::error::{Error, Result};
use crate::keys::PublicKey;

/// What the network said about a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted for a coming ledger (RPC `PENDING`/`DUPLICATE`, Horizon async);
    /// poll [`Submitter::status`] for the result.
    Pending,
    /// Not accepted this time (RPC `TRY_AGAIN_LATER`): resend the same bytes later.
    TryAgainLater,
    /// Applied in `ledger`: the payments happened.
    Success { ledger: u32 },
    /// Rejected or failed, with Horizon-style codes (`tx_bad_seq`,
    /// `tx_failed` + `op_no_destination`, `op_no_trust`, `op_already_exists`
    /// (a `create_account` payout to an existing account), `op_low_reserve`, ...).
    Failed {
        tx_code: String,
        op_codes: Vec<String>,
    },
    /// The server does not know the hash (yet).
    NotFound,
    /// No answer in time; the transaction may still be applied.
    Timeout,
}

/// Which kind of server to talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Horizon base URL, e.g. `https://horizon-testnet.stellar.org`.
    Horizon(String),
    /// A Stellar RPC URL, e.g. `https://soroban-testnet.stellar.org`.
    Rpc(String),
}

/// A client for one Horizon or Stellar RPC server.
#[derive(Debug, Clone)]
pub struct Submitter {
    http: reqwest::Client,
    endpoint: Endpoint,
}

impl Submitter {
    /// A client with a 35 s request timeout (Horizon itself answers a
    /// synchronous submission with a 504 timeout after about 30 s).
    pub fn new(endpoint: Endpoint) -> Result<Self> {
        Submitter::with_timeout(endpoint, Duration::from_secs(35))
    }

    pub fn with_timeout(endpoint: Endpoint, timeout: Duration) -> Result<Self> {
        let http = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(Submitter { http, endpoint })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Send a signed envelope (base64 XDR). Sending the same bytes again is
    /// safe: the network applies a transaction at most once.
    pub async fn submit(&self, envelope_xdr: &str) -> Result<Outcome> {
        match &self.endpoint {
            Endpoint::Horizon(base) => {
                let sent = self
                    .http
                    .post(horizon_url(base, "transactions"))
                    .form(&[("tx", envelope_xdr)])
                    .send()
                    .await;
                outcome(read(sent).await?, |(status, body)| {
                    parse::horizon_submit(status, &body)
                })
            }
            Endpoint::Rpc(_) => {
                let params = json!({ "transaction": envelope_xdr });
                outcome(self.rpc("sendTransaction", params).await?, |result| {
                    parse::rpc_send(&result)
                })
            }
        }
    }

    /// The fate of the transaction with hash `tx_hash` (64 hex characters).
    pub async fn status(&self, tx_hash: &str) -> Result<Outcome> {
        match &self.endpoint {
            Endpoint::Horizon(base) => {
                let url = horizon_url(base, &format!("transactions/{tx_hash}"));
                outcome(
                    read(self.http.get(url).send().await).await?,
                    |(status, body)| parse::horizon_transaction(status, &body),
                )
            }
            Endpoint::Rpc(_) => {
                let params = json!({ "hash": tx_hash });
                outcome(self.rpc("getTransaction", params).await?, |result| {
                    parse::rpc_get(&result)
                })
            }
        }
    }

    /// Whether a payee can receive a plain payment of `asset`: `None` when
    /// its account does not exist, `Some(false)` when it holds no trustline
    /// to a credit asset. Stellar RPC tells existence only: a credit asset
    /// is then taken as untrusted (a claimable balance never fails).
    pub async fn payee(&self, account: &PublicKey, asset: &crate::Asset) -> Result<Option<bool>> {
        let asset = asset.to_string();
        match &self.endpoint {
            Endpoint::Horizon(_) => {
                let (status, body) = self.horizon_account(account).await?;
                parse::horizon_trusts(status, &body, &asset)
            }
            Endpoint::Rpc(_) => Ok(self
                .account_sequence(account)
                .await?
                .map(|_| asset == "native")),
        }
    }

    /// The account's current sequence number (the next transaction uses
    /// this + 1), or `None` when the account does not exist.
    pub async fn account_sequence(&self, account: &PublicKey) -> Result<Option<i64>> {
        match &self.endpoint {
            Endpoint::Horizon(_) => {
                let (status, body) = self.horizon_account(account).await?;
                parse::horizon_account(status, &body)
            }
            Endpoint::Rpc(_) => {
                let key = xdr::LedgerKey::Account(xdr::LedgerKeyAccount {
                    account_id: xdr::AccountId(xdr::PublicKey::PublicKeyTypeEd25519(xdr::Uint256(
                        *account.as_bytes(),
                    ))),
                });
                let params = json!({ "keys": [key.to_xdr_base64(xdr::Limits::none())?] });
                let result = self
                    .rpc("getLedgerEntries", params)
                    .await?
                    .ok_or_else(account_timeout)?;
                parse::rpc_account(&result)
            }
        }
    }

    /// Horizon's answer about `account` (status and body); a timeout is an error.
    async fn horizon_account(&self, account: &PublicKey) -> Result<(u16, String)> {
        let Endpoint::Horizon(base) = &self.endpoint else {
            unreachable!("horizon_account() is only called for Endpoint::Horizon");
        };
        let url = horizon_url(base, &format!("accounts/{account}"));
        read(self.http.get(url).send().await)
            .await?
            .ok_or_else(account_timeout)
    }

    /// One JSON-RPC call: the `result`, or `None` on a timeout.
    async fn rpc(
        &self,
        method: &'static str,
        params: serde_json::Value,
    ) -> Result<Option<serde_json::Value>> {
        let Endpoint::Rpc(url) = &self.endpoint else {
            unreachable!("rpc() is only called for Endpoint::Rpc");
        };
        let request = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let sent = self.http.post(url).json(&request).send().await;
        match read(sent).await? {
            Some((status, body)) => parse::rpc_result(method, status, &body).map(Some),
            None => Ok(None),
        }
    }
}

/// `path` below the Horizon server at `base`.
fn horizon_url(base: &str, path: &str) -> String {
    format!("{}/{path}", base.trim_end_matches('/'))
}

/// An account look-up that got no answer in time.
fn account_timeout() -> Error {
    Error::Response {
        endpoint: "account",
        detail: "timed out".into(),
    }
}

/// The outcome an `answer` tells through `parse`; no answer in time is
/// [`Outcome::Timeout`].
fn outcome<T>(answer: Option<T>, parse: impl FnOnce(T) -> Result<Outcome>) -> Result<Outcome> {
    answer.map_or(Ok(Outcome::Timeout), parse)
}

/// Status and body of a response, `None` if the request timed out.
async fn read(
    sent: std::result::Result<reqwest::Response, reqwest::Error>,
) -> Result<Option<(u16, String)>> {
    let response = match sent {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let status = response.status().as_u16();
    match response.text().await {
        Ok(body) => Ok(Some((status, body))),
        Err(e) if e.is_timeout() => Ok(None),
        Err(e) => Err(e.into()),
    }
}
