//! The vote: a pure, deterministic function.
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
//!
//! Numbers ([`Numbers::Grid`], every verdict the market writes now): every
//! score and coordinate entering the vote is first snapped to the grid of
//! [`crate::detection`] (1/100 pixel, 1/10,000 of score); medians are taken
//! on the grid's integers (an even group's is the floor of the mean of its
//! two middle values), so the consensus is grid values, written as short
//! decimals that read back exactly. The vote then gives the same verdict,
//! byte for byte once written, from the same evidence on any machine, from
//! any mix of inference engines, in any order, after any number of JSON
//! round trips. IoU is computed in `f64` from grid values: IEEE arithmetic
//! on the same inputs, so the same everywhere. Verdicts written before the
//! grid ([`Numbers::Float`]: no `numbers` field) are re-run by auditors with
//! the float rule they were decided by.

use std::cmp::Ordering;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::detection::{from_grid, to_grid, COORD_STEPS, SCORE_STEPS};
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

/// How a vote forms its numbers; written in each verdict (`numbers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Numbers {
    /// The rule of verdicts written before the grid (no `numbers` field):
    /// scores and coordinates as read, float medians. Auditors re-run old
    /// evidence with it; the market no longer decides with it.
    #[default]
    Float,
    /// Scores and coordinates snapped to the grid, integer medians.
    Grid,
}

impl Numbers {
    /// The rule the market decides with.
    pub const CURRENT: Numbers = Numbers::Grid;

    /// True for [`Numbers::Float`] (left out when a verdict is written).
    pub fn is_float(&self) -> bool {
        *self == Numbers::Float
    }

    /// The detections as this rule reads them.
    fn form(self, detections: &[Detection]) -> Vec<Detection> {
        match self {
            Numbers::Float => detections.to_vec(),
            Numbers::Grid => detections.iter().map(Detection::on_grid).collect(),
        }
    }

    /// True when the vote must leave a result out (see [`is_garbage`]); on
    /// the grid also when a coordinate lies beyond
    /// [`crate::detection::MAX_COORD`].
    pub fn is_garbage(self, detections: &[Detection]) -> bool {
        is_garbage(detections)
            || (self == Numbers::Grid && !detections.iter().all(Detection::fits_grid))
    }

    /// The median of a non-empty list of values on a grid of `steps`.
    fn median(self, v: Vec<f64>, steps: f64) -> f64 {
        match self {
            Numbers::Float => float_median(v),
            Numbers::Grid => {
                let mut q: Vec<i64> = v.iter().map(|&x| to_grid(x, steps)).collect();
                q.sort_unstable();
                let m = q.len() / 2;
                let mid = if q.len() % 2 == 1 {
                    q[m]
                } else {
                    (q[m - 1] + q[m]).div_euclid(2)
                };
                from_grid(mid, steps)
            }
        }
    }
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
    /// How the vote formed its numbers; absent (`float`) in verdicts
    /// written before the grid.
    #[serde(default, skip_serializing_if = "Numbers::is_float")]
    pub numbers: Numbers,
}

impl Verdict {
    /// True when enough results agree for the task to be verified.
    pub fn is_verified(&self, params: &VoteParams) -> bool {
        self.agree.len() as u64 >= u64::from(params.quorum)
    }
}

/// Results with more detections than this are garbage.
pub const MAX_DETECTIONS: usize = 1000;

/// Vote on the results of one task, on the grid ([`Numbers::CURRENT`]).
pub fn vote(params: &VoteParams, ballots: &[Ballot]) -> Verdict {
    vote_as(Numbers::CURRENT, params, ballots)
}

