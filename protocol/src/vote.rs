//! The vote (DESIGN "Voting"): a pure, deterministic function.
//!
//! The market decides every task with [`vote`], and every auditor re-runs it
//! on the published evidence, so it must give the same verdict bit for bit
//! for the same results in any order.
//!
//! 1. Garbage results (malformed or absurd, see [`is_garbage`]) disagree and
//!    take no part in the consensus.
//! 2. Detections are grouped across results (same class, IoU >= `iou`, at
//!    most one per result), greedily around the strongest unused detection.
//! 3. A group of >= `quorum` results is a consensus detection: median box and
//!    score. One whose score is below `min_score + margin` is near threshold.
//! 4. A result agrees when its [`f1`] against the consensus is >= `agree`;
//!    near-threshold detections are optional on both sides.
//!
//! Determinism: ballots are sorted by assignment id and detections into a
//! [`canonical`] order before anything else, every later step is a fixed
//! loop over those orders with explicit tie-breaks, and floats are compared
//! with `total_cmp` only.

use std::cmp::Ordering;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{iou, AssignmentId, Detection};

/// The voting parameters stored with each bid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VoteParams {
    /// Agreeing results needed for a verdict.
    pub quorum: u32,
    /// IoU at or above which two same-class boxes are the same object.
    pub iou: f64,
    /// The detector's score threshold.
    pub min_score: f64,
    /// F1 against the consensus at or above which a result agrees.
    pub agree: f64,
    /// Detections scoring below `min_score + margin` are optional.
    pub margin: f64,
    /// When set, a verdict also needs its agreeing group's credibility
    /// ([`crate::trust::verdict_credibility`]) to reach this; when absent
    /// (a market without spot checks), the quorum alone decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

impl Default for VoteParams {
    fn default() -> Self {
        VoteParams {
            quorum: 2,
            iou: 0.5,
            min_score: 0.3,
            agree: 0.8,
            margin: 0.1,
            confidence: None,
        }
    }
}

/// One worker's result, as the vote sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ballot {
    pub assignment: AssignmentId,
    /// As the worker reported them, in any order.
    pub detections: Vec<Detection>,
}

/// The outcome of a vote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Verdict {
    /// In [`canonical`] order; near-threshold ones included.
    pub consensus: Vec<Detection>,
    /// Sorted by assignment id.
    pub agree: Vec<AssignmentId>,
    /// Sorted by assignment id; garbage results included, each once.
    pub disagree: Vec<AssignmentId>,
}

impl Verdict {
    /// True when enough results agree for the task to be verified.
    pub fn is_verified(&self, params: &VoteParams) -> bool {
        self.agree.len() as u64 >= u64::from(params.quorum)
    }
}

/// Results with more detections than this are garbage.
pub const MAX_DETECTIONS: usize = 1000;

/// Vote on the results of one task.
///
/// Ballots are put in assignment-id order and their detections in
/// [`canonical`] order first, so everything after is a deterministic function
/// of the set of ballots. Garbage ballots ([`is_garbage`], or an assignment id
/// that appears twice) take no part in the consensus and always disagree.
pub fn vote(params: &VoteParams, ballots: &[Ballot]) -> Verdict {
    let mut order: Vec<&Ballot> = ballots.iter().collect();
    order.sort_by_key(|b| b.assignment);
    let mut valid = Vec::new();
    let mut disagree: Vec<AssignmentId> = Vec::new();
    for (i, b) in order.iter().enumerate() {
        let same = |j: usize| order.get(j).is_some_and(|n| n.assignment == b.assignment);
        let twice = (i > 0 && same(i - 1)) || same(i + 1);
        if twice || is_garbage(&b.detections) {
            if disagree.last() != Some(&b.assignment) {
                disagree.push(b.assignment);
            }
        } else {
            valid.push((b.assignment, sorted(&b.detections)));
        }
    }
    let consensus = consensus(params, &valid);
    let mut agree = Vec::new();
    for (id, dets) in &valid {
        if agrees(params, &consensus, dets) {
            agree.push(*id);
        } else {
            disagree.push(*id);
        }
    }
    disagree.sort();
    Verdict {
        consensus,
        agree,
        disagree,
    }
}

