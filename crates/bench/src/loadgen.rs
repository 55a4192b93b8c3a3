//! An open-loop HTTP/1.1 load generator that does not omit coordinated delays.
//!
//! A step offers a fixed rate `R` for a warmup then a measured duration: request `i` is due
//! at `t0 + i/R`. The dispatcher wakes up (at timer resolution), starts every request
//! whose time has come, on a fixed set of keep-alive connections per server (see
//! [`Connections`](crate::connections::Connections)), and never waits for answers. A
//! request's latency is its completion minus its *intended* time, so a late dispatcher,
//! a busy connection pool or a server queue all show in the percentiles. At most
//! `max_in_flight` requests are outstanding; a request due while that many are is not
//! sent and counts as an error (the server does not keep up). A step stops early once
//! it has certainly missed, so that an overload stays short.
//!
//! A [`ramp`] runs steps at rising rates until a step misses (its p99 above the bound,
//! or more than 1% errors), then bisects between the last pass and the first miss.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use tokio::sync::{mpsc, Semaphore};

use crate::connections::{Answer, Connections, Job};
use crate::procfs;

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;
pub type HttpRequest = hyper::Request<Full<Bytes>>;

/// Makes the requests of a step.
pub trait Workload: Send + Sync + 'static {
    /// The `i`-th request (any randomness is the workload's own).
    fn request(&self, i: u64) -> HttpRequest;
}

/// A pooled HTTP/1.1 client with keep-alive and `TCP_NODELAY`.
pub fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// How each step runs.
#[derive(Clone, Debug)]
pub struct StepConfig {
    /// Sent at the step's rate but not measured.
    pub warmup: Duration,
    /// The measured part.
    pub measure: Duration,
    /// Most requests outstanding; a request due beyond it is an error.
    pub max_in_flight: usize,
    /// Keep-alive connections to each server, fixed for the step (see [`Connections`]).
    pub connections: usize,
    /// A request not answered by then is an error.
    pub request_timeout: Duration,
    /// A step passes when its p99 is at most this …
    pub max_p99: Duration,
    /// … and at most this share of its requests failed.
    pub max_error_rate: f64,
    /// Processes whose resident memory is sampled during the measured part.
    pub watch_pids: Vec<u32>,
}

/// What one step measured. Latencies are over the answered requests (any status);
/// errors are non-2xx answers, transport errors, timeouts and requests not sent because
/// `max_in_flight` were outstanding.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepResult {
    /// Requests per second offered (the schedule).
    pub offered_rate: f64,
    /// 2xx answers per second over the measured part: from its first intended send to its
    /// last scheduled one, or to its last answer if that came later.
    pub achieved_rate: f64,
    /// Requests due in the measured part (until the step stopped, if it stopped early).
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub non_2xx: u64,
    pub transport_errors: u64,
    pub timeouts: u64,
    /// Not sent: `max_in_flight` requests were outstanding.
    pub shed: u64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// p99 within the bound and errors within their share.
    pub pass: bool,
    /// Stopped before its end, once it had certainly missed (its figures are over the
    /// requests sent until then).
    pub aborted: bool,
    /// The highest resident memory of any one watched process during the measured part,
    /// in KiB.
    pub max_rss_kib: Option<u64>,
    /// Where the whole machine's CPU time went over the measured part (its answers
    /// included): the load generator's share is in `busy` too, and `steal` is time the
    /// hypervisor took, which shows up here as latency and nowhere else.
    pub cpu: Option<procfs::CpuShare>,
    /// A few of the errors, for diagnosis.
    pub error_samples: Vec<String>,
}

enum Outcome {
    Ok,
    Status(u16, String),
    Transport(String),
    Timeout,
}

struct Done {
    intended: Instant,
    done: Instant,
    outcome: Outcome,
}

