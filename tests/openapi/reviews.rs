//! The review endpoints against the document: a task two workers disagree
//! on goes to review; the operator marks a reviewer; the queue, an answer,
//! the marks, and their refusals.

use serde_json::json;
use tally_protocol::Signer;

use crate::check::Api;
use crate::common::*;

pub async fn exercise_reviews(api: &mut Api, market: &TestMarket) {
    let operator = market.operator.clone();
    // Every earlier bid is done: the disputed task is the only one open.
    market
        .disputed(png(42), 1_000, 5_000, [honest(), wrong()])
        .await;

    let reviewer = Signer::generate();
    let e = api
        .get(Some(&reviewer), "/v1/reviews/next", "/v1/reviews/next", 403)
        .await;
    assert_eq!(e["error"]["code"], "not_a_reviewer");
    let mark = json!({ "account": reviewer.account(), "verified": true });
    let e = api
        .post_to(&reviewer, "/v1/admin/reviewers", mark.clone(), 403)
        .await;
    assert_eq!(e["error"]["code"], "forbidden");
    api.post_to(
        &operator,
        "/v1/admin/reviewers",
        json!({ "account": reviewer.account(), "verified": "yes" }),
        400,
    )
    .await;
    api.post_to(&operator, "/v1/admin/reviewers", mark, 200)
        .await;
    api.get(None, "/v1/reviewers", "/v1/reviewers", 200).await;

    let ticket = api
        .get(Some(&reviewer), "/v1/reviews/next", "/v1/reviews/next", 200)
        .await;
    let path = format!("/v1/reviews/{}", ticket["review"]);
    let pick = ticket["candidates"][0]["detections"].clone();
    api.post(
        &reviewer,
        "/v1/reviews/{id}",
        &path,
        Some(json!({ "detections": pick, "extra": 1 })),
        400,
    )
    .await;
    api.post(
        &reviewer,
        "/v1/reviews/{id}",
        "/v1/reviews/999999",
        Some(json!({ "detections": [] })),
        404,
    )
    .await;
    let outcome = api
        .post(
            &reviewer,
            "/v1/reviews/{id}",
            &path,
            Some(json!({ "detections": pick })),
            200,
        )
        .await;
    assert_eq!(outcome["task_status"], "review");
    api.post(
        &reviewer,
        "/v1/reviews/{id}",
        &path,
        Some(json!({ "detections": pick })),
        409,
    )
    .await;
    let none = api
        .call(
            Some(&reviewer),
            "get",
            "/v1/reviews/next",
            "/v1/reviews/next",
            vec![],
        )
        .await;
    assert_eq!(none.status, 204, "nothing else waits for this reviewer");
}
