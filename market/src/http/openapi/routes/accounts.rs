//! The caller's account: balances, deposits and withdrawals.

use tally_protocol::wire::*;

use super::{of, path, withdrawal_id, Answer, Auth, Body, Op};

/// The operations of this group, in the order of the router.
#[rustfmt::skip]
pub(super) const OPS: &[Op] = &[
    Op::get("/v1/accounts/me", "accounts", Auth::Signed, Answer::Json(of::<AccountView>)).errors(&[401, 409])
        .about("The caller's account", "Balances, earnings, reputation and where to deposit."),
    Op::get("/v1/deposits", "accounts", Auth::Signed, Answer::Json(of::<DepositPage>)).errors(&[401, 409])
        .about("The caller's deposits", "Payments into the operator's account credited to the caller or sent \
            from it, newest first."),
    Op::get("/v1/withdrawals", "accounts", Auth::Signed, Answer::Json(of::<WithdrawalPage>)).errors(&[401, 409])
        .about("The caller's withdrawals", "Newest first."),
    Op::post("/v1/withdrawals", "accounts", Auth::Signed, Answer::Json(of::<Withdrawal>)).body(Body::Json(of::<WithdrawalRequest>)).errors(&[400, 401, 402, 409, 413])
        .about("Withdraw", "Moves `amount` of the available balance out to the caller's own account \
            on the network, paid by the next settlement record."),
    Op::get("/v1/withdrawals/{id}/evidence", "audit", Auth::Public, Answer::Json(of::<WithdrawalEvidence>)).params(&[path("id", withdrawal_id, "The withdrawal.")]).errors(&[400, 404])
        .about("A withdrawal's signed request", "The request exactly as its account signed it, for auditors."),
];
