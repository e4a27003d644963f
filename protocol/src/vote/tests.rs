use super::*;
use crate::labels::label;

/// A detection labelled from its COCO class.
fn det(class_id: u32, score: f64, bbox: [f64; 4]) -> Detection {
    let label = label(class_id).to_string();
    Detection {
        class_id,
        label,
        score,
        bbox,
    }
}

/// A ballot of assignment `id`.
fn ballot(id: i64, detections: Vec<Detection>) -> Ballot {
    Ballot {
        assignment: AssignmentId(id),
        detections,
    }
}

/// A dog and a person, shifted by `dx` pixels, scores plus `ds`.
fn scene(dx: f64, ds: f64) -> Vec<Detection> {
    vec![
        det(16, 0.9 + ds, [10.0 + dx, 10.0, 110.0 + dx, 90.0]),
        det(0, 0.7 + ds, [200.0, 50.0 + dx, 260.0, 210.0 + dx]),
    ]
}

/// Ballots 1 (`a`) and 2 (`b`) voted on with the default parameters.
fn vote_pair(a: Vec<Detection>, b: Vec<Detection>) -> Verdict {
    vote(&VoteParams::default(), &[ballot(1, a), ballot(2, b)])
}

/// Assignment ids from plain numbers.
fn ids(v: &[i64]) -> Vec<AssignmentId> {
    v.iter().copied().map(AssignmentId).collect()
}

#[test]
fn three_honest_ballots_agree_and_the_consensus_is_their_median() {
    let p = VoteParams::default();
    let b = [
        ballot(3, scene(1.0, 0.01)),
        ballot(1, scene(0.0, 0.0)),
        ballot(2, scene(-0.5, -0.02)),
    ];
    let v = vote(&p, &b);
    assert_eq!(v.agree, ids(&[1, 2, 3]));
    assert!(v.disagree.is_empty() && v.is_verified(&p));
    assert_eq!(
        v.consensus,
        vec![scene(0.0, 0.0)[1].clone(), scene(0.0, 0.0)[0].clone()]
    );
}

#[test]
fn an_even_group_takes_the_mean_of_the_two_middle_values_on_the_grid() {
    let p = VoteParams::default();
    let v = vote_pair(scene(0.0, 0.0), scene(2.0, 0.02));
    assert_eq!(v.consensus[1].bbox, [11.0, 10.0, 111.0, 90.0]);
    assert_eq!(v.consensus[1].score, 0.91);
    assert!(v.is_verified(&p));
    // Half a step: the floor of the mean, on both sides of zero.
    let mut a = scene(0.0, 0.0);
    a[0].bbox[0] = 10.01;
    a[0].score = 0.9001;
    let v = vote_pair(a, scene(0.0, 0.0));
    assert_eq!((v.consensus[1].bbox[0], v.consensus[1].score), (10.0, 0.9));
    let mut a = scene(0.0, 0.0);
    a[0].bbox[0] = -0.01;
    let mut b = scene(0.0, 0.0);
    b[0].bbox[0] = 0.0;
    let v = vote_pair(a, b);
    assert_eq!(v.consensus[1].bbox[0], -0.01);
}

#[test]
fn scores_and_coordinates_are_snapped_to_the_grid_before_the_vote() {
    let p = VoteParams::default();
    let mut a = scene(0.0, 0.0);
    a[0].bbox = [10.004, 9.996, 110.00499, 90.0];
    a[0].score = 0.90004;
    let v = vote_pair(a.clone(), a);
    assert_eq!(v.consensus[1].bbox, [10.0, 10.0, 110.0, 90.0]);
    assert_eq!(v.consensus[1].score, 0.9);
    assert_eq!(v.numbers, Numbers::Grid);
    // Beyond the grid's range a result is garbage.
    let mut far = scene(0.0, 0.0);
    far[0].bbox[2] = 2.0e9;
    let v = vote_pair(far.clone(), far);
    assert_eq!(v.disagree, ids(&[1, 2]));
    assert!(!agrees(&p, &[], &[det(1, 0.9, [0.0, 0.0, 2e9, 1.0])]));
}

