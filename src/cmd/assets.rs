//! `tally assets where|fetch`: find the sample assets, or download the
//! official copies (verifying their sha256) on a machine with internet.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::assets::{self, OFFICIAL_MODEL_SHA256, OFFICIAL_MODEL_URL};
use crate::cli::AssetsCommand;

/// Public-domain sample photos (pjreddie/darknet `data/`).
const IMAGES: [&str; 6] = [
    "dog.jpg",
    "person.jpg",
    "horses.jpg",
    "kite.jpg",
    "giraffe.jpg",
    "eagle.jpg",
];
const IMAGE_BASE: &str = "https://raw.githubusercontent.com/pjreddie/darknet/master/data";

pub async fn run(cmd: AssetsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AssetsCommand::Where => match assets::find() {
            Some(p) => {
                println!("{}", p.display());
                Ok(ExitCode::SUCCESS)
            }
            None => anyhow::bail!(assets::missing_message()),
        },
        AssetsCommand::Fetch { dir } => fetch(&dir).await,
    }
}

async fn download(url: &str) -> anyhow::Result<Vec<u8>> {
    let resp = reqwest::get(url)
        .await
        .with_context(|| format!("downloading {url}"))?;
    anyhow::ensure!(
        resp.status().is_success(),
        "downloading {url}: HTTP {}",
        resp.status()
    );
    Ok(resp.bytes().await?.to_vec())
}

async fn fetch(dir: &Path) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir.join("models"))?;
    std::fs::create_dir_all(dir.join("images"))?;
    let model = download(OFFICIAL_MODEL_URL).await?;
    let got = hex::encode(Sha256::digest(&model));
    anyhow::ensure!(
        got == OFFICIAL_MODEL_SHA256,
        "the downloaded model's sha256 is {got}, expected {OFFICIAL_MODEL_SHA256}; nothing written"
    );
    std::fs::write(dir.join(assets::MODEL_FILE), &model)?;
    for name in IMAGES {
        let bytes = download(&format!("{IMAGE_BASE}/{name}")).await?;
        image::load_from_memory(&bytes).with_context(|| format!("{name} is not an image"))?;
        std::fs::write(dir.join("images").join(name), bytes)?;
    }
    println!(
        "assets in {}; use them with TALLY_ASSETS={}",
        dir.display(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
