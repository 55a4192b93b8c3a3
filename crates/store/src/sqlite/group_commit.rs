//! Group commit: one thread owns the write connection; writes queue to it, and it commits
//! whatever is queued in one transaction, one savepoint per write, answering each waiter
//! only after that commit.
//!
//! A durable commit costs a disk flush (`synchronous=FULL`), and a flush costs the same for
//! one change as for a hundred. While the writer flushes a batch, the next requests queue;
//! the next batch takes them all. So the number of flushes per second stays what the disk
//! allows while the number of changes per flush grows with the load. At low load a batch
//! is a single write and nothing waits for company.
//!
//! The savepoint keeps a write that fails its checks (a rule error, a constraint) from
//! taking the others of its batch with it: it is rolled back to its savepoint and answered
//! with its error; the rest commit. Writes in a batch run one after another on one
//! connection, each seeing the changes of the writes before it, so the batch is the same
//! serial history as one transaction per write.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::{RelayKey, StoreError};

/// Most writes committed together: bounds the time the first waiter of a batch waits for
/// the others' work.
const MAX_BATCH: usize = 256;

/// Under load (more than one write queued), how long the writer waits for stragglers
/// before committing a batch that is not full. Short next to the flush itself.
const STRAGGLER_WAIT: Duration = Duration::from_micros(200);

/// Called once the batch's fate is known: `Ok` when it committed.
type Finish = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

/// One queued write: runs on the writer thread, inside the batch's transaction, and says
/// whether it succeeded (to keep or undo its savepoint) and how to answer its waiter.
type Job = Box<dyn FnOnce(&Transaction<'_>, &RelayKey) -> (bool, Finish) + Send>;

/// The handle the store holds: a queue into the writer thread.
pub(super) struct Writer {
    /// Bounded: a full queue refuses the write ([`StoreError::Busy`]) instead of growing.
    queue: SyncSender<Job>,
    stats: Arc<Stats>,
}

/// What the writer has done, for `/metrics` and the benchmark.
#[derive(Default)]
struct Stats {
    busy: AtomicBool,
    /// Under one lock, taken once per commit: a scrape between a commit's flush and its
    /// count would otherwise see the two disagree.
    counters: Mutex<Counters>,
}

#[derive(Default)]
struct Counters {
    commits: u64,
    /// Writes kept in those commits (failed ones are undone and not counted).
    writes: u64,
    /// How long each `COMMIT` took (the disk flush): per bucket of [`FLUSH_BUCKETS`], not
    /// cumulative; the last counts those above every bound.
    flush_buckets: [u64; FLUSH_BUCKETS.len() + 1],
    flush_micros: u64,
}

/// Upper bounds, in seconds, of the flush-time histogram. A flush takes a fraction of a
/// millisecond on a good disk; the upper buckets are the stalls that make a p99.
pub const FLUSH_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// The writer's commits so far: how many, the writes they kept, how long they took.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CommitStats {
    pub commits: u64,
    pub writes: u64,
    /// Commits whose flush took at most each bound of [`FLUSH_BUCKETS`] (cumulative).
    pub flush_at_most: [u64; FLUSH_BUCKETS.len()],
    /// Every commit, failed ones included.
    pub flush_count: u64,
    pub flush_secs: f64,
}

impl Stats {
    /// One commit: how long its flush took (if timed) and, when it committed, the writes
    /// it kept.
    fn record(&self, flush: Option<Duration>, kept: Option<u64>) {
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(took) = flush {
            let secs = took.as_secs_f64();
            let bucket = FLUSH_BUCKETS
                .iter()
                .position(|bound| secs <= *bound)
                .unwrap_or(FLUSH_BUCKETS.len());
            c.flush_buckets[bucket] += 1;
            c.flush_micros += took.as_micros() as u64;
        }
        if let Some(kept) = kept {
            c.commits += 1;
            c.writes += kept;
        }
    }

    fn snapshot(&self) -> CommitStats {
        let c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = CommitStats {
            commits: c.commits,
            writes: c.writes,
            flush_secs: c.flush_micros as f64 / 1e6,
            ..CommitStats::default()
        };
        let mut running = 0;
        for (i, bucket) in c.flush_buckets.iter().enumerate() {
            running += bucket;
            if let Some(at_most) = out.flush_at_most.get_mut(i) {
                *at_most = running;
            }
        }
        out.flush_count = running;
        out
    }
}

