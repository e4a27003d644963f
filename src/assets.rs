//! The sample assets (model, images, expected detections): where they are,
//! and what to do when they are missing.

use std::path::{Path, PathBuf};

/// The sample model's file name and sha256 (assets README).
pub const MODEL_FILE: &str = "models/yolox_nano.onnx";
pub const MODEL_SHA256: &str = "d39bee73564e338080378b0ad567fbb40e818b55bbfaf971de82a0267ed16b8a";
/// The official download for machines with internet.
pub const OFFICIAL_MODEL_URL: &str =
    "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/yolox_nano.onnx";
pub const OFFICIAL_MODEL_SHA256: &str =
    "c789161ed43c8269fcd4e67c67eeeb4e80c622da2eb296a20bc6007bd18a0b7d";

/// `TALLY_ASSETS` when set; else `../shared/assets` from the working
/// directory or from the source tree.
pub fn find() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TALLY_ASSETS") {
        // An explicit setting is obeyed, never second-guessed.
        let p = PathBuf::from(p);
        return p.join(MODEL_FILE).is_file().then_some(p);
    }
    let mut candidates = Vec::new();
    candidates.push(PathBuf::from("../shared/assets"));
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/assets"));
    candidates
        .into_iter()
        .find(|p| p.join(MODEL_FILE).is_file())
}

/// What to tell a user whose machine lacks the assets.
pub fn missing_message() -> String {
    format!(
        "the sample assets were not found (looked in $TALLY_ASSETS and ../shared/assets).\n\
         Get them with `tally assets fetch --dir DIR` on a machine with internet, then set TALLY_ASSETS=DIR;\n\
         or download the model yourself: {OFFICIAL_MODEL_URL}\n\
         (sha256 {OFFICIAL_MODEL_SHA256}) into DIR/{MODEL_FILE}, and JPEG images into DIR/images/."
    )
}

/// The sample images, sorted by name.
pub fn images(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir.join("images"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("jpg" | "jpeg" | "png")
            )
        })
        .collect();
    out.sort();
    Ok(out)
}
