//! Deposits through Stellar RPC (`--rpc` without `--horizon`), read into
//! the same [`Page`] of [`Record`]s as Horizon's payments so
//! [`super::apply_page`] credits them unchanged.
//!
//! Since protocol 23 (CAP-67) every classic payment emits a Stellar Asset
//! Contract `transfer` event: topics `[Symbol("transfer"), Address(from),
//! Address(to), String("native" | "CODE:ISSUER")]`, value the amount as
//! `I128` (or a map with `amount` and `to_muxed_id`). `getEvents` is asked
//! for those whose `to` is the operator, `getTransaction` for the memo of
//! each deposit's transaction (once per transaction and page).
//!
//! - **Any contract may emit a `transfer` event** naming any asset, so the
//!   filter names no contract (a payment in a wrong asset must be seen to
//!   be refused) and an event is kept only if its contract *is* the SAC of
//!   the asset it names (`sha256` of the XDR `HashIdPreimage::ContractId`).
//! - **Cursors** are event ids (`"%019d-%010d"`: TOID, event index). The
//!   answer's `cursor` is stored after each page: RPC scans a bounded
//!   window of ledgers per call, and an answer without events moves it on.
//! - **The first run** (no stored cursor) starts at the ledger
//!   `getLatestLedger` gives then, stored as the cursor just before that
//!   ledger's first event: a new market credits nothing paid before it
//!   existed (RPC keeps only a window of history anyway).
//! - Not seen through RPC: payments by a credit asset's issuer (`mint`
//!   events), and anything past the RPC's retention window. A transaction
//!   the RPC no longer knows is an error (retried), never a deposit
//!   credited without its memo.

use std::collections::HashMap;
use std::io::Cursor;
use std::str::FromStr;

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use stellar_xdr as xdr;
use xdr::{Limited, Limits, ReadXdr, WriteXdr};

use super::{Page, Record, PAGE_LIMIT};
use crate::error::{MarketError, Result};

/// Limits for decoding the small XDR values of an answer.
const LIMITS: Limits = Limits {
    depth: 32,
    len: 64 * 1024,
};
/// The base64 XDR of `ScVal::Symbol("transfer")`.
pub const TRANSFER_TOPIC: &str = "AAAADwAAAAh0cmFuc2Zlcg==";

fn xdr_err(what: &str) -> impl Fn(xdr::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// The base64 XDR of `ScVal::Address(address)` (`G...` or `C...`): what a
/// topic filter matches.
pub fn address_topic(address: &str) -> Result<String, String> {
    let a =
        xdr::ScAddress::from_str(address).map_err(|e| format!("{address:?} is no address: {e}"))?;
    xdr::ScVal::Address(a)
        .to_xdr_base64(Limits::none())
        .map_err(xdr_err("encoding an address"))
}

/// The Stellar Asset Contract of `asset` (`native` or `CODE:ISSUER`) on
/// the network named by `passphrase`, as a `C...` strkey.
pub fn sac_contract_id(asset: &str, passphrase: &str) -> Result<String, String> {
    let asset = tally_settlement::Asset::parse(asset).map_err(|e| e.to_string())?;
    let network =
        tally_settlement::Network::from_passphrase(passphrase).map_err(|e| e.to_string())?;
    let preimage = xdr::HashIdPreimage::ContractId(xdr::HashIdPreimageContractId {
        network_id: xdr::Hash(network.network_id()),
        contract_id_preimage: xdr::ContractIdPreimage::Asset(asset.to_xdr()),
    });
    let bytes = preimage
        .to_xdr(Limits::none())
        .map_err(xdr_err("encoding a contract id preimage"))?;
    let id: [u8; 32] = Sha256::digest(&bytes).into();
    Ok(xdr::ScAddress::Contract(xdr::ContractId(xdr::Hash(id))).to_string())
}

/// The cursor just before the first event of `ledger`.
pub fn ledger_cursor(ledger: u32) -> String {
    format!("{:019}-{:010}", u64::from(ledger) << 32, 0)
}

/// Whether `s` has the shape of an RPC cursor (`digits-digits`); Horizon's
/// paging tokens are bare numbers.
pub fn is_cursor(s: &str) -> bool {
    let digits = |p: &str| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit());
    matches!(s.split_once('-'), Some((a, b)) if digits(a) && digits(b))
}

/// `getEvents` params: the transfers into `operator_topic` after `cursor`.
pub fn events_params(cursor: &str, operator_topic: &str) -> Value {
    json!({
        "filters": [{
            "type": "contract",
            "topics": [[TRANSFER_TOPIC, "*", operator_topic, "*"]],
        }],
        "pagination": { "cursor": cursor, "limit": PAGE_LIMIT },
        "xdrFormat": "base64",
    })
}

/// `getLatestLedger`'s `sequence`.
pub fn parse_latest_ledger(result: &Value) -> Result<u32, String> {
    result["sequence"]
        .as_u64()
        .and_then(|s| u32::try_from(s).ok())
        .ok_or_else(|| "getLatestLedger: no sequence".to_string())
}

