//! `mailplane bench`: how many durable updates (and reads) per second this machine serves
//! within a latency bound, next to what the machine itself allows.
//!
//! In a fresh temporary directory (under `--data-dir` if given), on a fresh database (on
//! PostgreSQL, a scratch database created next to the one `--db` names, dropped at the
//! end), it seeds `--orgs` × `--accounts` users with their tokens, then measures:
//!
//! - the ceilings: on SQLite a bare loop of one single-row update per transaction, and of
//!   100, in WAL with `synchronous=FULL`; on PostgreSQL pgbench's `simple-update` into a
//!   scratch database of the same server;
//! - mailplane (`serve` child processes of this binary: `--nodes`): open-loop ramps of
//!   `PUT` of the seed modes on random accounts and of `GET` of one account (see
//!   `mailplane_bench::loadgen`), to the highest rate whose p99 is within `--max-p99-ms`;
//! - the HTTP ceiling: the same ramps against `bench-echo` child processes, the same HTTP
//!   stack and accept loop answering a fixed body;
//!
//! and prints a table (and writes the same as JSON) with the ratios the project aims at.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailplane_bench::loadgen::{self, RampPlan, StepConfig, StepResult, Workload};
use mailplane_bench::report::{
    Ceiling, Durability, Machine, Memory, NodeMemory, Plan, Ratio, Report, Setting, Verdict,
    WorkloadRun,
};
use mailplane_bench::workload::{BenchAccount, Read, Targets, UpdateMix};
use mailplane_bench::{echo as echo_server, pg, procfs, sqlite_ceiling};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::admin::open_store;
use crate::cli::{BenchArgs, BenchEchoArgs, StorageArgs};

mod console;
mod hostile;

/// The memory target: a node's resident memory at the highest rate, with 100,000 accounts.
const MEMORY_LIMIT_MIB: f64 = 200.0;
const MEMORY_TARGET_ACCOUNTS: u64 = 100_000;
/// A step with a larger share of errors misses.
const MAX_ERROR_RATE: f64 = 0.01;
/// A request not answered by then is an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The line a server prints once it listens.
const LISTENING: &str = "mailplane listening on ";

/// `mailplane bench`.
pub async fn run(storage: StorageArgs, args: BenchArgs) -> Result<(), String> {
    check_args(&args)?;
    let pg_url = match storage.db.as_deref() {
        None => None,
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Some(url.to_string())
        }
        Some(_) => return Err(
            "bench makes a fresh SQLite database of its own: give no --db, or a postgres:// URL"
                .into(),
        ),
    };
    mailplane_bench::raise_open_files_limit();
    let parent = storage.data_dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let work = tempfile::Builder::new()
        .prefix("mailplane-bench-")
        .tempdir_in(&parent)
        .map_err(|e| format!("temporary directory in {}: {e}", parent.display()))?;

    let pg = match &pg_url {
        Some(url) => {
            let name = format!("mailplane_bench_{}", std::process::id());
            let scratch = pg::create_database(url, &name).await?;
            Some(Pg {
                server_url: url.clone(),
                name,
                url: scratch,
            })
        }
        None => None,
    };
    // Ctrl-C stops the children (dropped with the run) and still drops the scratch database.
    let result = tokio::select! {
        r = bench(&storage, &args, work.path(), pg.as_ref()) => r,
        _ = tokio::signal::ctrl_c() => Err("interrupted".to_string()),
    };
    if let Some(pg) = &pg {
        if let Err(e) = pg::drop_database(&pg.server_url, &pg.name).await {
            eprintln!("warning: {e}");
        }
    }
    result
}

/// The scratch database of a PostgreSQL run.
struct Pg {
    /// The URL the user gave (another database of the same server).
    server_url: String,
    name: String,
    url: String,
}

