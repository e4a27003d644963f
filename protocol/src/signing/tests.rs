use super::*;

fn domain() -> Domain {
    Domain::new(
        "Test SDF Network ; September 2015",
        Signer::from_seed([7; 32]).account().clone(),
    )
}

#[test]
fn message_layout_is_exact() {
    let d = domain();
    let m = message(
        &d,
        "post",
        "/v1/bids?x=1",
        1_700_000_000_000,
        "00112233445566778899aabbccddeeff",
        b"",
    );
    assert_eq!(
        m,
        format!(
            "tally-v2\nTest SDF Network ; September 2015\n{}\nPOST\n/v1/bids?x=1\n1700000000000\n\
             00112233445566778899aabbccddeeff\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            d.operator
        )
    );
}

#[test]
fn signatures_verify_and_tampering_is_caught() {
    let d = domain();
    let s = Signer::from_seed([9; 32]);
    let h = s.sign(&d, "POST", "/v1/bids", b"{}");
    h.verify(&d, "POST", "/v1/bids", b"{}").unwrap();
    assert!(h.verify(&d, "POST", "/v1/bids", b"{ }").is_err());
    assert!(h.verify(&d, "GET", "/v1/bids", b"{}").is_err());
    assert!(h.verify(&d, "POST", "/v1/bids?a", b"{}").is_err());
    let other = Signer::from_seed([8; 32]);
    let forged = SignedHeaders {
        account: other.account().clone(),
        ..h.clone()
    };
    assert!(forged.verify(&d, "POST", "/v1/bids", b"{}").is_err());
}

#[test]
fn a_signature_holds_on_its_own_market_only() {
    let d = domain();
    let h = Signer::from_seed([9; 32]).sign(&d, "POST", "/v1/withdrawals", b"{}");
    let other_network = Domain::new(
        "Public Global Stellar Network ; September 2015",
        d.operator.clone(),
    );
    let other_operator = Domain::new(
        d.network.clone(),
        Signer::from_seed([6; 32]).account().clone(),
    );
    for elsewhere in [other_network, other_operator] {
        assert!(matches!(
            h.verify(&elsewhere, "POST", "/v1/withdrawals", b"{}"),
            Err(Error::BadSignature)
        ));
    }
}

#[test]
fn a_v1_signature_is_named_outdated() {
    let s = Signer::from_seed([9; 32]);
    let h = s.sign_v1_at("GET", "/v1/accounts/me", b"", 1, "00112233445566778899");
    let err = h
        .verify(&domain(), "GET", "/v1/accounts/me", b"")
        .unwrap_err();
    assert!(matches!(err, Error::OutdatedSignature));
    assert!(err.to_string().contains("tally-v1"), "{err}");
    assert!(err.to_string().contains("too old"), "{err}");
}

#[test]
fn secrets_round_trip_and_debug_redacts() {
    let s = Signer::generate();
    let back = Signer::from_secret(&format!("{}\n", s.secret())).unwrap();
    assert_eq!(back.account(), s.account());
    assert!(!format!("{s:?}").contains(&s.secret()));
    assert!(Signer::from_secret(s.account().as_str()).is_err());
}

#[test]
fn header_parsing_names_the_bad_header() {
    let s = Signer::from_seed([1; 32]);
    let account = Some(s.account().as_str());
    for (timestamp, nonce, named) in [
        ("soon", "00112233445566778899", "X-Tally-Timestamp"),
        ("1", "xyz", "X-Tally-Nonce"),
    ] {
        let err =
            SignedHeaders::parse(account, Some(timestamp), Some(nonce), Some("x")).unwrap_err();
        assert!(err.to_string().contains(named));
    }
}