/// Judge one result against an existing consensus (late results): the same
/// rule [`vote`] applies to each ballot.
pub fn agrees(params: &VoteParams, consensus: &[Detection], detections: &[Detection]) -> bool {
    !is_garbage(detections) && f1(params, consensus, detections) >= params.agree
}

/// True when a result has a malformed detection, a score outside `[0, 1]`
/// or more than [`MAX_DETECTIONS`] detections.
pub fn is_garbage(detections: &[Detection]) -> bool {
    detections.len() > MAX_DETECTIONS
        || detections
            .iter()
            .any(|d| !d.is_well_formed() || !(0.0..=1.0).contains(&d.score))
}

/// F1 of a result against a consensus, `2TP / (2TP + FP + FN)`, with
/// near-threshold detections (score < `min_score + margin`) optional on both
/// sides; 1 when nothing required is on either side.
///
/// Pairs (same class, IoU >= `iou`) are matched greedily by descending IoU,
/// ties by canonical position. A consensus detection is required unless near
/// threshold: matched it is a TP, missing an FN. An unmatched detection of
/// the result is an FP unless near threshold. A match with an optional
/// consensus detection counts for nothing.
pub fn f1(params: &VoteParams, consensus: &[Detection], detections: &[Detection]) -> f64 {
    let near = params.min_score + params.margin;
    let (cons, dets) = (sorted(consensus), sorted(detections));
    let mut pairs = Vec::new();
    for (ci, c) in cons.iter().enumerate() {
        for (di, d) in dets.iter().enumerate() {
            let v = iou(&c.bbox, &d.bbox);
            if c.class_id == d.class_id && v >= params.iou {
                pairs.push((v, ci, di));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    let (mut c_hit, mut d_hit) = (vec![false; cons.len()], vec![false; dets.len()]);
    for (_, ci, di) in pairs {
        if !c_hit[ci] && !d_hit[di] {
            (c_hit[ci], d_hit[di]) = (true, true);
        }
    }
    let required = cons.iter().zip(&c_hit).filter(|(c, _)| c.score >= near);
    let required: Vec<bool> = required.map(|(_, &hit)| hit).collect();
    let tp = required.iter().filter(|&&hit| hit).count();
    let fneg = required.len() - tp;
    let extra = dets
        .iter()
        .zip(&d_hit)
        .filter(|(d, &hit)| !hit && d.score >= near);
    let fpos = extra.count();
    if tp + fpos + fneg == 0 {
        return 1.0;
    }
    (2 * tp) as f64 / (2 * tp + fpos + fneg) as f64
}

/// The canonical order of detections: class, score descending, box
/// coordinates, label (a total order, via `f64::total_cmp`).
pub fn canonical(a: &Detection, b: &Detection) -> Ordering {
    a.class_id
        .cmp(&b.class_id)
        .then_with(|| b.score.total_cmp(&a.score))
        .then_with(|| {
            let coords = a.bbox.iter().zip(&b.bbox);
            coords.fold(Ordering::Equal, |o, (x, y)| o.then_with(|| x.total_cmp(y)))
        })
        .then_with(|| a.label.cmp(&b.label))
}

/// A copy of `detections` in [`canonical`] order.
fn sorted(detections: &[Detection]) -> Vec<Detection> {
    let mut v = detections.to_vec();
    v.sort_by(canonical);
    v
}

/// Group detections across ballots and keep the groups of >= `quorum`.
///
/// Seeds are taken strongest first (score descending, then assignment id,
/// then canonical position); every other ballot adds to the seed's group its
/// unused same-class detection of highest IoU with the seed, if >= `iou`
/// (ties to the earlier canonical position). Ballots must be sorted by id and
/// their detections canonical.
fn consensus(params: &VoteParams, ballots: &[(AssignmentId, Vec<Detection>)]) -> Vec<Detection> {
    let det = |(b, i): (usize, usize)| &ballots[b].1[i];
    let mut seeds: Vec<(usize, usize)> = ballots
        .iter()
        .enumerate()
        .flat_map(|(b, (_, d))| (0..d.len()).map(move |i| (b, i)))
        .collect();
    seeds.sort_by(|&x, &y| det(y).score.total_cmp(&det(x).score).then(x.cmp(&y)));
    let mut used: Vec<Vec<bool>> = ballots.iter().map(|(_, d)| vec![false; d.len()]).collect();
    let mut out = Vec::new();
    for seed in seeds {
        if used[seed.0][seed.1] {
            continue;
        }
        used[seed.0][seed.1] = true;
        let s = det(seed);
        let mut group = vec![s];
        for (b, (_, dets)) in ballots.iter().enumerate().filter(|(b, _)| *b != seed.0) {
            let lo = dets.partition_point(|d| d.class_id < s.class_id);
            let hi = dets.partition_point(|d| d.class_id <= s.class_id);
            let mut best: Option<(usize, f64)> = None;
            for i in (lo..hi).filter(|&i| !used[b][i]) {
                let v = iou(&s.bbox, &dets[i].bbox);
                if v >= params.iou && best.is_none_or(|(_, bv)| v > bv) {
                    best = Some((i, v));
                }
            }
            if let Some((i, _)) = best {
                used[b][i] = true;
                group.push(&dets[i]);
            }
        }
        if group.len() as u64 >= u64::from(params.quorum.max(1)) {
            out.push(merge(&group));
        }
    }
    out.sort_by(canonical);
    out
}

/// One consensus detection from a group: per-coordinate median box, median
/// score, and the members' most common label (ties to the smallest).
fn merge(group: &[&Detection]) -> Detection {
    let mut labels: Vec<&str> = group.iter().map(|d| d.label.as_str()).collect();
    labels.sort_unstable();
    let mut label = ("", 0);
    for run in labels.chunk_by(|a, b| a == b) {
        if run.len() > label.1 {
            label = (run[0], run.len());
        }
    }
    Detection {
        class_id: group[0].class_id,
        label: label.0.to_string(),
        score: median(group.iter().map(|d| d.score).collect()),
        bbox: std::array::from_fn(|k| median(group.iter().map(|d| d.bbox[k]).collect())),
    }
}

/// The median of a non-empty list; for an even count the mean of the two
/// middle values, as `a / 2 + b / 2` so that it cannot overflow.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        v[m - 1] / 2.0 + v[m] / 2.0
    }
}

#[cfg(test)]
mod tests {
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
    fn an_even_group_takes_the_mean_of_the_two_middle_values() {
        let p = VoteParams::default();
        let v = vote(
            &p,
            &[ballot(1, scene(0.0, 0.0)), ballot(2, scene(2.0, 0.02))],
        );
        assert_eq!(v.consensus[1].bbox, [11.0, 10.0, 111.0, 90.0]);
        assert_eq!(v.consensus[1].score, 0.45 + 0.46);
        assert!(v.is_verified(&p));
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
        let v = vote(
            &p,
            &[ballot(1, scene(0.0, 0.0)), ballot(2, scene(80.0, 0.0))],
        );
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
        let v = vote(
            &p,
            &[ballot(1, scene(0.0, 0.0)), ballot(2, scene(0.0, 0.0))],
        );
        assert!(agrees(&p, &v.consensus, &scene(0.5, -0.01)));
        assert!(!agrees(&p, &v.consensus, &scene(70.0, 0.0)));
        assert!(!agrees(&p, &v.consensus, &[]));
        assert!(agrees(&p, &[], &[]));
    }
}
