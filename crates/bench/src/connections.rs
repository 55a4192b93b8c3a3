//! A fixed number of keep-alive HTTP/1.1 connections to each server, for the load
//! generator.
//!
//! Each connection is a task that sends one request at a time and takes the next from a
//! queue of its own; a request goes to the less loaded of two of its server's connections.
//! The count is fixed, as with `wrk2 -c` or `oha -c`: a pool that opened a connection for
//! every request found no idle one turned a server's slow second into thousands of new
//! connections, and the step never recovered from the storm of connects it had caused
//! itself. With the count fixed, a request that finds every connection busy waits in the
//! generator, and that wait is part of its latency (measured from its intended time).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::header::{HeaderValue, HOST};
use hyper::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::loadgen::HttpRequest;

/// What became of one request.
pub enum Answer {
    /// The status and the first bytes of the body.
    Status(hyper::StatusCode, bytes::Bytes),
    Transport(String),
    Timeout,
}

/// A request for a connection, and what to do with its answer.
pub struct Job {
    pub request: HttpRequest,
    /// Unanswered by then, the request is a timeout (it may not even have been sent).
    pub deadline: Instant,
    pub answered: Box<dyn FnOnce(Answer) + Send>,
}

struct Connection {
    queue: mpsc::UnboundedSender<Job>,
    /// Jobs queued on this connection or being sent on it.
    load: Arc<AtomicUsize>,
}

/// `per_server` connections to each server a request names, opened on its first request.
pub struct Connections {
    per_server: usize,
    /// The longest a connect may take.
    timeout: Duration,
    /// The address connections are made from (another loopback address plays another
    /// client); the system's choice when `None`.
    local: Option<std::net::IpAddr>,
    servers: Mutex<HashMap<String, Arc<[Connection]>>>,
}

impl Connections {
    pub fn new(per_server: usize, timeout: Duration) -> Connections {
        Connections {
            per_server: per_server.max(1),
            timeout,
            local: None,
            servers: Mutex::new(HashMap::new()),
        }
    }

    /// [`Connections::new`], connecting from `local` (e.g. `127.0.0.2`).
    pub fn from_address(per_server: usize, timeout: Duration, local: std::net::IpAddr) -> Self {
        Connections {
            local: Some(local),
            ..Connections::new(per_server, timeout)
        }
    }

    /// Queues `job` on a connection to the server of its absolute URI; `i` (the request's
    /// number) picks the two connections compared.
    pub fn send(&self, i: u64, mut job: Job) {
        let Some(authority) = job.request.uri().authority().map(|a| a.to_string()) else {
            (job.answered)(Answer::Transport("the request has no host".into()));
            return;
        };
        // Origin-form on the wire, as a client speaking to the server directly sends it.
        let path = job
            .request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        *job.request.uri_mut() = path
            .parse::<Uri>()
            .unwrap_or_else(|_| Uri::from_static("/"));
        if let Ok(host) = HeaderValue::from_str(&authority) {
            job.request.headers_mut().insert(HOST, host);
        }
        let conns = self.of(&authority);
        let n = conns.len() as u64;
        let a = &conns[(i % n) as usize];
        let b = &conns[(i.wrapping_mul(0x9e37_79b9).wrapping_add(n / 2) % n) as usize];
        let pick = if b.load.load(Ordering::Relaxed) < a.load.load(Ordering::Relaxed) {
            b
        } else {
            a
        };
        pick.load.fetch_add(1, Ordering::Relaxed);
        if let Err(mpsc::error::SendError(job)) = pick.queue.send(job) {
            pick.load.fetch_sub(1, Ordering::Relaxed);
            (job.answered)(Answer::Transport("the connection's task ended".into()));
        }
    }

    fn of(&self, authority: &str) -> Arc<[Connection]> {
        let mut servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(conns) = servers.get(authority) {
            return conns.clone();
        }
        servers
            .entry(authority.to_string())
            .or_insert_with(|| {
                (0..self.per_server)
                    .map(|_| {
                        let (queue, jobs) = mpsc::unbounded_channel();
                        let load = Arc::new(AtomicUsize::new(0));
                        tokio::spawn(serve_jobs(
                            (authority.to_string(), self.local),
                            jobs,
                            load.clone(),
                            self.timeout,
                        ));
                        Connection { queue, load }
                    })
                    .collect()
            })
            .clone()
    }
}