impl Writer {
    /// Starts the writer thread on `conn`, with room for `capacity` waiting writes. It
    /// stops when the handle is dropped.
    pub(super) fn start(
        conn: Connection,
        key: RelayKey,
        capacity: usize,
    ) -> Result<Writer, StoreError> {
        let (queue, jobs) = mpsc::sync_channel(capacity.max(1));
        let stats = Arc::new(Stats::default());
        let shared = stats.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, key, jobs, &shared))
            .map_err(StoreError::Io)?;
        Ok(Writer { queue, stats })
    }

    /// Whether a batch is being written now (for the pool gauge of `/metrics`).
    pub(super) fn is_busy(&self) -> bool {
        self.stats.busy.load(Ordering::Relaxed)
    }

    /// Commits made so far, the writes they kept, and their flush times.
    pub(super) fn commit_stats(&self) -> CommitStats {
        self.stats.snapshot()
    }

    /// Queues `f` and waits for its result, which is only handed back once the
    /// transaction holding its changes has committed.
    pub(super) async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Transaction<'_>, &RelayKey) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |tx, key| {
            let out = f(tx, key);
            let ok = out.is_ok();
            let finish: Finish = Box::new(move |committed| {
                let result = match (out, committed) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Ok(_), Err(e)) => Err(E::from(StoreError::Task(format!(
                        "the transaction did not commit: {e}"
                    )))),
                    // Undone at its savepoint: its own error stands, whatever the batch did.
                    (Err(e), _) => Err(e),
                };
                let _ = reply.send(result);
            });
            (ok, finish)
        });
        self.queue.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => E::from(StoreError::Busy),
            TrySendError::Disconnected(_) => {
                E::from(StoreError::Task("the SQLite writer has stopped".into()))
            }
        })?;
        answer.await.map_err(|_| {
            E::from(StoreError::Task(
                "the write was abandoned (it panicked or the writer stopped)".into(),
            ))
        })?
    }
}

/// The writer thread: batch, run, commit, answer; until the store is dropped.
fn run(mut conn: Connection, key: RelayKey, jobs: Receiver<Job>, stats: &Stats) {
    let stall = test_stall();
    while let Ok(first) = jobs.recv() {
        if let Some(pause) = stall {
            std::thread::sleep(pause);
        }
        stats.busy.store(true, Ordering::Relaxed);
        let mut batch = vec![first];
        gather(&jobs, &mut batch);
        write_batch(&mut conn, &key, batch, stats);
        stats.busy.store(false, Ordering::Relaxed);
    }
}

/// A pause before each batch, to let tests fill the queue: `MAILPLANE_TEST_WRITE_STALL_MS`,
/// honoured by debug builds only (a release build has no such switch).
fn test_stall() -> Option<Duration> {
    if !cfg!(debug_assertions) {
        return None;
    }
    std::env::var("MAILPLANE_TEST_WRITE_STALL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
}

/// Adds what is queued to `batch`, up to [`MAX_BATCH`]; under load, waits a little for
/// stragglers.
fn gather(jobs: &Receiver<Job>, batch: &mut Vec<Job>) {
    let mut waited = false;
    while batch.len() < MAX_BATCH {
        match jobs.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) if batch.len() > 1 && !waited => {
                waited = true;
                match jobs.recv_timeout(STRAGGLER_WAIT) {
                    Ok(job) => batch.push(job),
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return,
                }
            }
            Err(_) => return,
        }
    }
}

/// Runs one batch in one transaction and answers every job of it.
fn write_batch(conn: &mut Connection, key: &RelayKey, batch: Vec<Job>, stats: &Stats) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            // Nothing ran: dropping the jobs answers each waiter with an error.
            tracing::error!(error = %e, "cannot begin a write transaction");
            drop(batch);
            return;
        }
    };
    let mut finishes = Vec::with_capacity(batch.len());
    let mut kept = 0;
    for job in batch {
        if let Some((ok, finish)) = run_job(&tx, key, job) {
            kept += u64::from(ok);
            finishes.push(finish);
        }
    }
    settle(tx, finishes, kept, stats);
}

/// One job under its savepoint. `None` when it panicked (its waiter sees the write
/// abandoned; its changes are undone).
fn run_job(tx: &Transaction<'_>, key: &RelayKey, job: Job) -> Option<(bool, Finish)> {
    if let Err(e) = run_cached(tx, &["SAVEPOINT request"]) {
        tracing::error!(error = %e, "cannot open a savepoint");
        return None;
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| job(tx, key)));
    let keep = matches!(outcome, Ok((true, _)));
    let end: &[&str] = if keep {
        &["RELEASE request"]
    } else {
        &["ROLLBACK TO request", "RELEASE request"]
    };
    if let Err(e) = run_cached(tx, end) {
        // The transaction is in an unknown state: make the commit fail for everyone.
        tracing::error!(error = %e, "cannot close a savepoint");
        let _ = tx.execute_batch("ROLLBACK");
    }
    outcome.ok()
}

