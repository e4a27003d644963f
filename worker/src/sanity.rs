//! What a worker checks in detections before it signs them.
//!
//! The detections come from a model a stranger wrote, run in a child that
//! may have been subverted: they are input like any other. A result with
//! too many detections, a non-finite number, a box outside the image or a
//! class the labels do not name is reported as a failed task, never signed.

use tally_protocol::{labels, Detection};

/// The most detections one result may carry.
pub const MAX_DETECTIONS: usize = 300;

/// Why detections cannot be signed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Insane {
    #[error("the model returned {0} detections; at most {MAX_DETECTIONS} are accepted")]
    TooMany(usize),
    #[error("detection {index} has a non-finite score or box")]
    NotFinite { index: usize },
    #[error("detection {index} has score {score}, outside 0..=1")]
    Score { index: usize, score: f64 },
    #[error("detection {index} has class {class_id}, which no label names")]
    Class { index: usize, class_id: u32 },
    #[error("detection {index} has box {bbox:?}, not inside the {width}x{height} image")]
    Box {
        index: usize,
        bbox: [f64; 4],
        width: u32,
        height: u32,
    },
}

/// Checks `detections` for an image of `width` x `height` pixels.
pub fn check(detections: &[Detection], width: u32, height: u32) -> Result<(), Insane> {
    if detections.len() > MAX_DETECTIONS {
        return Err(Insane::TooMany(detections.len()));
    }
    let (w, h) = (f64::from(width), f64::from(height));
    for (index, d) in detections.iter().enumerate() {
        if !d.score.is_finite() || !d.bbox.iter().all(|v| v.is_finite()) {
            return Err(Insane::NotFinite { index });
        }
        if !(0.0..=1.0).contains(&d.score) {
            return Err(Insane::Score {
                index,
                score: d.score,
            });
        }
        if labels::label(d.class_id) == "unknown" || d.label != labels::label(d.class_id) {
            return Err(Insane::Class {
                index,
                class_id: d.class_id,
            });
        }
        let [x1, y1, x2, y2] = d.bbox;
        let inside = 0.0 <= x1 && x1 <= x2 && x2 <= w && 0.0 <= y1 && y1 <= y2 && y2 <= h;
        if !inside {
            return Err(Insane::Box {
                index,
                bbox: d.bbox,
                width,
                height,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dog(bbox: [f64; 4]) -> Detection {
        Detection {
            class_id: 16,
            label: "dog".into(),
            score: 0.8,
            bbox,
        }
    }

    #[test]
    fn honest_detections_pass() {
        assert_eq!(check(&[dog([0.0, 0.0, 640.0, 480.0])], 640, 480), Ok(()));
        assert_eq!(check(&[], 1, 1), Ok(()));
    }

    #[test]
    fn every_kind_of_nonsense_is_caught() {
        let many = vec![dog([1.0, 1.0, 2.0, 2.0]); MAX_DETECTIONS + 1];
        assert_eq!(
            check(&many, 10, 10),
            Err(Insane::TooMany(MAX_DETECTIONS + 1))
        );
        assert!(matches!(
            check(&[dog([f64::NAN, 0.0, 1.0, 1.0])], 10, 10),
            Err(Insane::NotFinite { index: 0 })
        ));
        assert!(matches!(
            check(&[dog([0.0, 0.0, f64::INFINITY, 1.0])], 10, 10),
            Err(Insane::NotFinite { .. })
        ));
        let mut loud = dog([0.0, 0.0, 1.0, 1.0]);
        loud.score = 7.5;
        assert!(matches!(check(&[loud], 10, 10), Err(Insane::Score { .. })));
        let mut odd = dog([0.0, 0.0, 1.0, 1.0]);
        odd.class_id = 4242;
        odd.label = "unknown".into();
        assert!(matches!(check(&[odd], 10, 10), Err(Insane::Class { .. })));
        let mut mislabelled = dog([0.0, 0.0, 1.0, 1.0]);
        mislabelled.label = "S3CRET".into();
        assert!(matches!(
            check(&[mislabelled], 10, 10),
            Err(Insane::Class { .. })
        ));
        for bbox in [
            [-1.0, 0.0, 5.0, 5.0],
            [0.0, 0.0, 11.0, 5.0],
            [0.0, 0.0, 5.0, 10.5],
            [6.0, 0.0, 5.0, 5.0],
            [1e9, 1e9, 1e9, 1e9],
        ] {
            assert!(
                matches!(check(&[dog(bbox)], 10, 10), Err(Insane::Box { .. })),
                "{bbox:?}"
            );
        }
    }
}
