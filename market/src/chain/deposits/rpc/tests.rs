//! Tests of the Stellar RPC reader: contract ids, transfer events read as
//! deposits (spoofs and other assets refused), memos from envelopes,
//! malformed answers, cursors and request parameters.

use super::*;
use tally_protocol::Signer;
use xdr::ScVal;

const TESTNET: &str = "Test SDF Network ; September 2015";
const CURSOR: &str = "0000005299989643265-0000000001";

fn b64(v: &ScVal) -> String {
    v.to_xdr_base64(Limits::none()).unwrap()
}
fn sym(s: &str) -> ScVal {
    ScVal::Symbol(xdr::ScSymbol(s.try_into().unwrap()))
}
fn i128_val(n: i128) -> ScVal {
    let (hi, lo) = ((n >> 64) as i64, n as u64);
    ScVal::I128(xdr::Int128Parts { hi, lo })
}
fn g() -> String {
    Signer::generate().account().to_string()
}

/// An event as the `getEvents` docs show it; `t` is from, to, asset.
fn event(id: &str, contract: &str, t: [&str; 3], value: ScVal) -> Value {
    let addr = |s: &str| b64(&ScVal::Address(xdr::ScAddress::from_str(s).unwrap()));
    let asset = b64(&ScVal::String(xdr::ScString(t[2].try_into().unwrap())));
    json!({
        "type": "contract", "ledger": 1234, "ledgerClosedAt": "2025-08-01T12:00:00Z",
        "contractId": contract, "id": id, "pagingToken": id, "operationIndex": 0,
        "transactionIndex": 1, "inSuccessfulContractCall": true,
        "topic": [b64(&sym("transfer")), addr(t[0]), addr(t[1]), asset],
        "value": b64(&value), "txHash": "a".repeat(64),
    })
}

fn page(events: Vec<Value>) -> Value {
    json!({"events": events, "cursor": CURSOR,
           "latestLedger": 1240, "oldestLedger": 1000,
           "latestLedgerCloseTime": "1754049600", "oldestLedgerCloseTime": "1753444800"})
}

#[test]
fn sac_ids_are_those_of_the_network() {
    let native = |net| sac_contract_id("native", net).unwrap();
    let public = native(tally_settlement::Network::PUBLIC_PASSPHRASE);
    const PUBLIC_XLM: &str = "CAS3J7GYLGXMF6TDJBBYYSE3HQ6BBSMLNUQ34T6TZMYMW2EVH34XOWMA";
    const TESTNET_XLM: &str = "CDLZFC3SYJYDZT7K67VZ75HPJVIEUVNIXF47ZG2FB2RMQQVU2HHGCYSC";
    assert_eq!(
        (public.as_str(), native(TESTNET).as_str()),
        (PUBLIC_XLM, TESTNET_XLM)
    );
    assert!(sac_contract_id("USDC", TESTNET).is_err());
    assert_eq!(b64(&sym("transfer")), TRANSFER_TOPIC);
}

#[test]
fn a_native_transfer_to_the_operator_is_a_deposit() {
    let (operator, alice) = (g(), g());
    let sac = sac_contract_id("native", TESTNET).unwrap();
    let (id, amount) = ("0000005299989643265-0000000000", i128_val(15_000_000));
    let e = event(id, &sac, [&alice, &operator, "native"], amount);
    let read = parse_events(&page(vec![e])).unwrap();
    assert_eq!((read.read, read.cursor.as_deref()), (1, Some(CURSOR)));
    let expected = Record {
        id: id.into(),
        paging_token: id.into(),
        kind: "payment".into(),
        is_payment: true,
        successful: true,
        tx_hash: "a".repeat(64),
        from: alice,
        to: Some(operator),
        amount: Some(15_000_000),
        asset: "native".into(),
        memo: None,
    };
    assert_eq!(genuine(read.transfers, TESTNET), vec![expected]);
}

#[test]
fn payouts_credit_assets_maps_and_spoofs() {
    let (op, alice) = (g(), g());
    let native = sac_contract_id("native", TESTNET).unwrap();
    let usdc = format!("USDC:{}", g());
    let usdc_sac = sac_contract_id(&usdc, TESTNET).unwrap();
    let entry = |k: &str, val| xdr::ScMapEntry { key: sym(k), val };
    let entries = vec![
        entry("amount", i128_val(7)),
        entry("to_muxed_id", ScVal::U64(9)),
    ];
    let muxed = ScVal::Map(Some(xdr::ScMap(entries.try_into().unwrap())));
    let other = xdr::ScAddress::Contract(xdr::ContractId(xdr::Hash([7; 32]))).to_string();
    let too_big = i128_val(i128::from(i64::MAX) + 1);
    let body = page(vec![
        event("1-1", &native, [&op, &alice, "native"], i128_val(30)),
        event("1-2", &usdc_sac, [&alice, &op, &usdc], muxed),
        event("1-3", &other, [&alice, &op, "native"], i128_val(1 << 40)),
        event("1-4", &native, [&other, &op, "native"], too_big),
    ]);
    let read = parse_events(&body).unwrap();
    assert_eq!(read.read, 4);
    let r = genuine(read.transfers, TESTNET);
    assert_eq!(r.len(), 3, "an event of no SAC is dropped");
    let payout = (r[0].from.as_str(), r[0].to.as_deref());
    assert_eq!(payout, (op.as_str(), Some(alice.as_str())));
    assert_eq!((r[1].asset.as_str(), r[1].amount), (usdc.as_str(), Some(7)));
    assert_eq!((r[2].from.as_str(), r[2].amount), (other.as_str(), None));
}

