//! Horizon's payments page (`GET /accounts/{id}/payments?join=transactions`)
//! as the deposit follower needs it, parsed from Horizon's documented body:
//! `_embedded.records[]` with `id`, `paging_token`, `type`,
//! `transaction_successful`, `transaction_hash`, `from`/`to`/`amount`
//! (`payment`, path payments), `funder`/`account`/`starting_balance`
//! (`create_account`), the asset as `asset_type`/`asset_code`/`asset_issuer`,
//! and the joined `transaction` with `memo_type` and `memo`.

use serde_json::Value;

/// One page of payment records, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub records: Vec<Record>,
}

/// One payment-like operation touching the operator's account.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    pub paging_token: String,
    /// Horizon's `type`.
    pub kind: String,
    /// A payment into an account: `payment`, a path payment, `create_account`.
    pub is_payment: bool,
    pub successful: bool,
    pub tx_hash: String,
    pub from: String,
    pub to: Option<String>,
    /// Stroops; `None` when the amount is not a valid 7-decimal number.
    pub amount: Option<i64>,
    /// `native` or `CODE:ISSUER`.
    pub asset: String,
    /// The transaction's memo when it is text or an id.
    pub memo: Option<String>,
}

/// The URL of the page after `cursor` (from the start when `None`).
pub fn payments_url(horizon: &str, account: &str, cursor: Option<&str>) -> String {
    let base = horizon.trim_end_matches('/');
    let mut url = format!(
        "{base}/accounts/{account}/payments?order=asc&limit={}&join=transactions&include_failed=true",
        super::PAGE_LIMIT
    );
    if let Some(c) = cursor {
        url.push_str("&cursor=");
        url.push_str(&c.replace(|ch: char| !ch.is_ascii_alphanumeric() && ch != '-', ""));
    }
    url
}

/// Whole units with up to 7 decimals (`"12.3400000"`) in stroops, with
/// integer arithmetic only; `None` for anything else or an overflow.
pub fn parse_units(s: &str) -> Option<i64> {
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, f),
        None => (s, ""),
    };
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 7
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = format!("{frac:0<7}").parse().ok()?;
    whole.checked_mul(10_000_000)?.checked_add(frac)
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Parse a payments page; a sentence naming what is wrong otherwise.
pub fn parse_page(body: &str) -> Result<Page, String> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| format!("the payments page is not JSON: {e}"))?;
    let records = v
        .pointer("/_embedded/records")
        .and_then(Value::as_array)
        .ok_or("the payments page has no _embedded.records")?;
    let mut out = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let need = |key: &str| str_of(r, key).ok_or(format!("record {i} has no {key}"));
        let kind = need("type")?;
        let (from, to, amount, is_payment) = match kind.as_str() {
            "create_account" => (
                need("funder")?,
                str_of(r, "account"),
                str_of(r, "starting_balance"),
                true,
            ),
            "payment" | "path_payment_strict_receive" | "path_payment_strict_send" => {
                (need("from")?, str_of(r, "to"), str_of(r, "amount"), true)
            }
            _ => (
                str_of(r, "source_account").unwrap_or_default(),
                str_of(r, "to").or_else(|| str_of(r, "into")),
                str_of(r, "amount"),
                false,
            ),
        };
        let asset = match (kind.as_str(), r.get("asset_type").and_then(Value::as_str)) {
            ("create_account", _) | (_, Some("native")) => "native".to_string(),
            (_, Some(_)) => format!(
                "{}:{}",
                str_of(r, "asset_code").unwrap_or_default(),
                str_of(r, "asset_issuer").unwrap_or_default()
            ),
            (_, None) => String::new(),
        };
        let tx = r.get("transaction");
        let memo = tx.and_then(|t| match t.get("memo_type").and_then(Value::as_str) {
            Some("text" | "id") => str_of(t, "memo"),
            _ => None,
        });
        let successful = r
            .get("transaction_successful")
            .and_then(Value::as_bool)
            .or_else(|| {
                tx.and_then(|t| t.get("successful"))
                    .and_then(Value::as_bool)
            })
            .unwrap_or(false);
        out.push(Record {
            id: need("id")?,
            paging_token: need("paging_token")?,
            kind,
            is_payment,
            successful,
            tx_hash: str_of(r, "transaction_hash").unwrap_or_default(),
            from,
            to,
            amount: amount.as_deref().and_then(parse_units),
            asset,
            memo,
        });
    }
    Ok(Page { records: out })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_as_integer_stroops() {
        assert_eq!(parse_units("12.3400000"), Some(123_400_000));
        assert_eq!(parse_units("0.0000001"), Some(1));
        assert_eq!(parse_units("5"), Some(50_000_000));
        assert_eq!(parse_units("922337203685.4775807"), Some(i64::MAX));
        for bad in [
            "",
            ".5",
            "1.00000001",
            "-1.0",
            "1e5",
            "1,5",
            "922337203686.0",
        ] {
            assert_eq!(parse_units(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_documented_page_is_read() {
        let body = r#"{"_links":{},"_embedded":{"records":[
          {"id":"12884905985","paging_token":"12884905985","transaction_successful":true,
           "source_account":"GA","type":"payment","transaction_hash":"aa","asset_type":"native",
           "from":"GA","to":"GB","amount":"10.5000000",
           "transaction":{"memo_type":"text","memo":"tally-0123456789ab","successful":true}},
          {"id":"12884905986","paging_token":"12884905986","transaction_successful":false,
           "type":"payment","transaction_hash":"bb","asset_type":"credit_alphanum4",
           "asset_code":"USDC","asset_issuer":"GI","from":"GA","to":"GB","amount":"1.0000000",
           "transaction":{"memo_type":"hash","memo":"AAAA"}},
          {"id":"12884905987","paging_token":"12884905987","transaction_successful":true,
           "type":"create_account","transaction_hash":"cc","funder":"GA","account":"GB",
           "starting_balance":"2.0000000"},
          {"id":"12884905988","paging_token":"12884905988","transaction_successful":true,
           "type":"account_merge","source_account":"GA","into":"GB","transaction_hash":"dd"}
        ]}}"#;
        let page = parse_page(body).unwrap();
        let r = &page.records;
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].amount, Some(105_000_000));
        assert_eq!(r[0].memo.as_deref(), Some("tally-0123456789ab"));
        assert_eq!(r[0].to.as_deref(), Some("GB"));
        assert!(r[0].successful && r[0].is_payment);
        assert_eq!(r[1].asset, "USDC:GI");
        assert!(!r[1].successful);
        assert_eq!(r[1].memo, None, "hash memos are no deposit codes");
        assert_eq!((r[2].from.as_str(), r[2].asset.as_str()), ("GA", "native"));
        assert!(!r[3].is_payment);
        assert!(parse_page("{}").is_err());
        assert!(parse_page(r#"{"_embedded":{"records":[{"id":"1"}]}}"#).is_err());
    }

    #[test]
    fn the_cursor_is_passed_on_and_cannot_inject_parameters() {
        let url = payments_url("https://h.example/", "GOP", Some("123&limit=1"));
        assert!(url.starts_with("https://h.example/accounts/GOP/payments?order=asc"));
        assert!(url.ends_with("&cursor=123limit1"));
        assert!(!payments_url("https://h", "GOP", None).contains("cursor"));
    }
}
