//! Request metrics in Prometheus' text format: counts and latency histograms by route,
//! mode and status, and the database pool's state. A small registry of our own: a handful
//! of series, no global recorder, one lock taken once per request.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use mailplane_store::{CommitStats, FLUSH_BUCKETS};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum_secs: f64,
    /// Observations at or below each bound (cumulative, as Prometheus wants).
    buckets: [u64; BUCKETS.len()],
}

/// The labels of one series: route template, mode (or empty), status.
type Key = (String, String, u16);

#[derive(Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<Key, Series>>,
    /// What retention has pruned (it runs beside the requests, see `serve`).
    pub retention: std::sync::Arc<mailplane_store::retention::RetentionStats>,
}

/// A counter kept elsewhere, read at scrape time.
pub struct Counter {
    pub name: &'static str,
    pub help: &'static str,
    /// `k="v"` pairs, or empty.
    pub labels: &'static str,
    pub value: u64,
}

/// What the pool and the background writers look like at scrape time.
pub struct PoolState {
    pub in_use: usize,
    pub idle: usize,
    pub max: usize,
    /// SQLite's group commits, the writes they kept and their flush times, when the store
    /// commits in groups.
    pub commits: Option<CommitStats>,
    /// Counters of the background writers (refusals, retention); a name's lines are
    /// consecutive, its HELP and TYPE written once.
    pub counters: Vec<Counter>,
}

