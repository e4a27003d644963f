//! The README's commands, run as written: every `tally ...` line of the
//! code blocks under "Roles" (operator, client, worker, reviewer, auditor) plus the
//! `tally detect` line, read from README.md and run by `sh` in a fresh
//! folder (the repository's `assets/` beside it, `HOME` a fresh folder, the
//! built `tally` first on `PATH`). Only the market's port is changed (the
//! README's 8080 may be taken). Key generation runs first, `tally serve`
//! and `tally work` run in the background, everything else in README order,
//! and each must exit 0 and print what a user would look for.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const TALLY: &str = env!("CARGO_BIN_EXE_tally");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shell commands of the README's "Roles" section, continuation lines
/// joined, optional `[...]` parts dropped.
fn readme_commands() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let roles = text
        .split("\n## Roles")
        .nth(1)
        .expect("a Roles section")
        .split("\n## ")
        .next()
        .unwrap();
    let mut out = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in roles.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            let line = line.split(" # ").next().unwrap().trim_end();
            if let Some(head) = line.strip_suffix('\\') {
                pending.push_str(head);
                continue;
            }
            pending.push_str(line);
            let cmd = std::mem::take(&mut pending);
            let cmd = cmd.split_whitespace().collect::<Vec<_>>().join(" ");
            if cmd.starts_with("tally ") {
                out.push(strip_optional(&cmd));
            }
        } else if let Some(i) = line.find("`tally detect ") {
            let rest = &line[i + 1..];
            out.push(rest[..rest.find('`').unwrap()].to_string());
        }
    }
    out
}

fn strip_optional(cmd: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in cmd.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct Shell {
    dir: PathBuf,
    home: PathBuf,
    path: String,
}

impl Shell {
    fn command(&self, cmd: &str) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("sh");
        c.arg("-c")
            .arg(cmd)
            .current_dir(&self.dir)
            .env("HOME", &self.home)
            .env("PATH", &self.path)
            .env_remove("TALLY_MARKET")
            .env_remove("TALLY_ASSETS")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    async fn run(&self, cmd: &str) -> String {
        let out = self
            .command(cmd)
            .output()
            .await
            .unwrap_or_else(|e| panic!("{cmd}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{cmd}\nexit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn until_healthy(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(format!("{url}/healthz")).await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the market never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_readme_command_works_as_written() {
    let commands = readme_commands();
    for must in [
        "tally keys generate --out operator.key",
        "tally serve ",
        "tally admin credit ",
        "tally admin accounts ",
        "tally admin workers ",
        "tally admin bids ",
        "tally admin reviewers add ",
        "tally admin reviewers list ",
        "tally admin reviewers remove ",
        "tally review ",
        "tally bid ",
        "tally account ",
        "tally withdraw ",
        "tally work ",
        "tally audit ",
        "tally detect ",
    ] {
        assert!(
            commands.iter().any(|c| c.starts_with(must)),
            "the README has no {must:?} command: {commands:#?}"
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("work");
    let home = tmp.path().join("home");
    let bin = tmp.path().join("bin");
    for d in [&dir, &home, &bin] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::os::unix::fs::symlink(repo().join("assets"), dir.join("assets")).unwrap();
    std::os::unix::fs::symlink(TALLY, bin.join("tally")).unwrap();
    let shell = Shell {
        dir: dir.clone(),
        home,
        path: format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    };
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let commands: Vec<String> = commands
        .iter()
        .map(|c| c.replace("127.0.0.1:8080", &format!("127.0.0.1:{port}")))
        .collect();
    // Worker owners each run the worker's commands on their own machine
    // (here: their own HOME): three of them, so tasks can reach a quorum.
    let is_worker = |c: &str| c.contains("worker.key");
    let owners: Vec<Shell> = (0..3)
        .map(|i| {
            let home = tmp.path().join(format!("owner{i}"));
            std::fs::create_dir_all(&home).unwrap();
            Shell {
                dir: dir.clone(),
                home,
                path: shell.path.clone(),
            }
        })
        .collect();
    let (keys, rest): (Vec<&String>, Vec<&String>) = commands
        .iter()
        .filter(|c| !is_worker(c))
        .partition(|c| c.starts_with("tally keys generate"));
    for k in &keys {
        let out = shell.run(k).await;
        assert!(out.trim().starts_with('G'), "{k}: {out}");
    }
    let worker_keys: Vec<&String> = commands
        .iter()
        .filter(|c| is_worker(c) && c.starts_with("tally keys generate"))
        .collect();
    assert_eq!(worker_keys.len(), 1);
    for owner in &owners {
        let out = owner.run(worker_keys[0]).await;
        assert!(out.trim().starts_with('G'), "{out}");
    }
    let mut background = Vec::new();
    let serve = rest.iter().find(|c| c.starts_with("tally serve")).unwrap();
    background.push(spawn(&shell, serve, &dir.join("serve.log")));
    until_healthy(&url).await;
    let work = commands
        .iter()
        .find(|c| c.starts_with("tally work"))
        .unwrap();
    for (i, owner) in owners.iter().enumerate() {
        background.push(spawn(owner, work, &dir.join(format!("work{i}.log"))));
    }

    let mut seen = Vec::new();
    for cmd in rest.iter().filter(|c| !c.starts_with("tally serve")) {
        let out = shell.run(cmd).await;
        let verb: String = cmd.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
        let expect = match cmd.split_whitespace().nth(1).unwrap() {
            "admin" if cmd.contains("admin credit") => "credited",
            "admin" if cmd.contains("admin accounts") => "available",
            "admin" if cmd.contains("admin workers") => "credibility",
            "admin" if cmd.contains("reviewers add") => "verified to review",
            "admin" if cmd.contains("reviewers list") => "verified since",
            "admin" if cmd.contains("reviewers remove") => "no longer verified to review",
            "admin" => "verified",
            "bid" => "verified",
            "account" => "deposit memo",
            "withdraw" => "withdrawal",
            // The README's bid pays for no review: a verified reviewer
            // finds the queue empty.
            "review" => "nothing to review",
            "audit" => "all consistent",
            "detect" => "dog",
            other => panic!("no expectation for `tally {other}`"),
        };
        assert!(out.contains(expect), "{cmd}: no {expect:?} in\n{out}");
        seen.push(verb);
    }
    assert!(
        dir.join("out").read_dir().unwrap().count() >= 1,
        "--draw wrote nothing"
    );
    for mut child in background {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    assert!(seen.len() >= 9, "{seen:?}");
}

fn spawn(shell: &Shell, cmd: &str, log: &Path) -> tokio::process::Child {
    let file = std::fs::File::create(log).unwrap();
    shell
        .command(&format!("exec {cmd}"))
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}