/// One transfer event as read, before its memo is known.
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    /// The emitting contract, `C...`.
    pub contract_id: String,
    pub record: Record,
}

/// One `getEvents` answer.
#[derive(Debug, Clone, Default)]
pub struct Events {
    /// The transfer events, in order.
    pub transfers: Vec<Transfer>,
    /// How many events the answer held (transfers or not).
    pub read: usize,
    /// Where to read on from.
    pub cursor: Option<String>,
}

fn decode(b64: &str, what: &str) -> Result<xdr::ScVal, String> {
    xdr::ScVal::from_xdr_base64(b64.trim(), LIMITS).map_err(xdr_err(what))
}

/// The amount of a transfer's value: `I128`, or a map with `amount`;
/// `None` when it is neither or does not fit in stroops.
fn amount_of(value: &xdr::ScVal) -> Option<i64> {
    let amount = match value {
        xdr::ScVal::I128(_) => value,
        xdr::ScVal::Map(Some(map)) => map.0.iter().find_map(|e| match &e.key {
            xdr::ScVal::Symbol(s) if s.0.as_slice() == b"amount" => Some(&e.val),
            _ => None,
        })?,
        _ => return None,
    };
    let xdr::ScVal::I128(parts) = amount else {
        return None;
    };
    let n = (i128::from(parts.hi) << 64) | i128::from(parts.lo);
    i64::try_from(n).ok()
}

/// `from`, `to` and the asset of a SAC `transfer` event's topics; `None`
/// for any other event.
fn transfer_topics(topics: &[xdr::ScVal]) -> Option<(String, String, String)> {
    match topics {
        [xdr::ScVal::Symbol(name), xdr::ScVal::Address(from), xdr::ScVal::Address(to), xdr::ScVal::String(asset)]
            if name.0.as_slice() == b"transfer" =>
        {
            let asset = String::from_utf8(asset.0.to_vec()).ok()?;
            Some((from.to_string(), to.to_string(), asset))
        }
        _ => None,
    }
}

/// Parse a `getEvents` result; a sentence naming what is wrong otherwise.
pub fn parse_events(result: &Value) -> Result<Events, String> {
    let events = result["events"]
        .as_array()
        .ok_or("getEvents: the result has no events")?;
    let mut transfers = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        let need = |key: &str| {
            e[key]
                .as_str()
                .map(str::to_string)
                .ok_or(format!("getEvents: event {i} has no {key}"))
        };
        let id = need("id")?;
        let what = format!("getEvents: event {i}: topic");
        let topics = e["topic"]
            .as_array()
            .ok_or(format!("getEvents: event {i} has no topic"))?
            .iter()
            .map(|t| decode(t.as_str().unwrap_or(""), &what))
            .collect::<Result<Vec<_>, _>>()?;
        let value = decode(&need("value")?, &format!("getEvents: event {i}: value"))?;
        let contract_id = need("contractId")?;
        let tx_hash = need("txHash")?;
        let Some((from, to, asset)) = transfer_topics(&topics) else {
            continue; // not a transfer: the filter matched something else
        };
        transfers.push(Transfer {
            contract_id,
            record: Record {
                paging_token: id.clone(),
                id,
                kind: "payment".into(),
                is_payment: true,
                // RPC keeps events of successful transactions only; a
                // `false` here is still believed.
                successful: e["inSuccessfulContractCall"].as_bool().unwrap_or(true),
                tx_hash,
                from,
                to: Some(to),
                amount: amount_of(&value),
                asset,
                memo: None,
            },
        });
    }
    Ok(Events {
        transfers,
        read: events.len(),
        cursor: result["cursor"]
            .as_str()
            .filter(|c| is_cursor(c))
            .map(str::to_string),
    })
}

/// A memo as a deposit code may be: text or an id.
fn memo_text(memo: xdr::Memo) -> Option<String> {
    match memo {
        xdr::Memo::Text(t) => Some(String::from_utf8_lossy(t.as_slice()).into_owned()),
        xdr::Memo::Id(id) => Some(id.to_string()),
        _ => None,
    }
}

/// The memo of a `Transaction` (v1) read up to it.
fn tx_memo<R: std::io::Read>(r: &mut Limited<R>) -> Result<xdr::Memo, xdr::Error> {
    xdr::MuxedAccount::read_xdr(r)?;
    u32::read_xdr(r)?;
    xdr::SequenceNumber::read_xdr(r)?;
    xdr::Preconditions::read_xdr(r)?;
    xdr::Memo::read_xdr(r)
}

