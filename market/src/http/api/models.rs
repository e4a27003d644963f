//! Hosted models: the list, uploads (admitted before they are stored) and
//! downloads (admitted again).

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tally_protocol::wire::*;
use tally_protocol::Sha256Hex;

use crate::auth::Signed;
use crate::db::query;
use crate::error::{MarketError, Result};
use crate::{now_ms, views};

use super::{hash, S};
pub(super) async fn upload_model(State(m): S, s: Signed) -> Result<Json<ModelUploaded>> {
    if s.body.is_empty() {
        return Err(MarketError::bad(
            "empty_model",
            "the model is the raw ONNX bytes of the body",
        ));
    }
    // Admission: a model no worker may run (external data, foreign
    // operators, not a YOLOX detector, ...) is refused, 422 with the rule's
    // code and a sentence naming the problem, and never stored.
    let policy = tally_model::Policy {
        max_bytes: m.config.limits.max_model_bytes,
        ..tally_model::Policy::default()
    };
    if let Err(refusal) = tally_model::admit(&s.body, &policy) {
        tracing::info!(account = %s.account(), code = refusal.code(), "model refused: {refusal}");
        return Err(MarketError::unprocessable(
            refusal.code(),
            refusal.to_string(),
        ));
    }
    let h = Sha256Hex::of(&s.body);
    let (m, s, h) = (&m, &s, &h);
    m.db
        .retrying("model upload", move || async move {
            let mut tx = m.db.begin().await?;
            query(
                "INSERT INTO models (hash, bytes, size, uploaded_by, created_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (hash) DO NOTHING",
            )
            .bind(h.as_str())
            .bind(s.body.as_ref())
            .bind(s.body.len() as i64)
            .bind(s.account().as_str())
            .bind(now_ms())
            .execute(&mut tx)
            .await?;
            tx.commit().await
        })
        .await?;
    Ok(Json(ModelUploaded {
        model: h.clone(),
        size: s.body.len() as u64,
    }))
}

pub(super) async fn download_model(State(m): S, Path(raw): Path<String>) -> Result<Response> {
    let h = hash(&raw)?;
    let row = query("SELECT bytes FROM models WHERE hash = $1")
        .bind(h.as_str())
        .fetch_optional(&m.db)
        .await?
        .ok_or_else(|| MarketError::NotFound(format!("no model {h}")))?;
    let bytes: Vec<u8> = row.try_get("bytes")?;
    // A model stored before admission existed is admitted here too: no
    // worker is ever handed one that fails it.
    let policy = tally_model::Policy {
        max_bytes: usize::MAX,
        ..tally_model::Policy::default()
    };
    let bytes =
        tokio::task::spawn_blocking(move || tally_model::admit(&bytes, &policy).map(|_| bytes))
            .await
            .map_err(|e| MarketError::Corrupt(format!("admission panicked: {e}")))?
            .map_err(|refusal| {
                MarketError::unprocessable(
                    refusal.code(),
                    format!("model {h} was stored before admission and fails it: {refusal}"),
                )
            })?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

pub(super) async fn list_models(State(m): S) -> Result<Json<ModelList>> {
    Ok(Json(views::models(&m).await?))
}
