//! The vote re-run on task evidence built and signed here: evidence written
//! on the grid, and evidence written before it by the float rule.

use super::*;
use crate::audit::review::tests::{domain, result, task_evidence};
use tally_protocol::vote::{Numbers, Verdict, VoteParams};
use tally_protocol::{Detection, Signer};

/// A dog as an ONNX Runtime worker and a tract worker saw it: f32 values a
/// few units in the last place apart, whose float mean is written with 17
/// digits.
fn engine(x1: f64, score: f64) -> Vec<Detection> {
    vec![Detection {
        class_id: 16,
        label: "dog".into(),
        score,
        bbox: [x1, 120.5, 600.25, 380.125],
    }]
}

/// A task both engines answered, decided by `numbers` as the market does:
/// the verdict from the signed bodies, written to the database as JSON and
/// published as read back from it.
fn evidence(numbers: Numbers) -> Evidence {
    let params = VoteParams::default();
    let results = vec![
        result(
            &Signer::generate(),
            1,
            engine(410.0006103515625, 0.8741302490234375),
        ),
        result(
            &Signer::generate(),
            2,
            engine(410.0143127441406, 0.8741307258605957),
        ),
    ];
    let ballots: Vec<Ballot> = results
        .iter()
        .map(|r| Ballot {
            assignment: r.assignment,
            detections: r.request().unwrap().detections,
        })
        .collect();
    let decided = vote::vote_as(numbers, &params, &ballots);
    let stored = serde_json::to_string(&decided).unwrap();
    let published: Verdict = serde_json::from_str(&stored).unwrap();
    task_evidence(params, results, published)
}

fn kinds(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.kind.as_str()).collect()
}

#[test]
fn grid_evidence_of_two_engines_passes_and_a_consensus_one_step_off_does_not() {
    let mut ev = evidence(Numbers::Grid);
    let (facts, findings) = check_evidence(&ev, &domain());
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(facts.agree, [AssignmentId(1), AssignmentId(2)].into());
    let v = ev.verdict.as_mut().unwrap();
    assert_eq!(v.consensus[0].bbox[0], 410.0);
    v.consensus[0].bbox[0] = 410.01;
    assert_eq!(
        kinds(&check_evidence(&ev, &domain()).1),
        ["verdict_mismatch"]
    );
}

#[test]
fn float_evidence_written_before_the_grid_is_checked_as_it_was_written() {
    let ev = evidence(Numbers::Float);
    let published = ev.verdict.clone().unwrap();
    assert_eq!(published.numbers, Numbers::Float);
    // What made such markets fail their audit: the exact re-run is not the
    // consensus the evidence holds, which JSON carried a unit off.
    let ballots: Vec<Ballot> = ev
        .results
        .iter()
        .map(|r| Ballot {
            assignment: r.assignment,
            detections: r.request().unwrap().detections,
        })
        .collect();
    let exact = vote::vote_as(Numbers::Float, &ev.params, &ballots);
    assert_ne!(exact.consensus, published.consensus);
    let (facts, findings) = check_evidence(&ev, &domain());
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(facts.agree, [AssignmentId(1), AssignmentId(2)].into());
    // A consensus that is not what the float rule gave is still caught.
    let mut forged = ev.clone();
    forged.verdict.as_mut().unwrap().consensus[0].bbox[0] = 410.0;
    assert_eq!(
        kinds(&check_evidence(&forged, &domain()).1),
        ["verdict_mismatch"]
    );
}
