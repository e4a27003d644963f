use super::*;

#[tokio::test]
async fn an_unreachable_market_is_retried_until_shutdown() {
    // Nothing listens on port 9 of localhost (discard), so every call fails to connect.
    let client = Client::new(
        "http://127.0.0.1:9",
        Some(tally_protocol::Signer::generate()),
    );
    let dir = tempfile::tempdir().unwrap();
    // A stand-in inference child: it says hello, then waits.
    let hello = crate::sandbox::wire::Reply::Hello(crate::sandbox::Hello {
        backend: "tract".into(),
        confinement: vec![],
        landlock: false,
    });
    let mut frame = Vec::new();
    crate::sandbox::wire::write_blocking(&mut frame, &hello, b"").unwrap();
    let hello_file = dir.path().join("hello.bin");
    std::fs::write(&hello_file, frame).unwrap();
    let script = format!("/bin/cat {}; exec /bin/sleep 60", hello_file.display());
    let agent = Agent::new(
        vec![Sha256Hex::of(b"model")],
        dir.path(),
        SandboxConfig::new("/bin/sh", &["-c", &script, "child"]),
    );
    let report = run(
        client,
        agent,
        tokio::time::sleep(Duration::from_millis(400)),
    )
    .await
    .expect("a transient error never ends the agent");
    assert_eq!(report, AgentReport::default());
}