/// The text or id memo of a base64 `TransactionEnvelope` (the inner
/// transaction's for a fee bump). Only the header up to the memo is
/// decoded: the operations after it may be anything.
pub fn envelope_memo(b64: &str) -> Result<Option<String>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("the envelope is not base64: {e}"))?;
    let len = bytes.len();
    let mut r = Limited::new(Cursor::new(bytes), Limits { depth: 16, len });
    let memo = (|| match xdr::EnvelopeType::read_xdr(&mut r)? {
        xdr::EnvelopeType::TxV0 => {
            xdr::Uint256::read_xdr(&mut r)?;
            u32::read_xdr(&mut r)?;
            xdr::SequenceNumber::read_xdr(&mut r)?;
            Option::<xdr::TimeBounds>::read_xdr(&mut r)?;
            xdr::Memo::read_xdr(&mut r)
        }
        xdr::EnvelopeType::Tx => tx_memo(&mut r),
        xdr::EnvelopeType::TxFeeBump => {
            xdr::MuxedAccount::read_xdr(&mut r)?;
            i64::read_xdr(&mut r)?;
            match xdr::EnvelopeType::read_xdr(&mut r)? {
                xdr::EnvelopeType::Tx => tx_memo(&mut r),
                _ => Err(xdr::Error::Invalid),
            }
        }
        _ => Err(xdr::Error::Invalid),
    })()
    .map_err(xdr_err("the envelope"))?;
    Ok(memo_text(memo))
}

/// The memo of a `getTransaction` result.
pub fn parse_transaction_memo(hash: &str, result: &Value) -> Result<Option<String>, String> {
    match result["status"].as_str() {
        Some("SUCCESS" | "FAILED") => {
            let envelope = result["envelopeXdr"]
                .as_str()
                .ok_or(format!("getTransaction {hash}: no envelopeXdr"))?;
            envelope_memo(envelope).map_err(|e| format!("getTransaction {hash}: {e}"))
        }
        Some("NOT_FOUND") => Err(format!(
            "getTransaction {hash}: not found (past the RPC's retention window?)"
        )),
        other => Err(format!("getTransaction {hash}: status {other:?}")),
    }
}

/// One JSON-RPC call to `url`.
pub async fn call(
    http: &reqwest::Client,
    url: &str,
    method: &'static str,
    params: Option<Value>,
) -> Result<Value> {
    let mut request = json!({ "jsonrpc": "2.0", "id": 1, "method": method });
    if let Some(p) = params {
        request["params"] = p;
    }
    let up = |e: reqwest::Error| MarketError::Upstream(format!("stellar rpc {method}: {e}"));
    let response = http.post(url).json(&request).send().await.map_err(up)?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(up)?;
    tally_settlement::submit::parse::rpc_result(method, status, &body)
        .map_err(|e| MarketError::Upstream(e.to_string()))
}

/// The latest ledger the RPC knows.
pub async fn latest_ledger(http: &reqwest::Client, url: &str) -> Result<u32> {
    let result = call(http, url, "getLatestLedger", None).await?;
    parse_latest_ledger(&result).map_err(MarketError::Upstream)
}

/// One page read: its records (memos filled in), how many events the
/// answer held, and where to read on from.
#[derive(Debug, Clone, Default)]
pub struct Read {
    pub page: Page,
    pub events: usize,
    pub cursor: Option<String>,
}

/// Keep the transfers emitted by the SAC of the asset they name.
pub fn genuine(transfers: Vec<Transfer>, passphrase: &str) -> Vec<Record> {
    let mut sacs: HashMap<String, Option<String>> = HashMap::new();
    let mut out = Vec::with_capacity(transfers.len());
    for t in transfers {
        let sac = sacs
            .entry(t.record.asset.clone())
            .or_insert_with(|| sac_contract_id(&t.record.asset, passphrase).ok());
        if sac.as_deref() == Some(t.contract_id.as_str()) {
            out.push(t.record);
        } else {
            tracing::warn!(
                event = %t.record.id, contract = %t.contract_id, asset = %t.record.asset,
                "a transfer event not emitted by its asset's contract is ignored"
            );
        }
    }
    out
}

/// Read the transfers into `operator` after `cursor`, with the memos of
/// the deposits among them.
pub async fn read_page(
    http: &reqwest::Client,
    url: &str,
    operator: &str,
    passphrase: &str,
    cursor: &str,
) -> Result<Read> {
    let topic = address_topic(operator).map_err(MarketError::Upstream)?;
    let params = events_params(cursor, &topic);
    let result = call(http, url, "getEvents", Some(params)).await?;
    let events = parse_events(&result).map_err(MarketError::Upstream)?;
    let mut records = genuine(events.transfers, passphrase);
    let mut memos: HashMap<String, Option<String>> = HashMap::new();
    for r in &mut records {
        if r.to.as_deref() != Some(operator) || r.from == operator {
            continue; // no deposit: its memo does not matter
        }
        if let Some(memo) = memos.get(&r.tx_hash) {
            r.memo = memo.clone();
            continue;
        }
        if r.tx_hash.len() != 64 || !r.tx_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            let why = format!("getEvents: event {} has no transaction hash", r.id);
            return Err(MarketError::Upstream(why));
        }
        let params = json!({ "hash": r.tx_hash, "xdrFormat": "base64" });
        let tx = call(http, url, "getTransaction", Some(params)).await?;
        let memo = parse_transaction_memo(&r.tx_hash, &tx).map_err(MarketError::Upstream)?;
        memos.insert(r.tx_hash.clone(), memo.clone());
        r.memo = memo;
    }
    Ok(Read {
        page: Page { records },
        events: events.read,
        cursor: events.cursor,
    })
}

#[cfg(test)]
mod tests;
