//! Which engine runs the model: ONNX Runtime (loaded at run time) or tract.
//!
//! Both go through the same `ort` API. ONNX Runtime is a shared library the
//! worker finds on the machine (`ORT_DYLIB_PATH`, else the pip `onnxruntime`
//! package); tract (`ort-tract`) is pure Rust and always available.
//!
//! **One backend per process.** `ort` keeps the API table of its backend in a
//! process-global, set-once cell (`ort::set_api`, or the first
//! `ort::init_from`); every session, tensor and error goes through it. So the
//! first [`activate`] in a process decides, and a later request for the other
//! backend gets [`Error::BackendConflict`]. To compare both, run two processes
//! (the asset tests and `tally bench inference` do).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::Mutex;

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

use crate::Error;

/// An inference engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Microsoft's ONNX Runtime, `libonnxruntime` loaded dynamically.
    OnnxRuntime,
    /// tract, through `ort-tract`.
    Tract,
}

impl Backend {
    /// The name used on the command line and in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Backend::OnnxRuntime => "onnxruntime",
            Backend::Tract => "tract",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the user asked for: a backend, or the best one available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// ONNX Runtime when it can be found and loaded, else tract.
    #[default]
    Auto,
    OnnxRuntime,
    Tract,
}

impl FromStr for BackendChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(BackendChoice::Auto),
            "onnxruntime" | "ort" => Ok(BackendChoice::OnnxRuntime),
            "tract" => Ok(BackendChoice::Tract),
            other => Err(format!(
                "unknown backend {other:?} (expected auto, onnxruntime or tract)"
            )),
        }
    }
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendChoice::Auto => "auto",
            BackendChoice::OnnxRuntime => "onnxruntime",
            BackendChoice::Tract => "tract",
        })
    }
}

impl From<Backend> for BackendChoice {
    fn from(b: Backend) -> Self {
        match b {
            Backend::OnnxRuntime => BackendChoice::OnnxRuntime,
            Backend::Tract => BackendChoice::Tract,
        }
    }
}

/// The backend this process runs, once chosen, with its `ort` environment.
static ACTIVE: Mutex<Option<(Backend, Environment)>> = Mutex::new(None);

/// The backend this process has settled on, if any.
pub fn active() -> Option<Backend> {
    lock_active().as_ref().map(|(b, _)| *b)
}

/// Settles this process on a backend (once) and returns it with its environment.
///
/// `Auto` accepts whatever is already active; otherwise it tries ONNX Runtime
/// and falls back to tract, logging which and why.
pub(crate) fn activate(choice: BackendChoice) -> Result<(Backend, Environment), Error> {
    let mut slot = lock_active();
    if let Some((active, env)) = slot.as_ref() {
        return match choice {
            BackendChoice::Auto => Ok((*active, env.clone())),
            BackendChoice::OnnxRuntime if *active == Backend::OnnxRuntime => {
                Ok((*active, env.clone()))
            }
            BackendChoice::Tract if *active == Backend::Tract => Ok((*active, env.clone())),
            _ => Err(Error::BackendConflict {
                requested: if choice == BackendChoice::Tract {
                    Backend::Tract
                } else {
                    Backend::OnnxRuntime
                },
                active: *active,
            }),
        };
    }
    let chosen = match choice {
        BackendChoice::OnnxRuntime => {
            init_onnxruntime().map_err(|reason| Error::BackendUnavailable {
                backend: Backend::OnnxRuntime,
                reason,
            })?
        }
        BackendChoice::Tract => init_tract()?,
        BackendChoice::Auto => match init_onnxruntime() {
            Ok(ort) => ort,
            Err(reason) => {
                tracing::info!("tract: {reason}");
                init_tract()?
            }
        },
    };
    *slot = Some(chosen.clone());
    Ok(chosen)
}

fn lock_active() -> std::sync::MutexGuard<'static, Option<(Backend, Environment)>> {
    // The slot holds plain data: a panic elsewhere cannot leave it half-written.
    ACTIVE.lock().unwrap_or_else(|e| e.into_inner())
}

fn init_onnxruntime() -> Result<(Backend, Environment), String> {
    let path = locate_onnxruntime()?;
    let builder = ort::init_from(&path).map_err(|e| e.to_string())?;
    let env = builder
        .with_name("tally")
        .with_telemetry(false)
        .build()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    tracing::info!("onnxruntime: loaded {}", path.display());
    Ok((Backend::OnnxRuntime, env))
}

fn init_tract() -> Result<(Backend, Environment), Error> {
    let unavailable = |reason: String| Error::BackendUnavailable {
        backend: Backend::Tract,
        reason,
    };
    if !ort::set_api(ort_tract::api()) {
        return Err(unavailable(
            "the ort API of this process is already bound to ONNX Runtime".into(),
        ));
    }
    let env = ort::init()
        .with_name("tally")
        .with_telemetry(false)
        .build()
        .map_err(|e| unavailable(e.to_string()))?;
    tracing::info!("tract: using ort-tract (pure Rust)");
    Ok((Backend::Tract, env))
}

