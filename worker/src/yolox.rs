//! YOLOX pre- and post-processing, as assets/README.md specifies.
//!
//! Pre: letterbox the RGB image into the model's square input (Pillow's
//! bilinear resize, reproduced in fixed point so a worker matches the Python
//! reference), canvas 114, BGR, float 0..255, NCHW. Post: decode the grid,
//! score = objectness x class, keep > 0.3, scale back, clip, class-wise NMS.
//!
//! Both halves are written for speed: the resize writes straight into the
//! NCHW planes, and only anchors above the threshold are decoded.

use tally_protocol::{iou, labels, Detection};

/// Detections scoring at or below this are dropped.
pub const SCORE_THRESHOLD: f32 = 0.3;
/// Within one class, a box overlapping a better one by more than this is dropped.
pub const NMS_IOU: f64 = 0.45;
/// Grey of the letterbox padding.
pub const FILL: u8 = 114;
/// The strides of YOLOX's three output levels.
pub const STRIDES: [usize; 3] = [8, 16, 32];

/// Fixed-point precision of Pillow's 8-bit resampler (`PRECISION_BITS`).
const PRECISION_BITS: u32 = 32 - 8 - 2;
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// How an original image sits in the model's square input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    /// Original image size in pixels.
    pub width: u32,
    pub height: u32,
    /// Side of the model input (416 for YOLOX-Nano).
    pub size: usize,
    /// `min(size / width, size / height)`.
    pub scale: f64,
    /// The resized image, pasted at the top-left: `(int(width * scale), int(height * scale))`.
    pub resized: (usize, usize),
}

impl Letterbox {
    /// The geometry for a `width x height` image and a `size x size` input.
    pub fn new(width: u32, height: u32, size: usize) -> Self {
        let scale = (size as f64 / width as f64).min(size as f64 / height as f64);
        // Truncation as Python's int(); at least one pixel for extreme aspect ratios.
        let fit = |v: u32| ((v as f64 * scale) as usize).clamp(1, size);
        Letterbox {
            width,
            height,
            size,
            scale,
            resized: (fit(width), fit(height)),
        }
    }

    /// Number of floats of the NCHW input: `3 * size * size`.
    pub fn input_len(&self) -> usize {
        3 * self.size * self.size
    }
}

/// Letterboxes a packed RGB8 image (`rgb.len() == 3 * width * height`) into
/// `out` (`3 * size * size` floats, planes B, G, R).
pub fn letterbox_into(rgb: &[u8], lb: &Letterbox, out: &mut [f32]) {
    let (w, h) = (lb.width as usize, lb.height as usize);
    let (ow, oh) = lb.resized;
    let s = lb.size;
    assert_eq!(
        rgb.len(),
        3 * w * h,
        "rgb buffer does not match the image size"
    );
    assert_eq!(
        out.len(),
        lb.input_len(),
        "output buffer does not match the input size"
    );

    let horiz = Coeffs::new(w, ow);
    let vert = Coeffs::new(h, oh);
    // Pillow resizes horizontally first, only the rows the vertical pass reads.
    let first = vert.bounds[0].0;
    let (last_start, last_len) = vert.bounds[oh - 1];
    let rows = last_start + last_len - first;
    let mut tmp = vec![0u8; rows * ow * 3];
    for (src, dst) in rgb
        .chunks_exact(w * 3)
        .skip(first)
        .zip(tmp.chunks_exact_mut(ow * 3))
    {
        horizontal(src, dst, &horiz);
    }

    let fill = FILL as f32;
    let (b_plane, rest) = out.split_at_mut(s * s);
    let (g_plane, r_plane) = rest.split_at_mut(s * s);
    let mut acc = vec![0i32; ow * 3];
    for (y, ((b_row, g_row), r_row)) in b_plane
        .chunks_exact_mut(s)
        .zip(g_plane.chunks_exact_mut(s))
        .zip(r_plane.chunks_exact_mut(s))
        .enumerate()
    {
        if y >= oh {
            b_row.fill(fill);
            g_row.fill(fill);
            r_row.fill(fill);
            continue;
        }
        acc.fill(HALF);
        let (start, n) = vert.bounds[y];
        let taps = &vert.k[y * vert.ksize..y * vert.ksize + n];
        let src_rows = tmp[(start - first) * ow * 3..].chunks_exact(ow * 3);
        for (row, &k) in src_rows.zip(taps) {
            // Cannot overflow (255 * 2^22 at most); wrapping keeps the loop
            // vectorised under the release profile's overflow checks.
            for (a, &p) in acc.iter_mut().zip(row) {
                *a = a.wrapping_add((p as i32).wrapping_mul(k));
            }
        }
        for (((px, b), g), r) in acc
            .chunks_exact(3)
            .zip(b_row.iter_mut())
            .zip(g_row.iter_mut())
            .zip(r_row.iter_mut())
        {
            *r = clip8(px[0]) as f32;
            *g = clip8(px[1]) as f32;
            *b = clip8(px[2]) as f32;
        }
        b_row[ow..].fill(fill);
        g_row[ow..].fill(fill);
        r_row[ow..].fill(fill);
    }
}

