//! `tally work` and `tally detect`: a worker's flags, and running the detector alone.

use std::path::PathBuf;

use clap::Args;

use super::MarketKey;

#[derive(Debug, Args)]
pub struct WorkArgs {
    #[command(flatten)]
    pub to: MarketKey,
    /// auto, onnxruntime or tract.
    #[arg(long, default_value = "auto")]
    pub backend: String,
    #[arg(long, default_value_t = 0)]
    pub min_price: i64,
    /// Inferences run at once.
    #[arg(long, default_value_t = 1)]
    pub capacity: u32,
    #[arg(long, default_value = "tally-models")]
    pub models_dir: PathBuf,
    /// Models to offer (sha256); by default every model the market hosts
    /// (up to --max-model-mb), fetched when first needed.
    #[arg(long = "offer")]
    pub offer: Vec<String>,
    /// The largest model to fetch and run, in MiB.
    #[arg(long, default_value_t = 64)]
    pub max_model_mb: u64,
    /// Address space of each inference child, in MiB.
    #[arg(long, default_value_t = 4096)]
    pub max_memory_mb: u64,
    /// Wall-clock seconds one inference may take before its child is stopped.
    #[arg(long, default_value_t = 120)]
    pub task_timeout_secs: u64,
    /// A model file to offer (uploaded to the market if it lacks it).
    #[arg(long)]
    pub model: Vec<PathBuf>,
    /// Threads per inference.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Answer with deliberately wrong detections (for demos of the vote).
    #[arg(long, hide = true)]
    pub faulty: bool,
    /// Stop after this many results (for tests and demos).
    #[arg(long, hide = true)]
    pub max_results: Option<u64>,
    /// On SIGINT/SIGTERM, seconds the tasks in hand may take to finish
    /// before they are handed back to the market.
    #[arg(long, default_value_t = 30)]
    pub grace_secs: u64,
    /// Wait this long after each claim, as a long job would (for tests).
    #[arg(long, hide = true)]
    pub pause_after_claim_ms: Option<u64>,
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long, default_value = "auto")]
    pub backend: String,
    #[arg(long)]
    pub json: bool,
    /// Write the image with labelled boxes to this PNG (the first image),
    /// or, given a folder (one that exists, or a path ending in /), each
    /// image into it as NAME.png.
    #[arg(long)]
    pub draw: Option<PathBuf>,
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}