/// Runs statements kept prepared on the connection: the savepoint statements run twice
/// per write, and parsing them each time was a visible share of the writer's work.
fn run_cached(tx: &Transaction<'_>, statements: &[&str]) -> rusqlite::Result<()> {
    for sql in statements {
        tx.prepare_cached(sql)?.execute([])?;
    }
    Ok(())
}

/// Commits, then answers (the real build).
#[cfg(not(feature = "ack-before-commit"))]
fn settle(tx: Transaction<'_>, finishes: Vec<Finish>, kept: u64, stats: &Stats) {
    let flush = Instant::now();
    let committed = tx.commit().map_err(StoreError::Db);
    stats.record(Some(flush.elapsed()), committed.is_ok().then_some(kept));
    if let Err(e) = &committed {
        tracing::error!(error = %e, "group commit failed");
    }
    for finish in finishes {
        finish(committed.as_ref().map(|_| ()));
    }
}

/// BROKEN ON PURPOSE (feature `ack-before-commit`, built only by the crash test): answers
/// every waiter *before* the commit, which follows 50 ms later. A `kill -9` in that window
/// loses changes their clients already got a 200 for.
#[cfg(feature = "ack-before-commit")]
fn settle(tx: Transaction<'_>, finishes: Vec<Finish>, kept: u64, stats: &Stats) {
    for finish in finishes {
        finish(Ok(()));
    }
    std::thread::sleep(Duration::from_millis(50));
    match tx.commit() {
        Ok(()) => stats.record(None, Some(kept)),
        Err(e) => tracing::error!(error = %e, "late commit failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> (tempfile::TempDir, Arc<Writer>) {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::super::open_and_migrate(&dir.path().join("gc.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER PRIMARY KEY)")
            .unwrap();
        (
            dir,
            Arc::new(Writer::start(conn, RelayKey::generate(), 1024).unwrap()),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_does_not_take_its_batch_with_it() {
        let (dir, writer) = writer();
        let mut tasks = Vec::new();
        for i in 0..400i64 {
            let w = writer.clone();
            tasks.push(tokio::spawn(async move {
                w.write(move |tx, _| -> Result<i64, StoreError> {
                    tx.execute("INSERT INTO t (x) VALUES (?1)", [i])?;
                    match i % 4 {
                        // Wrote, then failed its checks: its row must go.
                        1 => Err(StoreError::Corrupt(format!("refused {i}"))),
                        // Wrote, then panicked: its row must go, the writer must live on.
                        3 if i % 100 == 3 => panic!("write {i} panics"),
                        _ => Ok(i),
                    }
                })
                .await
            }));
        }
        let mut acked = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(x) => {
                    assert_eq!(x, i as i64);
                    acked.push(x);
                }
                Err(_) => assert!(i % 4 == 1 || i % 100 == 3, "write {i} failed"),
            }
        }
        let check = Connection::open(dir.path().join("gc.db")).unwrap();
        let mut stmt = check.prepare("SELECT x FROM t ORDER BY x").unwrap();
        let stored: Vec<i64> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(stored, acked, "exactly the acknowledged writes are stored");
        assert_eq!(stored.len(), 400 - 100 - 4);
        let stats = writer.commit_stats();
        let (commits, writes) = (stats.commits, stats.writes);
        assert_eq!(writes, stored.len() as u64, "kept writes are counted");
        assert!(commits >= 1 && commits <= writes, "{commits} commits");
        assert_eq!(stats.flush_count, commits, "each commit's flush is timed");
        assert!(stats.flush_secs > 0.0);
        let last = *stats.flush_at_most.last().unwrap();
        assert!(
            stats.flush_at_most.windows(2).all(|w| w[0] <= w[1]) && last <= commits,
            "cumulative: {:?}",
            stats.flush_at_most
        );
    }

    #[tokio::test]
    async fn a_write_sees_the_writes_acknowledged_before_it() {
        let (_dir, writer) = writer();
        let w = writer.clone();
        let first = tokio::spawn(async move {
            w.write(|tx, _| -> Result<(), StoreError> {
                tx.execute("INSERT INTO t (x) VALUES (1)", [])?;
                Ok(())
            })
            .await
        });
        first.await.unwrap().unwrap();
        let seen = writer
            .write(|tx, _| -> Result<i64, StoreError> {
                Ok(tx.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?)
            })
            .await
            .unwrap();
        assert_eq!(seen, 1);
    }
}