#[test]
fn memos_are_read_from_envelopes() {
    let tx = |memo| xdr::Transaction {
        source_account: xdr::MuxedAccount::Ed25519(xdr::Uint256([1; 32])),
        fee: 100,
        seq_num: xdr::SequenceNumber(5),
        cond: xdr::Preconditions::Time(xdr::TimeBounds {
            min_time: xdr::TimePoint(0),
            max_time: xdr::TimePoint(99),
        }),
        memo,
        operations: vec![].try_into().unwrap(),
        ext: xdr::TransactionExt::V0,
    };
    let signatures = || vec![].try_into().unwrap();
    let v1 = |memo| xdr::TransactionV1Envelope {
        tx: tx(memo),
        signatures: signatures(),
    };
    let memo = |e: xdr::TransactionEnvelope| {
        let envelope = e.to_xdr_base64(Limits::none()).unwrap();
        let answer = json!({"status": "SUCCESS", "latestLedger": 1240, "ledger": 1234,
               "envelopeXdr": envelope, "resultXdr": "AAAA", "resultMetaXdr": "AAAA"});
        parse_transaction_memo("h", &answer).unwrap()
    };
    let text = || xdr::Memo::Text("tally-0123456789ab".try_into().unwrap());
    let code = Some("tally-0123456789ab".to_string());
    assert_eq!(memo(xdr::TransactionEnvelope::Tx(v1(text()))), code);
    let id = xdr::TransactionEnvelope::Tx(v1(xdr::Memo::Id(42)));
    assert_eq!(memo(id).as_deref(), Some("42"));
    let hash = xdr::TransactionEnvelope::Tx(v1(xdr::Memo::Hash(xdr::Hash([3; 32]))));
    assert_eq!(memo(hash), None, "a hash memo is no deposit code");
    let bump = xdr::FeeBumpTransaction {
        fee_source: xdr::MuxedAccount::Ed25519(xdr::Uint256([4; 32])),
        fee: 400,
        inner_tx: xdr::FeeBumpTransactionInnerTx::Tx(v1(text())),
        ext: xdr::FeeBumpTransactionExt::V0,
    };
    let bump = xdr::FeeBumpTransactionEnvelope {
        tx: bump,
        signatures: signatures(),
    };
    assert_eq!(memo(xdr::TransactionEnvelope::TxFeeBump(bump)), code);
}

#[test]
fn malformed_answers_are_errors() {
    let sac = sac_contract_id("native", TESTNET).unwrap();
    let good = event("1-1", &sac, [&g(), &g(), "native"], i128_val(1));
    let fails = |e: Value| parse_events(&page(vec![e])).is_err();
    for key in ["id", "topic", "value", "contractId", "txHash"] {
        let mut e = good.clone();
        e.as_object_mut().unwrap().remove(key);
        assert!(fails(e), "{key}");
    }
    let bad_values = [
        ("/topic/1", "!!not base64"),
        ("/value", "AAAA"),
        ("/topic/0", ""),
    ];
    for (key, bad) in bad_values {
        let mut e = good.clone();
        *e.pointer_mut(key).unwrap() = json!(bad);
        assert!(fails(e), "{key}: {bad}");
    }
    assert!(parse_events(&json!({})).is_err());
    assert!(parse_events(&json!({"events": "x"})).is_err());
    let mut mint = good.clone();
    mint["topic"][0] = json!(b64(&sym("mint")));
    let read = parse_events(&page(vec![mint])).unwrap();
    assert_eq!((read.read, read.transfers.len()), (1, 0), "passed over");

    assert!(parse_latest_ledger(&json!({"id": "x"})).is_err());
    assert!(parse_latest_ledger(&json!({"sequence": -1})).is_err());
    let latest = json!({"id": "x", "protocolVersion": 23, "sequence": 7});
    assert_eq!(parse_latest_ledger(&latest).unwrap(), 7);

    for tx in [
        json!({"status": "NOT_FOUND", "latestLedger": 5}),
        json!({"status": "SUCCESS"}),
        json!({"status": "SUCCESS", "envelopeXdr": "not base64!"}),
        json!({"status": "SUCCESS", "envelopeXdr": "AAAAAg=="}),
        json!({"status": "SUCCESS", "envelopeXdr": "AAAACQ=="}),
        json!({}),
    ] {
        assert!(parse_transaction_memo("h", &tx).is_err(), "{tx}");
    }
}

#[test]
fn cursors_and_params() {
    assert_eq!(ledger_cursor(1234), "0000005299989643264-0000000000");
    assert!(is_cursor(&ledger_cursor(1)) && is_cursor("0000005299989643265-0000000002"));
    for bad in ["12884905985", "now", "-1", "1-", "a-1", "1-2-3", ""] {
        assert!(!is_cursor(bad), "{bad}");
    }
    let topic = address_topic(&g()).unwrap();
    let p = events_params("1-2", &topic);
    assert_eq!(
        p["pagination"],
        json!({"cursor": "1-2", "limit": PAGE_LIMIT})
    );
    let topics = json!(["AAAADwAAAAh0cmFuc2Zlcg==", "*", topic, "*"]);
    assert_eq!(p["filters"][0]["topics"][0], topics);
    assert!(p.get("startLedger").is_none() && address_topic("GNOPE").is_err());
}
