//! One detected object, in original-image pixels, and the IoU of two boxes.

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
