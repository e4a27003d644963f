use super::*;
use tally_protocol::wire::ReviewCandidate;
use tally_protocol::{AssignmentId, Sha256Hex, Stroops, TaskId};

fn dog() -> Detection {
    Detection {
        class_id: 16,
        label: "dog".into(),
        score: 0.83,
        bbox: [133.0, 207.0, 324.0, 542.0],
    }
}

fn ticket() -> ReviewTicket {
    ReviewTicket {
        review: AssignmentId(12),
        task: TaskId(7),
        model: Sha256Hex::of(b"m"),
        input: Sha256Hex::of(b"i"),
        price: Stroops(4_000),
        lease_expires_at: chrono::DateTime::from_timestamp_millis(1_750_000_000_000).unwrap(),
        params: tally_protocol::vote::VoteParams::default(),
        candidates: vec![
            ReviewCandidate {
                detections: vec![dog()],
                assignments: vec![AssignmentId(3), AssignmentId(5)],
            },
            ReviewCandidate {
                detections: vec![],
                assignments: vec![AssignmentId(4)],
            },
        ],
    }
}

#[test]
fn a_ticket_shows_each_candidate_with_its_support_and_boxes() {
    let text = describe(&ticket());
    assert!(text.contains("review 12 of task 7"), "{text}");
    assert!(text.contains("pays 4000 stroops"), "{text}");
    assert!(text.contains("[1] 2 results: 1 detections"), "{text}");
    assert!(
        text.contains("dog            0.83  [133.0, 207.0, 324.0, 542.0]"),
        "{text}"
    );
    assert!(text.contains("[2] 1 result: nothing detected"), "{text}");
}

#[test]
fn picking_sends_the_candidates_detections_and_names_the_range() {
    assert_eq!(pick(&ticket(), 1).unwrap(), vec![dog()]);
    assert_eq!(pick(&ticket(), 2).unwrap(), vec![]);
    for n in [0, 3] {
        let e = pick(&ticket(), n).unwrap_err().to_string();
        assert!(e.contains("candidates 1 to 2"), "{e}");
    }
}

#[test]
fn detections_files_are_an_array_or_an_object_holding_one() {
    let dir = tempfile::tempdir().unwrap();
    let array = dir.path().join("a.json");
    std::fs::write(&array, serde_json::to_string(&vec![dog()]).unwrap()).unwrap();
    assert_eq!(read_detections(&array).unwrap(), vec![dog()]);
    let object = dir.path().join("o.json");
    std::fs::write(&object, json!({ "detections": [dog()] }).to_string()).unwrap();
    assert_eq!(read_detections(&object).unwrap(), vec![dog()]);
    let bad = dir.path().join("b.json");
    std::fs::write(&bad, r#"[{"label": "dog"}]"#).unwrap();
    let e = format!("{:#}", read_detections(&bad).unwrap_err());
    assert!(e.contains("expected a JSON array of detections"), "{e}");
}

#[test]
fn refusals_are_one_line_naming_the_problem() {
    let me: AccountId = Signer::generate().account().clone();
    let api = |status, code: &str| Error::Api {
        status,
        code: code.into(),
        message: "why".into(),
    };
    let e = explain(&api(403, "not_a_reviewer"), &me, None).to_string();
    assert!(e.contains("is not a verified reviewer"), "{e}");
    let e = explain(&api(409, "decided"), &me, Some(&ticket())).to_string();
    assert!(
        e.contains("review 12 of task 7") && e.contains("already decided"),
        "{e}"
    );
    assert!(!e.contains('\n'));
}

#[test]
fn standings_show_the_latest_mark_and_flag_bad_ones() {
    let operator = Signer::generate();
    let who = Signer::generate();
    let domain = Domain::new(
        "Test SDF Network ; September 2015",
        operator.account().clone(),
    );
    let mark = |id, verified, at: i64| {
        let body = serde_json::to_vec(&tally_protocol::wire::ReviewerMarkRequest {
            account: who.account().clone(),
            verified,
        })
        .unwrap();
        let nonce = "00112233445566778899aabbccddeeff";
        ReviewerMark {
            id,
            account: who.account().clone(),
            verified,
            signer: operator.account().clone(),
            body: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &body),
            timestamp: at,
            nonce: nonce.into(),
            signature: operator
                .sign_at(&domain, "POST", ReviewerMark::PATH, &body, at, nonce)
                .signature,
        }
    };
    let t0 = 1_750_000_000_000;
    let mut marks = vec![mark(1, true, t0), mark(2, false, t0 + 1_000)];
    let text = standings(&marks, &domain, &[]);
    assert!(text.contains("not verified since"), "{text}");
    assert!(!text.contains("BAD"), "{text}");
    marks[1].verified = true;
    let text = standings(&marks, &domain, &[]);
    assert!(text.contains("BAD"), "{text}");
    let nobody = Signer::generate().account().clone();
    let text = standings(&[], &domain, &[nobody]);
    assert!(text.contains("never marked"), "{text}");
}
