//! `tally detect`: run the detector locally.

use std::process::ExitCode;

use crate::cli::DetectArgs;

pub async fn run(_args: DetectArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("tally detect is not available in this build yet")
}
