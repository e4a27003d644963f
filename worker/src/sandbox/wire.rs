//! The messages between the worker and its inference child, and their frames.
//!
//! A frame is a little-endian `u32` length and a JSON header, then a `u32`
//! length and raw bytes (a model or an image; empty for most replies). The
//! parent never trusts a reply: sizes are capped here, and detections are
//! checked again by [`crate::sanity`] before anything is signed.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use tally_protocol::{Detection, Sha256Hex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest JSON header either side accepts.
pub const MAX_HEADER: usize = 4 << 20;
/// The largest payload either side accepts (a model or an image).
pub const MAX_PAYLOAD: usize = 256 << 20;

/// Parent to child.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Admit and load the model in the payload under its hash.
    Load { model: Sha256Hex },
    /// Detect objects in the image in the payload with a loaded model.
    Detect {
        model: Sha256Hex,
        /// CPU seconds this inference may use before the kernel stops the child.
        cpu_secs: u64,
    },
}

/// The child's first message: what confines it and which backend it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    pub backend: String,
    /// One line per confinement layer, for the worker's start-up log.
    pub confinement: Vec<String>,
    /// Whether Landlock restricts the child's file system access.
    pub landlock: bool,
}

/// What the child detected in one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detected {
    pub width: u32,
    pub height: u32,
    pub detections: Vec<Detection>,
    pub elapsed_ms: f64,
    pub infer_ms: f64,
}

/// Child to parent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    Hello(Hello),
    Loaded {
        input_size: u32,
    },
    Detected(Detected),
    /// The model was refused or cannot be loaded or run.
    ModelError {
        message: String,
    },
    /// The input is not an image this model can run on.
    InputError {
        message: String,
    },
}

fn too_big(what: &str, len: usize, max: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{what} of {len} bytes is over the limit of {max}"),
    )
}

fn frame<T: Serialize>(header: &T) -> io::Result<Vec<u8>> {
    serde_json::to_vec(header).map_err(io::Error::other)
}

fn parse<T: for<'de> Deserialize<'de>>(json: &[u8]) -> io::Result<T> {
    serde_json::from_slice(json).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Writes one frame (blocking; the child's side).
pub fn write_blocking<T: Serialize>(
    w: &mut impl Write,
    header: &T,
    payload: &[u8],
) -> io::Result<()> {
    let json = frame(header)?;
    w.write_all(&(json.len() as u32).to_le_bytes())?;
    w.write_all(&json)?;
    w.write_all(&(payload.len() as u32).to_le_bytes())?;
    w.write_all(payload)?;
    w.flush()
}

/// Reads one frame (blocking); `None` at a clean end of stream.
pub fn read_blocking<T: for<'de> Deserialize<'de>>(
    r: &mut impl Read,
) -> io::Result<Option<(T, Vec<u8>)>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let json = read_exact_blocking(r, u32::from_le_bytes(len) as usize, MAX_HEADER, "header")?;
    r.read_exact(&mut len)?;
    let payload = read_exact_blocking(r, u32::from_le_bytes(len) as usize, MAX_PAYLOAD, "payload")?;
    Ok(Some((parse(&json)?, payload)))
}

fn read_exact_blocking(r: &mut impl Read, n: usize, max: usize, what: &str) -> io::Result<Vec<u8>> {
    if n > max {
        return Err(too_big(what, n, max));
    }
    let mut buf = vec![0u8; n];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

/// Writes one frame (the parent's side).
pub async fn write<T: Serialize>(
    w: &mut (impl AsyncWrite + Unpin),
    header: &T,
    payload: &[u8],
) -> io::Result<()> {
    let json = frame(header)?;
    if payload.len() > MAX_PAYLOAD {
        return Err(too_big("payload", payload.len(), MAX_PAYLOAD));
    }
    w.write_all(&(json.len() as u32).to_le_bytes()).await?;
    w.write_all(&json).await?;
    w.write_all(&(payload.len() as u32).to_le_bytes()).await?;
    w.write_all(payload).await?;
    w.flush().await
}

/// Reads one frame (the parent's side); end of stream is an error here.
pub async fn read<T: for<'de> Deserialize<'de>>(
    r: &mut (impl AsyncRead + Unpin),
) -> io::Result<(T, Vec<u8>)> {
    let json_len = r.read_u32_le().await? as usize;
    let json = read_exact(r, json_len, MAX_HEADER, "header").await?;
    let payload_len = r.read_u32_le().await? as usize;
    let payload = read_exact(r, payload_len, MAX_PAYLOAD, "payload").await?;
    Ok((parse(&json)?, payload))
}

async fn read_exact(
    r: &mut (impl AsyncRead + Unpin),
    n: usize,
    max: usize,
    what: &str,
) -> io::Result<Vec<u8>> {
    if n > max {
        return Err(too_big(what, n, max));
    }
    let mut buf = vec![0u8; n];
    r.read_exact(&mut buf).await?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_written_by_one_side_are_read_by_the_other() {
        let mut buf = Vec::new();
        let req = Request::Detect {
            model: Sha256Hex::of(b"m"),
            cpu_secs: 7,
        };
        write_blocking(&mut buf, &req, b"image").unwrap();
        let (back, payload): (Request, _) = read(&mut &buf[..]).await.unwrap();
        assert!(matches!(back, Request::Detect { cpu_secs: 7, .. }));
        assert_eq!(payload, b"image");

        let mut buf = Vec::new();
        write(&mut buf, &Reply::Loaded { input_size: 416 }, b"")
            .await
            .unwrap();
        let (reply, _) = read_blocking::<Reply>(&mut &buf[..]).unwrap().unwrap();
        assert!(matches!(reply, Reply::Loaded { input_size: 416 }));
        assert!(read_blocking::<Reply>(&mut &b""[..]).unwrap().is_none());
    }

    #[tokio::test]
    async fn oversized_and_garbled_frames_are_refused() {
        let mut huge = (MAX_HEADER as u32 + 1).to_le_bytes().to_vec();
        huge.extend_from_slice(&[0; 16]);
        let err = read::<Reply>(&mut &huge[..]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        let mut garbled = Vec::new();
        garbled.extend_from_slice(&3u32.to_le_bytes());
        garbled.extend_from_slice(b"{x}");
        garbled.extend_from_slice(&0u32.to_le_bytes());
        let err = read::<Reply>(&mut &garbled[..]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
