//! A typed async HTTP client for the v1 API, used by the CLI, the worker,
//! the auditor and the tests. Signs every request when it holds a key, for
//! the market it talks to: the network and operator a signature is bound to
//! ([`Domain`]) are read once from `GET /v1/market`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ids::{AssignmentId, BidId, Sha256Hex, TaskId};
use crate::signing::{self, Domain, Signer};
use crate::wire::*;
use crate::{AccountId, Error, Stroops};

/// A connection to one market.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    signer: Option<Signer>,
    /// The market's network and operator, once known (shared by clones).
    domain: Arc<OnceLock<Domain>>,
}

impl Client {
    /// A client for the market at `base` (`http://host:port`; a bare
    /// `host:port` is taken as `http://host:port`), signing with `signer`.
    pub fn new(base: &str, signer: Option<Signer>) -> Self {
        let base = market_url(base);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(64)
            .build()
            .expect("the HTTP client builds");
        Client {
            base,
            http,
            signer,
            domain: Arc::default(),
        }
    }

    /// A client that signs for `domain` without asking the market for it.
    pub fn with_domain(self, domain: Domain) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(domain);
        Client {
            domain: Arc::new(cell),
            ..self
        }
    }

    /// The market's network and operator, which every signature names:
    /// asked of `GET /v1/market` the first time, then remembered.
    pub async fn domain(&self) -> Result<Domain, Error> {
        if let Some(d) = self.domain.get() {
            return Ok(d.clone());
        }
        let resp = self
            .http
            .get(format!("{}/v1/market", self.base))
            .timeout(Duration::from_secs(30))
            .send()
            .await?;
        let stats: MarketStats = check(resp).await?.json().await?;
        let d = Domain::new(stats.network, stats.operator);
        let _ = self.domain.set(d.clone());
        Ok(d)
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn signer(&self) -> Option<&Signer> {
        self.signer.as_ref()
    }

    /// The same market, another key.
    pub fn with_signer(&self, signer: Signer) -> Self {
        Client {
            base: self.base.clone(),
            http: self.http.clone(),
            signer: Some(signer),
            domain: Arc::clone(&self.domain),
        }
    }

    /// Send `body` to `path` (which may carry a query), signed if we hold a key.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, Error> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{}", self.base, path))
            .header(reqwest::header::CONTENT_TYPE, content_type);
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        if let Some(s) = &self.signer {
            let h = s.sign(&self.domain().await?, method.as_str(), path, &body);
            req = req
                .header(signing::HEADER_ACCOUNT, h.account.as_str())
                .header(signing::HEADER_TIMESTAMP, h.timestamp_ms.to_string())
                .header(signing::HEADER_NONCE, h.nonce)
                .header(signing::HEADER_SIGNATURE, h.signature);
        }
        let resp = req.body(body).send().await?;
        check(resp).await
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, Error> {
        let bytes = match body {
            Some(b) => serde_json::to_vec(b)?,
            None => Vec::new(),
        };
        let resp = self
            .send_raw(method, path, bytes, "application/json", None)
            .await?;
        Ok(resp.json().await?)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        self.json(Method::GET, path, None::<&()>).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, Error> {
        self.json(Method::POST, path, Some(body)).await
    }

    /// The raw bytes a GET of `path` answers (models, inputs).
    async fn bytes(&self, path: &str) -> Result<Vec<u8>, Error> {
        let resp = self
            .send_raw(Method::GET, path, Vec::new(), "application/json", None)
            .await?;
        Ok(resp.bytes().await?.to_vec())
    }

    /// A long poll: the market may hold it `wait_ms`, so the HTTP timeout
    /// allows for the wait and 30 s more.
    async fn long_poll(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        wait_ms: u64,
    ) -> Result<reqwest::Response, Error> {
        let timeout = Duration::from_millis(wait_ms) + Duration::from_secs(30);
        self.send_raw(method, path, body, "application/json", Some(timeout))
            .await
    }

    pub async fn healthz(&self) -> Result<(), Error> {
        self.send_raw(
            Method::GET,
            "/healthz",
            Vec::new(),
            "text/plain",
            Some(Duration::from_secs(5)),
        )
        .await
        .map(|_| ())
    }

    pub async fn upload_model(&self, bytes: Vec<u8>) -> Result<ModelUploaded, Error> {
        let resp = self
            .send_raw(
                Method::POST,
                "/v1/models",
                bytes,
                "application/octet-stream",
                None,
            )
            .await?;
        Ok(resp.json().await?)
    }

    /// Every model the market hosts, oldest upload first.
    pub async fn models(&self) -> Result<ModelList, Error> {
        self.get("/v1/models").await
    }

    pub async fn model(&self, hash: &Sha256Hex) -> Result<Vec<u8>, Error> {
        self.bytes(&format!("/v1/models/{hash}")).await
    }

    pub async fn post_offer(&self, offer: &OfferRequest) -> Result<Offer, Error> {
        self.post("/v1/offers", offer).await
    }

    pub async fn post_bid(&self, bid: &BidRequest) -> Result<BidCreated, Error> {
        self.post("/v1/bids", bid).await
    }

    /// Build and post a bid for raw image bytes.
    pub async fn bid_images(
        &self,
        template: BidRequest,
        images: &[Vec<u8>],
    ) -> Result<BidCreated, Error> {
        let inputs = images
            .iter()
            .map(|b| base64::engine::general_purpose::STANDARD.encode(b))
            .collect();
        self.post_bid(&BidRequest { inputs, ..template }).await
    }

    pub async fn bid(&self, id: BidId) -> Result<BidStatus, Error> {
        self.get(&format!("/v1/bids/{id}")).await
    }

    /// The bid's status as soon as it differs from `seen` decided tasks (or
    /// is done), waiting at most `wait_ms`: pushed, not polled.
    pub async fn bid_wait(&self, id: BidId, seen: usize, wait_ms: u64) -> Result<BidStatus, Error> {
        let path = format!("/v1/bids/{id}?wait_ms={wait_ms}&seen={seen}");
        let resp = self
            .long_poll(Method::GET, &path, Vec::new(), wait_ms)
            .await?;
        Ok(resp.json().await?)
    }

    /// Long-poll for work; the HTTP timeout allows for the wait.
    pub async fn claim(&self, max_tasks: u32, wait_ms: u64) -> Result<Claimed, Error> {
        let body = serde_json::to_vec(&ClaimRequest { max_tasks, wait_ms })?;
        let resp = self
            .long_poll(Method::POST, "/v1/claims", body, wait_ms)
            .await?;
        Ok(resp.json().await?)
    }

    pub async fn input(&self, hash: &Sha256Hex) -> Result<Vec<u8>, Error> {
        self.bytes(&format!("/v1/inputs/{hash}")).await
    }

    pub async fn heartbeat(&self, id: AssignmentId) -> Result<Lease, Error> {
        self.post(
            &format!("/v1/assignments/{id}/heartbeat"),
            &serde_json::json!({}),
        )
        .await
    }

    pub async fn submit_result(
        &self,
        id: AssignmentId,
        result: &ResultRequest,
    ) -> Result<AssignmentOutcome, Error> {
        self.post(&format!("/v1/assignments/{id}/result"), result)
            .await
    }

    pub async fn report_failure(
        &self,
        id: AssignmentId,
        reason: &str,
    ) -> Result<AssignmentOutcome, Error> {
        self.post(
            &format!("/v1/assignments/{id}/failure"),
            &FailureRequest {
                reason: reason.to_string(),
            },
        )
        .await
    }

    pub async fn evidence(&self, task: TaskId) -> Result<Evidence, Error> {
        self.get(&format!("/v1/tasks/{task}/evidence")).await
    }

    pub async fn settlements(&self, after: u64) -> Result<SettlementPage, Error> {
        self.get(&format!("/v1/settlements?after={after}")).await
    }

    pub async fn market(&self) -> Result<MarketStats, Error> {
        self.get("/v1/market").await
    }

    /// A worker's public record, hour by hour (`GET /v1/workers/{account}`).
    pub async fn worker_record(&self, worker: &AccountId) -> Result<WorkerRecord, Error> {
        self.get(&format!("/v1/workers/{worker}")).await
    }

    pub async fn account_me(&self) -> Result<AccountView, Error> {
        self.get("/v1/accounts/me").await
    }

    /// Ask for `amount` of the available balance to be paid out (signed).
    pub async fn withdraw(&self, amount: Stroops) -> Result<Withdrawal, Error> {
        self.post("/v1/withdrawals", &WithdrawalRequest { amount })
            .await
    }

    /// This account's withdrawals (signed).
    pub async fn withdrawals(&self) -> Result<WithdrawalPage, Error> {
        self.get("/v1/withdrawals").await
    }

    /// A withdrawal's signed request, for auditors (public).
    pub async fn withdrawal_evidence(&self, id: i64) -> Result<WithdrawalEvidence, Error> {
        self.get(&format!("/v1/withdrawals/{id}/evidence")).await
    }

    /// Every account's books (the operator's key).
    pub async fn admin_accounts(&self) -> Result<AdminAccounts, Error> {
        self.get("/v1/admin/accounts").await
    }

    /// Every worker, with its standing and pay (the operator's key).
    pub async fn admin_workers(&self) -> Result<AdminWorkers, Error> {
        self.get("/v1/admin/workers").await
    }

    /// The newest bids (the operator's key).
    pub async fn admin_bids(&self) -> Result<AdminBids, Error> {
        self.get("/v1/admin/bids").await
    }

    /// The deposits credited to this account or sent from it (signed).
    pub async fn deposits(&self) -> Result<DepositPage, Error> {
        self.get("/v1/deposits").await
    }

    pub async fn credit(&self, account: &AccountId, amount: Stroops) -> Result<AccountView, Error> {
        self.post(
            "/v1/admin/credits",
            &CreditRequest {
                account: account.clone(),
                amount,
            },
        )
        .await
    }
}

impl Client {
    /// The next task to review (a verified reviewer's key), or `None` when
    /// nothing waits for this reviewer (204).
    pub async fn next_review(&self) -> Result<Option<ReviewTicket>, Error> {
        self.next_review_wait(0).await
    }

    /// [`Client::next_review`], waiting up to `wait_ms` (at most 60 s) for
    /// a task to want this reviewer.
    pub async fn next_review_wait(&self, wait_ms: u64) -> Result<Option<ReviewTicket>, Error> {
        let path = if wait_ms == 0 {
            "/v1/reviews/next".to_string()
        } else {
            format!("/v1/reviews/next?wait_ms={wait_ms}")
        };
        let resp = self
            .long_poll(Method::GET, &path, Vec::new(), wait_ms)
            .await?;
        if resp.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        Ok(Some(resp.json().await?))
    }

    /// Answer a review (the reviewer's key signs it: it is evidence).
    pub async fn submit_review(
        &self,
        id: AssignmentId,
        review: &ReviewRequest,
    ) -> Result<ReviewOutcome, Error> {
        self.post(&format!("/v1/reviews/{id}"), review).await
    }

    /// Mark an account verified to review, or take the mark back (the
    /// operator's key; the signed request is the public record).
    pub async fn mark_reviewer(
        &self,
        account: &AccountId,
        verified: bool,
    ) -> Result<ReviewerMark, Error> {
        self.post(
            ReviewerMark::PATH,
            &ReviewerMarkRequest {
                account: account.clone(),
                verified,
            },
        )
        .await
    }

    /// Every reviewer mark, oldest first (public).
    pub async fn reviewer_marks(&self) -> Result<ReviewerMarks, Error> {
        self.get("/v1/reviewers").await
    }
}

/// Turn a non-2xx answer into [`Error::Api`] with the market's code and message.
async fn check(resp: reqwest::Response) -> Result<reqwest::Response, Error> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let text = resp.text().await.unwrap_or_default();
    let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
        Ok(b) => (b.error.code, b.error.message),
        Err(_) => (
            status
                .canonical_reason()
                .unwrap_or("error")
                .to_lowercase()
                .replace(' ', "_"),
            text.chars().take(200).collect(),
        ),
    };
    Err(Error::Api {
        status: status.as_u16(),
        code,
        message,
    })
}

impl Error {
    /// The HTTP status when the market refused the request.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api { status, .. } => StatusCode::from_u16(*status).ok(),
            _ => None,
        }
    }
}

/// A market's base URL as given on a command line: without a scheme
/// (`127.0.0.1:8080`, `market.example:8080`) it is plain `http://`, the
/// way `tally serve --listen` serves; no trailing slash.
pub fn market_url(base: &str) -> String {
    let base = base.trim().trim_end_matches('/');
    if base.contains("://") {
        base.to_string()
    } else {
        format!("http://{base}")
    }
}

#[cfg(test)]
mod url_tests {
    use super::market_url;

    #[test]
    fn a_bare_host_and_port_is_plain_http() {
        assert_eq!(market_url("127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(market_url("http://m:1/"), "http://m:1");
        assert_eq!(market_url("https://m.example"), "https://m.example");
    }
}