fn check_args(args: &BenchArgs) -> Result<(), String> {
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if args.orgs == 0 || args.accounts == 0 {
        return Err("--orgs and --accounts must be at least 1".into());
    }
    if !positive(args.step_secs) || !positive(args.ceiling_secs) {
        return Err("--step-secs and --ceiling-secs must be positive".into());
    }
    if args.warmup_secs.is_some_and(|w| !w.is_finite() || w < 0.0) {
        return Err("--warmup-secs must not be negative".into());
    }
    if !positive(args.start_rate) || args.max_rate.is_some_and(|m| !positive(m)) {
        return Err("--start-rate and --max-rate must be positive".into());
    }
    if !(args.step_factor.is_finite() && args.step_factor > 1.0) {
        return Err("--step-factor must be above 1".into());
    }
    if !positive(args.console_rate) {
        return Err("--console-rate must be positive".into());
    }
    if !positive(args.max_p99_ms) {
        return Err("--max-p99-ms must be positive".into());
    }
    if args.max_in_flight == 0 || args.connections == 0 || args.nodes == Some(0) {
        return Err("--max-in-flight, --connections and --nodes must be at least 1".into());
    }
    Ok(())
}

async fn bench(
    storage: &StorageArgs,
    args: &BenchArgs,
    work: &Path,
    pg: Option<&Pg>,
) -> Result<(), String> {
    let nodes = args.nodes.unwrap_or(if pg.is_some() { 2 } else { 1 });
    // The console's scenario is about one organization's users.
    let org_count = if args.console { 1 } else { args.orgs };
    let total_accounts = u64::from(org_count) * u64::from(args.accounts);
    let data_dir = work.join("data");
    let node_storage = StorageArgs {
        data_dir: Some(data_dir.clone()),
        db: pg.map(|p| p.url.clone()),
        ..storage.clone()
    };

    eprintln!(
        "seeding {} organization{} × {} accounts into a fresh {} …",
        org_count,
        if org_count == 1 { "" } else { "s" },
        args.accounts,
        if pg.is_some() {
            "PostgreSQL database"
        } else {
            "SQLite database"
        }
    );
    let started = Instant::now();
    let store = open_store(&node_storage, &data_dir).await?;
    let orgs = store
        .seed_synthetic(org_count, args.accounts)
        .await
        .map_err(|e| format!("seeding: {e}"))?;
    let seed_secs = started.elapsed().as_secs_f64();
    let durability = store
        .durability()
        .await
        .map_err(|e| format!("reading the durability settings: {e}"))?;
    let console_org = match orgs.first() {
        Some(org) if args.console => Some(console::prepare(&store, org).await?),
        _ => None,
    };
    drop(store);
    let mut accounts = Vec::with_capacity(total_accounts as usize);
    for org in &orgs {
        for a in &org.accounts {
            accounts.push(BenchAccount::new(
                org.zoid.to_string(),
                a.zuid.to_string(),
                a.account_id.to_string(),
                &a.token,
                &org.admin_token,
            )?);
        }
    }
    drop(orgs);
    eprintln!("seeded in {seed_secs:.1} s");

    let ceiling_time = Duration::from_secs_f64(args.ceiling_secs);
    let mut ceilings = Vec::new();
    match pg {
        _ if args.hostile || args.console => {}
        None => {
            for per_tx in [1, 100] {
                ceilings.push(sqlite_loop(work, total_accounts, per_tx, ceiling_time).await);
            }
        }
        Some(pg) => {
            let clients = (nodes * storage.db_pool_size.max(1)) as u32;
            ceilings.push(pgbench(pg, clients, args.ceiling_secs).await);
        }
    }

    let warmup = args
        .warmup_secs
        .unwrap_or_else(|| (args.step_secs / 5.0).min(1.0));
    let plan = RampPlan {
        start_rate: args.start_rate,
        factor: args.step_factor,
        max_rate: args.max_rate,
        refine: args.refine,
        max_steps: 40,
        pause: Duration::from_millis(300),
    };
    let step = StepConfig {
        warmup: Duration::from_secs_f64(warmup),
        measure: Duration::from_secs_f64(args.step_secs),
        max_in_flight: args.max_in_flight,
        connections: args.connections,
        request_timeout: REQUEST_TIMEOUT,
        max_p99: Duration::from_secs_f64(args.max_p99_ms / 1000.0),
        max_error_rate: MAX_ERROR_RATE,
        watch_pids: Vec::new(),
    };

    // mailplane: each ramp on freshly started servers.
    let exe = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
    let mut serve_args: Vec<OsString> = vec![
        "serve".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        data_dir.clone().into(),
        "--db-pool-size".into(),
        storage.db_pool_size.to_string().into(),
        "--db-timeout-ms".into(),
        storage.db_timeout_ms.to_string().into(),
    ];
    if let Some(pg) = pg {
        serve_args.extend(["--db".into(), pg.url.clone().into()]);
    }
    let mailplane = Fleet {
        exe: &exe,
        args: serve_args,
        nodes,
        work,
        name: "server",
    };
    let accounts: Arc<[BenchAccount]> = accounts.into();
    if args.hostile {
        let db = match pg {
            Some(pg) => hostile::Db::Postgres(pg.url.clone()),
            None => hostile::Db::Sqlite(data_dir.join("mailplane.db")),
        };
        return hostile::run(args, &mailplane, accounts, &step, &db).await;
    }
    if let Some(org) = console_org {
        let run = console::Run {
            backend: if pg.is_some() { "postgres" } else { "sqlite" },
            database: match pg {
                Some(pg) => pg::redact(&pg.url),
                None => format!("{}", data_dir.join("mailplane.db").display()),
            },
            nodes,
            seed_secs,
            work,
        };
        return console::run(args, &mailplane, &step, &org, &run).await;
    }
    let mut workloads = Vec::new();
    let mut per_node = Vec::new();
    let mut get_bytes = None;
    for (key, name, method) in [
        ("mailplane_put", "mailplane PUT (updates)", "PUT"),
        ("mailplane_get", "mailplane GET (reads)", "GET"),
    ] {
        let servers = mailplane.start().await?;
        let targets = Targets::new(bases(&servers), accounts.clone());
        if get_bytes.is_none() {
            get_bytes = Some(check_server(&targets).await?);
        }
        let run = ramp(
            key,
            name,
            "mailplane",
            method,
            &workload(method, targets),
            &plan,
            &watching(&step, &servers),
        )
        .await;
        per_node.extend(stop_all(servers, key).await);
        workloads.push(run);
    }

    // The HTTP ceiling: as many echo servers as mailplane nodes, fresh for each ramp.
    let echo = Fleet {
        exe: &exe,
        args: vec![
            "bench-echo".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--get-bytes".into(),
            get_bytes.unwrap_or(1000).to_string().into(),
        ],
        nodes,
        work,
        name: "echo",
    };
    for (key, name, method) in [
        ("echo_put", "HTTP echo PUT", "PUT"),
        ("echo_get", "HTTP echo GET", "GET"),
    ] {
        let servers = echo.start().await?;
        let targets = Targets::new(bases(&servers), accounts.clone());
        let run = ramp(
            key,
            name,
            "echo",
            method,
            &workload(method, targets),
            &plan,
            &step,
        )
        .await;
        stop_all(servers, key).await;
        let best = run.best.as_ref();
        let bound = if run.lower_bound {
            " (a lower bound: --max-rate reached)"
        } else {
            ""
        };
        ceilings.push(Ceiling {
            key: key.into(),
            name: format!(
                "HTTP echo {method} ({nodes} server{})",
                if nodes == 1 { "" } else { "s" }
            ),
            per_second: best.map(|b| b.achieved_rate),
            unit: "requests/s".into(),
            detail: best.map_or(String::new(), |b| {
                format!(
                    "at p99 {} ≤ {} ms{bound}",
                    b.p99_ms.map_or("-".into(), |p| format!("{p:.2} ms")),
                    args.max_p99_ms
                )
            }),
            command: None,
            error: best.is_none().then(|| "no step passed".to_string()),
            commit_ms: None,
        });
        workloads.push(run);
    }

    let ratios = ratios(&workloads, &ceilings, pg.is_some());
    let memory = memory(&workloads, per_node, total_accounts);
    let report = Report {
        mailplane_version: env!("CARGO_PKG_VERSION").into(),
        backend: if pg.is_some() { "postgres" } else { "sqlite" }.into(),
        database: match pg {
            Some(pg) => pg::redact(&pg.url),
            None => format!("{}", data_dir.join("mailplane.db").display()),
        },
        nodes,
        organizations: args.orgs,
        accounts_per_organization: args.accounts,
        accounts: total_accounts,
        seed_secs,
        machine: Machine::this(work.display().to_string()),
        plan: Plan {
            step_secs: args.step_secs,
            warmup_secs: warmup,
            start_rate: args.start_rate,
            step_factor: args.step_factor,
            refine: args.refine,
            max_rate: args.max_rate,
            max_p99_ms: args.max_p99_ms,
            max_error_rate: MAX_ERROR_RATE,
            ceiling_secs: args.ceiling_secs,
            max_in_flight: args.max_in_flight,
            connections_per_server: args.connections,
            request_timeout_ms: REQUEST_TIMEOUT.as_millis() as u64,
        },
        durability: Durability {
            settings: durability
                .settings
                .into_iter()
                .map(|(name, value)| Setting { name, value })
                .collect(),
            weaker_than_default: durability.weaker_than_default,
        },
        workloads,
        ceilings,
        ratios,
        memory,
    };
    let color = std::io::IsTerminal::is_terminal(&std::io::stdout());
    print!("\n{}", report.render(color));
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&args.json, json + "\n").map_err(|e| format!("{}: {e}", args.json.display()))?;
    println!("\nreport written to {}", args.json.display());
    let _ = std::io::stdout().flush();
    Ok(())
}

