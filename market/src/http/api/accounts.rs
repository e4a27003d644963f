//! Accounts: the caller's view, deposits and withdrawals, and the
//! operator's views of every account, worker and bid, and its credits.

use axum::extract::{Path, State};
use axum::Json;
use tally_protocol::wire::*;

use crate::auth::{require_operator, Signed, SignedWrite};
use crate::error::{MarketError, Result};
use crate::{ledger, views};

use super::{id, S};
pub(super) async fn account_me(State(m): S, s: Signed) -> Result<Json<AccountView>> {
    Ok(Json(views::account_view(&m, s.account()).await?))
}

pub(super) async fn deposits(State(m): S, s: Signed) -> Result<Json<DepositPage>> {
    Ok(Json(crate::deposits::list(&m, s.account()).await?))
}

pub(super) async fn withdraw(State(m): S, SignedWrite(s): SignedWrite) -> Result<Json<Withdrawal>> {
    let req: WithdrawalRequest = s.json()?;
    Ok(Json(
        crate::withdrawals::request(&m, &s.headers, &s.body, &req).await?,
    ))
}

pub(super) async fn withdrawals(State(m): S, s: Signed) -> Result<Json<WithdrawalPage>> {
    Ok(Json(crate::withdrawals::list(&m, s.account()).await?))
}

pub(super) async fn withdrawal_evidence(
    State(m): S,
    Path(raw): Path<String>,
) -> Result<Json<WithdrawalEvidence>> {
    Ok(Json(
        crate::withdrawals::evidence(&m, id::<i64>(&raw, "withdrawal")?).await?,
    ))
}

pub(super) async fn admin_accounts(State(m): S, s: Signed) -> Result<Json<AdminAccounts>> {
    require_operator(&m, &s)?;
    Ok(Json(crate::admin::accounts(&m).await?))
}

pub(super) async fn admin_workers(State(m): S, s: Signed) -> Result<Json<AdminWorkers>> {
    require_operator(&m, &s)?;
    Ok(Json(crate::admin::workers(&m).await?))
}

pub(super) async fn admin_bids(State(m): S, s: Signed) -> Result<Json<AdminBids>> {
    require_operator(&m, &s)?;
    Ok(Json(crate::admin::bids(&m).await?))
}

pub(super) async fn admin_credit(State(m): S, s: Signed) -> Result<Json<AccountView>> {
    require_operator(&m, &s)?;
    let req: CreditRequest = s.json()?;
    if req.amount.0 <= 0 {
        return Err(MarketError::bad(
            "bad_amount",
            "amount must be a positive number of stroops",
        ));
    }
    let (db, req) = (&m.db, &req);
    db.retrying("credit", move || async move {
        let mut tx = db.begin().await?;
        ledger::credit(&mut tx, &req.account, req.amount).await?;
        tx.commit().await
    })
    .await?;
    Ok(Json(views::account_view(&m, &req.account).await?))
}