/// Two results as an ONNX Runtime and a tract worker send them: the
/// same boxes, f32 values a few units in the last place apart.
fn engines() -> [&'static str; 2] {
    [
        r#"[{"class_id":16,"label":"dog","score":0.8741302490234375,"box":[410.0006103515625,120.5,600.25,380.125]}]"#,
        r#"[{"class_id":16,"label":"dog","score":0.8741307258605957,"box":[410.0143127441406,120.5,600.25,380.125]}]"#,
    ]
}

/// The market's side and the auditor's side of one decision: both read
/// the signed results' JSON, the market writes its verdict, the auditor
/// reads it and compares it with its own re-run.
fn market_and_audit(numbers: Numbers) -> (Verdict, Verdict) {
    let p = VoteParams::default();
    let read = |i: usize, text: &str| ballot(i as i64 + 1, serde_json::from_str(text).unwrap());
    let ballots: Vec<Ballot> = engines()
        .iter()
        .enumerate()
        .map(|(i, t)| read(i, t))
        .collect();
    let written = serde_json::to_string(&vote_as(numbers, &p, &ballots)).unwrap();
    let published: Verdict = serde_json::from_str(&written).unwrap();
    (published, vote_as(numbers, &p, &ballots))
}

#[test]
fn the_float_rule_loses_its_consensus_in_json_and_the_grid_does_not() {
    // Why honest markets with both engines failed their audit: the
    // float mean 410.00746154785156 is written with 17 digits, which
    // serde_json reads back as 410.0074615478515.
    let (published, rerun) = market_and_audit(Numbers::Float);
    assert_eq!(published.numbers, Numbers::Float);
    assert_eq!(rerun.consensus[0].bbox[0], 410.00746154785156);
    assert_eq!(published.consensus[0].bbox[0], 410.0074615478515);
    assert_ne!(published, rerun);
    let (published, rerun) = market_and_audit(Numbers::Grid);
    assert_eq!(published, rerun);
    assert_eq!(published.consensus[0].bbox[0], 410.0);
    assert_eq!(published.consensus[0].score, 0.8741);
}

