//! The web console: a single page (`GET /`) and its stylesheet and ES
//! modules (`GET /console/{file}`), compiled into the binary. Vanilla JS with hash
//! routes (`#/`, `#/tasks/{id}`, `#/settlements`, `#/workers/{G...}`,
//! `#/bids/{id}`, `#/review`) over the public v1 API; a bid's private data
//! is fetched, and a verified reviewer's reviews are fetched and answered,
//! with requests the page signs in the browser (WebCrypto Ed25519) from a
//! seed the user pastes: the key stays in the page's memory, never sent or
//! stored.
//!
//! Served with a strict Content-Security-Policy: scripts, styles and
//! connections from this origin only, no inline code, no framing.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::MarketError;
use crate::Market;

/// Every file of the console: name, content type, text.
const FILES: &[(&str, &str, &str)] = &[
    ("index.html", HTML, include_str!("../../console/index.html")),
    (
        "console.css",
        CSS,
        include_str!("../../console/console.css"),
    ),
    ("console.js", JS, include_str!("../../console/console.js")),
    ("util.js", JS, include_str!("../../console/util.js")),
    ("keys.js", JS, include_str!("../../console/keys.js")),
    ("draw.js", JS, include_str!("../../console/draw.js")),
    ("market.js", JS, include_str!("../../console/market.js")),
    ("evidence.js", JS, include_str!("../../console/evidence.js")),
    ("chain.js", JS, include_str!("../../console/chain.js")),
    ("bid.js", JS, include_str!("../../console/bid.js")),
    ("review.js", JS, include_str!("../../console/review.js")),
];
const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Self only. `img-src` allows `blob:` and `data:` for images the page
/// decodes itself; links to the public explorer are navigation, which
/// `default-src` does not govern.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' blob: data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// `GET /` and `GET /console/{file}`.
pub fn routes() -> Router<Arc<Market>> {
    Router::new()
        .route("/", get(|| async { asset("index.html") }))
        .route("/console/{file}", get(console_file))
}

async fn console_file(Path(file): Path<String>) -> Response {
    asset(&file)
}

fn asset(file: &str) -> Response {
    let Some(&(_, content_type, body)) = FILES.iter().find(|(name, _, _)| *name == file) else {
        return MarketError::NotFound(format!("no console file {file:?}")).into_response();
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
