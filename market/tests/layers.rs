//! The market's layers, checked from its source: a module may use modules
//! of its own layer or below, never above. Lower to higher:
//!
//! 1. `base`: the error type, configuration (the golden set among it),
//!    state machines, encodings, wake-ups;
//! 2. `store`: the shared handle, events, the database, the ledger, task
//!    rows, replay protection;
//! 3. `rules`: bids, claims, results, checks, the decision, payment,
//!    review, sweeps, publication, withdrawals, settlement and deposits,
//!    the operator's views;
//! 4. `http`: the router, the signed-request extractor, read models, the
//!    API document, the console;
//! 5. `start`: start-up and background jobs.
//!
//! The folders show it: `src/store/`, `src/rules/` and `src/chain/` (both
//! rules), `src/http/`; the base and start-up at the top of `src/`.
//!
//! [`KNOWN`] lists the upward uses still to untie; the test fails on any
//! other, and on a listed one that is gone (so the list only shrinks).

use std::collections::BTreeSet;
use std::path::Path;

const LAYERS: &[(&str, &[&str])] = &[
    (
        "base",
        &[
            "error",
            "config",
            "golden",
            "lifecycle",
            "canonical",
            "wake",
        ],
    ),
    (
        "store",
        &["state", "events", "db", "ledger", "task", "nonces"],
    ),
    (
        "rules",
        &[
            "bids",
            "checks",
            "claims",
            "results",
            "review",
            "decide",
            "payment",
            "sweep",
            "publish",
            "withdrawals",
            "settle",
            "deposits",
            "admin",
        ],
    ),
    ("http", &["api", "auth", "views", "openapi", "console"]),
    ("start", &["server"]),
];

/// Upward uses not untied yet: (from module, to module).
const KNOWN: &[(&str, &str)] = &[
    // The shared handle holds the checks made ahead of time.
    ("state", "checks"),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&module))
}

/// The folders the layers live in (`store/`, `rules/`, ...): a module in
/// one is named by its own file or folder inside it.
const FOLDERS: &[&str] = &["store", "rules", "chain", "http"];

/// The module a source file belongs to (`lib` for the crate root and the
/// layer folders' `mod.rs`, which only declare modules).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let parts: Vec<String> = rel
        .components()
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string()
        })
        .collect();
    match parts.as_slice() {
        [folder, m, ..] if FOLDERS.contains(&folder.as_str()) => {
            if m == "mod" {
                "lib".into()
            } else {
                m.clone()
            }
        }
        [first, ..] => first.clone(),
        [] => unreachable!(),
    }
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every `crate::NAME` a file names outside its tests.
fn uses(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap();
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + 7..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
        if rest.starts_with('{') {
            let inner = &rest[1..rest.find('}').unwrap_or(rest.len())];
            for part in inner.split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        }
    }
    out
}

#[test]
fn no_module_uses_one_from_a_layer_above() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut found = BTreeSet::new();
    let mut unplaced = BTreeSet::new();
    for file in &all {
        let from = module_of(&src, file);
        if from == "lib" {
            continue;
        }
        let Some(from_layer) = layer_of(&from) else {
            unplaced.insert(from);
            continue;
        };
        for to in uses(&std::fs::read_to_string(file).unwrap()) {
            // Items re-exported at the root belong to their module.
            let to = match to.as_str() {
                "Market" | "Metrics" | "now_ms" | "to_time" => "state".to_string(),
                "MarketError" | "Result" => "error".to_string(),
                "Config" | "Limits" => "config".to_string(),
                _ => to,
            };
            if to == from {
                continue;
            }
            if let Some(to_layer) = layer_of(&to) {
                if to_layer > from_layer {
                    found.insert((from.clone(), to));
                }
            }
        }
    }
    assert!(unplaced.is_empty(), "modules in no layer: {unplaced:?}");
    let known: BTreeSet<(String, String)> = KNOWN
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let new: Vec<_> = found.difference(&known).collect();
    let gone: Vec<_> = known.difference(&found).collect();
    assert!(new.is_empty(), "upward uses: {new:?}");
    assert!(gone.is_empty(), "untied, take them off KNOWN: {gone:?}");
}
