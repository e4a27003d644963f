//! Detections drawn on the image, so a person can check them at a glance.
//!
//! Each box is a 2-3 px rectangle in its class's colour with a filled tag
//! reading `dog 0.83`, set in a small built-in 5x7 bitmap font (no font
//! files needed).

use std::path::Path;

use image::{Rgb, RgbImage};
use tally_protocol::Detection;

use crate::detector::decode_image;
use crate::Error;

/// Draws `detections` onto `image` in place.
pub fn draw_detections(image: &mut RgbImage, detections: &[Detection]) {
    let short_side = image.width().min(image.height());
    let thickness = if short_side >= 600 { 3 } else { 2 };
    let scale = (short_side / 300).clamp(1, 3) as i64;
    // Lowest score first, so the best boxes end up on top; then every tag
    // over all the boxes, the best placed first, none over another.
    let mut order: Vec<&Detection> = detections.iter().collect();
    order.sort_by(|a, b| a.score.total_cmp(&b.score));
    for d in &order {
        let colour = class_colour(d.class_id);
        let [x1, y1, x2, y2] = d.bbox.map(|v| v.round() as i64);
        for t in 0..thickness {
            outline(image, x1 + t, y1 + t, x2 - t, y2 - t, colour);
        }
    }
    let pad = scale;
    let best: Vec<&Detection> = order.iter().rev().copied().collect();
    let texts: Vec<String> = best
        .iter()
        .map(|d| format!("{} {:.2}", d.label, d.score))
        .collect();
    let sizes: Vec<(i64, i64)> = texts
        .iter()
        .map(|t| (text_width(t, scale) + 2 * pad, GLYPH_H * scale + 2 * pad))
        .collect();
    let boxes: Vec<[i64; 4]> = best
        .iter()
        .map(|d| d.bbox.map(|v| v.round() as i64))
        .collect();
    let tags = place_tags(
        &boxes,
        &sizes,
        (image.width() as i64, image.height() as i64),
    );
    for (i, d) in best.iter().enumerate() {
        let colour = class_colour(d.class_id);
        let (text, (tag_w, tag_h), [tag_x, tag_y, ..]) = (&texts[i], sizes[i], tags[i]);
        fill(image, tag_x, tag_y, tag_x + tag_w, tag_y + tag_h, colour);
        let ink = if luminance(colour) > 140.0 {
            Rgb([0, 0, 0])
        } else {
            Rgb([255, 255, 255])
        };
        draw_text(image, text, tag_x + pad, tag_y + pad, scale, ink);
    }
}

/// Where each box's tag goes (`[x1, y1, x2, y2]`), for tags of `sizes` on
/// an image of `dims`: above the box's top-left corner when there is room,
/// else just inside it, else below the box; the first of these (and then
/// further down, a tag's height at a time) that overlaps no tag placed
/// before, so two boxes sharing a corner never hide each other's label.
/// Tags are placed in the order given.
pub fn place_tags(boxes: &[[i64; 4]], sizes: &[(i64, i64)], dims: (i64, i64)) -> Vec<[i64; 4]> {
    let (w, h) = dims;
    let mut placed: Vec<[i64; 4]> = Vec::with_capacity(boxes.len());
    for (b, &(tw, th)) in boxes.iter().zip(sizes) {
        let [x1, y1, _, y2] = *b;
        let x = x1.clamp(0, (w - tw).max(0));
        let fit = |y: i64| y.clamp(0, (h - th).max(0));
        let overlaps = |r: &[i64; 4]| {
            placed
                .iter()
                .any(|p| r[0] < p[2] && p[0] < r[2] && r[1] < p[3] && p[1] < r[3])
        };
        let mut candidates = vec![y1 - th, y1, y2];
        candidates.retain(|&y| y >= 0 && y + th <= h);
        candidates.extend((1..=8).map(|k| y1.max(0) + k * th));
        let rect = candidates
            .into_iter()
            .map(|y| {
                let y = fit(y);
                [x, y, x + tw, y + th]
            })
            .find(|r| !overlaps(r))
            .unwrap_or_else(|| {
                let y = fit(y1 - th);
                [x, y, x + tw, y + th]
            });
        placed.push(rect);
    }
    placed
}