async fn sqlite_loop(work: &Path, rows: u64, per_tx: u32, time: Duration) -> Ceiling {
    let path = work.join(format!("ceiling-{per_tx}.db"));
    let rows = rows.clamp(1, u64::from(u32::MAX)) as u32;
    eprintln!("ceiling: bare SQLite loop, {per_tx} update(s) per transaction, {time:?} …");
    let result =
        tokio::task::spawn_blocking(move || sqlite_ceiling::run(&path, rows, per_tx, time))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
    let name = if per_tx == 1 {
        "SQLite, 1 update per transaction".to_string()
    } else {
        format!("SQLite, {per_tx} updates per transaction")
    };
    match result {
        Ok(c) => Ceiling {
            key: format!("sqlite_{per_tx}_per_tx"),
            name,
            per_second: Some(c.updates_per_sec),
            unit: "updates/s".into(),
            detail: format!(
                "journal_mode={}, synchronous={}, {} transactions in {:.1} s, commit p50 {} p99 {} p99.9 {} max {} ms",
                c.journal_mode,
                c.synchronous,
                c.transactions,
                c.secs,
                short_ms(c.commit_ms.p50),
                short_ms(c.commit_ms.p99),
                short_ms(c.commit_ms.p999),
                short_ms(c.commit_ms.max)
            ),
            command: None,
            error: None,
            commit_ms: Some(c.commit_ms),
        },
        Err(e) => Ceiling {
            key: format!("sqlite_{per_tx}_per_tx"),
            name,
            per_second: None,
            unit: "updates/s".into(),
            detail: String::new(),
            command: None,
            error: Some(e),
            commit_ms: None,
        },
    }
}

