//! Inference in a confined child process: the model never runs where the key is.
//!
//! A client's model is hostile input to a worker. The worker's process holds
//! the key and signs; the model runs in a child (the same binary, started
//! with a hidden subcommand) that confines itself before it reads anything
//! ([`confine`]): no file but the runtime's libraries, no network, capped
//! memory and CPU time, an empty working directory and environment. The
//! parent talks to it over pipes ([`wire`]), caps every task's wall-clock
//! time, and kills a child that overruns, crashes or answers out of turn.
//!
//! Children are pooled: one per inference running at once, each keeping the
//! models it has loaded, so the cost per task is a round trip over a pipe.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tally_protocol::Sha256Hex;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::backend::locate_onnxruntime;
use crate::BackendChoice;

pub mod child;
pub mod confine;
pub mod wire;

pub use wire::{Detected, Hello};

/// How to start and limit inference children.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The program to start (the `tally` binary) and the arguments that make it a child.
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub backend: BackendChoice,
    /// Threads per inference.
    pub threads: usize,
    /// Address space per child, MiB.
    pub memory_mb: u64,
    /// CPU seconds one task may use.
    pub cpu_secs: u64,
    /// Wall-clock time one task (loading its model included) may take.
    pub timeout: Duration,
}

impl SandboxConfig {
    /// Children started as `program args...`, with the default limits:
    /// 4 GiB of address space, 60 s of CPU and 120 s of wall clock per task.
    pub fn new(program: impl Into<PathBuf>, args: &[&str]) -> Self {
        SandboxConfig {
            program: program.into(),
            args: args.iter().map(OsString::from).collect(),
            backend: BackendChoice::Auto,
            threads: 1,
            memory_mb: 4096,
            cpu_secs: 60,
            timeout: Duration::from_secs(120),
        }
    }
}

/// Why an inference did not produce detections.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The model was refused or cannot be loaded or run.
    #[error("{0}")]
    Model(String),
    /// The input is not an image the model can run on.
    #[error("{0}")]
    Input(String),
    /// The child died, overran its limits or broke the protocol; it was stopped.
    #[error("{0}")]
    Child(String),
}

/// The pool of inference children.
pub struct Sandbox {
    config: SandboxConfig,
    backend: BackendChoice,
    ort_dylib: Option<PathBuf>,
    hello: Hello,
    idle: Mutex<Vec<Proc>>,
}

struct Proc {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    loaded: HashSet<Sha256Hex>,
    /// The child's empty working directory, removed with it.
    _cwd: tempfile::TempDir,
}

impl Sandbox {
    /// Resolves the backend, starts a first child and reads how it is confined.
    pub async fn start(config: SandboxConfig) -> Result<Sandbox, InferError> {
        let (backend, ort_dylib) = match config.backend {
            BackendChoice::Tract => (BackendChoice::Tract, None),
            BackendChoice::OnnxRuntime => match locate_onnxruntime() {
                Ok(path) => (BackendChoice::OnnxRuntime, Some(path)),
                Err(why) => {
                    return Err(InferError::Model(format!(
                        "backend onnxruntime unavailable: {why}"
                    )))
                }
            },
            BackendChoice::Auto => match locate_onnxruntime() {
                Ok(path) => (BackendChoice::OnnxRuntime, Some(path)),
                Err(_) => (BackendChoice::Tract, None),
            },
        };
        let mut sandbox = Sandbox {
            config,
            backend,
            ort_dylib,
            hello: Hello {
                backend: String::new(),
                confinement: Vec::new(),
                landlock: false,
            },
            idle: Mutex::new(Vec::new()),
        };
        let (first, hello) = sandbox.spawn().await?;
        sandbox.hello = hello;
        sandbox.idle_procs().push(first);
        Ok(sandbox)
    }

    /// How the children are confined and which backend they run.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// Runs `model` (its bytes, already admitted by the caller) on `image` in a child.
    ///
    /// The whole exchange, loading the model into a fresh child included, is
    /// limited to the configured wall-clock time; a child that overruns it
    /// is killed. Dropping the future kills the child too.
    pub async fn detect(
        &self,
        model: &Sha256Hex,
        bytes: &Arc<Vec<u8>>,
        image: &[u8],
    ) -> Result<Detected, InferError> {
        let idle = self.idle_procs().pop();
        let mut proc = match idle {
            Some(p) => p,
            None => self.spawn().await?.0,
        };
        let limit = self.config.timeout;
        let exchange = tokio::time::timeout(limit, self.exchange(&mut proc, model, bytes, image));
        match exchange.await {
            Ok(Ok(reply)) => {
                self.idle_procs().push(proc);
                reply
            }
            Ok(Err(io)) => Err(InferError::Child(dead(proc, io).await)),
            Err(_) => {
                let _ = proc.child.start_kill();
                Err(InferError::Child(format!(
                    "inference took longer than {} s; the child was stopped",
                    limit.as_secs()
                )))
            }
        }
    }

    async fn exchange(
        &self,
        proc: &mut Proc,
        model: &Sha256Hex,
        bytes: &Arc<Vec<u8>>,
        image: &[u8],
    ) -> std::io::Result<Result<Detected, InferError>> {
        use wire::{Reply, Request};
        if !proc.loaded.contains(model) {
            let load = Request::Load {
                model: model.clone(),
            };
            wire::write(&mut proc.stdin, &load, bytes).await?;
            match wire::read::<Reply>(&mut proc.stdout).await?.0 {
                Reply::Loaded { .. } => {
                    proc.loaded.insert(model.clone());
                }
                Reply::ModelError { message } => return Ok(Err(InferError::Model(message))),
                other => return Err(out_of_turn(&other)),
            }
        }
        let detect = Request::Detect {
            model: model.clone(),
            cpu_secs: self.config.cpu_secs,
        };
        wire::write(&mut proc.stdin, &detect, image).await?;
        Ok(match wire::read::<Reply>(&mut proc.stdout).await?.0 {
            Reply::Detected(d) => Ok(d),
            Reply::ModelError { message } => Err(InferError::Model(message)),
            Reply::InputError { message } => Err(InferError::Input(message)),
            other => return Err(out_of_turn(&other)),
        })
    }

