//! What the bench's images show: the client's generated inputs, the golden
//! set of spot checks, and the simulated detector's answers, all pure
//! functions of an image's decoded pixels ([`truth`] and what the workers
//! derive from it).

use tally_protocol::{Detection, Sha256Hex};

use super::rng::{key, Rng};

/// Side of the square input images, in pixels.
pub const IMAGE_SIDE: u32 = 64;
/// Images in the golden set of spot checks.
pub const GOLDEN_ITEMS: usize = 20;
/// Golden image `j` is generated as input `GOLDEN_BASE + j`: never a client's.
const GOLDEN_BASE: usize = 1 << 30;

fn detection(class_id: u32, score: f64, bbox: [f64; 4]) -> Detection {
    Detection {
        class_id,
        label: tally_protocol::labels::label(class_id).to_string(),
        score,
        bbox,
    }
}

/// What an image shows, as a number: the first 64 bits of the sha256 of its
/// size and decoded RGB pixels, so the same picture in other bytes (a spot
/// check's variant) is the same image. Bytes that are no image: their sha256.
pub(super) fn pixels_key(bytes: &[u8]) -> u64 {
    match image::load_from_memory(bytes) {
        Ok(img) => {
            let rgb = img.into_rgb8();
            let mut buf = Vec::with_capacity(8 + rgb.as_raw().len());
            buf.extend_from_slice(&rgb.width().to_le_bytes());
            buf.extend_from_slice(&rgb.height().to_le_bytes());
            buf.extend_from_slice(rgb.as_raw());
            key(&Sha256Hex::of(&buf))
        }
        Err(_) => key(&Sha256Hex::of(bytes)),
    }
}

/// The right detections of an image: 1-3 objects of distinct classes, boxes
/// 12-30 px inside the [`IMAGE_SIDE`] square, scores 0.5-0.95; a pure
/// function of the image's decoded pixels ([`pixels_key`]). The bench's
/// golden set of spot checks is answered with it.
pub fn truth(bytes: &[u8]) -> Vec<Detection> {
    let mut r = Rng::new(&[pixels_key(bytes)]);
    let side = f64::from(IMAGE_SIDE);
    let n = 1 + r.below(3) as usize;
    let mut classes: Vec<u32> = Vec::with_capacity(n);
    while classes.len() < n {
        let c = r.below(80) as u32;
        if !classes.contains(&c) {
            classes.push(c);
        }
    }
    classes
        .into_iter()
        .map(|c| {
            let (w, h) = (r.range(12.0, 30.0), r.range(12.0, 30.0));
            let (x, y) = (r.range(0.0, side - w), r.range(0.0, side - h));
            detection(c, r.range(0.5, 0.95), [x, y, x + w, y + h])
        })
        .collect()
}

/// The colluders' shared wrong answer: the truth with every class shifted
/// by one and every box moved 20 px sideways (kept inside the image).
pub(super) fn colluding(bytes: &[u8]) -> Vec<Detection> {
    let side = f64::from(IMAGE_SIDE);
    truth(bytes)
        .into_iter()
        .map(|d| {
            let dx = if d.bbox[2] + 20.0 <= side {
                20.0
            } else {
                -20.0
            };
            let [x1, y1, x2, y2] = d.bbox;
            let bbox = [
                (x1 + dx).clamp(0.0, side),
                y1,
                (x2 + dx).clamp(0.0, side),
                y2,
            ];
            detection((d.class_id + 1) % 80, d.score, bbox)
        })
        .collect()
}

/// The truth as one honest worker reports it: ±0.5 px and ±0.005 of noise.
pub(super) fn honest(bytes: &[u8], r: &mut Rng) -> Vec<Detection> {
    let side = f64::from(IMAGE_SIDE);
    truth(bytes)
        .into_iter()
        .map(|d| {
            let bbox = d.bbox.map(|v| (v + r.range(-0.5, 0.5)).clamp(0.0, side));
            detection(d.class_id, d.score + r.range(-0.005, 0.005), bbox)
        })
        .collect()
}

/// 1-3 random boxes with random classes and scores.
pub(super) fn random(r: &mut Rng) -> Vec<Detection> {
    let side = f64::from(IMAGE_SIDE);
    (0..1 + r.below(3))
        .map(|_| {
            let (w, h) = (r.range(4.0, 40.0), r.range(4.0, 40.0));
            let (x, y) = (r.range(0.0, side - w), r.range(0.0, side - h));
            detection(r.below(80) as u32, r.range(0.4, 0.99), [x, y, x + w, y + h])
        })
        .collect()
}

