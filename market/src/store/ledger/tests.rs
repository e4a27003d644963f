//! The ledger's rules checked without a server: credits that would
//! overflow, and postings against a real SQLite store.

mod credit_tests {
    use super::super::*;

    #[test]
    fn a_credit_that_would_overflow_a_balance_does_not_fit() {
        assert!(credit_fits(Stroops(0), Stroops(0), Stroops(i64::MAX)));
        assert!(!credit_fits(
            Stroops(-i64::MAX),
            Stroops(i64::MAX),
            Stroops(1)
        ));
        assert!(!credit_fits(Stroops(0), Stroops(1), Stroops(i64::MAX)));
        assert!(!credit_fits(Stroops(i64::MIN + 5), Stroops(0), Stroops(6)));
        assert!(credit_fits(Stroops(-10), Stroops(10), Stroops(5)));
    }
}

/// The ledger's rules on a real database (an SQLite file), no server.
mod posting_tests {
    use super::super::*;

    async fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
        (dir, Db::connect(&url).await.unwrap())
    }

    fn someone() -> AccountId {
        "GBRPYHIL2CI3FNQ4BXLFMNDLFJUNPU2HY3ZMFSHONUCEOASW7QC7OX2H"
            .parse()
            .unwrap()
    }

    #[tokio::test]
    async fn a_credit_moves_money_in_and_the_books_balance() {
        let (_dir, db) = db().await;
        let who = someone();
        let mut tx = db.begin().await.unwrap();
        credit(&mut tx, &who, Stroops(500)).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            balance(&db, Book::Available, who.as_str()).await.unwrap(),
            Stroops(500)
        );
        assert_eq!(
            balance(&db, Book::External, who.as_str()).await.unwrap(),
            Stroops(-500)
        );
        assert_eq!(check_invariants(&db).await.unwrap(), vec![]);
    }

    #[tokio::test]
    async fn a_posting_that_does_not_balance_or_overdraws_is_refused() {
        let (_dir, db) = db().await;
        let who = someone();
        let leg = |book, amount| Leg {
            book,
            owner: who.as_str(),
            amount,
        };
        let mut tx = db.begin().await.unwrap();
        let unbalanced = post(
            &mut tx,
            Posting::Earn,
            Cause::default(),
            &[leg(Book::Available, 10), leg(Book::Earned, -9)],
        )
        .await;
        assert!(
            matches!(unbalanced, Err(MarketError::Corrupt(_))),
            "{unbalanced:?}"
        );
        // Available may not go negative: nothing was credited.
        let overdrawn = post(
            &mut tx,
            Posting::Reserve,
            Cause::default(),
            &[leg(Book::Available, -10), leg(Book::Reserved, 10)],
        )
        .await;
        assert!(
            matches!(overdrawn, Err(MarketError::InsufficientFunds(_))),
            "{overdrawn:?}"
        );
        drop(tx);
        assert_eq!(check_invariants(&db).await.unwrap(), vec![]);
    }

    #[test]
    fn posting_kinds_are_named_once_each() {
        let all = [
            Posting::Deposit,
            Posting::Reserve,
            Posting::Refund,
            Posting::Earn,
            Posting::CheckFund,
            Posting::Withdraw,
            Posting::Settle,
            Posting::Unsettle,
            Posting::Revise,
            Posting::Forfeit,
        ];
        let names: std::collections::BTreeSet<&str> = all.iter().map(|p| p.as_str()).collect();
        assert_eq!(names.len(), all.len());
        assert_eq!(Posting::CheckFund.to_string(), "check_fund");
    }
}