async fn pgbench(pg: &Pg, clients: u32, secs: f64) -> Ceiling {
    let secs = secs.ceil().max(1.0) as u32;
    let threads = clients.clamp(1, 2);
    let name = format!("pgbench simple-update ({clients} clients)");
    let result = async {
        let exe = pg::find_pgbench().ok_or(
            "pgbench not found (in /usr/lib/postgresql/*/bin or on PATH); install PostgreSQL's client programs",
        )?;
        eprintln!(
            "ceiling: {} -b simple-update -c {clients} -j {threads} -T {secs} …",
            exe.display()
        );
        let db = format!("{}_pgbench", pg.name);
        let url = pg::create_database(&pg.server_url, &db).await?;
        let r = pg::run_pgbench(&exe, &url, clients, threads, secs).await;
        if let Err(e) = pg::drop_database(&pg.server_url, &db).await {
            eprintln!("warning: {e}");
        }
        r
    }
    .await;
    match result {
        Ok(r) => Ceiling {
            key: "pgbench".into(),
            name,
            per_second: Some(r.tps),
            unit: "tps".into(),
            detail: format!(
                "-M prepared -c {clients} -j {threads} -T {secs}: {} transactions, latency average {}",
                r.transactions.map_or("?".into(), |t| t.to_string()),
                r.latency_avg_ms
                    .map_or("?".into(), |l| format!("{l:.2} ms")),
            ),
            command: Some(r.command),
            error: None,
            commit_ms: None,
        },
        Err(e) => Ceiling {
            key: "pgbench".into(),
            name,
            per_second: None,
            unit: "tps".into(),
            detail: String::new(),
            command: None,
            error: Some(e),
            commit_ms: None,
        },
    }
}