/// Decodes `image_bytes`, draws `detections` on it and saves it as PNG at `out`.
pub fn save_annotated(
    image_bytes: &[u8],
    detections: &[Detection],
    out: &Path,
) -> Result<(), Error> {
    let mut image = decode_image(image_bytes)?;
    draw_detections(&mut image, detections);
    image
        .save_with_format(out, image::ImageFormat::Png)
        .map_err(|e| match e {
            image::ImageError::IoError(source) => Error::Io {
                path: out.to_path_buf(),
                source,
            },
            other => Error::Encode(other),
        })
}

/// A bright, distinct colour per class (golden-ratio hues).
pub fn class_colour(class_id: u32) -> Rgb<u8> {
    let h = (class_id as f64 * 0.618_033_988_75 + 0.1).fract() * 6.0;
    let (s, v) = (0.85, 0.95);
    let c = v * s;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    let to_u8 = |f: f64| ((f + m) * 255.0).round() as u8;
    Rgb([to_u8(r), to_u8(g), to_u8(b)])
}

fn luminance(c: Rgb<u8>) -> f64 {
    0.299 * c[0] as f64 + 0.587 * c[1] as f64 + 0.114 * c[2] as f64
}

/// Fills `[x0, x1) x [y0, y1)`, clipped to the image.
fn fill(image: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, colour: Rgb<u8>) {
    let (w, h) = (image.width() as i64, image.height() as i64);
    for y in y0.max(0)..y1.min(h) {
        for x in x0.max(0)..x1.min(w) {
            image.put_pixel(x as u32, y as u32, colour);
        }
    }
}

/// A one-pixel rectangle with corners `(x0, y0)` and `(x1, y1)` inclusive.
fn outline(image: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, colour: Rgb<u8>) {
    if x1 < x0 || y1 < y0 {
        return;
    }
    fill(image, x0, y0, x1 + 1, y0 + 1, colour);
    fill(image, x0, y1, x1 + 1, y1 + 1, colour);
    fill(image, x0, y0, x0 + 1, y1 + 1, colour);
    fill(image, x1, y0, x1 + 1, y1 + 1, colour);
}

const GLYPH_W: i64 = 5;
const GLYPH_H: i64 = 7;
/// Horizontal advance: the glyph and one column of space.
const ADVANCE: i64 = GLYPH_W + 1;

fn text_width(text: &str, scale: i64) -> i64 {
    (text.chars().count() as i64 * ADVANCE - 1).max(0) * scale
}

/// Draws `text` with its top-left corner at `(x, y)`, each font pixel `scale` pixels wide.
fn draw_text(image: &mut RgbImage, text: &str, x: i64, y: i64, scale: i64, ink: Rgb<u8>) {
    for (i, ch) in text.chars().enumerate() {
        let gx = x + i as i64 * ADVANCE * scale;
        for (row, bits) in glyph(ch).iter().enumerate() {
            for col in 0..GLYPH_W {
                if bits & (0b10000 >> col) != 0 {
                    let px = gx + col * scale;
                    let py = y + row as i64 * scale;
                    fill(image, px, py, px + scale, py + scale, ink);
                }
            }
        }
    }
}

