//! What the inference child does to itself before it reads a byte of a model.
//!
//! Layers, each reported in one line for the worker's start-up log:
//! - **rlimits**: address space (`RLIMIT_AS`), no core dumps, no file
//!   writes (`RLIMIT_FSIZE` 0), few descriptors; CPU time is capped per task
//!   by [`cpu_budget`].
//! - **Landlock** (Linux 5.13+): the file system is closed except, read-only,
//!   the shared libraries the runtime loads; TCP bind/connect are closed
//!   (ABI 4+); signals and abstract sockets outside the child are closed
//!   (ABI 6+). Where the kernel lacks it, the line says so and the other
//!   layers still hold.
//! - **Network namespace**: an empty one where the kernel allows it, so not
//!   even UDP leaves the child.
//! - The parent already started it in an empty working directory with an
//!   empty environment, and it dies with the parent (`PR_SET_PDEATHSIG`).

use std::path::PathBuf;

use landlock::{
    path_beneath_rules, Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetCreatedAttr,
    RulesetStatus, Scope, ABI,
};

/// The limits the child puts on itself.
#[derive(Debug, Clone)]
pub struct Confinement {
    /// Address space limit in bytes.
    pub memory_bytes: u64,
    /// Paths the child may read (and map executable): shared libraries only.
    pub readable: Vec<PathBuf>,
}

/// What was applied, one human line per layer.
#[derive(Debug, Clone, Default)]
pub struct Confined {
    pub lines: Vec<String>,
    pub landlock: bool,
}

/// What the runtime may read besides its own folder: the shared libraries
/// the dynamic loader needs, and the CPU's description (ONNX Runtime sizes
/// its thread pools from it). Nothing here is private to the worker.
pub const SYSTEM_LIBRARIES: [&str; 8] = [
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/etc/ld.so.cache",
    "/proc/cpuinfo",
    "/sys/devices/system/cpu",
];

/// Applies every layer to the calling (single-threaded) process.
pub fn confine(c: &Confinement) -> Confined {
    let mut out = Confined::default();
    die_with_parent();
    out.lines.push(rlimits(c.memory_bytes));
    out.lines.push(network_namespace());
    let (line, enforced) = landlock(&c.readable);
    out.lines.push(line);
    out.landlock = enforced;
    out
}

fn die_with_parent() {
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
    }
}

fn set_limit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> bool {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: a plain struct passed by pointer.
    unsafe { libc::setrlimit(resource, &lim) == 0 }
}

fn rlimits(memory_bytes: u64) -> String {
    let ok = [
        set_limit(libc::RLIMIT_AS, memory_bytes, memory_bytes),
        set_limit(libc::RLIMIT_CORE, 0, 0),
        set_limit(libc::RLIMIT_FSIZE, 0, 0),
        set_limit(libc::RLIMIT_NOFILE, 256, 256),
    ];
    if ok.iter().all(|&b| b) {
        format!(
            "rlimits: {} MiB of address space, no core dumps, no file writes, 256 descriptors, CPU time per task",
            memory_bytes >> 20
        )
    } else {
        format!("rlimits: some could not be set ({ok:?}: memory, core, file size, descriptors)")
    }
}

/// Caps the CPU time of the next task: the kernel stops the child
/// (`SIGXCPU`) once it has used `secs` more seconds of CPU.
pub fn cpu_budget(secs: u64) {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let used = usage.ru_utime.tv_sec as u64 + usage.ru_stime.tv_sec as u64 + 1;
    set_limit(libc::RLIMIT_CPU, used + secs.max(1), libc::RLIM_INFINITY);
}

fn network_namespace() -> String {
    // SAFETY: unshare changes only this process's namespaces.
    let own = unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0;
    if own {
        return "network: an empty network namespace (no interfaces)".into();
    }
    // Unprivileged: a user namespace first (needs a single-threaded process).
    let user = unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) } == 0;
    if user {
        "network: an empty network namespace (no interfaces, in a user namespace)".into()
    } else {
        format!(
            "network: no namespace of its own ({}); Landlock closes TCP where the kernel has ABI 4",
            std::io::Error::last_os_error()
        )
    }
}

fn landlock(readable: &[PathBuf]) -> (String, bool) {
    let abi = ABI::V6;
    let applied = (|| -> Result<_, landlock::RulesetError> {
        Ruleset::default()
            .handle_access(AccessFs::from_all(abi))?
            .handle_access(AccessNet::from_all(abi))?
            .scope(Scope::from_all(abi))?
            .create()?
            .add_rules(path_beneath_rules(
                readable.iter().filter(|p| p.exists()),
                AccessFs::from_read(abi),
            ))?
            .restrict_self()
    })();
    match applied {
        Ok(status) => match status.ruleset {
            RulesetStatus::FullyEnforced => (
                "Landlock: fully enforced (no file readable but the runtime's libraries and the CPU description; no TCP; no signals out)".into(),
                true,
            ),
            RulesetStatus::PartiallyEnforced => (
                "Landlock: partly enforced (an older kernel): files closed but the runtime's libraries; some network or signal rules missing".into(),
                true,
            ),
            RulesetStatus::NotEnforced => (
                "Landlock: NOT available on this kernel; the inference child can read whatever this user can (the key stays in the parent)".into(),
                false,
            ),
        },
        Err(e) => (
            format!("Landlock: NOT applied ({e}); the inference child can read whatever this user can (the key stays in the parent)"),
            false,
        ),
    }
}