/// Checks that the seeded tokens work before spending minutes on ramps: a GET, and a PUT
/// of each body of the mix. Answers the size of the GET's answer (the echo server's).
async fn check_server(targets: &Targets) -> Result<usize, String> {
    let client = &loadgen::client();
    let timeout = Duration::from_secs(30);
    let (status, body) = loadgen::fetch(client, Read(targets.clone()).request(0), timeout).await?;
    if !status.is_success() {
        return Err(format!(
            "GET of a seeded account answered {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let mix = UpdateMix(targets.clone());
    for r in 0..10 {
        let req = mix.request_of(r.into(), r, r % 2 == 0);
        let what = format!("{} {}", req.method(), req.uri());
        let (status, answer) = loadgen::fetch(client, req, timeout).await?;
        if !status.is_success() {
            return Err(format!(
                "{what} answered {status}: {}",
                String::from_utf8_lossy(&answer)
            ));
        }
    }
    Ok(body.len())
}

fn workload(method: &str, targets: Targets) -> Arc<dyn Workload> {
    if method == "GET" {
        Arc::new(Read(targets))
    } else {
        Arc::new(UpdateMix(targets))
    }
}

fn bases(servers: &[Node]) -> Vec<String> {
    servers.iter().map(|s| s.base.clone()).collect()
}

/// `step` with the memory of `servers` sampled.
fn watching(step: &StepConfig, servers: &[Node]) -> StepConfig {
    StepConfig {
        watch_pids: servers.iter().map(|s| s.pid).collect(),
        ..step.clone()
    }
}

/// Stops the servers; their memory just before.
async fn stop_all(servers: Vec<Node>, workload: &str) -> Vec<NodeMemory> {
    let mut out = Vec::new();
    for s in servers {
        out.push(NodeMemory {
            workload: workload.into(),
            pid: s.pid,
            vm_hwm_kib: procfs::hwm_kib(s.pid),
            vm_rss_kib_at_end: procfs::rss_kib(s.pid),
        });
        s.stop().await;
    }
    out
}

/// `nodes` child processes of this binary with the same arguments.
struct Fleet<'a> {
    exe: &'a Path,
    args: Vec<OsString>,
    nodes: usize,
    work: &'a Path,
    /// Names the log files.
    name: &'a str,
}

impl Fleet<'_> {
    async fn start(&self) -> Result<Vec<Node>, String> {
        let mut out = Vec::new();
        for n in 0..self.nodes {
            let log = unique_log(self.work, self.name, n);
            out.push(Node::start(self.exe, self.args.clone(), &log).await?);
        }
        Ok(out)
    }
}

/// `WORK/NAME-N.log`, or `NAME-N.K.log` for the K-th restart.
fn unique_log(work: &Path, name: &str, n: usize) -> std::path::PathBuf {
    let mut k = 0;
    loop {
        let file = if k == 0 {
            format!("{name}-{n}.log")
        } else {
            format!("{name}-{n}.{k}.log")
        };
        let path = work.join(file);
        if !path.exists() {
            return path;
        }
        k += 1;
    }
}

async fn ramp(
    key: &str,
    name: &str,
    server: &str,
    method: &str,
    workload: &Arc<dyn Workload>,
    plan: &RampPlan,
    step: &StepConfig,
) -> WorkloadRun {
    eprintln!("{name}: open-loop ramp …");
    let ramp = loadgen::ramp(workload, plan, step, |s| {
        eprintln!("  {}", step_line(s));
    })
    .await;
    WorkloadRun {
        key: key.into(),
        name: name.into(),
        server: server.into(),
        method: method.into(),
        best: ramp.best,
        lower_bound: ramp.lower_bound,
        steps: ramp.steps,
    }
}

fn step_line(s: &StepResult) -> String {
    let ms = short_ms;
    format!(
        "{:>9.0}/s offered, {:>9.0}/s achieved, p50 {} p99 {} p99.9 {} ms, {} errors{}{}: {}",
        s.offered_rate,
        s.achieved_rate,
        ms(s.p50_ms),
        ms(s.p99_ms),
        ms(s.p999_ms),
        s.errors,
        s.cpu
            .map(|c| format!(
                ", cpu busy {:.0}% iowait {:.0}% steal {:.0}%",
                c.busy_pct, c.iowait_pct, c.steal_pct
            ))
            .unwrap_or_default(),
        s.error_samples
            .first()
            .map(|e| format!(" (e.g. {e})"))
            .unwrap_or_default(),
        match (s.pass, s.aborted) {
            (true, _) => "pass",
            (false, false) => "miss",
            (false, true) => "miss (stopped early)",
        }
    )
}

/// Milliseconds to two decimals, or `-`.
fn short_ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}"))
}