/// Input `i` of the client: a PNG of [`IMAGE_SIDE`] square, a gradient in
/// seeded colours, with `i` and the seed written into its first row so that
/// every input is distinct bytes.
pub(super) fn input_png(seed: u64, i: usize) -> Vec<u8> {
    let mut r = Rng::new(&[seed, i as u64, 0x1a9e]);
    let (a, b) = (
        [r.below(256), r.below(256), r.below(256)],
        [r.below(256), r.below(256), r.below(256)],
    );
    let tag: Vec<u8> = (i as u64)
        .to_le_bytes()
        .into_iter()
        .chain(seed.to_le_bytes())
        .collect();
    let side = IMAGE_SIDE;
    let img = image::RgbImage::from_fn(side, side, |x, y| {
        if y == 0 && (x as usize) < tag.len() {
            let t = tag[x as usize];
            return image::Rgb([t, t, t]);
        }
        let t = u64::from(x + y);
        let mix = |k: usize| {
            ((a[k] * (2 * u64::from(side) - t) + b[k] * t) / (2 * u64::from(side))) as u8
        };
        image::Rgb([mix(0), mix(1), mix(2)])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png encodes");
    out.into_inner()
}

/// The golden set of spot checks for `model`: [`GOLDEN_ITEMS`] generated
/// images that are none of the client's.
pub(super) fn golden(seed: u64, model: &[u8]) -> tally_market::checks::Golden {
    let hash = Sha256Hex::of(model);
    let items = (0..GOLDEN_ITEMS)
        .map(|j| {
            let bytes = input_png(seed, GOLDEN_BASE + j);
            let pixels = image::load_from_memory(&bytes)
                .expect("generated images decode")
                .into_rgb8();
            tally_market::checks::GoldenItem {
                model: hash.clone(),
                name: format!("golden-{j}"),
                pixels: std::sync::Arc::new(pixels),
            }
        })
        .collect();
    tally_market::checks::Golden {
        models: vec![model.to_vec()],
        items,
    }
}

/// The market's detector in the bench: the simulated one, [`truth`].
pub(super) fn oracle() -> tally_market::checks::OracleRef {
    tally_market::checks::OracleRef::from_fn(truth)
}

#[cfg(test)]
mod tests {
    use tally_protocol::vote::{agrees, VoteParams};

    use super::*;

    #[test]
    fn honest_answers_agree_with_the_truth_and_sabotage_does_not() {
        let p = VoteParams::default();
        for i in 0..200 {
            let png = input_png(7, i);
            let t = truth(&png);
            assert!((1..=3).contains(&t.len()));
            assert_eq!(t, truth(&png), "the truth is deterministic");
            let same = tally_market::canonical::encode(&image::load_from_memory(&png).unwrap());
            assert_eq!(t, truth(&same), "the truth is a function of the pixels");
            assert_eq!(colluding(&same), colluding(&png));
            let mut r = Rng::new(&[i as u64]);
            assert!(agrees(&p, &t, &honest(&png, &mut r)));
            assert!(!agrees(&p, &t, &colluding(&png)));
            assert!(!agrees(&p, &t, &[]));
            assert!(agrees(&p, &colluding(&png), &colluding(&png)));
        }
    }

    #[test]
    fn inputs_are_distinct_valid_images() {
        let a = input_png(1, 0);
        assert_ne!(a, input_png(1, 1));
        assert_ne!(a, input_png(2, 0));
        let img = image::load_from_memory(&a).unwrap();
        assert_eq!((img.width(), img.height()), (IMAGE_SIDE, IMAGE_SIDE));
    }

    #[test]
    fn the_golden_set_is_none_of_the_clients_inputs() {
        let model = b"model".to_vec();
        let g = golden(3, &model);
        assert_eq!(g.models, vec![model.clone()]);
        assert_eq!(g.items.len(), GOLDEN_ITEMS);
        let clients: std::collections::HashSet<u64> =
            (0..1000).map(|i| pixels_key(&input_png(3, i))).collect();
        for item in &g.items {
            assert_eq!(item.model, Sha256Hex::of(&model));
            let bytes = tally_market::canonical::encode_rgb(&item.pixels);
            assert!(!clients.contains(&pixels_key(&bytes)));
            assert_eq!(item.pixels.dimensions(), (IMAGE_SIDE, IMAGE_SIDE));
        }
    }
}
