//! The benchmark's report: the JSON file ([`Report`] serialized) and the terminal table
//! ([`Report::render`]).

use std::fmt::Write as _;

use serde::Serialize;

use crate::loadgen::{Percentiles, StepResult};

/// Steal (percent of the CPUs) from which a run's report warns that its p99s are noisy.
/// Below it, steal is within what an idle cloud machine shows.
pub const NOISY_STEAL_PCT: f64 = 5.0;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub mailplane_version: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Where the benchmark's fresh database was (a PostgreSQL URL without credentials).
    pub database: String,
    pub nodes: usize,
    pub organizations: u32,
    pub accounts_per_organization: u32,
    pub accounts: u64,
    pub seed_secs: f64,
    pub machine: Machine,
    pub plan: Plan,
    pub durability: Durability,
    /// mailplane's and the echo server's ramps.
    pub workloads: Vec<WorkloadRun>,
    pub ceilings: Vec<Ceiling>,
    pub ratios: Vec<Ratio>,
    pub memory: Memory,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: Option<String>,
    pub os: String,
    /// The benchmark's temporary directory (its database files, on SQLite).
    pub work_dir: String,
}

impl Machine {
    pub fn this(work_dir: String) -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        });
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            work_dir,
        }
    }
}

/// How the ramps ran.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub step_secs: f64,
    pub warmup_secs: f64,
    pub start_rate: f64,
    pub step_factor: f64,
    /// Bisection steps after the first miss.
    pub refine: u32,
    pub max_rate: Option<f64>,
    pub max_p99_ms: f64,
    pub max_error_rate: f64,
    pub ceiling_secs: f64,
    pub max_in_flight: usize,
    pub connections_per_server: usize,
    pub request_timeout_ms: u64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Durability {
    /// As the store reads them back from its database.
    pub settings: Vec<Setting>,
    pub weaker_than_default: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Setting {
    pub name: String,
    pub value: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRun {
    /// `mailplane_put`, `mailplane_get`, `echo_put`, `echo_get`.
    pub key: String,
    pub name: String,
    /// `mailplane` or `echo`.
    pub server: String,
    pub method: String,
    /// The passing step with the highest achieved rate; `null` when no step passed.
    pub best: Option<StepResult>,
    /// No step missed (the ramp stopped at `--max-rate`): `best` is a lower bound.
    pub lower_bound: bool,
    pub steps: Vec<StepResult>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ceiling {
    /// `sqlite_1_per_tx`, `sqlite_100_per_tx`, `echo_put`, `echo_get`, `pgbench`.
    pub key: String,
    pub name: String,
    /// `null` when it could not be measured (see `error`).
    pub per_second: Option<f64>,
    pub unit: String,
    pub detail: String,
    /// The external command that measured it (pgbench), credentials left out.
    pub command: Option<String>,
    pub error: Option<String>,
    /// The bare SQLite loops: how long each `COMMIT` took, in milliseconds.
    pub commit_ms: Option<Percentiles>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Verdict {
    #[serde(rename = "PASS")]
    Pass,
    #[serde(rename = "MISS")]
    Miss,
    /// Not measurable in this run (a ceiling missing, or not the configuration the target
    /// is for).
    #[serde(rename = "N/A")]
    NotApplicable,
}

impl Verdict {
    fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Miss => "MISS",
            Verdict::NotApplicable => "N/A",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ratio {
    pub name: String,
    pub numerator: String,
    pub denominator: String,
    pub value: Option<f64>,
    /// The ratio aimed at (at least), if any.
    pub target: Option<f64>,
    /// `null` when there is no target.
    pub verdict: Option<Verdict>,
    pub note: Option<String>,
}

impl Ratio {
    /// Takes into account that the numerator or the denominator (`lower_bound`) is only a
    /// lower bound of the real figure: a verdict the bound cannot decide becomes N/A.
    pub fn bounded(mut self, numerator_lower_bound: bool, denominator_lower_bound: bool) -> Ratio {
        let undecided = match self.verdict {
            Some(Verdict::Pass) => denominator_lower_bound,
            Some(Verdict::Miss) => numerator_lower_bound && self.value.is_some(),
            _ => false,
        };
        if numerator_lower_bound || denominator_lower_bound {
            self.add_note("a rate stopped at --max-rate without a miss is a lower bound");
        }
        if undecided {
            self.verdict = Some(Verdict::NotApplicable);
        }
        self
    }

    /// For a ceiling that does strictly less than what it divides (echo answers without
    /// any of the server's work): a value above 1 cannot be the server's doing. The
    /// ceiling's ramp was cut short by a stall of the machine, and no verdict can be drawn
    /// from it: N/A, with a note that says so.
    pub fn ceiling_must_exceed(mut self) -> Ratio {
        if self.value.is_some_and(|v| v > 1.0) && self.verdict.is_some() {
            self.verdict = Some(Verdict::NotApplicable);
            let note = format!(
                "{} came out below {}, which does more work: the machine stalled during its ramp; run again",
                self.denominator, self.numerator
            );
            self.add_note(&note);
        }
        self
    }

    /// Appends `note` to those already there.
    fn add_note(&mut self, note: &str) {
        self.note = Some(match self.note.take() {
            Some(n) => format!("{n}; {note}"),
            None => note.to_string(),
        });
    }

    /// `numerator ÷ denominator`. With a target: PASS when reached, MISS when not, or when
    /// mailplane passed no step at all (`numerator` missing); N/A when the ceiling is
    /// missing.
    pub fn new(
        name: &str,
        numerator: (&str, Option<f64>),
        denominator: (&str, Option<f64>),
        target: Option<f64>,
    ) -> Ratio {
        let value = match (numerator.1, denominator.1) {
            (Some(n), Some(d)) if d > 0.0 => Some(n / d),
            _ => None,
        };
        let (verdict, note) = match (target, value) {
            (None, _) => (None, None),
            (Some(t), Some(v)) => (
                Some(if v >= t { Verdict::Pass } else { Verdict::Miss }),
                None,
            ),
            (Some(_), None) if denominator.1.is_none_or(|d| d <= 0.0) => (
                Some(Verdict::NotApplicable),
                Some(format!("{} was not measured", denominator.0)),
            ),
            (Some(_), None) => (
                Some(Verdict::Miss),
                Some(format!("{}: no step passed", numerator.0)),
            ),
        };
        Ratio {
            name: name.to_string(),
            numerator: numerator.0.to_string(),
            denominator: denominator.0.to_string(),
            value,
            target,
            verdict,
            note,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    /// The highest resident memory of a mailplane node sampled during the passing steps
    /// before the first miss of the PUT and GET ramps (each ramp starts fresh servers): the
    /// memory at the highest rate served. Steps after a miss are left out: an overloaded
    /// server keeps the buffers of its thousands of connections.
    pub rss_mib_at_highest_rate: Option<f64>,
    /// The peak resident memory of a node over a whole ramp (every step, including the
    /// overloaded ones), the largest.
    pub hwm_mib: Option<f64>,
    /// Every mailplane server process the benchmark ran.
    pub per_node: Vec<NodeMemory>,
    pub limit_mib: f64,
    /// `rssMibAtHighestRate` under the limit; N/A unless the run had 100,000 accounts.
    pub verdict: Verdict,
    pub note: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeMemory {
    /// The workload it served (`mailplane_put`, `mailplane_get`).
    pub workload: String,
    pub pid: u32,
    pub vm_hwm_kib: Option<u64>,
    pub vm_rss_kib_at_end: Option<u64>,
}

impl Report {
    /// The workload run with this key.
    pub fn workload(&self, key: &str) -> Option<&WorkloadRun> {
        self.workloads.iter().find(|w| w.key == key)
    }

    /// The step of the run in which the hypervisor took the largest share of the CPUs,
    /// with that share in percent.
    pub fn most_stolen(&self) -> Option<(&WorkloadRun, &StepResult, f64)> {
        self.workloads
            .iter()
            .flat_map(|w| w.steps.iter().map(move |s| (w, s)))
            .filter_map(|(w, s)| Some((w, s, s.cpu?.steal_pct)))
            .max_by(|a, b| a.2.total_cmp(&b.2))
    }

    /// The terminal table. `color`: ANSI colors (red for a weaker durability setting and a
    /// MISS, green for a PASS); without it the words say the same.
    pub fn render(&self, color: bool) -> String {
        let paint = |code: &str, s: &str| {
            if color {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s.to_string()
            }
        };
        let verdict = |v: Verdict| match v {
            Verdict::Pass => paint("32", "PASS"),
            Verdict::Miss => paint("31;1", "MISS"),
            Verdict::NotApplicable => v.word().to_string(),
        };
        let mut o = String::new();
        let backend = if self.backend == "postgres" {
            "PostgreSQL"
        } else {
            "SQLite"
        };
        let _ = writeln!(
            o,
            "mailplane bench {}: {backend}, {} node{}, {} organization{} × {} accounts ({} accounts), seeded in {:.1} s",
            self.mailplane_version,
            self.nodes,
            if self.nodes == 1 { "" } else { "s" },
            self.organizations,
            if self.organizations == 1 { "" } else { "s" },
            self.accounts_per_organization,
            self.accounts,
            self.seed_secs
        );
        let _ = writeln!(
            o,
            "machine: {} CPU{}{}, {}; database: {}",
            self.machine.cpus,
            if self.machine.cpus == 1 { "" } else { "s" },
            self.machine
                .cpu_model
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default(),
            self.machine.os,
            self.database
        );
        let settings = self
            .durability
            .settings
            .iter()
            .map(|s| format!("{}={}", s.name, s.value))
            .collect::<Vec<_>>()
            .join(", ");
        if self.durability.weaker_than_default {
            let _ = writeln!(
                o,
                "{}",
                paint(
                    "31;1",
                    &format!(
                        "durability: {settings}: WEAKER than the defaults, so these numbers overstate a durable server"
                    )
                )
            );
        } else {
            let _ = writeln!(o, "durability: {settings} (the defaults)");
        }
        let p = &self.plan;
        let _ = writeln!(
            o,
            "open loop, latency from the intended send time: steps of {} s after {} s of warmup, from {}/s ×{}{}, until p99 > {} ms or errors > {}%, then up to {} bisection steps",
            p.step_secs,
            p.warmup_secs,
            p.start_rate,
            p.step_factor,
            p.max_rate.map(|m| format!(" up to {m}/s")).unwrap_or_default(),
            p.max_p99_ms,
            p.max_error_rate * 100.0,
            p.refine
        );
        o.push('\n');

        let _ = writeln!(
            o,
            "{:<26} {:>14} {:>11} {:>9} {:>9} {:>9} {:>16} {:>7} {:>6}",
            format!("workload (p99 ≤ {} ms)", p.max_p99_ms),
            "offered rate",
            "achieved",
            "p50",
            "p99",
            "p99.9",
            "errors",
            "steps",
            "steal"
        );
        for w in &self.workloads {
            match &w.best {
                Some(b) => {
                    let _ = writeln!(
                        o,
                        "{:<26} {:>14} {:>11} {:>9} {:>9} {:>9} {:>16} {:>7} {:>6}",
                        w.name,
                        format!(
                            "{}{:.0}/s",
                            if w.lower_bound { "≥ " } else { "" },
                            b.offered_rate
                        ),
                        format!("{:.0}/s", b.achieved_rate),
                        ms(b.p50_ms),
                        ms(b.p99_ms),
                        ms(b.p999_ms),
                        format!("{} ({:.2}%)", b.errors, b.error_rate * 100.0),
                        w.steps.len(),
                        b.cpu.map_or("-".into(), |c| format!("{:.0}%", c.steal_pct))
                    );
                }
                None => {
                    let first = w.steps.first();
                    let _ = writeln!(
                        o,
                        "{:<26} {}",
                        w.name,
                        paint(
                            "31;1",
                            &format!(
                                "no step passed (the first, at {}: p99 {}, {} errors)",
                                first.map_or("-".into(), |s| format!("{:.0}/s", s.offered_rate)),
                                ms(first.and_then(|s| s.p99_ms)),
                                first.map_or(0, |s| s.errors)
                            )
                        )
                    );
                }
            }
        }
        if let Some((w, step, steal)) = self.most_stolen() {
            if steal >= NOISY_STEAL_PCT {
                let _ = writeln!(
                    o,
                    "{}",
                    paint(
                        "33",
                        &format!(
                            "steal: the hypervisor held up to {steal:.0}% of the CPUs in a step ({} at {:.0}/s), so this run's p99s are noisy; compare builds at a fixed rate, alternated",
                            w.name, step.offered_rate
                        )
                    )
                );
            }
        }
        o.push('\n');

        let _ = writeln!(o, "ceilings of this machine");
        for c in &self.ceilings {
            match c.per_second {
                Some(v) => {
                    let _ = writeln!(
                        o,
                        "  {:<40} {:>10.0} {:<12} {}",
                        c.name, v, c.unit, c.detail
                    );
                }
                None => {
                    let _ = writeln!(
                        o,
                        "  {:<40} {:>10} {:<12} {}",
                        c.name,
                        "-",
                        c.unit,
                        c.error.as_deref().unwrap_or("not measured")
                    );
                }
            }
        }
        o.push('\n');

        let _ = writeln!(
            o,
            "{:<48} {:>9} {:>10} {:>7}",
            "ratios", "value", "target", ""
        );
        for r in &self.ratios {
            let value = r.value.map_or("-".into(), |v| format!("{v:.2}×"));
            let target = r.target.map_or(String::new(), |t| format!("≥ {t}×"));
            let _ = writeln!(
                o,
                "{:<48} {:>9} {:>10} {:>7}{}",
                r.name,
                value,
                target,
                r.verdict.map(verdict).unwrap_or_default(),
                r.note
                    .as_deref()
                    .map(|n| format!("  ({n})"))
                    .unwrap_or_default()
            );
        }
        let m = &self.memory;
        let _ = writeln!(
            o,
            "{:<48} {:>9} {:>10} {:>7}{}",
            "server memory (VmRSS at the highest rate)",
            m.rss_mib_at_highest_rate
                .map_or("-".into(), |v| format!("{v:.1} MiB")),
            format!("< {} MiB", m.limit_mib),
            verdict(m.verdict),
            m.note
                .as_deref()
                .map(|n| format!("  ({n})"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            o,
            "{:<48} {:>9}",
            "server memory peak over a ramp (VmHWM)",
            m.hwm_mib.map_or("-".into(), |v| format!("{v:.1} MiB"))
        );
        o
    }
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v < 10.0 => format!("{v:.2} ms"),
        Some(v) => format!("{v:.1} ms"),
        None => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_verdicts() {
        let r = Ratio::new("a", ("x", Some(30.0)), ("y", Some(10.0)), Some(3.0));
        assert_eq!((r.value, r.verdict), (Some(3.0), Some(Verdict::Pass)));
        let r = Ratio::new("a", ("x", Some(29.0)), ("y", Some(10.0)), Some(3.0));
        assert_eq!(r.verdict, Some(Verdict::Miss));
        let r = Ratio::new("a", ("x", None), ("y", Some(10.0)), Some(3.0));
        assert_eq!((r.value, r.verdict), (None, Some(Verdict::Miss)));
        let r = Ratio::new("a", ("x", Some(1.0)), ("y", None), Some(3.0));
        assert_eq!(r.verdict, Some(Verdict::NotApplicable));
        let r = Ratio::new("a", ("x", Some(1.0)), ("y", Some(4.0)), None);
        assert_eq!((r.value, r.verdict), (Some(0.25), None));
        let pass = Ratio::new("a", ("x", Some(30.0)), ("y", Some(10.0)), Some(3.0));
        let miss = Ratio::new("a", ("x", Some(20.0)), ("y", Some(10.0)), Some(3.0));
        assert_eq!(
            pass.clone().bounded(true, false).verdict,
            Some(Verdict::Pass)
        );
        assert_eq!(
            pass.clone().bounded(false, true).verdict,
            Some(Verdict::NotApplicable)
        );
        assert_eq!(
            miss.clone().bounded(false, true).verdict,
            Some(Verdict::Miss)
        );
        assert_eq!(
            miss.clone().bounded(true, false).verdict,
            Some(Verdict::NotApplicable)
        );
        assert!(miss.bounded(true, true).note.is_some());
        assert_eq!(
            serde_json::to_value(Verdict::NotApplicable).unwrap(),
            serde_json::json!("N/A")
        );
    }

    #[test]
    fn a_ceiling_below_what_it_bounds_decides_nothing() {
        // Seen in a run: echo PUT stalled at 349/s while the server did 10,963 updates/s.
        let stalled = Ratio::new(
            "updates/s ÷ HTTP echo PUT",
            ("durable updates/s", Some(10_963.0)),
            ("HTTP echo PUT", Some(349.0)),
            Some(0.4),
        )
        .ceiling_must_exceed();
        assert_eq!(stalled.verdict, Some(Verdict::NotApplicable));
        let note = stalled.note.unwrap();
        assert!(
            note.contains("HTTP echo PUT came out below durable updates/s"),
            "{note}"
        );
        // A real ratio keeps its verdict, either way.
        for (n, verdict) in [(20_000.0, Verdict::Pass), (10_000.0, Verdict::Miss)] {
            let r = Ratio::new("r", ("x", Some(n)), ("echo", Some(40_000.0)), Some(0.4))
                .ceiling_must_exceed();
            assert_eq!((r.verdict, r.note), (Some(verdict), None));
        }
        // Without a target there is no verdict to take back.
        let r = Ratio::new("r", ("x", Some(2.0)), ("echo", Some(1.0)), None).ceiling_must_exceed();
        assert_eq!((r.verdict, r.note), (None, None));
    }
}
