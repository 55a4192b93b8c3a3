//! `mailplane bench` runs end to end at a tiny scale and writes a well-formed report.
//! Only the report's structure is checked: a benchmark's figures are not a test's business.

mod common;

use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

/// Runs the real binary's `bench` at a tiny scale; its JSON report and its stdout.
fn run_bench(extra: &[&str]) -> (Value, String, u32) {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("report.json");
    let child = Command::new(bin())
        .args([
            "bench",
            "--orgs",
            "1",
            "--accounts",
            "20",
            "--step-secs",
            "0.3",
            "--start-rate",
            "50",
            "--max-rate",
            "100",
            "--ceiling-secs",
            "0.2",
            "--json",
        ])
        .arg(&json)
        .arg("--data-dir")
        .arg(dir.path())
        .args(extra)
        .env("MAILPLANE_LOG", "warn")
        .env_remove("MAILPLANE_DB")
        .env_remove("MAILPLANE_RELAY_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mailplane bench");
    let pid = child.id();
    let out = child.wait_with_output().expect("run mailplane bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bench failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the JSON report")).expect("JSON");
    // The work directory is gone: only the report is left in the data directory.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("report.json")]);
    (report, stdout, pid)
}

/// Every number anywhere in `v` is finite and not negative.
fn assert_non_negative(v: &Value, path: &str) {
    match v {
        Value::Number(n) => {
            let f = n.as_f64().unwrap();
            assert!(f.is_finite() && f >= 0.0, "{path} = {f}");
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| assert_non_negative(x, &format!("{path}[{i}]"))),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, x)| assert_non_negative(x, &format!("{path}.{k}"))),
        _ => {}
    }
}

fn number_or_null(v: &Value, what: &str) {
    assert!(v.is_number() || v.is_null(), "{what}: {v}");
}

fn check_step(s: &Value, what: &str) {
    for field in [
        "offeredRate",
        "achievedRate",
        "requests",
        "ok",
        "errors",
        "errorRate",
    ] {
        assert!(s[field].is_number(), "{what}.{field}: {s}");
    }
    for field in ["p50Ms", "p99Ms", "p999Ms", "maxRssKib"] {
        number_or_null(&s[field], &format!("{what}.{field}"));
    }
    assert!(
        s["pass"].is_boolean() && s["aborted"].is_boolean(),
        "{what}"
    );
    // Where the machine's CPU time went (Linux has /proc/stat): shares that add up.
    if cfg!(target_os = "linux") {
        let cpu = &s["cpu"];
        let shares: Vec<f64> = ["busyPct", "iowaitPct", "stealPct", "idlePct"]
            .iter()
            .map(|f| {
                cpu[*f]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{what}.cpu.{f}: {cpu}"))
            })
            .collect();
        assert!(
            shares.iter().all(|v| (0.0..=100.0).contains(v)),
            "{what}.cpu: {cpu}"
        );
        let sum: f64 = shares.iter().sum();
        assert!(
            (sum - 100.0).abs() <= 0.5,
            "{what}.cpu adds up to {sum}: {cpu}"
        );
    }
}