/// Runs one step at `rate` requests per second.
pub async fn run_step(
    conns: &Connections,
    workload: &Arc<dyn Workload>,
    rate: f64,
    cfg: &StepConfig,
) -> StepResult {
    let rate = rate.max(0.001);
    let warm_n = (rate * cfg.warmup.as_secs_f64()).round() as u64;
    let total_n = warm_n + ((rate * cfg.measure.as_secs_f64()).round() as u64).max(1);
    let permits = Arc::new(Semaphore::new(cfg.max_in_flight));
    let (tx, mut rx) = mpsc::unbounded_channel::<Done>();
    let t0 = Instant::now() + Duration::from_millis(2);
    let at = move |i: u64| t0 + Duration::from_secs_f64(i as f64 / rate);
    let measure_from = at(warm_n);

    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn(sample(
        cfg.watch_pids.clone(),
        measure_from,
        sampling.clone(),
    ));

    // The step stops early once it has certainly missed: more errors than its share, or
    // more answers slower than the bound than 1% of its requests (then the p99 of the
    // answers is above the bound, however the rest go). An overload is kept short, and
    // the steps after it find a server less encumbered by the backlog.
    let certain_miss = (cfg.max_error_rate * (total_n - warm_n) as f64).floor() as u64 + 1;
    let slow = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut shed = 0u64;
    let mut aborted = false;
    let mut i = 0u64;
    while i < total_n {
        let now = Instant::now();
        while i < total_n && at(i) <= now {
            let intended = at(i);
            let measured = i >= warm_n;
            match permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    let request = workload.request(i);
                    let tx = tx.clone();
                    let max_p99 = cfg.max_p99;
                    let (slow, failed) = (slow.clone(), failed.clone());
                    let answered = move |answer: Answer| {
                        let done = Instant::now();
                        if measured {
                            let outcome = Outcome::of(answer);
                            let answered = matches!(outcome, Outcome::Ok | Outcome::Status(..));
                            if answered && done.saturating_duration_since(intended) > max_p99 {
                                slow.fetch_add(1, Ordering::Relaxed);
                            }
                            if !matches!(outcome, Outcome::Ok) {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                            let _ = tx.send(Done {
                                intended,
                                done,
                                outcome,
                            });
                        }
                        drop(permit);
                    };
                    conns.send(
                        i,
                        Job {
                            request,
                            deadline: intended + cfg.request_timeout,
                            answered: Box::new(answered),
                        },
                    );
                }
                Err(_) => {
                    if measured {
                        shed += 1;
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            i += 1;
        }
        if slow.load(Ordering::Relaxed) >= certain_miss
            || failed.load(Ordering::Relaxed) >= certain_miss
        {
            aborted = i < total_n;
            break;
        }
        if i < total_n {
            tokio::time::sleep_until(at(i).into()).await;
        }
    }
    // Every request ends by its timeout; a permit is given back after its outcome is sent.
    let _ = tokio::time::timeout(
        cfg.request_timeout + Duration::from_secs(1),
        permits.acquire_many(cfg.max_in_flight as u32),
    )
    .await;
    sampling.store(false, Ordering::Relaxed);
    let (cpu_from, max_rss_kib) = sampler.await.unwrap_or((None, None));
    let cpu = cpu_from
        .zip(procfs::cpu_times())
        .and_then(|(from, to)| procfs::CpuShare::between(from, to));
    drop(tx);

    let mut latencies_us: Vec<u64> = Vec::with_capacity(i.saturating_sub(warm_n) as usize);
    let (mut ok, mut non_2xx, mut transport, mut timeouts) = (0u64, 0u64, 0u64, 0u64);
    let mut last_ok = measure_from;
    let mut samples = Vec::new();
    while let Ok(d) = rx.try_recv() {
        let latency = d.done.saturating_duration_since(d.intended);
        match d.outcome {
            Outcome::Ok => {
                ok += 1;
                last_ok = last_ok.max(d.done);
                latencies_us.push(latency.as_micros() as u64);
            }
            Outcome::Status(status, body) => {
                non_2xx += 1;
                latencies_us.push(latency.as_micros() as u64);
                if samples.len() < 3 {
                    samples.push(format!("HTTP {status}: {body}"));
                }
            }
            Outcome::Transport(e) => {
                transport += 1;
                if samples.len() < 3 {
                    samples.push(format!("transport: {e}"));
                }
            }
            Outcome::Timeout => timeouts += 1,
        }
    }
    let requests = i.saturating_sub(warm_n);
    // Requests still unanswered after the wait are timeouts too.
    let accounted = ok + non_2xx + transport + timeouts + shed;
    timeouts += requests.saturating_sub(accounted);
    if shed > 0 && samples.len() < 3 {
        samples.push(format!(
            "{shed} requests not sent: {} were outstanding",
            cfg.max_in_flight
        ));
    }
    if timeouts > 0 && samples.len() < 3 {
        samples.push(format!(
            "{timeouts} requests unanswered after {:?}",
            cfg.request_timeout
        ));
    }
    let errors = requests - ok;
    let error_rate = errors as f64 / requests.max(1) as f64;
    latencies_us.sort_unstable();
    let latency = Percentiles::of_sorted_micros(&latencies_us);
    let (p50_ms, p99_ms, p999_ms, max_ms) = (latency.p50, latency.p99, latency.p999, latency.max);
    // Over the measured duration, or longer when the answers came later than that.
    let window = last_ok
        .saturating_duration_since(measure_from)
        .as_secs_f64()
        .max(requests.max(1) as f64 / rate);
    let achieved_rate = ok as f64 / window;
    let max_p99_ms = cfg.max_p99.as_secs_f64() * 1000.0;
    StepResult {
        offered_rate: rate,
        achieved_rate,
        requests,
        ok,
        errors,
        error_rate,
        non_2xx,
        transport_errors: transport,
        timeouts,
        shed,
        p50_ms,
        p90_ms: latency.p90,
        p99_ms,
        p999_ms,
        max_ms,
        pass: !aborted
            && p99_ms.is_some_and(|p| p <= max_p99_ms)
            && error_rate <= cfg.max_error_rate,
        aborted,
        max_rss_kib,
        cpu,
        error_samples: samples,
    }
}

/// The nearest-rank percentile `q` (0 < q ≤ 1) of sorted values.
pub fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Latency percentiles, in milliseconds (`None` with no sample).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub max: Option<f64>,
}

impl Percentiles {
    /// Of durations in microseconds, sorted.
    pub fn of_sorted_micros(sorted: &[u64]) -> Percentiles {
        let ms = |q: f64| percentile(sorted, q).map(|us| us as f64 / 1000.0);
        Percentiles {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            p999: ms(0.999),
            max: ms(1.0),
        }
    }
}

/// Sends one request and reads its whole answer (for checks before a ramp).
pub async fn fetch(
    client: &HttpClient,
    req: HttpRequest,
    timeout: Duration,
) -> Result<(hyper::StatusCode, Bytes), String> {
    tokio::time::timeout(timeout, exchange(client, req))
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")))
}

async fn exchange(
    client: &HttpClient,
    req: HttpRequest,
) -> Result<(hyper::StatusCode, Bytes), String> {
    let resp = client.request(req).await.map_err(|e| error_chain(&e))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| error_chain(&e))?
        .to_bytes();
    Ok((status, body))
}