/// Builds a session for `model` on the active backend.
///
/// `threads` is ONNX Runtime's intra-op thread count; tract runs each
/// inference on the calling thread, so there it is ignored.
pub(crate) fn session(
    backend: Backend,
    env: &Environment,
    model: &[u8],
    threads: usize,
) -> Result<Session, Error> {
    let builder = Session::builder(env).map_err(|e| Error::model("session options", e))?;
    // Python's onnxruntime default is ORT_ENABLE_ALL; tract optimises at any level but Disable.
    let mut builder = builder
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| Error::model("optimization level", e.into()))?;
    if backend == Backend::OnnxRuntime {
        builder = builder
            .with_intra_threads(threads.max(1))
            .and_then(|b| b.with_inter_threads(1))
            .map_err(|e| Error::model("thread options", e.into()))?;
    }
    builder
        .commit_from_memory(model)
        .map_err(|e| Error::model("cannot load the model", e))
}

/// Where ONNX Runtime's shared library is, or a sentence saying where we looked.
///
/// Order: `ORT_DYLIB_PATH`; the `onnxruntime` package of `python3` (its
/// `capi/` folder); the usual site-packages folders, without running Python.
pub fn locate_onnxruntime() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("ORT_DYLIB_PATH={} does not exist", path.display()))
        };
    }
    if let Some(found) = python_package_dir().and_then(|dir| library_in(&dir.join("capi"))) {
        return Ok(found);
    }
    for site in site_packages_dirs() {
        if let Some(found) = library_in(&site.join("onnxruntime").join("capi")) {
            return Ok(found);
        }
    }
    Err("no libonnxruntime found (set ORT_DYLIB_PATH or pip install onnxruntime)".into())
}

/// The folder of the `onnxruntime` package, found without importing it.
fn python_package_dir() -> Option<PathBuf> {
    const FIND: &str = "import importlib.util as u; s = u.find_spec('onnxruntime'); \
                        print(s.submodule_search_locations[0] if s else '')";
    ["python3", "python"].iter().find_map(|python| {
        let out = Command::new(python).args(["-c", FIND]).output().ok()?;
        let dir = String::from_utf8(out.stdout).ok()?;
        let dir = dir.trim();
        (out.status.success() && !dir.is_empty()).then(|| PathBuf::from(dir))
    })
}

/// `libonnxruntime.so*` (or the platform's equivalent) in `dir`, newest name first.
fn library_in(dir: &Path) -> Option<PathBuf> {
    let prefix = format!("{}onnxruntime", std::env::consts::DLL_PREFIX);
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with(&prefix)
                && name.contains(std::env::consts::DLL_SUFFIX)
                && !name.contains("providers")
                && p.is_file()
        })
        .collect();
    found.sort();
    found.pop()
}

/// Site-packages folders of common Python installations (system, user, pyenv, venv).
fn site_packages_dirs() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut roots: Vec<PathBuf> = ["/usr/lib", "/usr/local/lib", "/opt/homebrew/lib"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        roots.push(PathBuf::from(venv).join("lib"));
    }
    if let Some(home) = &home {
        roots.push(home.join(".local/lib"));
        if let Ok(versions) = std::fs::read_dir(home.join(".pyenv/versions")) {
            roots.extend(
                versions
                    .filter_map(|v| v.ok())
                    .map(|v| v.path().join("lib")),
            );
        }
    }
    let mut dirs = vec![PathBuf::from("/usr/lib/python3/dist-packages")];
    for root in roots {
        let Ok(entries) = std::fs::read_dir(&root) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            if entry.file_name().to_string_lossy().starts_with("python3") {
                dirs.push(entry.path().join("site-packages"));
                dirs.push(entry.path().join("dist-packages"));
            }
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_choice_parses_the_cli_names() {
        assert_eq!("auto".parse(), Ok(BackendChoice::Auto));
        assert_eq!("onnxruntime".parse(), Ok(BackendChoice::OnnxRuntime));
        assert_eq!("TRACT".parse(), Ok(BackendChoice::Tract));
        assert!("cuda".parse::<BackendChoice>().is_err());
        for c in [
            BackendChoice::Auto,
            BackendChoice::OnnxRuntime,
            BackendChoice::Tract,
        ] {
            assert_eq!(c.to_string().parse(), Ok(c));
        }
    }

    #[test]
    fn backend_names_are_the_json_names() {
        assert_eq!(
            serde_json::to_string(&Backend::OnnxRuntime).unwrap(),
            "\"onnxruntime\""
        );
        assert_eq!(Backend::Tract.to_string(), "tract");
    }

    #[test]
    fn library_in_picks_the_runtime_not_the_providers() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = std::env::consts::DLL_PREFIX;
        let suffix = std::env::consts::DLL_SUFFIX;
        let lib = dir
            .path()
            .join(format!("{prefix}onnxruntime{suffix}.1.31.1"));
        std::fs::write(&lib, b"").unwrap();
        let providers = format!("{prefix}onnxruntime_providers_shared{suffix}");
        std::fs::write(dir.path().join(providers), b"").unwrap();
        assert_eq!(library_in(dir.path()), Some(lib));
        assert_eq!(library_in(&dir.path().join("missing")), None);
    }
}