fn check_report(r: &Value, stdout: &str, backend: &str, nodes: u64, ceilings: &[&str]) {
    assert_non_negative(r, "report");
    assert_eq!(r["backend"], backend);
    assert_eq!(r["nodes"], nodes);
    assert_eq!(r["organizations"], 1);
    assert_eq!(r["accountsPerOrganization"], 20);
    assert_eq!(r["accounts"], 20);
    assert!(r["seedSecs"].is_number());
    assert!(r["machine"]["cpus"].as_u64().unwrap() >= 1);

    let settings = r["durability"]["settings"].as_array().expect("settings");
    assert!(!settings.is_empty(), "no durability setting listed");
    for s in settings {
        assert!(
            s["name"].is_string() && s["value"].is_string(),
            "setting {s}"
        );
    }
    assert!(r["durability"]["weakerThanDefault"].is_boolean());
    let names: Vec<&str> = settings
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    let expected: &[&str] = if backend == "sqlite" {
        &["journal_mode", "synchronous"]
    } else {
        &["synchronous_commit", "fsync"]
    };
    for name in expected {
        assert!(names.contains(name), "{name} not in {names:?}");
    }

    let workloads = r["workloads"].as_array().expect("workloads");
    let keys: Vec<&str> = workloads
        .iter()
        .map(|w| w["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["mailplane_put", "mailplane_get", "echo_put", "echo_get"]
    );
    for w in workloads {
        let key = w["key"].as_str().unwrap();
        let steps = w["steps"].as_array().expect("steps");
        assert!(!steps.is_empty(), "{key}: no step");
        for (i, s) in steps.iter().enumerate() {
            check_step(s, &format!("{key}.steps[{i}]"));
        }
        assert!(w["lowerBound"].is_boolean());
        match &w["best"] {
            Value::Null => {}
            best => {
                check_step(best, &format!("{key}.best"));
                assert_eq!(best["pass"], true);
            }
        }
    }

    let found: Vec<&str> = r["ceilings"]
        .as_array()
        .expect("ceilings")
        .iter()
        .map(|c| {
            number_or_null(&c["perSecond"], "ceiling");
            assert!(c["unit"].is_string() && c["name"].is_string());
            let key = c["key"].as_str().unwrap();
            // The bare loops time each flush: the disk's latency, tail included.
            if key.starts_with("sqlite_") {
                let (p50, max) = (c["commitMs"]["p50"].as_f64(), c["commitMs"]["max"].as_f64());
                assert!(
                    p50.zip(max)
                        .is_some_and(|(p50, max)| p50 > 0.0 && p50 <= max),
                    "{key}.commitMs: {}",
                    c["commitMs"]
                );
            } else {
                assert!(c["commitMs"].is_null(), "{key}.commitMs: {}", c["commitMs"]);
            }
            key
        })
        .collect();
    assert_eq!(found, ceilings);

    let ratios = r["ratios"].as_array().expect("ratios");
    assert!(!ratios.is_empty());
    let mut targets = 0;
    for ratio in ratios {
        number_or_null(&ratio["value"], "ratio");
        assert!(ratio["name"].is_string());
        match (&ratio["target"], &ratio["verdict"]) {
            (Value::Null, Value::Null) => {}
            (Value::Number(_), Value::String(v)) => {
                assert!(["PASS", "MISS", "N/A"].contains(&v.as_str()), "{v}");
                targets += 1;
            }
            other => panic!("a target without a verdict or the reverse: {other:?}"),
        }
    }
    assert!(targets >= 2);

    let memory = &r["memory"];
    assert_eq!(memory["limitMib"], 200.0);
    number_or_null(&memory["rssMibAtHighestRate"], "memory");
    number_or_null(&memory["hwmMib"], "memory");
    let runs = memory["perNode"].as_array().unwrap();
    assert!(
        runs.len() as u64 >= 2 * nodes,
        "a ramp per workload: {runs:?}"
    );
    for run in runs {
        assert!(run["workload"].is_string() && run["pid"].is_number());
    }
    // The target is for 100,000 accounts: this run cannot claim it.
    assert_eq!(memory["verdict"], "N/A");

    for line in [
        "durability:",
        "steal",
        "ceilings of this machine",
        "ratios",
        "VmRSS",
    ] {
        assert!(
            stdout.contains(line),
            "{line:?} not in the table:\n{stdout}"
        );
    }
}

#[test]
fn sqlite_bench_writes_a_complete_report() {
    let (report, stdout, _) = run_bench(&[]);
    check_report(
        &report,
        &stdout,
        "sqlite",
        1,
        &[
            "sqlite_1_per_tx",
            "sqlite_100_per_tx",
            "echo_put",
            "echo_get",
        ],
    );
}

#[cfg_attr(
    no_postgres,
    ignore = "no PostgreSQL answered when this test was built (see crates/store/build.rs)"
)]
#[test]
fn postgres_bench_on_two_nodes_writes_a_complete_report() {
    // Fails the test, rather than passing it, when no server answers.
    Backend::postgres("bench::postgres_bench_on_two_nodes_writes_a_complete_report");
    let admin_url = pg_admin_url();
    let (report, stdout, pid) = run_bench(&["--db", &admin_url]);
    check_report(
        &report,
        &stdout,
        "postgres",
        2,
        &["pgbench", "echo_put", "echo_get"],
    );
    let pgbench = &report["ceilings"][0];
    assert!(pgbench["error"].is_null(), "pgbench: {}", pgbench["error"]);
    assert!(pgbench["perSecond"].is_number());
    // The scratch databases (mailplane's and pgbench's) are dropped.
    let left = psql(
        &admin_url,
        &format!("SELECT datname FROM pg_database WHERE datname LIKE 'mailplane_bench_{pid}%'"),
    );
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn console_bench_measures_each_page_against_the_api_listing() {
    let (r, stdout, _) = run_bench(&["--console", "--console-rate", "20"]);
    assert_non_negative(&r, "report");
    assert_eq!(r["scenario"], "console");
    assert_eq!(r["backend"], "sqlite");
    assert_eq!(r["organizations"], 1);
    assert_eq!(r["users"], 20);
    // 20 users and the admin: one page of 25.
    assert_eq!(r["pages"], 1);
    assert_eq!(r["plan"]["ratePerSecond"], 20.0);
    assert_eq!(r["baseline"], "api_accounts");
    let steps = r["steps"].as_array().expect("steps");
    let keys: Vec<&str> = steps.iter().map(|s| s["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "api_accounts",
            "console_first_page",
            "console_random_page",
            "console_search_one",
            "console_search_many",
            "console_search_none"
        ]
    );
    for s in steps {
        let key = s["key"].as_str().unwrap();
        let result = &s["result"];
        check_step(result, key);
        number_or_null(&result["p90Ms"], &format!("{key}.p90Ms"));
        // Every answer was a 200 page: a redirect to the sign-in page would be an error.
        assert_eq!(result["errors"], 0, "{key}: {result}");
        assert!(result["ok"].as_u64().unwrap() > 0, "{key}: {result}");
        number_or_null(&s["p50VsBaseline"], key);
        number_or_null(&s["p99VsBaseline"], key);
        assert!(s["request"].as_str().unwrap().starts_with("GET /"), "{key}");
        assert!(
            stdout.contains(s["name"].as_str().unwrap()),
            "{key} not in the table"
        );
    }
    assert_eq!(steps[0]["p50VsBaseline"], 1.0);
    assert!(stdout.contains("p99 ÷ baseline"), "{stdout}");
}
