//! Reading Horizon and Stellar RPC answers into [`Outcome`]s (pure, no I/O).
//!
//! Result codes follow Horizon's names (`tx_bad_seq`, `op_no_trust`, ...),
//! whether Horizon sent them in `extras.result_codes` or they come from a
//! `TransactionResult` XDR (RPC `errorResultXdr` / `resultXdr`, Horizon
//! `result_xdr`), so callers match on one vocabulary.

use serde_json::Value;
use stellar_xdr as xdr;
use stellar_xdr::ReadXdr;

use super::Outcome;
use crate::error::{Error, Result};

fn bad(endpoint: &'static str, detail: impl Into<String>) -> Error {
    Error::Response {
        endpoint,
        detail: detail.into(),
    }
}

fn json(endpoint: &'static str, body: &str) -> Result<Value> {
    serde_json::from_str(body).map_err(|e| bad(endpoint, format!("not JSON ({e}): {}", clip(body))))
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

/// A ledger number sent as a JSON number or a string.
fn ledger(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The Horizon problem `type` suffix (`transaction_failed`, `timeout`, ...).
fn problem_type(v: &Value) -> &str {
    v["type"]
        .as_str()
        .unwrap_or("")
        .rsplit('/')
        .next()
        .unwrap_or("")
}

/// `POST /transactions` (synchronous submission).
pub fn horizon_submit(status: u16, body: &str) -> Result<Outcome> {
    const EP: &str = "horizon POST /transactions";
    let v = json(EP, body)?;
    match status {
        200 => match v["successful"].as_bool() {
            Some(false) => horizon_failed(EP, &v["result_xdr"], &Value::Null),
            _ => ledger(&v["ledger"])
                .map(|ledger| Outcome::Success { ledger })
                .ok_or_else(|| bad(EP, "200 without a ledger")),
        },
        // The async endpoint's answer, in case a proxy routes there.
        201 | 202 => Ok(match v["tx_status"].as_str() {
            Some("TRY_AGAIN_LATER") => Outcome::TryAgainLater,
            _ => Outcome::Pending,
        }),
        504 => Ok(Outcome::Timeout),
        _ => match problem_type(&v) {
            "transaction_failed" => horizon_failed(EP, &v["extras"]["result_xdr"], &v["extras"]),
            "transaction_malformed" => Ok(Outcome::Failed {
                tx_code: "tx_malformed".into(),
                op_codes: vec![],
            }),
            "timeout" => Ok(Outcome::Timeout),
            other => Err(bad(EP, format!("{status} {other}: {}", clip(body)))),
        },
    }
}

/// Codes from `extras.result_codes` when present, else from the result XDR.
fn horizon_failed(ep: &'static str, result_xdr: &Value, extras: &Value) -> Result<Outcome> {
    let codes = &extras["result_codes"];
    if let Some(tx_code) = codes["transaction"].as_str() {
        let op_codes = codes["operations"]
            .as_array()
            .map(|ops| {
                ops.iter()
                    .filter_map(|c| c.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        return Ok(Outcome::Failed {
            tx_code: tx_code.into(),
            op_codes,
        });
    }
    match result_xdr.as_str() {
        Some(x) => failed_from_result_xdr(x),
        None => Err(bad(ep, "a failure without result codes")),
    }
}

/// `GET /transactions/{hash}`.
pub fn horizon_transaction(status: u16, body: &str) -> Result<Outcome> {
    const EP: &str = "horizon GET /transactions";
    let v = json(EP, body)?;
    match status {
        200 => match v["successful"].as_bool() {
            Some(true) => ledger(&v["ledger"])
                .map(|ledger| Outcome::Success { ledger })
                .ok_or_else(|| bad(EP, "200 without a ledger")),
            Some(false) => horizon_failed(EP, &v["result_xdr"], &Value::Null),
            None => Err(bad(EP, "200 without `successful`")),
        },
        404 => Ok(Outcome::NotFound),
        504 => Ok(Outcome::Timeout),
        _ => Err(bad(EP, format!("{status}: {}", clip(body)))),
    }
}

/// `GET /accounts/{id}`: the `sequence` string, `None` on 404.
pub fn horizon_account(status: u16, body: &str) -> Result<Option<i64>> {
    const EP: &str = "horizon GET /accounts";
    let v = json(EP, body)?;
    match status {
        200 => v["sequence"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .map(Some)
            .ok_or_else(|| bad(EP, "no `sequence` string")),
        404 => Ok(None),
        _ => Err(bad(EP, format!("{status}: {}", clip(body)))),
    }
}

/// `GET /accounts/{id}` for a payee: `None` on 404, else whether it holds
/// a trustline to `asset` (the native asset needs none). `asset` is
/// `native` or `CODE:ISSUER`.
pub fn horizon_trusts(status: u16, body: &str, asset: &str) -> Result<Option<bool>> {
    const EP: &str = "horizon GET /accounts";
    match status {
        404 => return Ok(None),
        200 => {}
        _ => return Err(bad(EP, format!("{status}: {}", clip(body)))),
    }
    if asset == "native" {
        return Ok(Some(true));
    }
    let v = json(EP, body)?;
    let balances = v["balances"]
        .as_array()
        .ok_or_else(|| bad(EP, "no `balances` array"))?;
    Ok(Some(balances.iter().any(|b| {
        let code = b["asset_code"].as_str().unwrap_or_default();
        let issuer = b["asset_issuer"].as_str().unwrap_or_default();
        format!("{code}:{issuer}") == asset
    })))
}

/// The `result` of a JSON-RPC answer; a JSON-RPC `error` is an error.
pub fn rpc_result(method: &'static str, status: u16, body: &str) -> Result<Value> {
    const EP: &str = "stellar rpc";
    let mut v = json(EP, body)?;
    if let Some(err) = v.get("error") {
        return Err(bad(
            EP,
            format!(
                "{method}: error {}: {}",
                err["code"],
                err["message"].as_str().unwrap_or("")
            ),
        ));
    }
    match v.get_mut("result") {
        Some(result) if status == 200 => Ok(result.take()),
        _ => Err(bad(EP, format!("{method}: {status}: {}", clip(body)))),
    }
}

/// `sendTransaction`'s result.
pub fn rpc_send(result: &Value) -> Result<Outcome> {
    match result["status"].as_str() {
        Some("PENDING") | Some("DUPLICATE") => Ok(Outcome::Pending),
        Some("TRY_AGAIN_LATER") => Ok(Outcome::TryAgainLater),
        Some("ERROR") => match result["errorResultXdr"].as_str() {
            Some(x) => failed_from_result_xdr(x),
            None => Ok(Outcome::Failed {
                tx_code: "tx_error".into(),
                op_codes: vec![],
            }),
        },
        other => Err(bad("rpc sendTransaction", format!("status {other:?}"))),
    }
}

/// `getTransaction`'s result.
pub fn rpc_get(result: &Value) -> Result<Outcome> {
    const EP: &str = "rpc getTransaction";
    match result["status"].as_str() {
        Some("SUCCESS") => ledger(&result["ledger"])
            .map(|ledger| Outcome::Success { ledger })
            .ok_or_else(|| bad(EP, "SUCCESS without a ledger")),
        Some("FAILED") => match result["resultXdr"].as_str() {
            Some(x) => failed_from_result_xdr(x),
            None => Err(bad(EP, "FAILED without resultXdr")),
        },
        Some("NOT_FOUND") => Ok(Outcome::NotFound),
        other => Err(bad(EP, format!("status {other:?}"))),
    }
}

/// `getLedgerEntries`' result for one account key.
pub fn rpc_account(result: &Value) -> Result<Option<i64>> {
    const EP: &str = "rpc getLedgerEntries";
    let Some(entry) = result["entries"].as_array().and_then(|e| e.first()) else {
        return Ok(None);
    };
    let data = entry["xdr"]
        .as_str()
        .ok_or_else(|| bad(EP, "an entry without xdr"))?;
    match xdr::LedgerEntryData::from_xdr_base64(data, xdr::Limits::len(64 * 1024))? {
        xdr::LedgerEntryData::Account(account) => Ok(Some(account.seq_num.0)),
        _ => Err(bad(EP, "the entry is not an account")),
    }
}

/// [`Outcome::Failed`] with the codes of a base64 `TransactionResult`.
pub fn failed_from_result_xdr(result_xdr: &str) -> Result<Outcome> {
    let result = xdr::TransactionResult::from_xdr_base64(result_xdr, xdr::Limits::len(256 * 1024))?;
    let (tx_code, op_codes) = result_codes(&result.result);
    Ok(Outcome::Failed { tx_code, op_codes })
}

/// Horizon's names for a transaction result and its operation results.
pub fn result_codes(result: &xdr::TransactionResultResult) -> (String, Vec<String>) {
    use xdr::TransactionResultResult as R;
    let ops: &[xdr::OperationResult] = match result {
        R::TxSuccess(ops) | R::TxFailed(ops) => ops,
        R::TxFeeBumpInnerSuccess(pair) | R::TxFeeBumpInnerFailed(pair) => {
            use xdr::InnerTransactionResultResult as I;
            match &pair.result.result {
                I::TxSuccess(ops) | I::TxFailed(ops) => ops,
                _ => &[],
            }
        }
        _ => &[],
    };
    let tx_code = match result {
        R::TxNoAccount => "tx_no_source_account".to_string(),
        other => snake(other.name()),
    };
    (tx_code, ops.iter().map(op_code).collect())
}

fn op_code(op: &xdr::OperationResult) -> String {
    use xdr::OperationResultTr as Tr;
    match op {
        xdr::OperationResult::OpInner(Tr::Payment(p)) => format!("op_{}", snake(p.name())),
        xdr::OperationResult::OpInner(Tr::CreateAccount(
            xdr::CreateAccountResult::AlreadyExist,
        )) => "op_already_exists".into(),
        xdr::OperationResult::OpInner(Tr::CreateAccount(r)) => format!("op_{}", snake(r.name())),
        xdr::OperationResult::OpInner(Tr::CreateClaimableBalance(r)) => {
            format!("op_{}", snake(r.name()))
        }
        xdr::OperationResult::OpInner(other) => format!("op_inner_{}", snake(other.name())),
        xdr::OperationResult::OpNoAccount => "op_no_source_account".into(),
        other => snake(other.name()),
    }
}

/// `TxBadSeq` -> `tx_bad_seq`.
fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests;