/// Letterboxes into a fresh buffer; see [`letterbox_into`].
pub fn letterbox(rgb: &[u8], width: u32, height: u32, size: usize) -> (Vec<f32>, Letterbox) {
    let lb = Letterbox::new(width, height, size);
    let mut out = vec![0.0; lb.input_len()];
    letterbox_into(rgb, &lb, &mut out);
    (out, lb)
}

/// Pillow's bilinear filter coefficients for one axis (`precompute_coeffs`
/// with the support scaled by the reduction factor, i.e. antialiased when
/// downscaling), normalised to fixed point as `normalize_coeffs_8bpc` does.
struct Coeffs {
    /// Per output pixel: first input pixel and number of taps.
    bounds: Vec<(usize, usize)>,
    /// `ksize` taps per output pixel, the unused ones zero.
    k: Vec<i32>,
    ksize: usize,
}

impl Coeffs {
    fn new(in_size: usize, out_size: usize) -> Self {
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = filterscale; // bilinear support is 1
        let ksize = support.ceil() as usize * 2 + 1;
        let mut bounds = Vec::with_capacity(out_size);
        let mut k = vec![0i32; out_size * ksize];
        let mut w = vec![0f64; ksize];
        for (xx, taps) in k.chunks_exact_mut(ksize).enumerate() {
            let center = (xx as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
            let n = (xmax - xmin).max(0) as usize;
            let mut sum = 0.0;
            for (x, wx) in w[..n].iter_mut().enumerate() {
                let t = (((x as i64 + xmin) as f64 - center + 0.5) / filterscale).abs();
                *wx = if t < 1.0 { 1.0 - t } else { 0.0 };
                sum += *wx;
            }
            for (tap, wx) in taps.iter_mut().zip(&w[..n]) {
                let norm = if sum != 0.0 { wx / sum } else { *wx };
                *tap = (0.5 + norm * (1u32 << PRECISION_BITS) as f64) as i32;
            }
            bounds.push((xmin as usize, n));
        }
        Coeffs { bounds, k, ksize }
    }
}

/// One row of the horizontal pass, interleaved RGB in and out.
fn horizontal(src: &[u8], dst: &mut [u8], c: &Coeffs) {
    for ((out, &(start, n)), taps) in dst
        .chunks_exact_mut(3)
        .zip(&c.bounds)
        .zip(c.k.chunks_exact(c.ksize))
    {
        let (mut r, mut g, mut b) = (HALF, HALF, HALF);
        for (px, &k) in src[start * 3..(start + n) * 3].chunks_exact(3).zip(taps) {
            r = r.wrapping_add((px[0] as i32).wrapping_mul(k));
            g = g.wrapping_add((px[1] as i32).wrapping_mul(k));
            b = b.wrapping_add((px[2] as i32).wrapping_mul(k));
        }
        out[0] = clip8(r);
        out[1] = clip8(g);
        out[2] = clip8(b);
    }
}

#[inline(always)]
fn clip8(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Number of anchor rows YOLOX outputs for a `size x size` input.
pub fn anchor_count(size: usize) -> usize {
    STRIDES.iter().map(|s| (size / s) * (size / s)).sum()
}

/// Turns the raw output (`anchor_count(size)` rows of `cx, cy, w, h, obj,
/// classes...`) into detections in original-image pixels, NMS applied,
/// best first. `row_len` is `5 + number of classes`.
pub fn decode(output: &[f32], row_len: usize, lb: &Letterbox) -> Vec<Detection> {
    assert!(row_len > 5, "a YOLOX row has 5 + classes values");
    assert_eq!(
        output.len(),
        anchor_count(lb.size) * row_len,
        "output does not match the input size"
    );
    let mut rows = output.chunks_exact(row_len);
    let mut candidates = Vec::new();
    for stride in STRIDES {
        let n = lb.size / stride;
        for gy in 0..n {
            for (gx, row) in (0..n).zip(rows.by_ref()) {
                // Class scores are probabilities (<= 1): a weak objectness cannot win.
                let obj = row[4];
                if obj <= SCORE_THRESHOLD {
                    continue;
                }
                // The first maximal obj * cls, as numpy's argmax over the products.
                let (mut class, mut score) = (0, f32::NEG_INFINITY);
                for (c, &p) in row[5..].iter().enumerate() {
                    let s = obj * p;
                    if s > score {
                        (class, score) = (c, s);
                    }
                }
                if score <= SCORE_THRESHOLD {
                    continue;
                }
                let stride = stride as f32;
                let cx = (row[0] + gx as f32) * stride;
                let cy = (row[1] + gy as f32) * stride;
                let w = row[2].exp() * stride;
                let h = row[3].exp() * stride;
                let scaled = |v: f32, max: u32| (v as f64 / lb.scale).clamp(0.0, max as f64);
                let bbox = [
                    scaled(cx - w / 2.0, lb.width),
                    scaled(cy - h / 2.0, lb.height),
                    scaled(cx + w / 2.0, lb.width),
                    scaled(cy + h / 2.0, lb.height),
                ];
                if bbox.iter().all(|v| v.is_finite()) {
                    candidates.push(Detection {
                        class_id: class as u32,
                        label: labels::label(class as u32).to_string(),
                        score: score as f64,
                        bbox,
                    });
                }
            }
        }
    }
    nms(candidates, NMS_IOU)
}

/// Class-wise greedy non-maximum suppression: best score first, a box is
/// dropped when it overlaps a kept box of its class by more than `threshold`.
pub fn nms(mut candidates: Vec<Detection>, threshold: f64) -> Vec<Detection> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::with_capacity(candidates.len());
    for c in candidates {
        let suppressed = kept
            .iter()
            .any(|k| k.class_id == c.class_id && iou(&k.bbox, &c.bbox) > threshold);
        if !suppressed {
            kept.push(c);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(class_id: u32, score: f64, bbox: [f64; 4]) -> Detection {
        Detection {
            class_id,
            label: labels::label(class_id).into(),
            score,
            bbox,
        }
    }

    #[test]
    fn letterbox_geometry_follows_the_python_recipe() {
        let lb = Letterbox::new(768, 576, 416);
        assert_eq!(lb.scale, 416.0 / 768.0);
        // 768 * (416 / 768) is 415.99999999999994 in f64: Python's int() gives 415.
        assert_eq!(lb.resized, ((768.0 * (416.0f64 / 768.0)) as usize, 312));
        let tall = Letterbox::new(100, 400, 416);
        assert_eq!(tall.scale, 1.04);
        assert_eq!(tall.resized, (104, 416));
        assert_eq!(Letterbox::new(4000, 1, 416).resized, (416, 1));
    }

    #[test]
    fn letterbox_pads_with_114_and_writes_bgr_planes() {
        // 2x1 image scaled to 416x208: a red pixel left, a blue one right.
        let rgb = [255, 0, 0, 0, 0, 255];
        let (t, lb) = letterbox(&rgb, 2, 1, 416);
        assert_eq!(lb.resized, (416, 208));
        let px = |c: usize, y: usize, x: usize| t[c * 416 * 416 + y * 416 + x];
        // Leftmost column is pure red: B plane 0, R plane 255.
        assert_eq!((px(0, 0, 0), px(1, 0, 0), px(2, 0, 0)), (0.0, 0.0, 255.0));
        // Rightmost column is pure blue.
        assert_eq!(
            (px(0, 207, 415), px(1, 207, 415), px(2, 207, 415)),
            (255.0, 0.0, 0.0)
        );
        // The middle is a blend; below the image is padding in every plane.
        assert!(px(2, 100, 208) > 0.0 && px(2, 100, 208) < 255.0);
        for c in 0..3 {
            assert_eq!(px(c, 208, 0), 114.0);
            assert_eq!(px(c, 415, 415), 114.0);
        }
    }

    #[test]
    fn letterbox_of_an_exact_fit_is_the_identity() {
        let rgb: Vec<u8> = (0..416 * 416 * 3).map(|i| (i % 251) as u8).collect();
        let (t, lb) = letterbox(&rgb, 416, 416, 416);
        assert_eq!(lb.resized, (416, 416));
        for (i, px) in rgb.chunks_exact(3).enumerate() {
            assert_eq!(t[i], px[2] as f32);
            assert_eq!(t[416 * 416 + i], px[1] as f32);
            assert_eq!(t[2 * 416 * 416 + i], px[0] as f32);
        }
    }

    #[test]
    fn downscaling_averages_like_pillow() {
        // Pillow: Image.new('L',(4,1)) with 0,100,200,255 resized to (2,1)
        // BILINEAR gives 71, 209 (antialiased: each output sees 3 inputs).
        let c = Coeffs::new(4, 2);
        let row = [0u8, 100, 200, 255];
        let out: Vec<u8> = c
            .bounds
            .iter()
            .zip(c.k.chunks_exact(c.ksize))
            .map(|(&(s, n), k)| {
                let acc: i32 = HALF
                    + row[s..s + n]
                        .iter()
                        .zip(k)
                        .map(|(&p, &k)| p as i32 * k)
                        .sum::<i32>();
                clip8(acc)
            })
            .collect();
        assert_eq!(out, [71, 209]);
    }

    /// An output tensor for a 64x64 input (64 + 16 + 4 anchors), 2 classes, all empty.
    fn empty_output() -> Vec<f32> {
        vec![0.0; anchor_count(64) * 7]
    }

    #[test]
    fn decode_places_one_anchor_exactly() {
        let lb = Letterbox::new(128, 64, 64); // scale 0.5, image occupies 64x32
        let mut out = empty_output();
        // Stride 16 level starts after the 8x8 grid; cell (gx 2, gy 1) is row 64 + 1*4 + 2.
        let row = &mut out[(64 + 4 + 2) * 7..][..7];
        row.copy_from_slice(&[0.5, 0.25, 1f32.ln(), 0.5f32.ln(), 0.9, 0.2, 0.8]);
        let dets = decode(&out, 7, &lb);
        assert_eq!(dets.len(), 1);
        let d = &dets[0];
        assert_eq!(d.class_id, 1);
        assert_eq!(d.label, "bicycle");
        assert!((d.score - 0.72).abs() < 1e-6);
        // cx = 2.5 * 16 = 40, cy = 1.25 * 16 = 20, w = 16, h = 8 -> /0.5
        let want = [64.0, 32.0, 96.0, 48.0];
        for (got, want) in d.bbox.iter().zip(want) {
            assert!((got - want).abs() < 1e-4, "{:?}", d.bbox);
        }
    }

    #[test]
    fn decode_drops_scores_at_the_threshold_and_clips_to_the_image() {
        let lb = Letterbox::new(64, 64, 64);
        let mut out = empty_output();
        // Anchor 0: 0.6 * 0.5 = 0.3 exactly-ish, not above the threshold.
        out[..7].copy_from_slice(&[0.0, 0.0, 0.0, 0.0, 0.6, 0.5, 0.0]);
        // Last anchor (stride 32, cell 1,1): a huge box that must be clipped.
        let last = out.len() - 7;
        out[last..].copy_from_slice(&[0.5, 0.5, 3.0, 3.0, 1.0, 0.0, 0.9]);
        let dets = decode(&out, 7, &lb);
        assert_eq!(dets.len(), 1);
        assert_eq!(dets[0].bbox, [0.0, 0.0, 64.0, 64.0]);
    }

    #[test]
    fn nms_suppresses_overlaps_within_a_class_only() {
        let a = det(16, 0.9, [0.0, 0.0, 10.0, 10.0]);
        let b = det(16, 0.8, [1.0, 0.0, 11.0, 10.0]); // IoU 0.82 with a
        let c = det(15, 0.7, [1.0, 0.0, 11.0, 10.0]); // same box, other class
        let d = det(16, 0.6, [20.0, 20.0, 30.0, 30.0]); // disjoint
        let kept = nms(vec![d.clone(), b, c.clone(), a.clone()], NMS_IOU);
        assert_eq!(kept, vec![a, c, d]);
    }

    #[test]
    fn nms_keeps_boxes_overlapping_at_most_the_threshold() {
        let a = det(0, 0.9, [0.0, 0.0, 10.0, 10.0]);
        // IoU = 50 / 150 = 0.333: kept.
        let b = det(0, 0.5, [5.0, 0.0, 15.0, 10.0]);
        assert_eq!(nms(vec![b.clone(), a.clone()], NMS_IOU), vec![a, b]);
    }
}
