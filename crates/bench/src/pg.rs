//! PostgreSQL for the benchmark: scratch databases next to the one the user named, and the
//! pgbench ceiling (`simple-update`: one `UPDATE`, one `SELECT` and one `INSERT` per
//! transaction, the shape of an audited change).

use std::path::{Path, PathBuf};

use serde::Serialize;

/// `url` with its database (the path) replaced by `name`; the query is kept.
pub fn with_database(url: &str, name: &str) -> Result<String, String> {
    let (scheme, rest) = url.split_once("://").ok_or("expected a postgres:// URL")?;
    let (rest, query) = rest.split_at(rest.find('?').unwrap_or(rest.len()));
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    Ok(format!("{scheme}://{authority}/{name}{query}"))
}

/// `url` without its user and password (nor a `password=` parameter), for printing.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find('/').unwrap_or(rest.len());
            let host_from = rest[..end].rfind('@').map_or(0, |i| i + 1);
            let rest = &rest[host_from..];
            match rest.split_once('?') {
                Some((path, query)) => {
                    let params: Vec<&str> = query
                        .split('&')
                        .filter(|p| !p.starts_with("password="))
                        .collect();
                    format!("{scheme}://{path}?{}", params.join("&"))
                }
                None => format!("{scheme}://{rest}"),
            }
        }
        None => "(a database URL)".into(),
    }
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", redact(url)))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// `CREATE DATABASE name` on the server of `url`; the new database's URL.
pub async fn create_database(url: &str, name: &str) -> Result<String, String> {
    check_name(name)?;
    let client = connect(url).await?;
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
    with_database(url, name)
}

/// The size on disk of the database of `url`, in bytes (`pg_database_size`).
pub async fn database_bytes(url: &str) -> Result<u64, String> {
    let client = connect(url).await?;
    let row = client
        .query_one("SELECT pg_database_size(current_database())", &[])
        .await
        .map_err(|e| format!("pg_database_size: {e}"))?;
    Ok(row.get::<_, i64>(0).max(0) as u64)
}

/// `DROP DATABASE IF EXISTS name WITH (FORCE)` on the server of `url`.
pub async fn drop_database(url: &str, name: &str) -> Result<(), String> {
    check_name(name)?;
    let client = connect(url).await?;
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .map_err(|e| format!("DROP DATABASE {name}: {e}"))
}

fn check_name(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        Ok(())
    } else {
        Err(format!("{name:?} is not a plain database name"))
    }
}

/// pgbench: `/usr/lib/postgresql/<newest>/bin/pgbench`, else the one on `PATH`.
pub fn find_pgbench() -> Option<PathBuf> {
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let path = e.path().join("bin/pgbench");
            path.is_file().then_some((version, path))
        })
        .collect();
    versioned.sort();
    if let Some((_, path)) = versioned.pop() {
        return Some(path);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("pgbench"))
            .find(|p| p.is_file())
    })
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PgbenchResult {
    pub tps: f64,
    pub latency_avg_ms: Option<f64>,
    pub transactions: Option<u64>,
    pub clients: u32,
    pub threads: u32,
    pub secs: u32,
    /// The command as run (the database URL without credentials).
    pub command: String,
}

/// `pgbench -i` into the database at `url`, then
/// `pgbench -b simple-update -M prepared -c clients -j threads -T secs`.
pub async fn run_pgbench(
    pgbench: &Path,
    url: &str,
    clients: u32,
    threads: u32,
    secs: u32,
) -> Result<PgbenchResult, String> {
    let init = tokio::process::Command::new(pgbench)
        .args(["-i", "-q", url])
        .output()
        .await
        .map_err(|e| format!("{}: {e}", pgbench.display()))?;
    if !init.status.success() {
        return Err(format!(
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&init.stderr).trim()
        ));
    }
    let (c, j, t) = (clients.to_string(), threads.to_string(), secs.to_string());
    let args = [
        "-b",
        "simple-update",
        "-M",
        "prepared",
        "-c",
        &c,
        "-j",
        &j,
        "-T",
        &t,
    ];
    let out = tokio::process::Command::new(pgbench)
        .args(args)
        .arg(url)
        .output()
        .await
        .map_err(|e| format!("{}: {e}", pgbench.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "pgbench failed: {} {}",
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let tps =
        parse_tps(&stdout).ok_or_else(|| format!("no `tps = ` in pgbench's output: {stdout}"))?;
    Ok(PgbenchResult {
        tps,
        latency_avg_ms: parse_after(&stdout, "latency average = "),
        transactions: parse_after(&stdout, "number of transactions actually processed: ")
            .map(|n: f64| n as u64),
        clients,
        threads,
        secs,
        command: format!("{} {} {}", pgbench.display(), args.join(" "), redact(url)),
    })
}

/// The number after `tps = ` in pgbench's output.
pub fn parse_tps(output: &str) -> Option<f64> {
    parse_after(output, "tps = ")
}

fn parse_after(output: &str, prefix: &str) -> Option<f64> {
    output.lines().find_map(|line| {
        let rest = &line[line.find(prefix)? + prefix.len()..];
        let number: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        number.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: <builtin: simple update>
scaling factor: 1
query mode: prepared
number of clients: 32
number of threads: 2
maximum number of tries: 1
duration: 5 s
number of transactions actually processed: 12345
number of failed transactions: 0 (0.000%)
latency average = 12.961 ms
initial connection time = 31.950 ms
tps = 2468.934123 (without initial connection time)
";

    #[test]
    fn reads_pgbench_output() {
        assert_eq!(parse_tps(OUTPUT), Some(2468.934123));
        assert_eq!(parse_after(OUTPUT, "latency average = "), Some(12.961));
        assert_eq!(
            parse_after(OUTPUT, "number of transactions actually processed: "),
            Some(12345.0)
        );
        assert_eq!(parse_tps("nothing"), None);
    }

    #[test]
    fn urls() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "x_1").unwrap(),
            "postgres://u:p@h:5432/x_1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgresql://h", "x").unwrap(),
            "postgresql://h/x"
        );
        assert_eq!(redact("postgres://u:p@h:5432/db"), "postgres://h:5432/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert_eq!(
            redact("postgres://h/db?user=u&password=p&sslmode=require"),
            "postgres://h/db?user=u&sslmode=require"
        );
        assert!(check_name("mailplane_bench_12").is_ok());
        assert!(check_name("x; DROP").is_err());
    }
}
