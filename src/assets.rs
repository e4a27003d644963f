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

/// Where the assets are looked for, in order: `TALLY_ASSETS` alone when
/// set (an explicit setting is obeyed, never second-guessed); else the
/// repository's own `assets/` (from the source tree, then from the working
/// directory), then `../shared/assets` beside the checkout.
pub fn candidates() -> Vec<PathBuf> {
    if let Some(p) = std::env::var_os("TALLY_ASSETS") {
        return vec![PathBuf::from(p)];
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR"));
    vec![
        source.join("assets"),
        PathBuf::from("assets"),
        PathBuf::from("../shared/assets"),
        source.join("../shared/assets"),
    ]
}

/// The first of [`candidates`] that holds the sample model.
pub fn find() -> Option<PathBuf> {
    candidates()
        .into_iter()
        .find(|p| p.join(MODEL_FILE).is_file())
}

/// What to tell a user whose machine lacks the assets.
pub fn missing_message() -> String {
    let looked: Vec<String> = candidates()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let looked = match std::env::var_os("TALLY_ASSETS") {
        Some(_) => format!("$TALLY_ASSETS = {}", looked.join(", ")),
        None => looked.join(", "),
    };
    format!(
        "the sample assets were not found (no {MODEL_FILE} in {looked}).\n\
         A checkout of the repository ships them in assets/; elsewhere, get them with\n\
         `tally assets fetch --dir DIR` on a machine with internet, then set TALLY_ASSETS=DIR;\n\
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
