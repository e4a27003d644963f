//! What the worker's integration tests share.

use std::path::{Path, PathBuf};

/// `TALLY_ASSETS` when set, else the repository's own `assets/`; `None`
/// (saying why) when the model is not there, which fails under `CI`.
pub fn assets() -> Option<PathBuf> {
    let dir = std::env::var_os("TALLY_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets"));
    if dir.join("models/yolox_nano.onnx").is_file() {
        return Some(dir);
    }
    let why = format!("assets not found at {} (set TALLY_ASSETS)", dir.display());
    assert!(
        std::env::var_os("CI").is_none_or(|v| v.is_empty()),
        "CI must run the asset tests, but {why}"
    );
    println!("skipping: {why}");
    None
}