/// One connection's task: (re)connects when it has a request to send and no connection,
/// and ends when its queue is closed (the [`Connections`] dropped) and drained.
async fn serve_jobs(
    (authority, local): (String, Option<std::net::IpAddr>),
    mut jobs: mpsc::UnboundedReceiver<Job>,
    load: Arc<AtomicUsize>,
    timeout: Duration,
) {
    let mut sender: Option<hyper::client::conn::http1::SendRequest<_>> = None;
    while let Some(job) = jobs.recv().await {
        if sender.as_ref().is_none_or(|s| s.is_closed()) {
            sender = match tokio::time::timeout(timeout, connect(&authority, local)).await {
                Ok(Ok(s)) => Some(s),
                Ok(Err(e)) => {
                    finish(&load, job, Answer::Transport(e));
                    continue;
                }
                Err(_) => {
                    finish(&load, job, Answer::Timeout);
                    continue;
                }
            };
        }
        let Some(s) = sender.as_mut() else { continue };
        let left = job.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            finish(&load, job, Answer::Timeout);
            continue;
        }
        let answer = match tokio::time::timeout(left, exchange(s, job.request)).await {
            Ok(Ok((status, body))) => Answer::Status(status, body),
            Ok(Err(e)) => {
                sender = None;
                Answer::Transport(e)
            }
            Err(_) => {
                // The answer may still come: the connection is in an unknown state.
                sender = None;
                Answer::Timeout
            }
        };
        load.fetch_sub(1, Ordering::Relaxed);
        (job.answered)(answer);
    }
}

fn finish(load: &AtomicUsize, job: Job, answer: Answer) {
    load.fetch_sub(1, Ordering::Relaxed);
    (job.answered)(answer);
}

async fn connect(
    authority: &str,
    local: Option<std::net::IpAddr>,
) -> Result<hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>, String> {
    let fail = |e: std::io::Error| format!("connect {authority}: {e}");
    let stream = match local {
        None => TcpStream::connect(authority).await.map_err(fail)?,
        Some(ip) => {
            let to = tokio::net::lookup_host(authority)
                .await
                .map_err(fail)?
                .next()
                .ok_or_else(|| format!("connect {authority}: no address"))?;
            let socket = if to.is_ipv4() {
                tokio::net::TcpSocket::new_v4()
            } else {
                tokio::net::TcpSocket::new_v6()
            }
            .map_err(fail)?;
            socket.bind((ip, 0).into()).map_err(fail)?;
            socket.connect(to).await.map_err(fail)?
        }
    };
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn exchange(
    sender: &mut hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
    request: HttpRequest,
) -> Result<(hyper::StatusCode, bytes::Bytes), String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let resp = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::ListenerExt;
    use http_body_util::Full;

    /// Requests far beyond the connection count, sent at once: each is answered, over
    /// exactly the fixed number of connections.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_requests_share_the_fixed_connections() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let listener = listener.tap_io(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        tokio::spawn(async move { axum::serve(listener, crate::echo::router(10)).await });

        let conns = Connections::new(3, Duration::from_secs(5));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let n = 200;
        for i in 0..n {
            let tx = tx.clone();
            let request = hyper::Request::get(format!("http://{addr}/api/accounts/{i}"))
                .body(Full::new(bytes::Bytes::new()))
                .unwrap();
            let answered = move |a: Answer| {
                let _ = tx.send(matches!(a, Answer::Status(s, _) if s.is_success()));
            };
            conns.send(
                i,
                Job {
                    request,
                    deadline: Instant::now() + Duration::from_secs(5),
                    answered: Box::new(answered),
                },
            );
        }
        drop(tx);
        let mut ok = 0;
        while let Some(success) = rx.recv().await {
            assert!(success);
            ok += 1;
        }
        assert_eq!(ok, n);
        assert_eq!(accepted.load(Ordering::Relaxed), 3);
    }
}
