//! `tally work`: the worker's claim loop.

use std::process::ExitCode;

use crate::cli::WorkArgs;

pub async fn run(_args: WorkArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("tally work is not available in this build yet")
}