/// Vote on the results of one task with the given number rule.
///
/// Ballots are put in assignment-id order and their detections in
/// [`canonical`] order first, so everything after is a deterministic function
/// of the set of ballots. Garbage ballots ([`is_garbage`], or an assignment id
/// that appears twice) take no part in the consensus and always disagree.
pub fn vote_as(numbers: Numbers, params: &VoteParams, ballots: &[Ballot]) -> Verdict {
    let mut order: Vec<&Ballot> = ballots.iter().collect();
    order.sort_by_key(|b| b.assignment);
    let mut valid = Vec::new();
    let mut disagree: Vec<AssignmentId> = Vec::new();
    for (i, b) in order.iter().enumerate() {
        let same = |j: usize| order.get(j).is_some_and(|n| n.assignment == b.assignment);
        let twice = (i > 0 && same(i - 1)) || same(i + 1);
        if twice || numbers.is_garbage(&b.detections) {
            if disagree.last() != Some(&b.assignment) {
                disagree.push(b.assignment);
            }
        } else {
            valid.push((b.assignment, sorted(&numbers.form(&b.detections))));
        }
    }
    let consensus = consensus(numbers, params, &valid);
    let mut agree = Vec::new();
    for (id, dets) in &valid {
        if agrees_as(numbers, params, &consensus, dets) {
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
        numbers,
    }
}

/// Judge one result against an existing consensus (late results): the same
/// rule [`vote`] applies to each ballot, on the grid.
pub fn agrees(params: &VoteParams, consensus: &[Detection], detections: &[Detection]) -> bool {
    agrees_as(Numbers::CURRENT, params, consensus, detections)
}

/// [`agrees`] with the given number rule (a verdict's own, for late results
/// judged against it).
pub fn agrees_as(
    numbers: Numbers,
    params: &VoteParams,
    consensus: &[Detection],
    detections: &[Detection],
) -> bool {
    !numbers.is_garbage(detections) && f1_as(numbers, params, consensus, detections) >= params.agree
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
    f1_as(Numbers::CURRENT, params, consensus, detections)
}

/// [`f1`] with the given number rule: both sides read by it first.
pub fn f1_as(
    numbers: Numbers,
    params: &VoteParams,
    consensus: &[Detection],
    detections: &[Detection],
) -> f64 {
    let near = params.min_score + params.margin;
    let (cons, dets) = (
        sorted(&numbers.form(consensus)),
        sorted(&numbers.form(detections)),
    );
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

/// Group detections across ballots and keep the groups of at least the
/// quorum and half the ballots.
///
/// Seeds are taken strongest first (score descending, then assignment id,
/// then canonical position); every other ballot adds to the seed's group its
/// unused same-class detection of highest IoU with the seed, if >= `iou`
/// (ties to the earlier canonical position). Ballots must be sorted by id and
/// their detections canonical.
fn consensus(
    numbers: Numbers,
    params: &VoteParams,
    ballots: &[(AssignmentId, Vec<Detection>)],
) -> Vec<Detection> {
    let det = |(b, i): (usize, usize)| &ballots[b].1[i];
    let mut seeds: Vec<(usize, usize)> = ballots
        .iter()
        .enumerate()
        .flat_map(|(b, (_, d))| (0..d.len()).map(move |i| (b, i)))
        .collect();
    seeds.sort_by(|&x, &y| det(y).score.total_cmp(&det(x).score).then(x.cmp(&y)));
    let mut used: Vec<Vec<bool>> = ballots.iter().map(|(_, d)| vec![false; d.len()]).collect();
    // A detection is consensus when at least the quorum and half the
    // ballots saw it: one result's extra box never joins an answer that
    // others decided.
    let half = (ballots.len() as u64).div_ceil(2);
    let support = u64::from(params.quorum.max(1)).max(half);
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
        if group.len() as u64 >= support {
            out.push(merge(numbers, &group));
        }
    }
    out.sort_by(canonical);
    out
}

/// One consensus detection from a group: per-coordinate median box, median
/// score, and the members' most common label (ties to the smallest).
fn merge(numbers: Numbers, group: &[&Detection]) -> Detection {
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
        score: numbers.median(group.iter().map(|d| d.score).collect(), SCORE_STEPS),
        bbox: std::array::from_fn(|k| {
            numbers.median(group.iter().map(|d| d.bbox[k]).collect(), COORD_STEPS)
        }),
    }
}

/// The float rule's median of a non-empty list; for an even count the mean
/// of the two middle values, as `a / 2 + b / 2` so that it cannot overflow.
fn float_median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        v[m - 1] / 2.0 + v[m] / 2.0
    }
}

#[cfg(test)]
mod tests;
