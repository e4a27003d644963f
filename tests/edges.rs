//! The market's edges, each written as an attack over HTTP: bodies that are
//! large, slow or unsigned; numbers at the ends of their range; bids that
//! would make the market decode for nothing; a reviewer back-dating an
//! answer past its revocation; a signature replayed on another market or
//! made the old way; inputs carrying more than their pixels.

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;
use serde_json::Value;
use tally_protocol::signing::{self, Domain, SignedHeaders, Signer};
use tally_protocol::wire::{BidRequest, ReviewRequest};
use tally_protocol::{Client, Stroops};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Send `body` with the headers `h` to `url + path`; status and JSON.
async fn send(
    url: &str,
    method: reqwest::Method,
    path: &str,
    h: &SignedHeaders,
    body: Vec<u8>,
) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .request(method, format!("{url}{path}"))
        .header("content-type", "application/json")
        .header(signing::HEADER_ACCOUNT, h.account.as_str())
        .header(signing::HEADER_TIMESTAMP, h.timestamp_ms.to_string())
        .header(signing::HEADER_NONCE, &h.nonce)
        .header(signing::HEADER_SIGNATURE, &h.signature)
        .body(body)
        .send()
        .await
        .expect("the market answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn message(v: &Value) -> &str {
    v["error"]["message"].as_str().unwrap_or("")
}

/// Request headers with a fresh nonce and timestamp, an account and a
/// signature that verifies for nothing.
fn forged_head(method: &str, path: &str, length: usize) -> String {
    let who = Signer::generate();
    let sig = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
    format!(
        "{method} {path} HTTP/1.1\r\nhost: market\r\ncontent-type: application/octet-stream\r\n\
         content-length: {length}\r\nx-tally-account: {}\r\nx-tally-timestamp: {}\r\n\
         x-tally-nonce: {}\r\nx-tally-signature: {sig}\r\n\r\n",
        who.account(),
        signing::now_ms(),
        signing::fresh_nonce(),
    )
}

/// The status code and text of the first response on `stream`, or `None`
/// if the connection closed first; a market that does not answer within
/// ten seconds fails the test.
async fn status_of(stream: &mut tokio::net::TcpStream) -> Option<(u16, String)> {
    tokio::time::timeout(Duration::from_secs(10), read_status(stream))
        .await
        .expect("the market answered within 10 s")
}

async fn read_status(stream: &mut tokio::net::TcpStream) -> Option<(u16, String)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if text.contains("\r\n\r\n") && text.contains('}') {
            break;
        }
    }
    let text = String::from_utf8_lossy(&got).to_string();
    let code = text.split(' ').nth(1)?.parse().ok()?;
    Some((code, text))
}

