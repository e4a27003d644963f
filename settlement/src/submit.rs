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
                    .post(format!("{}/transactions", base.trim_end_matches('/')))
                    .form(&[("tx", envelope_xdr)])
                    .send()
                    .await;
                let (status, body) = match read(sent).await? {
                    Some(answer) => answer,
                    None => return Ok(Outcome::Timeout),
                };
                parse::horizon_submit(status, &body)
            }
            Endpoint::Rpc(_) => {
                let params = json!({ "transaction": envelope_xdr });
                match self.rpc("sendTransaction", params).await? {
                    Some(result) => parse::rpc_send(&result),
                    None => Ok(Outcome::Timeout),
                }
            }
        }
    }

    /// The fate of the transaction with hash `tx_hash` (64 hex characters).
    pub async fn status(&self, tx_hash: &str) -> Result<Outcome> {
        match &self.endpoint {
            Endpoint::Horizon(base) => {
                let url = format!("{}/transactions/{tx_hash}", base.trim_end_matches('/'));
                let (status, body) = match read(self.http.get(url).send().await).await? {
                    Some(answer) => answer,
                    None => return Ok(Outcome::Timeout),
                };
                parse::horizon_transaction(status, &body)
            }
            Endpoint::Rpc(_) => {
                let params = json!({ "hash": tx_hash });
                match self.rpc("getTransaction", params).await? {
                    Some(result) => parse::rpc_get(&result),
                    None => Ok(Outcome::Timeout),
                }
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
            Endpoint::Horizon(base) => {
                let url = format!("{}/accounts/{account}", base.trim_end_matches('/'));
                let (status, body) =
                    read(self.http.get(url).send().await)
                        .await?
                        .ok_or_else(|| Error::Response {
                            endpoint: "account",
                            detail: "timed out".into(),
                        })?;
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
        let timeout = || Error::Response {
            endpoint: "account",
            detail: "timed out".into(),
        };
        match &self.endpoint {
            Endpoint::Horizon(base) => {
                let url = format!("{}/accounts/{account}", base.trim_end_matches('/'));
                let (status, body) = read(self.http.get(url).send().await)
                    .await?
                    .ok_or_else(timeout)?;
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
                    .ok_or_else(timeout)?;
                parse::rpc_account(&result)
            }
        }
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
