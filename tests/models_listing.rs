//! `GET /v1/models`: what the market hosts, for anyone, oldest upload first;
//! on SQLite and on PostgreSQL.

mod common;

use std::time::Duration;

use common::*;
use tally_protocol::wire::HostedModel;
use tally_protocol::Signer;

/// A real ONNX model: the sample model the repository ships.
fn sample_model() -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join(tally::assets::MODEL_FILE);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The list as JSON, fetched without the typed client.
async fn raw_list(market: &TestMarket) -> serde_json::Value {
    let url = format!("{}/v1/models", market.url);
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

async fn an_empty_market_lists_no_models(backend: Backend) {
    let market = spawn_market(backend).await;
    assert!(market.anonymous().models().await.unwrap().models.is_empty());
    assert_eq!(raw_list(&market).await, serde_json::json!({ "models": [] }));
    market.finish().await;
}
both!(an_empty_market_lists_no_models);

async fn uploaded_models_are_listed_once_each_in_upload_order(backend: Backend) {
    let market = spawn_market(backend).await;
    let client = market.client(&Signer::generate());
    let sample = sample_model();
    let first = client.upload_model(sample.clone()).await.unwrap().model;
    // Upload times are kept to the millisecond.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = model(&client).await;
    let second_bytes = client.model(&second).await.unwrap().len() as u64;
    let want = vec![
        HostedModel {
            model: first.clone(),
            bytes: sample.len() as u64,
        },
        HostedModel {
            model: second.clone(),
            bytes: second_bytes,
        },
    ];
    // Anyone may read the list; no signature needed.
    let anyone = market.anonymous();
    assert_eq!(anyone.models().await.unwrap().models, want);

    // The same bytes again, from someone else: no second entry, no new place.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let other = market.client(&Signer::generate());
    assert_eq!(other.upload_model(sample).await.unwrap().model, first);
    assert_eq!(anyone.models().await.unwrap().models, want);

    // The field names are the contract's.
    let raw = raw_list(&market).await;
    assert_eq!(raw["models"][0]["model"], first.as_str());
    assert_eq!(raw["models"][0]["bytes"], 3_713_911);
    assert_eq!(raw["models"][1]["model"], second.as_str());
    assert_eq!(raw["models"].as_array().unwrap().len(), 2);
    market.finish().await;
}
both!(uploaded_models_are_listed_once_each_in_upload_order);
