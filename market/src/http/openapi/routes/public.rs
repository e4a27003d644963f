//! What anyone may read: task evidence, settlement records, market
//! statistics, worker records, the self-audit and the event stream.

use tally_protocol::wire::*;
use tally_protocol::{AccountId, TaskId};

use super::{count, of, path, query, Answer, Auth, Op};

/// The operations of this group, in the order of the router.
#[rustfmt::skip]
pub(super) const OPS: &[Op] = &[
    Op::get("/v1/tasks/{id}/evidence", "audit", Auth::Public, Answer::Json(of::<Evidence>)).params(&[path("id", of::<TaskId>, "The task.")]).errors(&[400, 404])
        .about("A decided task's evidence", "Every signed result, the vote parameters and the verdict, so anyone can \
            re-run the vote. 404 until the task is decided."),
    Op::get("/v1/settlements", "audit", Auth::Public, Answer::Json(of::<SettlementPage>)).params(&[query("after", count, "Only records with a greater `seq` (default 0)."), query("limit", count, "At most this many records (1 to 1000, default 1000).")]).errors(&[400])
        .about("Settlement records", "The hash-chained settlement records after `after`, oldest first."),
    Op::get("/v1/market", "market", Auth::Public, Answer::Json(of::<MarketStats>))
        .about("Market statistics", "Task counts, price levels, workers online, recent clearing prices, fees."),
    Op::get("/v1/workers/{account}", "market", Auth::Public, Answer::Json(of::<WorkerRecord>)).params(&[path("account", of::<AccountId>, "The worker's Stellar account (G...).")]).errors(&[400])
        .about("A worker's public record", "Spot checks, credibility, results decided and paid total, with the last 7 days hour by hour (UTC; ended hours only, so the record never dates a single check)."),
    Op::get("/v1/audit", "market", Auth::Public, Answer::Json(of::<SelfAudit>)).errors(&[404])
        .about("The market's own audit", "The last report of the checks of `tally audit`, run by the market \
            against its own API every `--audit-every-secs`; 404 until the first run."),
    Op::get("/v1/events", "market", Auth::Public, Answer::Events(of::<MarketEvent>))
        .about("Event stream", "Server-sent events: each `data:` line is one JSON `MarketEvent`. A frame \
            with `event: lagged` carries the number of events this listener missed."),
];