/// VmRSS of a process, in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// (a) Twenty connections stream 60 MB model uploads with signatures that
/// verify for nothing, over and over. The market reads large bodies only
/// within its upload budget, so it stays small, and `/healthz` answers at
/// once throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_streams_of_60_mb_unsigned_uploads_neither_bloat_nor_stall_the_market() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    const BODY: usize = 60 << 20;
    const RSS_LIMIT: u64 = 300 << 20;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("operator.key"), Signer::generate().secret()).unwrap();
    let db = format!("sqlite://{}", dir.path().join("market.db").display());
    let addr = free_addr();
    let child = serve_process(dir.path(), &db, &addr, "market", &[]).await;
    let pid = child.id().expect("tally serve runs");
    let idle_rss = rss_bytes(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut attackers = Vec::new();
    for _ in 0..20 {
        let (stop, sent, addr) = (Arc::clone(&stop), Arc::clone(&sent), addr.clone());
        attackers.push(tokio::spawn(async move {
            let chunk = vec![0x5a_u8; 256 << 10];
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await else {
                    continue;
                };
                if s.write_all(forged_head("POST", "/v1/models", BODY).as_bytes())
                    .await
                    .is_err()
                {
                    continue;
                }
                let mut left = BODY;
                while left > 0 && !stop.load(Ordering::Relaxed) {
                    let n = left.min(chunk.len());
                    if s.write_all(&chunk[..n]).await.is_err() {
                        break; // refused: the market closed the connection
                    }
                    sent.fetch_add(n as u64, Ordering::Relaxed);
                    left -= n;
                }
            }
        }));
    }

    let http = reqwest::Client::new();
    let health = format!("http://{addr}/healthz");
    let mut latencies = Vec::new();
    let mut peak = 0;
    // Until the attackers have pushed 1.5 GB (without a bound the market
    // would hold 20 x 60 MB at once), sample the market's memory and health.
    let deadline = Instant::now() + Duration::from_secs(240);
    while sent.load(Ordering::Relaxed) < 1_500 << 20 {
        assert!(
            Instant::now() < deadline,
            "the attackers pushed only {} MB in 4 minutes",
            sent.load(Ordering::Relaxed) >> 20
        );
        peak = peak.max(rss_bytes(pid));
        if sent.load(Ordering::Relaxed) > 200 << 20 {
            let t = Instant::now();
            let r = http.get(&health).send().await.expect("healthz answers");
            assert_eq!(r.status(), 200);
            latencies.push(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        a.abort();
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    eprintln!(
        "idle RSS {} MB, peak RSS {} MB under 20 x 60 MB streams ({} MB pushed); \
         /healthz median {median:?}, max {:?} over {} samples",
        idle_rss >> 20,
        peak >> 20,
        sent.load(Ordering::Relaxed) >> 20,
        latencies.last().unwrap(),
        latencies.len()
    );
    assert!(latencies.len() >= 5, "too few health samples");
    assert!(peak < RSS_LIMIT, "the market grew to {} MB", peak >> 20);
    assert!(
        median < Duration::from_millis(100),
        "/healthz took {median:?} (median) while the uploads streamed"
    );
    drop(child);
}

/// (a) A body that trickles in is cut off with 408 soon after its grace;
/// a declared length above the route's limit is refused with 413 before
/// a byte of the body is sent; large bodies beyond the upload budget get
/// 503 with JSON while it is full.
async fn slow_oversized_and_crowding_bodies_are_refused_early(backend: Backend) {
    let market = spawn_tweaked(backend, |c| {
        c.limits.body_grace = Duration::from_millis(300);
        c.limits.upload_budget_bytes = 3 << 20;
        c.limits.upload_wait = Duration::from_millis(200);
    })
    .await;
    let addr = market.url.trim_start_matches("http://").to_string();

    // Slow loris: ten bytes of a 1000-byte body, then nothing.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(forged_head("POST", "/v1/offers", 1000).as_bytes())
        .await
        .unwrap();
    s.write_all(b"{\"models\":").await.unwrap();
    // The market answers 408 itself (a stalled body, not a closed socket).
    let (code, text) = status_of(&mut s).await.expect("an answer");
    assert_eq!(code, 408, "{text}");
    assert!(text.contains("body_timeout"), "{text}");

    // Oversized by declaration: refused on the headers alone.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(forged_head("POST", "/v1/offers", 5 << 20).as_bytes())
        .await
        .unwrap();
    let (code, text) = status_of(&mut s).await.expect("an answer");
    assert_eq!(code, 413, "{text}");
    assert!(text.contains("too_large"), "{text}");

    // One 2.5 MB upload holds most of a 3 MB budget while it streams: a
    // second large upload waits, then gets 503; a small request passes.
    let mut first = tokio::net::TcpStream::connect(&addr).await.unwrap();
    first
        .write_all(forged_head("POST", "/v1/models", 5 << 19).as_bytes())
        .await
        .unwrap();
    first.write_all(&[0u8; 1 << 16]).await.unwrap();
    let market_ref = &market;
    // The first holds its share once the market has read some of its body.
    let m = std::sync::Arc::clone(&market_ref.market);
    let deadline = Instant::now() + Duration::from_secs(5);
    while m.uploads.available_permits() == tally_market::auth::budget_total(3 << 20) {
        assert!(Instant::now() < deadline, "the first upload never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut second = tokio::net::TcpStream::connect(&addr).await.unwrap();
    second
        .write_all(forged_head("POST", "/v1/models", 2 << 20).as_bytes())
        .await
        .unwrap();
    let (code, text) = status_of(&mut second).await.expect("an answer");
    assert_eq!(code, 503, "{text}");
    assert!(text.contains("\"busy\""), "{text}");
    let me = market.funded_client(10).await;
    me.account_me().await.expect("small requests still pass");
    drop(first);
    market.finish().await;
}
both!(slow_oversized_and_crowding_bodies_are_refused_early);

/// (b) A timestamp at the end of i64's range is refused as stale (401,
/// JSON), not a panic; the market keeps serving.
async fn extreme_timestamps_are_stale_not_a_panic(backend: Backend) {
    let market = spawn_market(backend).await;
    let d = market.domain();
    let who = Signer::generate();
    for ts in [i64::MIN, i64::MAX, i64::MIN + 1] {
        let h = who.sign_at(
            &d,
            "GET",
            "/v1/accounts/me",
            b"",
            ts,
            &signing::fresh_nonce(),
        );
        let (status, body) = send(
            &market.url,
            reqwest::Method::GET,
            "/v1/accounts/me",
            &h,
            Vec::new(),
        )
        .await;
        assert_eq!(status, 401, "{ts}: {body}");
        assert!(message(&body).contains("stale request"), "{body}");
    }
    market.anonymous().healthz().await.expect("still serving");
    market.finish().await;
}
both!(extreme_timestamps_are_stale_not_a_panic);

/// (b) A credit that would overflow a balance is refused (400) and
/// changes nothing.
async fn a_credit_past_i64_is_refused(backend: Backend) {
    let market = spawn_market(backend).await;
    let op = market.client(&market.operator);
    let who = Signer::generate();
    op.credit(who.account(), Stroops(i64::MAX)).await.unwrap();
    let err = op.credit(who.account(), Stroops(1)).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400), "{err}");
    assert!(err.to_string().contains("amount_overflow"), "{err}");
    let me = market.client(&who).account_me().await.unwrap();
    assert_eq!(me.balance, Stroops(i64::MAX));
    market.finish().await;
}
both!(a_credit_past_i64_is_refused);

/// A large grayscale PNG (`side` x `side`), distinct per `seed`: small
/// to send, costly to decode.
fn big_png(side: u32, seed: u8) -> Vec<u8> {
    let img = image::GrayImage::from_fn(side, side, |x, y| {
        image::Luma([((x / 64 + y / 64) as u8).wrapping_add(seed)])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// (c) A bid of large images from an account that cannot pay is refused
/// with 402 before any image is decoded; an undecodable image in a funded
/// bid is refused with nothing reserved.
async fn an_unfunded_bid_is_refused_before_its_images_are_decoded(backend: Backend) {
    let market = spawn_market(backend).await;
    let images: Vec<Vec<u8>> = (0..4).map(|i| big_png(7_000, i)).collect();
    let nobody = Signer::generate();
    let poor = market.client(&nobody);
    let model = model(&poor).await;
    // The request is built first: the time measured is the market's.
    let engine = base64::engine::general_purpose::STANDARD;
    let body = serde_json::to_vec(&BidRequest {
        inputs: images.iter().map(|b| engine.encode(b)).collect(),
        ..bid_request(&model, 1_000)
    })
    .unwrap();
    let h = nobody.sign(&market.domain(), "POST", "/v1/bids", &body);
    let t = Instant::now();
    let (status, answer) = send(&market.url, reqwest::Method::POST, "/v1/bids", &h, body).await;
    let took = t.elapsed();
    assert_eq!(status, 402, "{answer}");
    assert_eq!(answer["error"]["code"], "insufficient_funds", "{answer}");
    eprintln!("402 for 4 unfunded 49-megapixel images after {took:?}");
    // Images that cannot be decoded, from the same account: still 402,
    // never 422: the balance was looked at before any image.
    let broken: Vec<Vec<u8>> = images
        .iter()
        .map(|b| {
            let mut b = b.clone();
            let mid = b.len() / 2;
            b[mid..mid + 64].fill(0xAA);
            b.truncate(b.len() - 16);
            b
        })
        .collect();
    let body = serde_json::to_vec(&BidRequest {
        inputs: broken.iter().map(|b| engine.encode(b)).collect(),
        ..bid_request(&model, 1_000)
    })
    .unwrap();
    let h = nobody.sign(&market.domain(), "POST", "/v1/bids", &body);
    let (status, answer) = send(
        &market.url,
        reqwest::Method::POST,
        "/v1/bids",
        &h,
        body.clone(),
    )
    .await;
    assert_eq!(status, 402, "checked before decoding: {answer}");
    // (They are undecodable: an account that can pay gets 422 for them.)
    let rich = market.funded_client(1_000_000).await;
    let h = rich
        .signer()
        .unwrap()
        .sign(&market.domain(), "POST", "/v1/bids", &body);
    let (status, answer) = send(&market.url, reqwest::Method::POST, "/v1/bids", &h, body).await;
    assert_eq!(status, 422, "{answer}");

    // Short by one stroop: refused the same way, nothing moves.
    let short = market.funded_client(1_000 * 5 * 4 - 1).await;
    let err = short
        .bid_images(bid_request(&model, 1_000), &images)
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(402), "{err}");
    let me = short.account_me().await.unwrap();
    assert_eq!((me.balance.0, me.reserved.0), (1_000 * 5 * 4 - 1, 0));

    // Funded, but one image does not decode: 422, nothing reserved or stored.
    let rich = market.funded_client(1_000_000).await;
    let mut truncated = png(3);
    truncated.truncate(truncated.len() / 2);
    let err = rich
        .bid_images(bid_request(&model, 1_000), &[png(2), truncated])
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(422), "{err}");
    let me = rich.account_me().await.unwrap();
    assert_eq!((me.balance.0, me.reserved.0), (1_000_000, 0));
    market.finish().await;
}
both!(an_unfunded_bid_is_refused_before_its_images_are_decoded);

/// (d) A reviewer whose mark was revoked signs its answer with a time a
/// second before the revocation: judged when it arrives, it is refused
/// (403) and nothing is paid.
async fn a_back_dated_review_after_revocation_is_refused(backend: Backend) {
    let market = spawn_market(backend).await;
    let disputed = market
        .disputed(png(5), 10_000, 4_000, [honest(), wrong()])
        .await;
    let reviewer = Signer::generate();
    let op = market.client(&market.operator);
    let verified = op.mark_reviewer(reviewer.account(), true).await.unwrap();
    let r = market.client(&reviewer);
    let ticket = r.next_review().await.unwrap().expect("a ticket");
    // The revocation comes more than a second after the mark, so a time a
    // second before it falls while the reviewer was still verified.
    while signing::now_ms() <= verified.timestamp + 1_200 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let revoked = op.mark_reviewer(reviewer.account(), false).await.unwrap();
    let back_dated = revoked.timestamp - 1_000;
    assert!(back_dated > verified.timestamp);
    // Wait until the revocation's signed time has passed on this clock.
    while signing::now_ms() <= revoked.timestamp {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let path = format!("/v1/reviews/{}", ticket.review);
    let body = serde_json::to_vec(&ReviewRequest {
        detections: ticket.candidates[0].detections.clone(),
    })
    .unwrap();
    let h = reviewer.sign_at(
        &market.domain(),
        "POST",
        &path,
        &body,
        back_dated,
        &signing::fresh_nonce(),
    );
    let (status, answer) = send(&market.url, reqwest::Method::POST, &path, &h, body).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"]["code"], "not_a_reviewer", "{answer}");
    let bid = disputed.client.bid(disputed.bid.bid).await.unwrap();
    assert_eq!(bid.tasks[0].status, tally_protocol::wire::TaskState::Review);
    let ev = market.anonymous().evidence(disputed.bid.tasks[0]).await;
    assert!(ev.map_or(true, |e| e.reviews.is_empty()));
    market.finish().await;
}
both!(a_back_dated_review_after_revocation_is_refused);

/// (e) A withdrawal signed for one market and replayed byte for byte on
/// another is refused there (401): the signature names its market. A
/// request signed the old way (`tally-v1`) is refused with a message
/// saying the client is too old.
async fn signatures_hold_on_their_own_market_only(backend: Backend) {
    let first = spawn_market(backend).await;
    let second = spawn_market(backend).await;
    let who = Signer::generate();
    for m in [&first, &second] {
        m.client(&m.operator)
            .credit(who.account(), Stroops(1_000_000))
            .await
            .unwrap();
    }
    let body = br#"{"amount":500000}"#.to_vec();
    let h = who.sign(&first.domain(), "POST", "/v1/withdrawals", &body);
    let post = reqwest::Method::POST;
    let (status, answer) = send(
        &first.url,
        post.clone(),
        "/v1/withdrawals",
        &h,
        body.clone(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = send(
        &second.url,
        post.clone(),
        "/v1/withdrawals",
        &h,
        body.clone(),
    )
    .await;
    assert_eq!(status, 401, "{answer}");
    assert!(message(&answer).contains("signature"), "{answer}");
    let me = second.client(&who).account_me().await.unwrap();
    assert_eq!(
        me.balance,
        Stroops(1_000_000),
        "nothing left the second market"
    );

    // The old scheme, fresh nonce and time: refused, naming the version.
    let old = who.sign_v1_at(
        "POST",
        "/v1/withdrawals",
        &body,
        signing::now_ms(),
        &signing::fresh_nonce(),
    );
    let (status, answer) = send(&second.url, post, "/v1/withdrawals", &old, body).await;
    assert_eq!(status, 401, "{answer}");
    assert!(message(&answer).contains("tally-v1"), "{answer}");
    assert!(message(&answer).contains("too old"), "{answer}");
    first.finish().await;
    second.finish().await;
}
both!(signatures_hold_on_their_own_market_only);

/// The chunk types of a PNG, in order.
fn png_chunks(bytes: &[u8]) -> Vec<String> {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let mut at = 8;
    let mut kinds = Vec::new();
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        kinds.push(String::from_utf8_lossy(&bytes[at + 4..at + 8]).to_string());
        at += 12 + len;
    }
    assert_eq!(at, bytes.len(), "trailing bytes after the last chunk");
    kinds
}

/// A JPEG of `scene()` with an EXIF segment and a comment.
fn jpeg_with_metadata() -> Vec<u8> {
    let img = image::load_from_memory(&scene()).unwrap();
    let mut jpeg = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut jpeg),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    let exif = b"Exif\0\0MM\0*\0\0\0\x08\0\0camera serial 0042 gps 48.85N 2.35E";
    let mut app1 = vec![0xFF, 0xE1];
    app1.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
    app1.extend_from_slice(exif);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    // And a comment segment.
    with_comment(&out)
}

/// The same picture with a comment: a JPEG comment segment after the
/// start marker, or a PNG text chunk after the header.
fn with_comment(bytes: &[u8]) -> Vec<u8> {
    let text = b"a comment a client left in its file";
    if bytes.starts_with(&[0xFF, 0xD8]) {
        let mut out = bytes[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xFE]);
        out.extend_from_slice(&((text.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(text);
        out.extend_from_slice(&bytes[2..]);
        return out;
    }
    let crc32 = |data: &[u8]| {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    };
    let mut typed = b"tEXtComment\0".to_vec();
    typed.extend_from_slice(text);
    let mut out = bytes[..33].to_vec();
    out.extend_from_slice(&((typed.len() - 4) as u32).to_be_bytes());
    out.extend_from_slice(&typed);
    out.extend_from_slice(&crc32(&typed).to_be_bytes());
    out.extend_from_slice(&bytes[33..]);
    out
}

fn encoded(format: image::ImageFormat) -> Vec<u8> {
    let img = image::load_from_memory(&png(9)).unwrap();
    let img = if format == image::ImageFormat::WebP {
        image::DynamicImage::ImageRgba8(img.to_rgba8())
    } else {
        img
    };
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), format)
        .unwrap();
    out
}

/// (f) A worker looking at the bytes of client inputs uploaded as JPEG
/// with EXIF and a comment, PNG with text chunks, WebP and BMP sees only
/// the canonical encoding of their pixels: IHDR, IDAT, IEND, nothing else.
async fn workers_get_only_canonical_inputs(backend: Backend) {
    let market = spawn_market(backend).await;
    let (client, model) = market.client_with_model(100_000_000).await;
    let uploads = vec![
        jpeg_with_metadata(),
        with_comment(&png(8)),
        encoded(image::ImageFormat::WebP),
        encoded(image::ImageFormat::Bmp),
    ];
    assert!(png_chunks(&uploads[1]).contains(&"tEXt".to_string()));
    let created = client
        .bid_images(
            BidRequest {
                replicas: Some(1),
                quorum: Some(1),
                max_replicas: Some(1),
                ..bid_request(&model, 1_000)
            },
            &uploads,
        )
        .await
        .unwrap();
    assert_eq!(created.inputs.len(), uploads.len());
    let worker = market.worker(&model).await;
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen < uploads.len() {
        assert!(Instant::now() < deadline, "claimed only {seen} inputs");
        for a in worker.claim(8, 1_000).await.unwrap().assignments {
            let i = created
                .inputs
                .iter()
                .position(|h| h == &a.input)
                .expect("an input of the bid");
            let bytes = worker.input(&a.input).await.unwrap();
            assert_eq!(bytes, canonical(&uploads[i]), "input {i}");
            assert_eq!(tally_protocol::Sha256Hex::of(&bytes), a.input);
            let chunks = png_chunks(&bytes);
            assert!(
                chunks
                    .iter()
                    .all(|c| matches!(c.as_str(), "IHDR" | "IDAT" | "IEND")),
                "input {i}: {chunks:?}"
            );
            seen += 1;
            worker.submit_result(a.assignment, &honest()).await.unwrap();
        }
    }
    // The client reads back the same canonical bytes by the same names.
    for (i, h) in created.inputs.iter().enumerate() {
        assert_eq!(client.input(h).await.unwrap(), canonical(&uploads[i]));
    }
    market.finish().await;
}
both!(workers_get_only_canonical_inputs);

/// The typed client learns the market's network and operator by itself.
async fn the_typed_client_signs_for_the_market_it_talks_to(backend: Backend) {
    let market = spawn_market(backend).await;
    let c = Client::new(&market.url, Some(Signer::generate()));
    assert_eq!(c.domain().await.unwrap(), market.domain());
    assert_eq!(
        market.domain(),
        Domain::new(
            market.market.config.network.clone(),
            market.operator.account().clone()
        )
    );
    c.account_me().await.expect("a signed request passes");
    market.finish().await;
}
both!(the_typed_client_signs_for_the_market_it_talks_to);
