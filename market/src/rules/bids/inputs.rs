//! A bid's input images: each decoded off the async runtime, checked
//! against the market's limits, and kept only in its canonical encoding
//! (named by its sha256), stored once whatever the number of bids.

use std::io::Cursor;

use base64::Engine as _;
use tally_protocol::wire::BidRequest;
use tally_protocol::Sha256Hex;

use crate::db::query;
use crate::error::{MarketError, Result};
use crate::Market;

/// A decoded, checked input image, in its canonical bytes.
pub(super) struct Input {
    pub hash: Sha256Hex,
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Decode and check one base64 image and encode it canonically (runs on a
/// blocking thread).
fn decode_input(m_limits: &crate::Limits, index: usize, b64: &str) -> Result<Input> {
    let max_b64 = m_limits.max_image_bytes / 3 * 4 + 4;
    if b64.len() > max_b64 {
        return Err(MarketError::TooLarge(format!(
            "input {index} is larger than {} bytes",
            m_limits.max_image_bytes
        )));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| {
            MarketError::bad(
                "bad_base64",
                format!("input {index} is not valid base64: {e}"),
            )
        })?;
    let undecodable = |e: image::ImageError| {
        MarketError::unprocessable(
            "undecodable_image",
            format!("input {index} is not a decodable image: {e}"),
        )
    };
    let reader = image::ImageReader::new(Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| {
            MarketError::unprocessable("undecodable_image", format!("input {index}: {e}"))
        })?;
    if reader.format().is_none() {
        return Err(MarketError::unprocessable(
            "undecodable_image",
            format!("input {index} is not a JPEG, PNG, WebP or BMP image"),
        ));
    }
    let (w, h) = reader.into_dimensions().map_err(undecodable)?;
    if u64::from(w) * u64::from(h) > m_limits.max_image_pixels || w == 0 || h == 0 {
        return Err(MarketError::TooLarge(format!(
            "input {index} is {w}x{h}; images may have at most {} pixels",
            m_limits.max_image_pixels
        )));
    }
    // Decode the whole image: a truncated file fails here, not on a worker.
    let img = image::ImageReader::new(Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| {
            MarketError::unprocessable("undecodable_image", format!("input {index}: {e}"))
        })?
        .decode()
        .map_err(undecodable)?;
    drop(bytes);
    let canonical = crate::canonical::encode(&img);
    Ok(Input {
        hash: Sha256Hex::of(&canonical),
        bytes: canonical,
        width: img.width(),
        height: img.height(),
    })
}

/// Stores an input image once (content-addressed); a second copy is a no-op.
pub(crate) async fn store_input(
    tx: &mut crate::db::WriteTx<'_>,
    hash: &Sha256Hex,
    bytes: &[u8],
    width: u32,
    height: u32,
    now: i64,
) -> Result<()> {
    query(
        "INSERT INTO inputs (hash, bytes, width, height, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (hash) DO NOTHING",
    )
    .bind(hash.as_str())
    .bind(bytes)
    .bind(i64::from(width))
    .bind(i64::from(height))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Decode every input off the async runtime; the same image twice in one
/// bid is decoded once.
pub(super) async fn decode_inputs(m: &Market, req: &BidRequest) -> Result<Vec<Input>> {
    let mut inputs: Vec<Input> = Vec::with_capacity(req.inputs.len());
    for (i, b64) in req.inputs.iter().enumerate() {
        if let Some(same) = req.inputs[..i].iter().position(|other| other == b64) {
            let s = &inputs[same];
            let copy = Input {
                hash: s.hash.clone(),
                bytes: s.bytes.clone(),
                width: s.width,
                height: s.height,
            };
            inputs.push(copy);
            continue;
        }
        let limits = m.config.limits.clone();
        let b64 = b64.clone();
        let input = tokio::task::spawn_blocking(move || decode_input(&limits, i, &b64))
            .await
            .map_err(|e| MarketError::Corrupt(format!("decoder panicked: {e}")))??;
        inputs.push(input);
    }
    Ok(inputs)
}
