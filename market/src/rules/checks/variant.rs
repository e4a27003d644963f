//! Fresh pictures for spot checks: a golden image cropped, maybe mirrored,
//! scaled, its brightness and contrast moved and a little noise added, all
//! at random. No two checks share their pixels, and none has the pixels of
//! a golden image, so a worker can neither look a check up nor recognise
//! one it met before; its answer is whatever the market's own detector
//! says of these pixels ([`super::Oracle`]).

use image::{imageops, Rgb, RgbImage};

/// A uniform draw in `[0, 1)` (the market's randomness).
pub type Draw<'a> = &'a mut dyn FnMut() -> f64;

/// Keeps at least this share of each side when cropping.
const MIN_CROP: f64 = 0.7;
/// Scales to at least this share of the crop.
const MIN_SCALE: f64 = 0.75;
/// Largest brightness shift (of 255) and contrast change.
const MAX_SHIFT: f64 = 14.0;
const MAX_CONTRAST: f64 = 0.12;
/// Per-pixel noise, up to this many levels either way.
const NOISE: i32 = 3;
/// No side of a variant is shorter than this (smaller golden images are kept whole).
const MIN_SIDE: u32 = 32;

/// A fresh variant of `golden`.
pub fn fresh(golden: &RgbImage, draw: Draw<'_>) -> RgbImage {
    let (w, h) = golden.dimensions();
    let side = |full: u32, d: &mut dyn FnMut() -> f64| -> (u32, u32) {
        if full <= MIN_SIDE {
            return (0, full);
        }
        let keep = ((full as f64) * (MIN_CROP + (1.0 - MIN_CROP) * d())).round() as u32;
        let keep = keep.clamp(MIN_SIDE, full);
        let start = ((full - keep) as f64 * d()).floor() as u32;
        (start.min(full - keep), keep)
    };
    let (x, cw) = side(w, draw);
    let (y, ch) = side(h, draw);
    let mut img = imageops::crop_imm(golden, x, y, cw, ch).to_image();
    if draw() < 0.5 {
        imageops::flip_horizontal_in_place(&mut img);
    }
    let scale = MIN_SCALE + (1.0 - MIN_SCALE) * draw();
    let (sw, sh) = (
        ((cw as f64 * scale).round() as u32).max(MIN_SIDE.min(cw)),
        ((ch as f64 * scale).round() as u32).max(MIN_SIDE.min(ch)),
    );
    if (sw, sh) != (cw, ch) {
        img = imageops::resize(&img, sw, sh, imageops::FilterType::Triangle);
    }
    let shift = MAX_SHIFT * (2.0 * draw() - 1.0);
    let contrast = 1.0 + MAX_CONTRAST * (2.0 * draw() - 1.0);
    // Noise from a small generator seeded by the market's randomness.
    let mut state = (draw() * u64::MAX as f64) as u64 | 1;
    for Rgb(px) in img.pixels_mut() {
        for c in px.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state % (2 * NOISE as u64 + 1)) as i32 - NOISE;
            let v = (f64::from(*c) - 128.0) * contrast + 128.0 + shift;
            *c = (v.round() as i32 + noise).clamp(0, 255) as u8;
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden() -> RgbImage {
        RgbImage::from_fn(120, 80, |x, y| {
            Rgb([(x * 2) as u8, (y * 3) as u8, ((x + y) % 256) as u8])
        })
    }

    fn rng(seed: u64) -> impl FnMut() -> f64 {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn variants_never_share_pixels_with_the_golden_image_or_each_other() {
        let g = golden();
        let mut seen = std::collections::HashSet::new();
        for seed in 1..60 {
            let v = fresh(&g, &mut rng(seed));
            assert_ne!(v.as_raw(), g.as_raw());
            let (w, h) = v.dimensions();
            assert!((32..=120).contains(&w) && (32..=80).contains(&h), "{w}x{h}");
            assert!(seen.insert(v.into_raw()), "seed {seed} repeated a variant");
        }
    }

    #[test]
    fn a_variant_keeps_most_of_the_picture() {
        let g = golden();
        let v = fresh(&g, &mut rng(7));
        let (w, h) = v.dimensions();
        assert!(w as f64 >= 120.0 * MIN_CROP * MIN_SCALE - 1.0);
        assert!(h as f64 >= 80.0 * MIN_CROP * MIN_SCALE - 1.0);
    }

    #[test]
    fn tiny_images_are_kept_whole_but_still_changed() {
        let g = RgbImage::from_pixel(16, 16, Rgb([100, 100, 100]));
        let v = fresh(&g, &mut rng(3));
        assert_eq!(v.dimensions(), (16, 16));
        assert_ne!(v.as_raw(), g.as_raw());
    }
}
