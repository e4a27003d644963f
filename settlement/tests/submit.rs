//! The submission client against a local stand-in server on port 0: what
//! goes over the wire (form field `tx`, JSON-RPC bodies) and what comes back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tally_settlement::{Endpoint, Keypair, Outcome, PublicKey, Submitter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    head: String,
    body: String,
}

/// Serve `replies` (status, JSON body) in order, one per connection;
/// `None` holds the connection open without answering.
async fn spawn_server(replies: Vec<Option<(u16, String)>>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        for reply in replies {
            let (mut sock, _) = listener.accept().await.unwrap();
            let request = read_request(&mut sock).await;
            log.lock().unwrap().push(request);
            match reply {
                Some((status, body)) => {
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    sock.write_all(response.as_bytes()).await.unwrap();
                }
                None => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    });
    (url, seen)
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Seen {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = sock.read(&mut chunk).await.unwrap();
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                return Seen { head, body };
            }
        }
        if n == 0 {
            panic!("connection closed mid-request");
        }
    }
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// An envelope with `+`, `/` and `=` in its base64, so form encoding matters.
const ENVELOPE: &str = "AAAA+/8=";

#[tokio::test]
async fn horizon_submission_posts_the_envelope_as_form_field_tx() {
    let (url, seen) = spawn_server(vec![Some((200, fixture("horizon_submit_success.json")))]).await;
    let client = Submitter::new(Endpoint::Horizon(format!("{url}/"))).unwrap();
    let outcome = client.submit(ENVELOPE).await.unwrap();
    assert_eq!(outcome, Outcome::Success { ledger: 1825412 });
    let seen = seen.lock().unwrap()[0].clone();
    assert!(
        seen.head.starts_with("POST /transactions HTTP/1.1"),
        "{}",
        seen.head
    );
    assert!(seen
        .head
        .to_ascii_lowercase()
        .contains("content-type: application/x-www-form-urlencoded"));
    assert_eq!(seen.body, "tx=AAAA%2B%2F8%3D");
}

#[tokio::test]
async fn horizon_rejections_and_status_queries() {
    let (url, seen) = spawn_server(vec![
        Some((400, fixture("horizon_submit_op_failed.json"))),
        Some((404, fixture("horizon_not_found.json"))),
        Some((200, fixture("horizon_account.json"))),
    ])
    .await;
    let client = Submitter::new(Endpoint::Horizon(url)).unwrap();
    assert_eq!(
        client.submit(ENVELOPE).await.unwrap(),
        Outcome::Failed {
            tx_code: "tx_failed".into(),
            op_codes: vec![
                "op_success".into(),
                "op_no_destination".into(),
                "op_no_trust".into()
            ],
        }
    );
    let hash = "ab".repeat(32);
    assert_eq!(client.status(&hash).await.unwrap(), Outcome::NotFound);
    let account = Keypair::from_seed(&[1; 32]).public_key();
    assert_eq!(
        client.account_sequence(&account).await.unwrap(),
        Some(4294967296)
    );
    let seen = seen.lock().unwrap().clone();
    assert!(seen[1]
        .head
        .starts_with(&format!("GET /transactions/{hash} ")));
    assert!(seen[2]
        .head
        .starts_with(&format!("GET /accounts/{account} ")));
}

#[tokio::test]
async fn rpc_calls_are_json_rpc_with_named_params() {
    let (url, seen) = spawn_server(vec![
        Some((200, fixture("rpc_send_pending.json"))),
        Some((200, fixture("rpc_get_success.json"))),
        Some((200, fixture("rpc_get_ledger_entries_account.json"))),
    ])
    .await;
    let client = Submitter::new(Endpoint::Rpc(url)).unwrap();
    assert_eq!(client.submit(ENVELOPE).await.unwrap(), Outcome::Pending);
    let hash = "cd".repeat(32);
    assert_eq!(
        client.status(&hash).await.unwrap(),
        Outcome::Success { ledger: 1825412 }
    );
    let account =
        PublicKey::parse("GBMVVCS2TT3XFDUXVCVXFGWO2NMTCNIYZHY4CKXTV37VPHXCAU3Z7E46").unwrap();
    assert_eq!(
        client.account_sequence(&account).await.unwrap(),
        Some(4294967296)
    );
    let seen = seen.lock().unwrap().clone();
    let body = |i: usize| serde_json::from_str::<serde_json::Value>(&seen[i].body).unwrap();
    assert_eq!(body(0)["jsonrpc"], "2.0");
    assert_eq!(body(0)["method"], "sendTransaction");
    assert_eq!(body(0)["params"]["transaction"], ENVELOPE);
    assert_eq!(body(1)["method"], "getTransaction");
    assert_eq!(body(1)["params"]["hash"], hash);
    assert_eq!(body(2)["method"], "getLedgerEntries");
    // The LedgerKey of the account, as the Python stellar-sdk encodes it.
    assert_eq!(
        body(2)["params"]["keys"][0],
        "AAAAAAAAAABZWopanPdyjpeoq3KaztNZMTUYyfHBKvOu/1ee4gU3nw=="
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout() {
    let (url, _) = spawn_server(vec![None, None]).await;
    let horizon =
        Submitter::with_timeout(Endpoint::Horizon(url.clone()), Duration::from_millis(200))
            .unwrap();
    assert_eq!(horizon.submit(ENVELOPE).await.unwrap(), Outcome::Timeout);
    let rpc = Submitter::with_timeout(Endpoint::Rpc(url), Duration::from_millis(200)).unwrap();
    assert_eq!(rpc.submit(ENVELOPE).await.unwrap(), Outcome::Timeout);
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_not_a_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = Submitter::new(Endpoint::Horizon(url)).unwrap();
    assert!(client.submit(ENVELOPE).await.is_err());
}