fn best_rate(workloads: &[WorkloadRun], key: &str) -> Option<f64> {
    workloads
        .iter()
        .find(|w| w.key == key)
        .and_then(|w| w.best.as_ref())
        .map(|b| b.achieved_rate)
}

fn ceiling(ceilings: &[Ceiling], key: &str) -> Option<f64> {
    ceilings
        .iter()
        .find(|c| c.key == key)
        .and_then(|c| c.per_second)
}

/// The ratios of the issue, each target with its verdict.
fn ratios(workloads: &[WorkloadRun], ceilings: &[Ceiling], postgres: bool) -> Vec<Ratio> {
    let bounded = |key: &str| workloads.iter().any(|w| w.key == key && w.lower_bound);
    let updates = ("durable updates/s", best_rate(workloads, "mailplane_put"));
    let reads = ("reads/s", best_rate(workloads, "mailplane_get"));
    let echo_put = ("HTTP echo PUT", ceiling(ceilings, "echo_put"));
    let echo_get = ("HTTP echo GET", ceiling(ceilings, "echo_get"));
    let (put_bound, get_bound) = (bounded("mailplane_put"), bounded("mailplane_get"));
    let mut out = Vec::new();
    if postgres {
        out.push(
            Ratio::new(
                "updates/s ÷ pgbench simple-update tps",
                updates,
                ("pgbench tps", ceiling(ceilings, "pgbench")),
                Some(0.8),
            )
            .bounded(put_bound, false),
        );
        out.push(
            Ratio::new("updates/s ÷ HTTP echo PUT", updates, echo_put, None)
                .bounded(put_bound, bounded("echo_put"))
                .ceiling_must_exceed(),
        );
    } else {
        out.push(
            Ratio::new(
                "updates/s ÷ SQLite 1-update-per-tx loop",
                updates,
                (
                    "SQLite 1 update/tx loop",
                    ceiling(ceilings, "sqlite_1_per_tx"),
                ),
                Some(3.0),
            )
            .bounded(put_bound, false),
        );
        out.push(
            Ratio::new(
                "updates/s ÷ SQLite 100-updates-per-tx loop",
                updates,
                (
                    "SQLite 100 updates/tx loop",
                    ceiling(ceilings, "sqlite_100_per_tx"),
                ),
                None,
            )
            .bounded(put_bound, false),
        );
        out.push(
            Ratio::new("updates/s ÷ HTTP echo PUT", updates, echo_put, Some(0.4))
                .bounded(put_bound, bounded("echo_put"))
                .ceiling_must_exceed(),
        );
    }
    out.push(
        Ratio::new("reads/s ÷ HTTP echo GET", reads, echo_get, Some(0.6))
            .bounded(get_bound, bounded("echo_get"))
            .ceiling_must_exceed(),
    );
    out
}

