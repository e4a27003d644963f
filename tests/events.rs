//! Answers pushed instead of polled, over HTTP on SQLite and PostgreSQL: a
//! bid long-poll (`GET /v1/bids/{id}?wait_ms=N&seen=K`) answers when a task
//! is decided, not when its wait runs out; `GET /v1/events` streams each
//! decision and the bid's end as server-sent events.

mod common;

use common::*;
use tally_protocol::wire::{BidRequest, BidState, MarketEvent, TaskState};
use tally_protocol::Stroops;

/// The next `n` events of a server-sent event stream (each within 30 s).
async fn read_events(stream: &mut reqwest::Response, n: usize) -> Vec<MarketEvent> {
    let mut events = Vec::new();
    let mut buf = String::new();
    while events.len() < n {
        for data in sse_data(stream, &mut buf).await {
            events.push(serde_json::from_str(&data).unwrap());
        }
    }
    events
}

/// The event of `task` of `bid` verified.
fn verified(bid: tally_protocol::BidId, task: tally_protocol::TaskId) -> MarketEvent {
    MarketEvent::TaskDecided {
        bid,
        task,
        status: TaskState::Verified,
    }
}

async fn decisions_are_pushed(backend: Backend) {
    let market = spawn_market(backend).await;
    let (client, model) = market.client_with_model(1_000_000).await;
    let req = BidRequest {
        replicas: Some(1),
        quorum: Some(1),
        ..BidRequest::new(model.clone(), Stroops(1_000))
    };
    let bid = client.bid_images(req, &[png(1), png(2)]).await.unwrap();

    // The event stream, opened before anything is decided.
    let sse = reqwest::get(format!("{}/v1/events", market.url))
        .await
        .unwrap();
    assert_eq!(
        sse.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut body = sse;

    // A long-poll that knows no task decided: it waits (an answer now would
    // show 0 decided, and the status it returns is checked below).
    let waiter = {
        let c = client.clone();
        let id = bid.bid;
        tokio::spawn(async move { c.bid_wait(id, 0, 30_000).await.unwrap() })
    };
    let w = market.worker(&model).await;
    let got = w.claim(2, 5_000).await.unwrap().assignments;
    assert_eq!(got.len(), 2);
    w.submit_result(got[0].assignment, &honest()).await.unwrap();
    let status = waiter.await.unwrap();
    let decided = status
        .tasks
        .iter()
        .filter(|t| t.status == TaskState::Verified)
        .count();
    assert_eq!(decided, 1, "answered on the first decision");
    assert_eq!(status.status, BidState::Open);
    // Already past what the caller saw: answered at once.
    let now = client.bid_wait(bid.bid, 0, 30_000).await.unwrap();
    assert_eq!(now.tasks.iter().filter(|t| t.status.is_final()).count(), 1);

    w.submit_result(got[1].assignment, &honest()).await.unwrap();
    let done = client.bid_wait(bid.bid, 1, 30_000).await.unwrap();
    assert_eq!(done.status, BidState::Done);

    // The stream told both decisions and the bid's end, in order.
    let events = read_events(&mut body, 3).await;
    assert_eq!(
        events,
        vec![
            verified(bid.bid, got[0].task),
            verified(bid.bid, got[1].task),
            MarketEvent::BidDone { bid: bid.bid },
        ]
    );
    market.finish().await;
}
both!(decisions_are_pushed);

/// Several market processes on one PostgreSQL database: what one decides
/// is pushed to the listeners and long polls of the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_hears_the_decisions() {
    let Some((first, second)) = two_markets_on_postgres().await else {
        return;
    };
    let (client, model) = first.client_with_model(1_000_000).await;
    let req = BidRequest {
        replicas: Some(1),
        quorum: Some(1),
        ..BidRequest::new(model.clone(), Stroops(1_000))
    };
    let bid = client.bid_images(req, &[png(3)]).await.unwrap();
    let mut sse = reqwest::get(format!("{}/v1/events", second.url))
        .await
        .unwrap();
    // A long poll on the second process, for a bid decided in the first.
    let on_second = second.client(client.signer().unwrap());
    let waiter = tokio::spawn(async move { on_second.bid_wait(bid.bid, 0, 60_000).await.unwrap() });
    let w = first.worker(&model).await;
    let got = w.claim(1, 5_000).await.unwrap().assignments;
    w.submit_result(got[0].assignment, &honest()).await.unwrap();
    // Pushed: well before the poll's 60 s.
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), waiter)
        .await
        .expect("the other process's decision was pushed")
        .unwrap();
    assert_eq!(status.status, BidState::Done);
    let events = read_events(&mut sse, 2).await;
    assert_eq!(
        events,
        vec![
            verified(bid.bid, got[0].task),
            MarketEvent::BidDone { bid: bid.bid },
        ]
    );
    second.finish().await;
    first.finish().await;
}