impl Outcome {
    fn of(answer: Answer) -> Outcome {
        match answer {
            Answer::Status(status, _) if status.is_success() => Outcome::Ok,
            Answer::Status(status, body) => Outcome::Status(
                status.as_u16(),
                String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
            ),
            Answer::Transport(e) => Outcome::Transport(e),
            Answer::Timeout => Outcome::Timeout,
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// From `from` until `running` goes false: the machine's CPU times at `from`, and the
/// highest resident memory of any of `pids` (sampled every 100 ms).
async fn sample(
    pids: Vec<u32>,
    from: Instant,
    running: Arc<AtomicBool>,
) -> (Option<procfs::CpuTimes>, Option<u64>) {
    tokio::time::sleep_until(from.into()).await;
    let cpu = procfs::cpu_times();
    let mut max: Option<u64> = None;
    while !pids.is_empty() && running.load(Ordering::Relaxed) {
        for rss in pids.iter().filter_map(|&p| procfs::rss_kib(p)) {
            max = Some(max.map_or(rss, |m| m.max(rss)));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (cpu, max)
}

/// The rates a [`ramp`] tries.
#[derive(Clone, Debug)]
pub struct RampPlan {
    pub start_rate: f64,
    /// Each step's rate is the last one's times this.
    pub factor: f64,
    /// No step above this rate.
    pub max_rate: Option<f64>,
    /// Bisection steps between the last pass and the first miss.
    pub refine: u32,
    /// No more than this many steps in all.
    pub max_steps: u32,
    /// Idle time between steps, for the server to drain (ten times as long after a miss).
    pub pause: Duration,
}

/// The steps of a ramp, in the order they ran, and the passing step with the highest
/// achieved rate.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ramp {
    pub best: Option<StepResult>,
    /// No step missed: the ramp stopped at `max_rate` (or after `max_steps`), so `best` is a
    /// lower bound of what the server sustains.
    pub lower_bound: bool,
    pub steps: Vec<StepResult>,
}

/// Steps up from `plan.start_rate` until a step misses, then bisects (geometrically)
/// between the last passing and the first missing rate. `each` sees every step.
pub async fn ramp(
    workload: &Arc<dyn Workload>,
    plan: &RampPlan,
    cfg: &StepConfig,
    mut each: impl FnMut(&StepResult),
) -> Ramp {
    let mut steps: Vec<StepResult> = Vec::new();
    let cap = plan.max_rate.unwrap_or(f64::INFINITY);
    let mut rate = plan.start_rate.min(cap);
    let (mut lo, mut hi): (Option<f64>, Option<f64>) = (None, None);
    while (steps.len() as u32) < plan.max_steps {
        let r = step(workload, rate, cfg, plan, &mut steps).await;
        each(&r);
        if !r.pass {
            hi = Some(rate);
            break;
        }
        lo = Some(rate);
        if rate >= cap {
            break;
        }
        rate = (rate * plan.factor).min(cap);
    }
    if let (Some(mut lo), Some(mut hi)) = (lo, hi) {
        for _ in 0..plan.refine {
            if hi / lo < 1.05 || steps.len() as u32 >= plan.max_steps {
                break;
            }
            let mid = (lo * hi).sqrt();
            let r = step(workload, mid, cfg, plan, &mut steps).await;
            each(&r);
            if r.pass {
                lo = mid;
            } else {
                hi = mid;
            }
        }
    }
    let best = steps
        .iter()
        .filter(|s| s.pass)
        .max_by(|a, b| a.achieved_rate.total_cmp(&b.achieved_rate))
        .cloned();
    Ramp {
        best,
        lower_bound: hi.is_none(),
        steps,
    }
}

/// One step of a ramp, on connections of its own: those of the step before, perhaps still
/// waiting for answers of an overload, are closed before it starts.
async fn step(
    workload: &Arc<dyn Workload>,
    rate: f64,
    cfg: &StepConfig,
    plan: &RampPlan,
    steps: &mut Vec<StepResult>,
) -> StepResult {
    let conns = Connections::new(cfg.connections, cfg.request_timeout);
    let r = run_step(&conns, workload, rate, cfg).await;
    drop(conns);
    steps.push(r.clone());
    // After an overload the server still has its backlog (and on SQLite a WAL grown long
    // to checkpoint): the bisection steps that follow a miss measure the rate, not the
    // recovery.
    let pause = if r.pass { plan.pause } else { plan.pause * 10 };
    tokio::time::sleep(pause).await;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 0.5), Some(500));
        assert_eq!(percentile(&v, 0.99), Some(990));
        assert_eq!(percentile(&v, 0.999), Some(999));
        assert_eq!(percentile(&v, 1.0), Some(1000));
        assert_eq!(percentile(&[7], 0.5), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
        let p = Percentiles::of_sorted_micros(&[1_000, 2_000, 3_000, 40_000]);
        assert_eq!(
            (p.p50, p.p90, p.p99, p.p999, p.max),
            (Some(2.0), Some(40.0), Some(40.0), Some(40.0), Some(40.0))
        );
        assert_eq!(Percentiles::of_sorted_micros(&[]).max, None);
    }
}