/// A node's resident memory at the highest rates served before a miss, against the limit.
fn memory(workloads: &[WorkloadRun], per_node: Vec<NodeMemory>, accounts: u64) -> Memory {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let rss = workloads
        .iter()
        .filter(|w| w.server == "mailplane")
        .flat_map(|w| w.steps.iter().take_while(|s| s.pass))
        .filter_map(|s| s.max_rss_kib)
        .max()
        .map(mib);
    let hwm = per_node.iter().filter_map(|n| n.vm_hwm_kib).max().map(mib);
    let (verdict, note) = match rss {
        _ if accounts != MEMORY_TARGET_ACCOUNTS => (
            Verdict::NotApplicable,
            Some(format!(
                "the target is for {MEMORY_TARGET_ACCOUNTS} accounts; this run had {accounts}"
            )),
        ),
        None => (
            Verdict::NotApplicable,
            Some("no step passed, or /proc is not readable".into()),
        ),
        Some(v) if v < MEMORY_LIMIT_MIB => (Verdict::Pass, None),
        Some(_) => (Verdict::Miss, None),
    };
    Memory {
        rss_mib_at_highest_rate: rss,
        hwm_mib: hwm,
        per_node,
        limit_mib: MEMORY_LIMIT_MIB,
        verdict,
        note,
    }
}

/// A child process of this binary that prints [`LISTENING`] once it serves.
struct Node {
    child: tokio::process::Child,
    pid: u32,
    base: String,
    /// Kept open: a server that prints to a closed pipe would fail.
    _stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Node {
    async fn start(exe: &Path, args: Vec<OsString>, log: &Path) -> Result<Node, String> {
        let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut cmd = tokio::process::Command::new(exe);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .kill_on_drop(true);
        // The node gets its settings from its arguments alone (the relay key and the log
        // filter excepted).
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|k| {
                k.starts_with("MAILPLANE_") && k != "MAILPLANE_RELAY_KEY" && k != "MAILPLANE_LOG"
            }) {
                cmd.env_remove(key);
            }
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        let pid = child.id().ok_or("the child exited at once")?;
        let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let listening = tokio::time::timeout(Duration::from_secs(120), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(base) = line.trim().strip_prefix(LISTENING) {
                    return Some(base.to_string());
                }
            }
            None
        })
        .await;
        match listening {
            Ok(Some(base)) => Ok(Node {
                child,
                pid,
                base,
                _stdout: lines,
            }),
            _ => {
                let _ = child.kill().await;
                Err(format!(
                    "`{} {}` did not start; its log:\n{}",
                    exe.display(),
                    args.first()
                        .map(|a| a.to_string_lossy())
                        .unwrap_or_default(),
                    tail(log)
                ))
            }
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited after its grace period.
    async fn stop(mut self) {
        mailplane_bench::terminate(self.pid);
        if tokio::time::timeout(Duration::from_secs(35), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// `mailplane bench-echo`: the HTTP ceiling, served through mailplane's accept loop.
pub async fn echo(args: BenchEchoArgs) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("{LISTENING}http://{addr}");
    let _ = std::io::stdout().flush();
    mailplane_api::serve_router(
        listener,
        echo_server::router(args.get_bytes),
        mailplane_api::ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            // serve's default: the echo server is measured with mailplane's limits.
            max_connections: 4096,
        },
        terminated(),
    )
    .await
    .map_err(|e| format!("server error: {e}"))
}

/// SIGTERM or Ctrl-C.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
