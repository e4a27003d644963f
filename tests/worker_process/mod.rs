//! `tally work` processes as a test drives them: their keys, their logs
//! (waited on line by line), and the sample assets and runtimes they need.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tally_protocol::{Client, Detection, Sha256Hex, Signer};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

pub const TALLY: &str = env!("CARGO_BIN_EXE_tally");

pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Skips (or, in CI, fails) with `why`.
pub fn skip(why: &str) {
    assert!(!in_ci(), "CI must run this test, but {why}");
    eprintln!("skipping: {why}");
}

pub fn assets() -> Option<PathBuf> {
    let found = tally::assets::find();
    if found.is_none() {
        skip(&tally::assets::missing_message());
    }
    found
}

pub fn onnxruntime_present() -> bool {
    match tally_worker::backend::locate_onnxruntime() {
        Ok(_) => true,
        Err(why) => {
            skip(&format!("ONNX Runtime is not available: {why}"));
            false
        }
    }
}

/// A key file holding a fresh `S...` seed.
pub fn key_file(dir: &Path, name: &str) -> (Signer, PathBuf) {
    let signer = Signer::generate();
    let path = dir.join(format!("{name}.key"));
    std::fs::write(&path, format!("{}\n", signer.secret())).expect("write key");
    // Readable by its owner alone, or `tally work` refuses it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod key");
    (signer, path)
}

/// Drops ANSI colour codes, in case the log is coloured anyway.
pub fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A `tally work` process and the lines it logs.
pub struct Worker {
    pub name: String,
    pub signer: Signer,
    pub child: tokio::process::Child,
    lines: mpsc::UnboundedReceiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Worker {
    pub async fn start(market: &str, dir: &Path, name: &str, args: &[&str]) -> Worker {
        let (signer, key) = key_file(dir, name);
        let models = dir.join(format!("{name}-models"));
        let mut child = tokio::process::Command::new(TALLY)
            .arg("work")
            .args(["--market", market, "--key"])
            .arg(&key)
            .arg("--models-dir")
            .arg(&models)
            .args(args)
            .env("RUST_LOG", "info,tally_worker=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start tally work");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = mpsc::unbounded_channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&log);
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let line = plain(&line);
                keep.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        Worker {
            name: name.to_string(),
            signer,
            child,
            lines,
            log,
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn count(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits for the next line containing `needle`.
    pub async fn expect_line(&mut self, needle: &str, within: Duration) -> String {
        let found = tokio::time::timeout(within, async {
            while let Some(line) = self.lines.recv().await {
                if line.contains(needle) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            Ok(None) => panic!(
                "{} exited before logging {needle:?}:\n{}",
                self.name,
                self.log()
            ),
            Err(_) => panic!(
                "{} did not log {needle:?} within {within:?}:\n{}",
                self.name,
                self.log()
            ),
        }
    }

    pub async fn exit_status(&mut self, within: Duration) -> ExitStatus {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => status.expect("wait for tally work"),
            Err(_) => panic!(
                "{} did not stop within {within:?}:\n{}",
                self.name,
                self.log()
            ),
        }
    }

    pub async fn expect_clean_exit(&mut self, within: Duration) {
        let status = self.exit_status(within).await;
        assert!(
            status.success(),
            "{} exited with {status}:\n{}",
            self.name,
            self.log()
        );
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().expect("the worker runs").to_string();
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill {sig} {pid} failed");
    }
}

pub fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

pub fn labels(detections: &[Detection]) -> BTreeSet<String> {
    detections.iter().map(|d| d.label.clone()).collect()
}

/// The labels the reference run found with a clear score (>= 0.5).
pub fn expected_labels(assets: &Path, image: &Path) -> BTreeSet<String> {
    let stem = image.file_stem().unwrap().to_string_lossy();
    let path = assets.join("expected").join(format!("{stem}.json"));
    let text = std::fs::read_to_string(&path).expect("expected detections");
    let v: serde_json::Value = serde_json::from_str(&text).expect("expected json");
    let detections: Vec<Detection> =
        serde_json::from_value(v["detections"].clone()).expect("expected detections parse");
    detections
        .iter()
        .filter(|d| d.score >= 0.5)
        .map(|d| d.label.clone())
        .collect()
}

pub async fn upload_sample_model(client: &Client, assets: &Path) -> (Sha256Hex, PathBuf) {
    let path = assets.join(tally::assets::MODEL_FILE);
    let bytes = std::fs::read(&path).expect("read the sample model");
    let up = client.upload_model(bytes).await.expect("upload the model");
    (up.model, path)
}