/// The 5x7 bitmap of `ch`: seven rows, bit 4 the leftmost column.
/// Letters are lower case (upper case maps to them); anything unknown is `?`.
fn glyph(ch: char) -> [u8; 7] {
    match ch.to_ascii_lowercase() {
        'a' => [0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F],
        'b' => [0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E],
        'c' => [0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E],
        'd' => [0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F],
        'e' => [0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E],
        'f' => [0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08],
        'g' => [0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E],
        'h' => [0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11],
        'i' => [0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E],
        'j' => [0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0C],
        'k' => [0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12],
        'l' => [0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'm' => [0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11],
        'n' => [0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11],
        'o' => [0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E],
        'p' => [0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10],
        'q' => [0x00, 0x00, 0x0D, 0x13, 0x0F, 0x01, 0x01],
        'r' => [0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10],
        's' => [0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E],
        't' => [0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06],
        'u' => [0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D],
        'v' => [0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'w' => [0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A],
        'x' => [0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11],
        'y' => [0x00, 0x00, 0x11, 0x11, 0x0F, 0x01, 0x0E],
        'z' => [0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F],
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        ' ' => [0; 7],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        _ => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(class_id: u32, bbox: [f64; 4]) -> Detection {
        Detection {
            class_id,
            label: tally_protocol::labels::label(class_id).into(),
            score: 0.83,
            bbox,
        }
    }

    #[test]
    fn a_box_is_drawn_in_its_class_colour_with_a_tag() {
        let mut img = RgbImage::from_pixel(200, 200, Rgb([10, 10, 10]));
        draw_detections(&mut img, &[det(16, [50.0, 80.0, 150.0, 180.0])]);
        let colour = class_colour(16);
        // The outline, two pixels thick, and the untouched inside.
        assert_eq!(*img.get_pixel(100, 80), colour);
        assert_eq!(*img.get_pixel(100, 81), colour);
        assert_eq!(*img.get_pixel(100, 130), Rgb([10, 10, 10]));
        assert_eq!(*img.get_pixel(150, 130), colour);
        // The tag sits above the box, filled, with text in it.
        let tag: Vec<_> = (50..100)
            .flat_map(|x| (64..80).map(move |y| (x, y)))
            .collect();
        assert!(
            tag.iter()
                .filter(|&&(x, y)| *img.get_pixel(x, y) == colour)
                .count()
                > 300
        );
        assert!(tag.iter().any(|&(x, y)| *img.get_pixel(x, y) != colour));
    }

    #[test]
    fn tags_of_boxes_sharing_a_corner_do_not_overlap() {
        // A cat and a dog whose boxes start at the same point (the cat's
        // tag used to hide under the dog's).
        let boxes = [
            [100, 100, 300, 300],
            [100, 100, 250, 280],
            [102, 98, 200, 200],
        ];
        let tags = place_tags(&boxes, &[(60, 12), (70, 12), (50, 12)], (400, 400));
        for (i, a) in tags.iter().enumerate() {
            for b in &tags[i + 1..] {
                let overlap = a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
                assert!(!overlap, "{a:?} and {b:?} overlap");
            }
        }
        // The first goes above its box, where a lone tag always goes.
        assert_eq!(tags[0], [100, 88, 160, 100]);
        // At the top edge: inside the box.
        assert_eq!(
            place_tags(&[[0, 0, 50, 50]], &[(30, 12)], (60, 60))[0],
            [0, 0, 30, 12]
        );
    }

    #[test]
    fn boxes_at_the_edges_and_outside_do_not_panic() {
        let mut img = RgbImage::new(40, 30);
        draw_detections(
            &mut img,
            &[
                det(0, [0.0, 0.0, 40.0, 30.0]),
                det(1, [-10.0, -10.0, 100.0, 100.0]),
                det(99, [35.0, 25.0, 39.0, 29.0]),
            ],
        );
    }

    #[test]
    fn every_label_character_has_a_glyph() {
        for label in tally_protocol::labels::COCO {
            for ch in format!("{label} 0.123456789").chars() {
                assert!(ch == ' ' || glyph(ch) != [0; 7], "{ch:?}");
                assert!(ch == '?' || glyph(ch) != glyph('?'), "{ch:?}");
            }
        }
    }

    #[test]
    fn classes_get_different_colours() {
        let colours: std::collections::HashSet<_> = (0..80).map(|c| class_colour(c).0).collect();
        assert!(colours.len() >= 75);
    }
}
