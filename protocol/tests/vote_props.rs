//! Property tests of the vote: order independence, robustness to float noise
//! between honest backends, garbage always disagreeing, and near-threshold
//! detections being optional.

use proptest::prelude::*;
use tally_protocol::labels::label;
use tally_protocol::vote::{vote, Ballot, Verdict, VoteParams};
use tally_protocol::{AssignmentId, Detection};

/// One object of a base scene; `near` ones score in `[min_score, min_score + margin)`.
#[derive(Debug, Clone)]
struct Object {
    class_id: u32,
    score: f64,
    bbox: [f64; 4],
    near: bool,
}

/// What one honest worker changes: per object, box and score noise and
/// (for near-threshold objects only) whether it reports it at all.
type Noise = Vec<([f64; 4], f64, bool)>;

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

/// An object in grid cell `cell` (200 px cells, 4 a row), so that objects of
/// the same class never overlap; boxes are 10 to 150 px a side.
fn object(cell: usize, score: std::ops::Range<f64>, near: bool) -> impl Strategy<Value = Object> {
    let (ox, oy) = ((cell % 4) as f64 * 200.0, (cell / 4) as f64 * 200.0);
    (
        0u32..10,
        score,
        0.0..40.0,
        0.0..40.0,
        10.0..150.0,
        10.0..150.0,
    )
        .prop_map(move |(class_id, score, x, y, w, h)| Object {
            class_id,
            score,
            bbox: [ox + x, oy + y, ox + x + w, oy + y + h],
            near,
        })
}

/// A scene of `required` confident objects (scores in [0.45, 1)) then up
/// to `near` near-threshold ones (scores in [0.3, 0.4)).
fn scene(required: std::ops::Range<usize>, near: usize) -> impl Strategy<Value = Vec<Object>> {
    (required, 0..=near).prop_flat_map(|(r, n)| {
        let confident: Vec<_> = (0..r).map(|c| object(c, 0.45..1.0, false)).collect();
        let faint: Vec<_> = (r..r + n).map(|c| object(c, 0.3..0.4, true)).collect();
        (confident, faint).prop_map(|(mut a, b)| {
            a.extend(b);
            a
        })
    })
}

/// Noise for `count` honest ballots: +-0.5 px per coordinate, +-0.01 score.
fn noise(count: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Noise>> {
    let one = (
        prop::array::uniform4(-0.5..=0.5),
        -0.01..=0.01,
        any::<bool>(),
    );
    prop::collection::vec(prop::collection::vec(one, 12), count)
}

/// The honest ballots, assignment ids 1, 2, ...
fn honest(scene: &[Object], noise: &[Noise]) -> Vec<Ballot> {
    let ballot = |(i, n): (usize, &Noise)| Ballot {
        assignment: AssignmentId(i as i64 + 1),
        detections: scene
            .iter()
            .zip(n)
            .filter(|(o, (_, _, present))| !o.near || *present)
            .map(|(o, (db, ds, _))| {
                let range = if o.near { 0.3..=0.399 } else { 0.0..=1.0 };
                let score = (o.score + ds).clamp(*range.start(), *range.end());
                det(
                    o.class_id,
                    score,
                    std::array::from_fn(|k| o.bbox[k] + db[k]),
                )
            })
            .collect(),
    };
    noise.iter().enumerate().map(ballot).collect()
}

/// Coarse random ballots with many ties and collisions, ids possibly repeated.
fn rough_ballots() -> impl Strategy<Value = Vec<Ballot>> {
    let coord = (0u8..20).prop_map(|v| f64::from(v) * 5.0);
    let d = (
        0u32..3,
        prop::sample::select(vec![0.2, 0.35, 0.5, 0.9]),
        coord.clone(),
        coord,
    )
        .prop_map(|(c, s, x, y)| det(c, s, [x, y, x + 30.0, y + 20.0]));
    let ballot = (0i64..6, prop::collection::vec(d, 0..6)).prop_map(|(id, detections)| Ballot {
        assignment: AssignmentId(id),
        detections,
    });
    prop::collection::vec(ballot, 1..7)
}

/// `ballots` in a random order, each with its detections in a random order.
fn shuffled(ballots: Vec<Ballot>) -> impl Strategy<Value = Vec<Ballot>> {
    let each = ballots.into_iter().map(|b| {
        let id = b.assignment;
        let dets = Just(b.detections).prop_shuffle();
        dets.prop_map(move |detections| Ballot {
            assignment: id,
            detections,
        })
    });
    each.collect::<Vec<_>>().prop_shuffle()
}

/// Every number of every detection as bits, so that `-0.0 != 0.0`.
fn bits(v: &[Detection]) -> Vec<(u32, String, u64, [u64; 4])> {
    v.iter()
        .map(|d| {
            (
                d.class_id,
                d.label.clone(),
                d.score.to_bits(),
                d.bbox.map(f64::to_bits),
            )
        })
        .collect()
}

/// The honest ballots of `s` with `n` all agree and verify: the verdict.
fn all_agree(s: &[Object], n: &[Noise]) -> Result<Verdict, TestCaseError> {
    let p = VoteParams::default();
    let v = vote(&p, &honest(s, n));
    prop_assert!(v.disagree.is_empty(), "{:?}", v);
    prop_assert!(v.is_verified(&p));
    Ok(v)
}

proptest! {
    #[test]
    fn the_verdict_does_not_depend_on_ballot_order(
        (ballots, shuffled) in prop_oneof![
            rough_ballots(),
            (scene(0..8, 4), noise(2..6)).prop_map(|(s, n)| honest(&s, &n)),
        ].prop_flat_map(|b| (Just(b.clone()), shuffled(b)))
    ) {
        let p = VoteParams::default();
        let (a, b) = (vote(&p, &ballots), vote(&p, &shuffled));
        prop_assert_eq!(bits(&a.consensus), bits(&b.consensus));
        prop_assert_eq!(a, b);
    }

    #[test]
    fn honest_ballots_with_float_noise_all_agree(s in scene(0..9, 0), n in noise(2..7)) {
        let v = all_agree(&s, &n)?;
        prop_assert_eq!(v.consensus.len(), s.len());
    }

    #[test]
    fn a_garbage_ballot_disagrees_with_honest_ones(
        s in scene(1..8, 2),
        n in noise(2..5),
        kind in 0..3,
        random in prop::collection::vec((0u32..80, 0.0..1.0, 2000.0..3000.0, 10.0..100.0), 0..10),
    ) {
        let p = VoteParams::default();
        let mut ballots = honest(&s, &n);
        let garbage = match kind {
            0 => random.iter().map(|&(c, sc, x, w)| det(c, sc, [x, x, x + w, x + w])).collect(),
            1 => {
                let mut d = ballots[0].detections.clone();
                d.iter_mut().for_each(|d| d.class_id += 100);
                d
            }
            _ => vec![],
        };
        ballots.push(Ballot { assignment: AssignmentId(0), detections: garbage });
        let v = vote(&p, &ballots);
        prop_assert!(v.is_verified(&p));
        prop_assert_eq!(v.disagree, vec![AssignmentId(0)]);
    }

    #[test]
    fn near_threshold_detections_are_optional(s in scene(0..6, 4), n in noise(2..7)) {
        all_agree(&s, &n)?;
    }
}