    async fn spawn(&self) -> Result<(Proc, Hello), InferError> {
        let cwd = tempfile::Builder::new()
            .prefix("tally-infer-")
            .tempdir()
            .map_err(|e| {
                InferError::Child(format!("cannot make the child's working directory: {e}"))
            })?;
        let mut cmd = Command::new(&self.config.program);
        cmd.args(&self.config.args)
            .arg("--backend")
            .arg(match self.backend {
                BackendChoice::Tract => "tract",
                _ => "onnxruntime",
            })
            .arg("--threads")
            .arg(self.config.threads.max(1).to_string())
            .arg("--memory-mb")
            .arg(self.config.memory_mb.to_string())
            .current_dir(cwd.path())
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(path) = &self.ort_dylib {
            cmd.arg("--ort-dylib").arg(path);
        }
        if let Some(filter) = std::env::var_os("RUST_LOG") {
            cmd.env("RUST_LOG", filter);
        }
        let mut child = cmd.spawn().map_err(|e| {
            InferError::Child(format!(
                "cannot start the inference child {}: {e}",
                self.config.program.display()
            ))
        })?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let first = tokio::time::timeout(
            Duration::from_secs(30),
            wire::read::<wire::Reply>(&mut stdout),
        );
        let hello = match first.await {
            Ok(Ok((wire::Reply::Hello(hello), _))) => hello,
            Ok(Ok((wire::Reply::ModelError { message }, _))) => {
                return Err(InferError::Model(message))
            }
            Ok(Ok((other, _))) => return Err(InferError::Child(out_of_turn(&other).to_string())),
            Ok(Err(e)) => {
                let _ = child.start_kill();
                return Err(InferError::Child(format!(
                    "the inference child did not start: {e}"
                )));
            }
            Err(_) => {
                return Err(InferError::Child(
                    "the inference child did not start within 30 s".into(),
                ))
            }
        };
        let proc = Proc {
            child,
            stdin,
            stdout,
            loaded: HashSet::new(),
            _cwd: cwd,
        };
        Ok((proc, hello))
    }

    fn idle_procs(&self) -> std::sync::MutexGuard<'_, Vec<Proc>> {
        // The pool holds whole children: a panic elsewhere cannot leave one half-added.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn out_of_turn(reply: &wire::Reply) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("the inference child answered out of turn: {reply:?}"),
    )
}

/// Why a child stopped answering, after making sure it is gone.
async fn dead(mut proc: Proc, io: std::io::Error) -> String {
    let _ = proc.child.start_kill();
    let status = tokio::time::timeout(Duration::from_secs(5), proc.child.wait()).await;
    match status {
        Ok(Ok(status)) => {
            use std::os::unix::process::ExitStatusExt;
            match status.signal() {
                Some(libc::SIGXCPU) => {
                    "inference used more than its CPU time; the child was stopped".into()
                }
                Some(libc::SIGKILL) if io.kind() != std::io::ErrorKind::InvalidData => {
                    "the inference child was killed (out of memory?)".into()
                }
                Some(sig) => format!("the inference child died on signal {sig} ({io})"),
                None => format!("the inference child exited ({status}): {io}"),
            }
        }
        _ => format!("the inference child stopped answering: {io}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in child that says hello, then never answers.
    fn silent_child(dir: &std::path::Path) -> SandboxConfig {
        let hello = wire::Reply::Hello(Hello {
            backend: "tract".into(),
            confinement: vec![],
            landlock: false,
        });
        let mut frame = Vec::new();
        wire::write_blocking(&mut frame, &hello, b"").unwrap();
        let file = dir.join("hello.bin");
        std::fs::write(&file, frame).unwrap();
        let script = format!("/bin/cat {}; exec /bin/sleep 60", file.display());
        let mut config = SandboxConfig::new("/bin/sh", &["-c", &script, "child"]);
        config.backend = BackendChoice::Tract;
        config
    }

    #[tokio::test]
    async fn a_child_past_its_wall_clock_limit_is_stopped_and_the_task_fails() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = silent_child(dir.path());
        config.timeout = Duration::from_millis(300);
        let sandbox = Sandbox::start(config).await.unwrap();
        let model = Arc::new(b"model".to_vec());
        let err = sandbox
            .detect(&Sha256Hex::of(&model), &model, b"image")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, InferError::Child(m) if m.contains("longer than")),
            "{err}"
        );
        // The stopped child is not put back in the pool.
        assert!(sandbox.idle_procs().is_empty());
    }

    #[tokio::test]
    async fn a_child_that_dies_fails_its_task_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = silent_child(dir.path());
        // Say hello, then exit instead of answering.
        let file = dir.path().join("hello.bin");
        config.args[1] = format!("/bin/cat {}; exit 3", file.display()).into();
        let sandbox = Sandbox::start(config).await.unwrap();
        let model = Arc::new(b"model".to_vec());
        let err = sandbox
            .detect(&Sha256Hex::of(&model), &model, b"image")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, InferError::Child(m) if m.contains("exited")),
            "{err}"
        );
    }
}
