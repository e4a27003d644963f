//! `tally bench trust --json` run as a user would: the built binary, one JSON
//! document with every field in range; an honest fleet verifies nothing
//! wrong, pays no saboteur and fails no spot check; spot checks catch
//! saboteurs and never an honest worker.

use std::process::Command;

use serde_json::Value;

/// Run `tally bench trust --json` with `args`; its report. The bids'
/// deadline bounds the run: a task still waiting then fails.
fn bench_trust(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["bench", "trust", "--json", "--deadline", "30"])
        .args(args)
        .output()
        .expect("tally bench trust runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench trust failed: {stderr}");
    serde_json::from_slice(&out.stdout).expect("one JSON document on stdout")
}

fn num(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {v}"))
}

/// Every documented field is there, counts add up, rates are rates.
fn check_report(v: &Value, tasks: u64, workers: u64) {
    assert_eq!(v["bench"], "trust");
    assert_eq!(v["tasks"], tasks);
    assert_eq!(v["workers"], workers);
    for rate in [
        "saboteur_fraction",
        "error_rate",
        "saboteur_paid_share",
        "spot_check_share",
    ] {
        let r = num(v, rate);
        assert!((0.0..=1.0).contains(&r), "{rate} = {r} in {v}");
    }
    let verified = num(v, "verified");
    let wrong = num(v, "wrong_verified");
    assert!(wrong <= verified, "{v}");
    assert_eq!(
        verified + num(v, "failed") + num(v, "undecided"),
        tasks as f64,
        "every task is counted once: {v}"
    );
    assert_eq!(num(v, "undecided"), 0.0, "every bid was done: {v}");
    assert!(verified > 0.0, "something was verified: {v}");
    assert!(num(v, "results_per_verified") >= 1.0, "{v}");
    assert!(
        (num(v, "error_rate") - wrong / verified).abs() < 1e-9,
        "{v}"
    );
    assert!(num(v, "paid") > 0.0, "{v}");
    assert_eq!(num(v, "refused"), 0.0, "no result was refused: {v}");
    let by_kind = v["by_kind"].as_object().expect("by_kind");
    let fleet: f64 = by_kind.values().map(|k| num(k, "workers")).sum();
    assert_eq!(fleet, workers as f64, "{v}");
    let results: f64 = by_kind.values().map(|k| num(k, "results")).sum();
    assert_eq!(results, num(v, "results"), "{v}");
    // Spot checks: only saboteurs are caught, and each caught one failed a
    // check or was refused work for it.
    assert_eq!(
        num(v, "honest_caught"),
        0.0,
        "an honest worker failed a check: {v}"
    );
    let caught: f64 = by_kind
        .iter()
        .filter(|(kind, _)| kind.as_str() != "honest")
        .map(|(_, k)| num(k, "caught"))
        .sum();
    assert_eq!(caught, num(v, "caught"), "{v}");
    assert!(caught <= num(v, "saboteurs"), "{v}");
    for (kind, k) in by_kind {
        assert!(num(k, "caught") <= num(k, "workers"), "{kind}: {v}");
        assert!(num(k, "checks_passed") >= 0.0, "{kind}: {v}");
        if kind == "honest" {
            assert_eq!(num(k, "checks_failed"), 0.0, "{v}");
        }
    }
    if v["checks"] == false {
        assert_eq!(num(v, "spot_check_share"), 0.0, "{v}");
        assert_eq!(num(v, "checks_issued"), 0.0, "{v}");
        assert_eq!(caught, 0.0, "{v}");
    }
}

#[test]
fn a_mixed_fleet_reports_every_field_in_range() {
    // 5 honest workers: as many as a task's most replicas, so no task waits
    // for a replica only caught workers could take.
    let v = bench_trust(&["--tasks", "40", "--workers", "7", "--saboteurs", "0.3"]);
    check_report(&v, 40, 7);
    assert_eq!(v["saboteurs"], 2, "0.3 of 7 workers rounds to 2: {v}");
    let by_kind = v["by_kind"].as_object().unwrap();
    assert_eq!(by_kind["honest"]["workers"], 5);
    assert_eq!(by_kind["random"]["workers"], 1);
    assert_eq!(by_kind["lazy"]["workers"], 1);
    assert!(num(&by_kind["honest"], "paid") > 0.0, "{v}");
}

#[test]
fn spot_checks_catch_saboteurs_and_no_honest_worker() {
    // Half saboteurs; the 5 honest workers can still give a task its most
    // replicas once every saboteur is caught.
    let v = bench_trust(&[
        "--tasks",
        "40",
        "--workers",
        "10",
        "--saboteurs",
        "0.5",
        "--mix",
        "lazy,random",
    ]);
    check_report(&v, 40, 10);
    assert_eq!(v["checks"], true, "checks are on by default: {v}");
    assert_eq!(v["saboteurs"], 5, "{v}");
    assert_eq!(v["honest_caught"], 0, "{v}");
    assert!(num(&v, "caught") >= 1.0, "no saboteur was caught: {v}");
    assert!(num(&v, "spot_check_share") > 0.0, "{v}");
    assert!(num(&v, "checks_issued") > 0.0, "{v}");
    assert!(
        num(&v["by_kind"]["honest"], "checks_passed") > 0.0,
        "honest workers pass checks: {v}"
    );
}

#[test]
fn without_checks_nothing_is_checked_and_nobody_caught() {
    let v = bench_trust(&[
        "--tasks",
        "20",
        "--workers",
        "6",
        "--saboteurs",
        "0.34",
        "--no-checks",
    ]);
    check_report(&v, 20, 6);
    assert_eq!(v["checks"], false, "{v}");
    let v = bench_trust(&["--tasks", "20", "--workers", "6", "--check-rate", "0"]);
    check_report(&v, 20, 6);
    assert_eq!(v["checks"], false, "{v}");
}

#[test]
fn an_honest_fleet_verifies_nothing_wrong_and_pays_no_saboteur() {
    let v = bench_trust(&["--tasks", "40", "--workers", "6", "--saboteurs", "0"]);
    check_report(&v, 40, 6);
    assert_eq!(v["saboteurs"], 0);
    assert_eq!(v["checks"], true, "{v}");
    assert_eq!(v["honest_caught"], 0, "{v}");
    assert_eq!(v["caught"], 0, "{v}");
    assert!(
        num(&v["by_kind"]["honest"], "checks_passed") > 0.0,
        "honest workers pass checks: {v}"
    );
    assert_eq!(v["wrong_verified"], 0, "{v}");
    assert_eq!(num(&v, "error_rate"), 0.0);
    assert_eq!(num(&v, "saboteur_paid_share"), 0.0);
    assert_eq!(v["verified"], 40, "honest workers agree on every task: {v}");
    assert_eq!(
        num(&v, "results"),
        num(&v["by_kind"]["honest"], "results"),
        "{v}"
    );
}
