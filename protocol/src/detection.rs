//! One detected object, in original-image pixels, the IoU of two boxes, and
//! the grid the vote forms its numbers on.
//!
//! **The number grid.** Floats written as JSON and read back are not always
//! the same floats (`serde_json` reads some 17-digit numbers one unit in the
//! last place off), and two inference engines never give the same floats.
//! So every number entering the vote is first snapped to a fixed grid:
//! coordinates to [`COORD_STEPS`] steps per pixel, scores to
//! [`SCORE_STEPS`] steps, as integers ([`to_grid`]). A grid value is written
//! as the nearest float to `steps / STEPS` ([`from_grid`]): a decimal of at
//! most a dozen digits, which any JSON reader reads back to the same float,
//! and snapping it again gives the same integer.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A detection as workers report it and the vote returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Detection {
    pub class_id: u32,
    pub label: String,
    pub score: f64,
    /// `[x1, y1, x2, y2]` in pixels of the original image.
    #[serde(rename = "box")]
    pub bbox: [f64; 4],
}

impl Detection {
    /// True when every number is finite and the box is not inverted.
    pub fn is_well_formed(&self) -> bool {
        let [x1, y1, x2, y2] = self.bbox;
        self.score.is_finite() && self.bbox.iter().all(|v| v.is_finite()) && x2 >= x1 && y2 >= y1
    }
}

/// Steps per pixel of the coordinate grid (1/100 pixel).
pub const COORD_STEPS: f64 = 100.0;

/// Steps of the score grid (1/10,000).
pub const SCORE_STEPS: f64 = 10_000.0;

/// The largest coordinate magnitude, in pixels, the grid holds; a detection
/// beyond it is garbage to the vote. Grid coordinates then stay below 2^37:
/// exact as floats, and sums of two are exact in `i64`.
pub const MAX_COORD: f64 = 1.0e9;

/// `x` on a grid of `steps` per unit, rounded to the nearest step (halves
/// away from zero); saturating, NaN to 0 (such values are garbage anyway).
pub fn to_grid(x: f64, steps: f64) -> i64 {
    (x * steps).round() as i64
}

/// The float written for `q` steps of a grid of `steps` per unit: the
/// nearest float to the decimal `q / steps` (one correctly rounded division
/// of two exact integers), so `to_grid(from_grid(q, s), s) == q`.
pub fn from_grid(q: i64, steps: f64) -> f64 {
    q as f64 / steps
}

impl Detection {
    /// This detection with its score and coordinates snapped to the grid.
    pub fn on_grid(&self) -> Detection {
        Detection {
            class_id: self.class_id,
            label: self.label.clone(),
            score: from_grid(to_grid(self.score, SCORE_STEPS), SCORE_STEPS),
            bbox: self
                .bbox
                .map(|v| from_grid(to_grid(v, COORD_STEPS), COORD_STEPS)),
        }
    }

    /// True when every coordinate lies within [`MAX_COORD`] pixels.
    pub fn fits_grid(&self) -> bool {
        self.bbox.iter().all(|v| v.abs() <= MAX_COORD)
    }
}

/// Intersection over union of two `[x1, y1, x2, y2]` boxes; 0 when both are empty.
pub fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let ix = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iy = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ix * iy;
    let area = |r: &[f64; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_identical_boxes_is_one_and_of_disjoint_is_zero() {
        let a = [0.0, 0.0, 10.0, 10.0];
        assert_eq!(iou(&a, &a), 1.0);
        assert_eq!(iou(&a, &[20.0, 20.0, 30.0, 30.0]), 0.0);
        let half = iou(&a, &[5.0, 0.0, 15.0, 10.0]);
        assert!((half - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(iou(&[1.0, 1.0, 1.0, 1.0], &[1.0, 1.0, 1.0, 1.0]), 0.0);
    }

    #[test]
    fn grid_values_are_written_as_short_decimals_that_read_back_exactly() {
        // A consensus coordinate the float vote published (the mean of an
        // ONNX Runtime and a tract box edge): written "410.83914406482995",
        // read back one unit in the last place lower, so the audit's re-run
        // differed from it. Snapped, it reads back as itself.
        let median: f64 = "410.83914406482995".parse().unwrap();
        let text = serde_json::to_string(&median).unwrap();
        assert_eq!(text, "410.83914406482995");
        let read: f64 = serde_json::from_str(&text).unwrap();
        assert_ne!(
            read.to_bits(),
            median.to_bits(),
            "serde_json reads it exactly now"
        );
        let q = to_grid(median, COORD_STEPS);
        assert_eq!(q, 41084);
        let g = from_grid(q, COORD_STEPS);
        assert_eq!(serde_json::to_string(&g).unwrap(), "410.84");
        let read: f64 = serde_json::from_str("410.84").unwrap();
        assert_eq!(read.to_bits(), g.to_bits());
        assert_eq!(to_grid(g, COORD_STEPS), q);
    }

    proptest::proptest! {
        #[test]
        fn every_grid_value_survives_json_and_snaps_to_itself(
            q in -100_000_000_000i64..=100_000_000_000i64,
            s in 0i64..=10_000,
        ) {
            for (q, steps) in [(q, COORD_STEPS), (s, SCORE_STEPS)] {
                let g = from_grid(q, steps);
                let read: f64 = serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
                proptest::prop_assert_eq!(read.to_bits(), g.to_bits());
                proptest::prop_assert_eq!(to_grid(g, steps), q);
            }
        }
    }

    #[test]
    fn detection_json_uses_box_field() {
        let d = Detection {
            class_id: 16,
            label: "dog".into(),
            score: 0.9,
            bbox: [1.0, 2.0, 3.0, 4.0],
        };
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["box"][3], 4.0);
        assert!(serde_json::from_str::<Detection>(
            r#"{"class_id":1,"label":"x","score":0.5,"box":[0,0,1,1],"extra":1}"#
        )
        .is_err());
    }
}