/// A mode the update handler puts into its response, for the metrics' `mode` label.
#[derive(Clone, Copy)]
pub struct ModeLabel(pub &'static str);

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One histogram series: a line per bucket (`at_most` counts are cumulative, one per
/// bound), the `+Inf` bucket, the sum and the count. `labels` is `k="v",…` or empty.
fn write_histogram(
    out: &mut String,
    name: &str,
    labels: &str,
    (bounds, at_most): (&[f64], &[u64]),
    count: u64,
    sum: f64,
) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (bound, n) in bounds.iter().zip(at_most) {
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
    let braced = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braced} {sum}");
    let _ = writeln!(out, "{name}_count{braced} {count}");
}

impl Metrics {
    pub fn observe(&self, route: &str, mode: &str, status: u16, secs: f64) {
        let mut map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let s = map
            .entry((route.to_string(), mode.to_string(), status))
            .or_default();
        s.count += 1;
        s.sum_secs += secs;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                s.buckets[i] += 1;
            }
        }
    }

    pub fn render(&self, pool: &PoolState) -> String {
        let map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let _ = writeln!(out, "# HELP mailplane_http_requests_total HTTP requests answered, by route, mode and status.");
        let _ = writeln!(out, "# TYPE mailplane_http_requests_total counter");
        for ((route, mode, status), s) in map.iter() {
            let _ = writeln!(
                out,
                "mailplane_http_requests_total{{route=\"{}\",mode=\"{}\",status=\"{status}\"}} {}",
                escape(route),
                escape(mode),
                s.count
            );
        }
        let _ = writeln!(out, "# HELP mailplane_http_request_duration_seconds Time to answer, by route, mode and status.");
        let _ = writeln!(
            out,
            "# TYPE mailplane_http_request_duration_seconds histogram"
        );
        for ((route, mode, status), s) in map.iter() {
            let labels = format!(
                "route=\"{}\",mode=\"{}\",status=\"{status}\"",
                escape(route),
                escape(mode)
            );
            write_histogram(
                &mut out,
                "mailplane_http_request_duration_seconds",
                &labels,
                (&BUCKETS, &s.buckets),
                s.count,
                s.sum_secs,
            );
        }
        let _ = writeln!(
            out,
            "# HELP mailplane_db_pool_connections Database connections of this node, by state."
        );
        let _ = writeln!(out, "# TYPE mailplane_db_pool_connections gauge");
        let _ = writeln!(
            out,
            "mailplane_db_pool_connections{{state=\"in_use\"}} {}",
            pool.in_use
        );
        let _ = writeln!(
            out,
            "mailplane_db_pool_connections{{state=\"idle\"}} {}",
            pool.idle
        );
        let _ = writeln!(
            out,
            "mailplane_db_pool_connections{{state=\"max\"}} {}",
            pool.max
        );
        if let Some(stats) = &pool.commits {
            let (commits, writes) = (stats.commits, stats.writes);
            let _ = writeln!(
                out,
                "# HELP mailplane_db_commits_total Transactions committed by the SQLite writer (group commits)."
            );
            let _ = writeln!(out, "# TYPE mailplane_db_commits_total counter");
            let _ = writeln!(out, "mailplane_db_commits_total {commits}");
            let _ = writeln!(
                out,
                "# HELP mailplane_db_committed_writes_total Writes kept in those commits; over the commits, the mean batch size."
            );
            let _ = writeln!(out, "# TYPE mailplane_db_committed_writes_total counter");
            let _ = writeln!(out, "mailplane_db_committed_writes_total {writes}");
            let _ = writeln!(
                out,
                "# HELP mailplane_db_commit_flush_seconds Time of each group commit's COMMIT, the disk flush: its tail is what a durable write cannot beat."
            );
            let _ = writeln!(out, "# TYPE mailplane_db_commit_flush_seconds histogram");
            write_histogram(
                &mut out,
                "mailplane_db_commit_flush_seconds",
                "",
                (&FLUSH_BUCKETS, &stats.flush_at_most),
                stats.flush_count,
                stats.flush_secs,
            );
        }
        let mut last = "";
        for c in &pool.counters {
            if c.name != last {
                let _ = writeln!(out, "# HELP {} {}", c.name, c.help);
                let _ = writeln!(out, "# TYPE {} counter", c.name);
                last = c.name;
            }
            if c.labels.is_empty() {
                let _ = writeln!(out, "{} {}", c.name, c.value);
            } else {
                let _ = writeln!(out, "{}{{{}}} {}", c.name, c.labels, c.value);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_labelled() {
        let m = Metrics::default();
        m.observe("/api/accounts/{account_id}", "emailupdate", 200, 0.003);
        m.observe("/api/accounts/{account_id}", "emailupdate", 200, 0.3);
        let text = m.render(&PoolState {
            in_use: 1,
            idle: 2,
            max: 8,
            commits: Some(CommitStats {
                commits: 3,
                writes: 7,
                flush_at_most: [0, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3],
                flush_count: 3,
                flush_secs: 0.0123,
            }),
            counters: vec![
                Counter {
                    name: "mailplane_x_total",
                    help: "x.",
                    labels: r#"table="a""#,
                    value: 4,
                },
                Counter {
                    name: "mailplane_x_total",
                    help: "x.",
                    labels: r#"table="b""#,
                    value: 5,
                },
            ],
        });
        assert_eq!(text.matches("# TYPE mailplane_x_total counter").count(), 1);
        assert!(text.contains("mailplane_x_total{table=\"b\"} 5"), "{text}");
        let labels = r#"route="/api/accounts/{account_id}",mode="emailupdate",status="200""#;
        assert!(
            text.contains(&format!("mailplane_http_requests_total{{{labels}}} 2")),
            "{text}"
        );
        assert!(text.contains(&format!(
            "mailplane_http_request_duration_seconds_bucket{{{labels},le=\"0.005\"}} 1"
        )));
        assert!(text.contains(&format!(
            "mailplane_http_request_duration_seconds_bucket{{{labels},le=\"0.5\"}} 2"
        )));
        assert!(text.contains("mailplane_db_pool_connections{state=\"idle\"} 2"));
        assert!(text.contains("mailplane_db_commits_total 3"));
        assert!(text.contains("mailplane_db_committed_writes_total 7"));
        for line in [
            r#"mailplane_db_commit_flush_seconds_bucket{le="0.0001"} 0"#,
            r#"mailplane_db_commit_flush_seconds_bucket{le="0.00025"} 1"#,
            r#"mailplane_db_commit_flush_seconds_bucket{le="0.025"} 3"#,
            r#"mailplane_db_commit_flush_seconds_bucket{le="+Inf"} 3"#,
            "mailplane_db_commit_flush_seconds_sum 0.0123",
            "mailplane_db_commit_flush_seconds_count 3",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }
}
