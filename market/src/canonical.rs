//! The one encoding every input is served in. Whatever a client uploads
//! (JPEG, PNG, WebP, BMP, with or without metadata) and whatever the market
//! makes for a spot check, workers receive the same form: the decoded
//! pixels as 8-bit RGB, written as a PNG with fixed settings and no
//! ancillary chunks. So the bytes of an input say nothing about where it
//! came from, only what its pixels are.

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{DynamicImage, ImageEncoder, RgbImage};

/// The canonical bytes of an image: RGB8 PNG, fast compression, adaptive filter.
pub fn encode(img: &DynamicImage) -> Vec<u8> {
    encode_rgb(&img.to_rgb8())
}

/// [`encode`] for pixels already in RGB8.
pub fn encode_rgb(rgb: &RgbImage) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgb.as_raw().len() / 2 + 64);
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
        .write_image(
            rgb.as_raw(),
            rgb.width(),
            rgb.height(),
            image::ExtendedColorType::Rgb8,
        )
        .expect("encoding RGB8 pixels into a Vec cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(24, 16, |x, y| {
            image::Rgb([x as u8 * 10, y as u8 * 15, (x * y) as u8])
        }))
    }

    #[test]
    fn same_pixels_same_bytes_whatever_the_upload() {
        let img = sample();
        let mut png_upload = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png_upload, image::ImageFormat::Png)
            .unwrap();
        let decoded = image::load_from_memory(png_upload.get_ref()).unwrap();
        assert_eq!(encode(&decoded), encode(&img));
        // RGBA input with an opaque alpha becomes the same RGB bytes.
        let rgba = DynamicImage::ImageRgba8(img.to_rgba8());
        assert_eq!(encode(&rgba), encode(&img));
    }

    #[test]
    fn the_canonical_form_holds_only_the_pixels() {
        let bytes = encode(&sample());
        let back = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!(back, sample().to_rgb8());
        // Chunks: IHDR, IDAT(s), IEND and nothing else.
        let mut at = 8;
        while at + 8 <= bytes.len() {
            let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            let kind = &bytes[at + 4..at + 8];
            assert!(matches!(kind, b"IHDR" | b"IDAT" | b"IEND"), "{kind:?}");
            at += 12 + len;
        }
        assert_eq!(at, bytes.len());
    }
}
