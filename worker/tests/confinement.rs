//! The inference child's confinement, shown from inside a confined process.
//!
//! Each test re-runs this test binary as a child (`--exact <name>` with
//! `TALLY_CONFINE_PROBE` set); the child confines itself exactly as the
//! worker's inference child does, tries what a hostile model would, and
//! prints what happened; the parent asserts on it.

use std::path::Path;
use std::process::Command;

use tally_worker::sandbox::confine::{confine, Confinement, SYSTEM_LIBRARIES};

const PROBE: &str = "TALLY_CONFINE_PROBE";

/// Runs the test `name` again in a child with `PROBE=arg`; returns its stdout.
fn probe(name: &str, arg: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env(PROBE, arg)
        .output()
        .expect("run the probe");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("probe {name}:\n{stdout}");
    assert!(
        out.status.success(),
        "probe failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Confines this process as the inference child does; `None` outside a probe.
fn confined_probe() -> Option<String> {
    let arg = std::env::var(PROBE).ok()?;
    let confined = confine(&Confinement {
        memory_bytes: 2 << 30,
        readable: SYSTEM_LIBRARIES.iter().map(Into::into).collect(),
    });
    println!("landlock={}", confined.landlock);
    for line in &confined.lines {
        println!("layer: {line}");
    }
    Some(arg)
}

fn landlock_available(out: &str) -> bool {
    if out.contains("landlock=true") {
        return true;
    }
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    assert!(
        !ci,
        "CI runs on a kernel with Landlock, but the probe says:\n{out}"
    );
    eprintln!("skipping: this kernel has no Landlock:\n{out}");
    false
}

#[test]
fn the_inference_child_cannot_open_the_workers_key() {
    if let Some(path) = confined_probe() {
        match std::fs::read(&path) {
            Ok(bytes) => println!("READ {} bytes", bytes.len()),
            Err(e) => println!("refused: {:?}", e.kind()),
        }
        // Nor list the folder it is in, nor write beside it.
        println!(
            "list: {:?}",
            std::fs::read_dir(Path::new(&path).parent().unwrap())
                .map(|_| ())
                .map_err(|e| e.kind())
        );
        println!(
            "write: {:?}",
            std::fs::write(format!("{path}.copy"), b"x").map_err(|e| e.kind())
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("worker.key");
    std::fs::write(&key, "SSECRETSEEDSECRETSEEDSECRETSEED\n").unwrap();
    // The key is readable before confinement: the refusal below is the sandbox's doing.
    assert!(std::fs::read(&key).is_ok());
    let out = probe(
        "the_inference_child_cannot_open_the_workers_key",
        key.to_str().unwrap(),
    );
    if !landlock_available(&out) {
        return;
    }
    assert!(out.contains("refused: PermissionDenied"), "{out}");
    assert!(!out.contains("READ"), "{out}");
    assert!(out.contains("list: Err(PermissionDenied)"), "{out}");
    assert!(out.contains("write: Err("), "{out}");
    assert!(!dir.path().join("worker.key.copy").exists());
}

#[test]
fn the_inference_child_cannot_reach_the_network() {
    if let Some(addr) = confined_probe() {
        match std::net::TcpStream::connect(&addr) {
            Ok(_) => println!("CONNECTED"),
            Err(e) => println!("connect refused: {:?}", e.kind()),
        }
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let out = probe("the_inference_child_cannot_reach_the_network", &addr);
    if !landlock_available(&out) {
        return;
    }
    assert!(out.contains("connect refused"), "{out}");
    assert!(!out.contains("CONNECTED"), "{out}");
}

#[test]
fn the_inference_child_cannot_write_files_or_allocate_without_bound() {
    if let Some(dir) = confined_probe() {
        // RLIMIT_FSIZE 0 and Landlock both stand in the way of a write.
        println!(
            "write: {:?}",
            std::fs::write(Path::new(&dir).join("out"), b"x").map_err(|e| e.kind())
        );
        // 3 GiB is over the 2 GiB address-space limit.
        let mut v: Vec<u8> = Vec::new();
        println!(
            "alloc: {:?}",
            v.try_reserve_exact(3 << 30).map_err(|_| "refused")
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = probe(
        "the_inference_child_cannot_write_files_or_allocate_without_bound",
        dir.path().to_str().unwrap(),
    );
    assert!(out.contains("write: Err("), "{out}");
    assert!(out.contains("alloc: Err(\"refused\")"), "{out}");
    assert!(!dir.path().join("out").exists());
}