#[test]
fn a_verdict_without_numbers_is_a_float_verdict_and_is_written_back_without_it() {
    let old = r#"{"consensus":[],"agree":[1,2],"disagree":[]}"#;
    let v: Verdict = serde_json::from_str(old).unwrap();
    assert_eq!(v.numbers, Numbers::Float);
    assert_eq!(serde_json::to_string(&v).unwrap(), old);
    let new = vote(
        &VoteParams::default(),
        &[ballot(1, vec![]), ballot(2, vec![])],
    );
    assert_eq!(
        serde_json::to_string(&new).unwrap(),
        r#"{"consensus":[],"agree":[1,2],"disagree":[],"numbers":"grid"}"#
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    /// One object as a worker on some engine reports it: the true box
    /// and score off by up to a few pixels and a few hundredths, as
    /// f32 values widened (what the workers send).
    fn seen(truth: &Detection, jitter: (f32, [f32; 4])) -> Detection {
        let score = (truth.score as f32 + jitter.0).clamp(0.0, 1.0);
        let mut bbox: [f64; 4] =
            std::array::from_fn(|k| f64::from(truth.bbox[k] as f32 + jitter.1[k]));
        bbox[2] = bbox[2].max(bbox[0]);
        bbox[3] = bbox[3].max(bbox[1]);
        det(truth.class_id, f64::from(score), bbox)
    }

    fn truth() -> impl Strategy<Value = Detection> {
        (
            0u32..3,
            0.2f64..1.0,
            0.0f64..600.0,
            0.0f64..400.0,
            5.0f64..200.0,
            5.0f64..200.0,
        )
            .prop_map(|(c, s, x, y, w, h)| det(c, s, [x, y, x + w, y + h]))
    }

    fn jitter() -> impl Strategy<Value = (f32, [f32; 4])> {
        (-0.03f32..0.03, proptest::array::uniform4(-3.0f32..3.0))
    }

    /// Up to five ballots of up to four objects each, some results
    /// missing objects, with ids spread out.
    fn ballots() -> impl Strategy<Value = Vec<Ballot>> {
        proptest::collection::vec(truth(), 0..4).prop_flat_map(|objects| {
            let n = objects.len();
            proptest::collection::vec(
                (
                    1i64..1000,
                    proptest::collection::vec((jitter(), any::<bool>()), n..=n),
                ),
                1..6,
            )
            .prop_map(move |raw| {
                raw.into_iter()
                    .map(|(id, seen_by)| {
                        let dets = objects
                            .iter()
                            .zip(seen_by)
                            .filter(|(_, (_, missed))| !missed)
                            .map(|(t, (j, _))| seen(t, j))
                            .collect();
                        ballot(id, dets)
                    })
                    .collect()
            })
        })
    }

    fn bytes(v: &Verdict) -> String {
        serde_json::to_string(v).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn the_verdict_bytes_do_not_depend_on_the_order_of_ballots_or_detections(
            ballots in ballots(),
            seed in any::<u64>(),
            quorum in 1u32..4,
        ) {
            let p = VoteParams { quorum, ..VoteParams::default() };
            let first = bytes(&vote(&p, &ballots));
            let mut shuffled = ballots.clone();
            let mut r = seed;
            let mut next = |n: usize| {
                r = r.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (r >> 33) as usize % n.max(1)
            };
            for i in (1..shuffled.len()).rev() {
                let j = next(i + 1);
                shuffled.swap(i, j);
            }
            for b in &mut shuffled {
                for i in (1..b.detections.len()).rev() {
                    let j = next(i + 1);
                    b.detections.swap(i, j);
                }
            }
            shuffled.reverse();
            prop_assert_eq!(first, bytes(&vote(&p, &shuffled)));
        }

        #[test]
        fn the_verdict_is_the_same_after_a_json_round_trip_of_the_evidence(
            ballots in ballots(),
            quorum in 1u32..4,
        ) {
            let p = VoteParams { quorum, ..VoteParams::default() };
            let market = vote(&p, &ballots);
            // The evidence as published: the results and the verdict, in JSON.
            let results: Vec<String> = ballots
                .iter()
                .map(|b| serde_json::to_string(&b.detections).unwrap())
                .collect();
            let published: Verdict = serde_json::from_str(&bytes(&market)).unwrap();
            let read: Vec<Ballot> = ballots
                .iter()
                .zip(&results)
                .map(|(b, t)| ballot(b.assignment.0, serde_json::from_str(t).unwrap()))
                .collect();
            let audit = vote_as(published.numbers, &p, &read);
            prop_assert_eq!(bytes(&published), bytes(&market));
            prop_assert_eq!(bytes(&audit), bytes(&market));
            prop_assert_eq!(&audit, &published);
            // Voting again on its own consensus changes nothing.
            for c in &published.consensus {
                prop_assert_eq!(&c.on_grid(), c);
            }
        }
    }
}

#[test]
fn a_wrong_ballot_disagrees_while_the_other_two_verify() {
    let p = VoteParams::default();
    let mut other_class = scene(0.0, 0.0);
    other_class.iter_mut().for_each(|d| d.class_id += 1);
    let random = vec![det(5, 0.8, [400.0, 400.0, 420.0, 480.0])];
    for wrong in [other_class, scene(60.0, 0.0), random, vec![]] {
        let b = [
            ballot(1, scene(0.0, 0.0)),
            ballot(2, wrong),
            ballot(3, scene(0.5, 0.01)),
        ];
        let v = vote(&p, &b);
        assert_eq!((v.agree, v.disagree), (ids(&[1, 3]), ids(&[2])));
        assert_eq!(v.consensus.len(), 2);
    }
}

#[test]
fn garbage_ballots_disagree_and_a_repeated_id_is_garbage() {
    let p = VoteParams::default();
    let mut nan = scene(0.0, 0.0);
    nan[0].bbox[2] = f64::NAN;
    let mut inverted = scene(0.0, 0.0);
    inverted[1].bbox = [5.0, 5.0, 1.0, 9.0];
    let too_sure = scene(0.0, 0.2);
    let too_many = vec![det(1, 0.2, [0.0, 0.0, 1.0, 1.0]); MAX_DETECTIONS + 1];
    for bad in [nan, inverted, too_sure, too_many] {
        let b = [
            ballot(1, scene(0.0, 0.0)),
            ballot(2, scene(0.0, 0.0)),
            ballot(3, bad),
        ];
        let v = vote(&p, &b);
        assert_eq!((v.agree, v.disagree), (ids(&[1, 2]), ids(&[3])));
    }
    let b = [
        ballot(2, scene(0.0, 0.0)),
        ballot(1, scene(0.0, 0.0)),
        ballot(2, scene(0.0, 0.0)),
        ballot(3, scene(0.0, 0.0)),
    ];
    let v = vote(&p, &b);
    assert_eq!((v.agree, v.disagree), (ids(&[1, 3]), ids(&[2])));
}

#[test]
fn all_empty_ballots_verify_with_an_empty_consensus() {
    let p = VoteParams::default();
    let v = vote(&p, &[ballot(1, vec![]), ballot(2, vec![])]);
    assert!(v.consensus.is_empty() && v.is_verified(&p));
}

#[test]
fn two_disagreeing_ballots_with_quorum_two_do_not_verify() {
    let p = VoteParams::default();
    let v = vote_pair(scene(0.0, 0.0), scene(80.0, 0.0));
    assert!(v.consensus.is_empty() && v.agree.is_empty() && !v.is_verified(&p));
}

#[test]
fn a_detection_in_one_of_three_ballots_is_not_consensus() {
    let p = VoteParams::default();
    let mut extra = scene(0.0, 0.0);
    extra.push(det(2, 0.95, [300.0, 300.0, 350.0, 330.0]));
    let b = [
        ballot(1, scene(0.0, 0.0)),
        ballot(2, extra),
        ballot(3, scene(0.0, 0.0)),
    ];
    let v = vote(&p, &b);
    assert!(v.consensus.iter().all(|d| d.class_id != 2));
    // 2 TP and 1 FP: F1 = 0.8, just agreeing at the default threshold.
    assert_eq!(f1(&p, &v.consensus, &b[1].detections), 0.8);
}

#[test]
fn at_quorum_one_a_lone_extra_box_is_not_consensus_either() {
    let p = VoteParams {
        quorum: 1,
        ..VoteParams::default()
    };
    let lie = vec![det(5, 0.9, [400.0, 300.0, 450.0, 390.0])];
    let b = [
        ballot(1, lie),
        ballot(2, scene(0.0, 0.0)),
        ballot(3, scene(0.0, 0.0)),
    ];
    let v = vote(&p, &b);
    assert!(
        v.consensus.iter().all(|d| d.class_id != 5),
        "{:?}",
        v.consensus
    );
    assert_eq!(v.agree, ids(&[2, 3]));
    // One ballot alone still makes a consensus of its own.
    let v = vote(&p, &[ballot(4, scene(0.0, 0.0))]);
    assert_eq!(v.consensus.len(), scene(0.0, 0.0).len());
}

#[test]
fn a_near_threshold_detection_is_optional_on_both_sides() {
    let p = VoteParams::default();
    let faint = det(7, 0.35, [300.0, 300.0, 350.0, 330.0]);
    let mut with = vec![faint.clone()];
    let v = vote(&p, &[ballot(1, with.clone()), ballot(2, vec![])]);
    assert_eq!(v.agree, ids(&[1, 2]));
    with.extend(scene(0.0, 0.0));
    let b = [
        ballot(1, with.clone()),
        ballot(2, with),
        ballot(3, scene(0.0, 0.0)),
    ];
    let v = vote(&p, &b);
    assert_eq!(v.agree, ids(&[1, 2, 3]));
    assert!(v.consensus.contains(&faint));
}

#[test]
fn a_late_result_is_judged_against_the_consensus() {
    let p = VoteParams::default();
    let v = vote_pair(scene(0.0, 0.0), scene(0.0, 0.0));
    assert!(agrees(&p, &v.consensus, &scene(0.5, -0.01)));
    assert!(!agrees(&p, &v.consensus, &scene(70.0, 0.0)));
    assert!(!agrees(&p, &v.consensus, &[]));
    assert!(agrees(&p, &[], &[]));
}
