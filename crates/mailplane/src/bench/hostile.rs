//! `mailplane bench --hostile`: what a flood of requests with made-up tokens costs the
//! users who have real ones. Authenticated updates run at a fixed rate three times on the
//! same server: alone (the baseline), beside a flood at a fixed rate, and beside a flood
//! sent as fast as the generator goes. The flood comes from 127.0.0.2, another client
//! address than the users' 127.0.0.1, as an attacker's would. Each step reports the
//! updates' latency, the flood's answers, and how much the database grew.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mailplane_bench::connections::Connections;
use mailplane_bench::loadgen::{run_step, StepConfig, StepResult, Workload};
use mailplane_bench::workload::{BenchAccount, InvalidTokens, Targets, UpdateMix};
use mailplane_bench::{pg, sqlite_ceiling};

use super::{bases, stop_all, Fleet};
use crate::cli::BenchArgs;

/// Where the server keeps its data, to weigh it.
pub(super) enum Db {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Db {
    /// The database's size in bytes: SQLite's pages as of its last commit (the WAL
    /// included, however much of it is checkpointed), PostgreSQL's `pg_database_size`.
    async fn bytes(&self) -> Result<u64, String> {
        match self {
            Db::Sqlite(path) => sqlite_ceiling::database_bytes(path),
            Db::Postgres(url) => pg::database_bytes(url).await,
        }
    }
}

/// The targets of the issue that asked for this scenario.
const MAX_GROWTH_PER_MINUTE: f64 = 1024.0 * 1024.0;
const MAX_UPDATE_P99_MS: f64 = 20.0;
/// "As fast as it goes": a rate no step reaches, bounded by the requests in flight.
const UNBOUNDED_RATE: f64 = 1_000_000.0;
const FLOOD_IN_FLIGHT: usize = 256;

struct Step {
    name: String,
    updates: StepResult,
    flood: Option<StepResult>,
    growth_bytes: u64,
    /// How long the flood ran (warmup and measured part).
    secs: f64,
    /// The measured part, over which the step's counts are.
    measured_secs: f64,
}

pub(super) async fn run(
    args: &BenchArgs,
    fleet: &Fleet<'_>,
    accounts: Arc<[BenchAccount]>,
    step: &StepConfig,
    db: &Db,
) -> Result<(), String> {
    let servers = fleet.start().await?;
    let targets = Targets::new(bases(&servers), accounts);
    let updates: Arc<dyn Workload> = Arc::new(UpdateMix(targets.clone()));
    let flood: Arc<dyn Workload> = Arc::new(InvalidTokens(targets));
    let user_conns = Connections::new(step.connections, step.request_timeout);
    let attacker = std::net::IpAddr::from([127, 0, 0, 2]);
    let flood_conns = Connections::from_address(step.connections, step.request_timeout, attacker);
    let flood_step = StepConfig {
        max_in_flight: FLOOD_IN_FLIGHT,
        // The flood's answers are refusals: its "errors" decide nothing.
        max_error_rate: 1.0,
        ..step.clone()
    };
    let secs = step.warmup.as_secs_f64() + step.measure.as_secs_f64();
    let mut steps = Vec::new();
    for (name, flood_rate) in [
        ("updates alone".to_string(), None),
        (
            format!("beside {:.0} invalid tokens/s", args.flood_rate),
            Some(args.flood_rate),
        ),
        (
            "beside invalid tokens as fast as they go".to_string(),
            Some(UNBOUNDED_RATE),
        ),
    ] {
        eprintln!("{name} …");
        let before = db.bytes().await?;
        let (u, f) = match flood_rate {
            None => (
                run_step(&user_conns, &updates, args.update_rate, step).await,
                None,
            ),
            Some(rate) => {
                let (u, f) = tokio::join!(
                    run_step(&user_conns, &updates, args.update_rate, step),
                    run_step(&flood_conns, &flood, rate, &flood_step),
                );
                (u, Some(f))
            }
        };
        // The refusals of the last window are written when it ends.
        tokio::time::sleep(Duration::from_millis(10_500)).await;
        let growth_bytes = db.bytes().await?.saturating_sub(before);
        steps.push(Step {
            name,
            updates: u,
            flood: f,
            growth_bytes,
            secs,
            measured_secs: step.measure.as_secs_f64(),
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop_all(servers, "hostile").await;
    report(args, &steps);
    Ok(())
}

fn ms(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.2}"))
}

fn report(args: &BenchArgs, steps: &[Step]) {
    println!();
    println!(
        "mailplane bench --hostile: updates at {:.0}/s from 127.0.0.1; invalid tokens from 127.0.0.2",
        args.update_rate
    );
    println!(
        "| step | flood sent/s | flood outcome | updates ok/s | update p50 ms | update p99 ms | update errors | database growth | per minute of flood |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|");
    let baseline_p99 = steps.first().and_then(|s| s.updates.p99_ms);
    // The updates write audit rows of their own: the flood's share of the growth is what
    // a step grew beyond the step without a flood.
    let baseline_growth = steps.first().map_or(0, |s| s.growth_bytes);
    for s in steps {
        let (sent, answers) = match &s.flood {
            None => ("–".to_string(), "–".to_string()),
            Some(f) => (
                format!(
                    "{:.0}",
                    f.requests.saturating_sub(f.shed) as f64 / s.measured_secs.max(0.001)
                ),
                format!(
                    "{} refused, {} answered 2xx, {} transport errors, {} not sent",
                    f.non_2xx, f.ok, f.transport_errors, f.shed
                ),
            ),
        };
        let per_minute = s.growth_bytes as f64 * 60.0 / s.secs.max(0.001);
        println!(
            "| {} | {sent} | {answers} | {:.0} | {} | {} | {} | {} B | {:.0} B |",
            s.name,
            s.updates.achieved_rate,
            ms(s.updates.p50_ms),
            ms(s.updates.p99_ms),
            s.updates.errors,
            s.growth_bytes,
            per_minute
        );
    }
    println!();
    for s in steps.iter().filter(|s| s.flood.is_some()) {
        let flood_bytes = s.growth_bytes.saturating_sub(baseline_growth);
        let per_minute = flood_bytes as f64 * 60.0 / s.secs.max(0.001);
        let growth_ok = per_minute < MAX_GROWTH_PER_MINUTE;
        println!(
            "{}: database growth beyond the updates' own {:.0} B per minute of flood (target < 1 MiB): {}",
            s.name,
            per_minute,
            if growth_ok { "PASS" } else { "MISS" }
        );
        let p99 = s.updates.p99_ms;
        let ratio = match (p99, baseline_p99) {
            (Some(p), Some(b)) if b > 0.0 => format!(" ({:.2}× the p99 without a flood)", p / b),
            _ => String::new(),
        };
        if s.name.starts_with("beside") && !s.name.contains("fast") {
            let ok = p99.is_some_and(|p| p <= MAX_UPDATE_P99_MS) && s.updates.errors == 0;
            println!(
                "{}: update p99 {} ms{ratio} (target ≤ 20 ms, no errors): {}",
                s.name,
                ms(p99),
                if ok { "PASS" } else { "MISS" }
            );
        } else {
            println!("{}: update p99 {} ms{ratio}", s.name, ms(p99));
        }
    }
}
