//! `tally keys generate`: a new Stellar key pair.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use tally_protocol::Signer;

/// Print the G... address; write the S... seed to `out` with mode 0600
/// (or print it when no file is given).
pub fn generate(out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let signer = Signer::generate();
    match out {
        Some(path) => {
            if path.exists() {
                anyhow::bail!(
                    "{} already exists; refusing to overwrite a key",
                    path.display()
                );
            }
            // A key's folder is private too (created 0700 when missing).
            if let Some(parent) = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty() && !p.exists())
            {
                let mut dirs = std::fs::DirBuilder::new();
                dirs.recursive(true);
                #[cfg(unix)]
                std::os::unix::fs::DirBuilderExt::mode(&mut dirs, 0o700);
                dirs.create(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            writeln!(f, "{}", signer.secret())
                .with_context(|| format!("writing {}", path.display()))?;
            println!("{}", signer.account());
        }
        None => {
            println!("{}", signer.account());
            println!("{}", signer.secret());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Print the G... address of a key.
pub fn address(key: &str) -> anyhow::Result<ExitCode> {
    let signer = Signer::load(key).with_context(|| format!("reading the key {key}"))?;
    println!("{}", signer.account());
    Ok(ExitCode::SUCCESS)
}
