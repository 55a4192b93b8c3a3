//! Accept loops shared by both listeners: a bounded number of connections, each served by
//! its own task until the peer leaves or breaks the protocol. A listener is a TCP port or
//! a UNIX socket.
//!
//! Postfix's own connections must keep working while others misbehave: when the policy
//! service cannot answer, Postfix defers all mail. So the slots are not first come, first
//! served (a client could fill them with idle connections and keep Postfix out):
//!
//! - A connection that has not completed a request ("new") has [`Limits::first_request`]
//!   (10 s) from its accept to do so, however it trickles bytes. Postfix writes its request
//!   as soon as it connects; a connection that has spoken then waits up to [`Limits::idle`]
//!   (300 s) for each next request, as Postfix reuses its connections.
//! - A client address (an IPv6 address by its /64) may hold at most
//!   [`Limits::max_new_per_client`] new connections; more are closed at once. Spoken
//!   connections do not count, so Postfix's many reused connections from 127.0.0.1 are
//!   never refused by this.
//! - At [`Limits::max_connections`], a newcomer is not refused: the oldest new connection
//!   is closed to make room, or, if none, the one idle longest since its last request
//!   (Postfix's clients reconnect and retry once when a kept connection is gone). Only when
//!   every connection is in the middle of an answer does the newcomer wait for one to end.
//!
//! A connection on the UNIX socket has no address: it counts only against the total,
//! and only processes that the socket file's permissions let in can make one.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The limits of one listener (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most connections served at once: Postfix keeps one per smtpd or smtp process that
    /// asked (a few hundred on a busy server); the bound keeps file descriptors and tasks
    /// finite.
    pub max_connections: usize,
    /// Most connections per client address that have not completed a request yet.
    pub max_new_per_client: usize,
    /// How long a new connection has, from its accept, to complete its first request.
    pub first_request: Duration,
    /// How long a connection that has spoken may wait for (and take to send) each next
    /// request: Postfix keeps an idle policy connection up to
    /// `smtpd_policy_service_max_idle`, 300 s by default.
    pub idle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            max_new_per_client: 64,
            first_request: Duration::from_secs(10),
            idle: Duration::from_secs(300),
        }
    }
}

/// A warning about the limits is logged at most this often per listener and kind: an
/// attack must not become a flood of log lines.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The mode of a UNIX socket: its owner and its group may connect (on Linux, connecting
/// needs write permission), nobody else.
pub const SOCKET_MODE: u32 = 0o660;

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: io::Error },
    #[error("{0}")]
    Refused(String),
}

/// Where a listener listens: a TCP port, or a UNIX socket (removed when the listener is
/// dropped).
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixSocket),
}

/// A listening UNIX socket and its file.
#[derive(Debug)]
pub struct UnixSocket {
    listener: UnixListener,
    path: PathBuf,
    /// The file's device and inode: on drop, the file is removed only if it is still ours.
    file: (u64, u64),
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        if file_id(&self.path).is_some_and(|id| id == self.file) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

impl Listener {
    /// What to tell Postfix: `host:port`, or `unix:PATH`.
    pub fn address(&self) -> io::Result<String> {
        match self {
            Listener::Tcp(l) => Ok(l.local_addr()?.to_string()),
            Listener::Unix(u) => Ok(format!("unix:{}", u.path.display())),
        }
    }

    async fn accept(&self) -> io::Result<(Stream, Peer)> {
        match self {
            Listener::Tcp(l) => {
                let (stream, peer) = l.accept().await?;
                let _ = stream.set_nodelay(true);
                Ok((Stream::Tcp(stream), Peer::Tcp(peer)))
            }
            Listener::Unix(u) => {
                let (stream, _) = u.listener.accept().await?;
                Ok((Stream::Unix(stream), Peer::Unix))
            }
        }
    }
}

/// Who is connected, for the logs.
#[derive(Debug, Clone, Copy)]
pub enum Peer {
    Tcp(SocketAddr),
    /// A local process allowed by the socket file's permissions.
    Unix,
}

impl Peer {
    /// The address whose new connections count together: the IP address, an IPv6 one by
    /// its /64 (one host usually holds a whole /64); none on the UNIX socket.
    fn client(&self) -> Option<IpAddr> {
        match self {
            Peer::Tcp(addr) => Some(match addr.ip().to_canonical() {
                IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into()),
                v4 => v4,
            }),
            Peer::Unix => None,
        }
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Tcp(addr) => addr.fmt(f),
            Peer::Unix => f.write_str("unix"),
        }
    }
}

/// One connection, over TCP or a UNIX socket.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Binds `addr`: `unix:PATH` (an absolute path) for a UNIX socket, else `host:port`. With
/// `loopback_only`, a TCP address reachable from other hosts is refused: the socketmap
/// hands out relay passwords.
pub async fn bind(addr: &str, loopback_only: bool) -> Result<Listener, ListenError> {
    bind_in_group(addr, loopback_only, None).await
}

/// As [`bind`], with a UNIX socket's group set to `group` (a group name or number): the
/// group whose processes may connect, Dovecot's for its dict listener.
pub async fn bind_in_group(
    addr: &str,
    loopback_only: bool,
    group: Option<&str>,
) -> Result<Listener, ListenError> {
    if let Some(path) = addr.strip_prefix("unix:") {
        let gid = group.map(group_id).transpose()?;
        return bind_unix(Path::new(path), gid)
            .map(Listener::Unix)
            .map_err(|e| match e {
                ListenError::Bind { source, .. } => ListenError::Bind {
                    addr: addr.to_string(),
                    source,
                },
                refused => refused,
            });
    }
    let bind_error = |source| ListenError::Bind {
        addr: addr.to_string(),
        source,
    };
    if group.is_some() {
        return Err(ListenError::Refused(format!(
            "{addr}: a group is given to a UNIX socket only (unix:PATH)"
        )));
    }
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    if loopback_only && !local.ip().is_loopback() {
        return Err(ListenError::Refused(format!(
            "{addr} is not a loopback address; the socketmap serves relay passwords and \
             listens on loopback (or on a UNIX socket, unix:PATH) only"
        )));
    }
    Ok(Listener::Tcp(listener))
}

/// The number of group `group`: a number as it is, a name from `/etc/group`.
fn group_id(group: &str) -> Result<u32, ListenError> {
    if let Ok(gid) = group.parse() {
        return Ok(gid);
    }
    let groups = std::fs::read_to_string("/etc/group").map_err(|source| ListenError::Bind {
        addr: "/etc/group".into(),
        source,
    })?;
    groups
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let gid = fields.nth(1)?.parse().ok()?;
            Some((name, gid))
        })
        .find(|(name, _)| *name == group)
        .map(|(_, gid)| gid)
        .ok_or_else(|| ListenError::Refused(format!("no group named {group:?} in /etc/group")))
}

/// Creates the socket at `path` with [`SOCKET_MODE`] (in group `gid` when given). A socket file left by a process that
/// is gone is replaced; a live one, or a file that is not a socket, is refused.
///
/// The socket is bound in a private directory (mode 0700) beside `path`, given its mode,
/// then renamed into place: no one can connect to it before its permissions are set,
/// whatever the umask.
fn bind_unix(path: &Path, gid: Option<u32>) -> Result<UnixSocket, ListenError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let refused = |why: &str| ListenError::Refused(format!("unix:{}: {why}", path.display()));
    let bind_error = |source| ListenError::Bind {
        addr: path.display().to_string(),
        source,
    };
    if !path.is_absolute() {
        return Err(refused("the socket's path must be absolute"));
    }
    let parent = path
        .parent()
        .ok_or_else(|| refused("the socket's path has no directory"))?;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(refused(
                "the file exists and is not a socket; not replacing it",
            ));
        }
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(refused("another process is listening on this socket")),
            // Nobody listens: a socket left by a process that did not remove it.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                tracing::info!(path = %path.display(), "replacing a stale socket");
            }
            Err(e) => return Err(bind_error(e)),
        }
    }
    let private = tempfile::Builder::new()
        .prefix(".mailplane-")
        .tempdir_in(parent)
        .map_err(bind_error)?;
    let staged = private.path().join("s");
    let listener = UnixListener::bind(&staged).map_err(bind_error)?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(&staged, None, Some(gid)).map_err(bind_error)?;
    }
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(bind_error)?;
    std::fs::rename(&staged, path).map_err(bind_error)?;
    let file = file_id(path).ok_or_else(|| refused("the socket vanished once created"))?;
    Ok(UnixSocket {
        listener,
        path: path.to_path_buf(),
        file,
    })
}

/// Where a connection stands, for the choice of one to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Has not completed a request yet: closed first, oldest first.
    New,
    /// Waits for its next request: closed next, idle longest first.
    Idle,
    /// A request is being answered: never closed to make room.
    Answering,
}

struct Entry {
    client: Option<IpAddr>,
    phase: Phase,
    /// The accept (a new connection) or the arrival of its last request (an idle one).
    since: Instant,
    evicted: bool,
    close: Arc<Notify>,
}

/// The connections of one listener.
#[derive(Default)]
struct Registry {
    entries: HashMap<u64, Entry>,
    /// Per client address, its new connections; no zero counts are kept.
    new_per_client: HashMap<IpAddr, usize>,
    next_id: u64,
    /// When each kind of warning was last logged.
    warned_full: Option<Instant>,
    warned_client: Option<Instant>,
}

impl Registry {
    fn forget_new(&mut self, client: Option<IpAddr>) {
        if let Some(ip) = client {
            if let Some(n) = self.new_per_client.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.new_per_client.remove(&ip);
                }
            }
        }
    }

    /// Asks the least useful connection to close (see the module documentation); false
    /// when every connection is answering a request.
    fn evict_one(&mut self) -> bool {
        let victim = self
            .entries
            .iter_mut()
            .filter(|(_, e)| e.phase != Phase::Answering && !e.evicted)
            .min_by_key(|(_, e)| (e.phase == Phase::Idle, e.since));
        match victim {
            Some((_, e)) => {
                e.evicted = true;
                e.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Logs at most once per [`WARN_EVERY`]: whether `last` allows it now (and marks it).
fn may_warn(last: &mut Option<Instant>) -> bool {
    let now = Instant::now();
    if last.is_some_and(|t| now.duration_since(t) < WARN_EVERY) {
        return false;
    }
    *last = Some(now);
    true
}

/// One served connection's place in its listener: its limits, its phase, the signal that
/// closes it. Dropped when the connection ends, which frees the place.
pub(crate) struct Connection {
    registry: Arc<Mutex<Registry>>,
    id: u64,
    limits: Limits,
    close: Arc<Notify>,
    accepted: Instant,
}

impl Connection {
    fn set_phase(&self, phase: Phase) {
        let mut reg = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = reg.entries.get_mut(&self.id) else {
            return;
        };
        let (was, client) = (entry.phase, entry.client);
        entry.phase = phase;
        // Idle connections are ordered by when their last request came, which precedes
        // the answer the client sees: the time the listener gets round to marking the
        // connection idle afterwards depends on scheduling, and under load came after a
        // later request of another connection, so the wrong one was taken as idle longest.
        if phase == Phase::Answering {
            entry.since = Instant::now();
        }
        if was == Phase::New && phase != Phase::New {
            reg.forget_new(client);
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut reg = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = reg.entries.remove(&self.id) {
            if entry.phase == Phase::New {
                reg.forget_new(entry.client);
            }
        }
    }
}

/// Serves every connection of `listener` with `serve`, forever, within `limits`.
pub(crate) async fn accept_loop<F, Fut>(
    listener: Listener,
    what: &'static str,
    limits: Limits,
    serve: F,
) where
    F: Fn(Stream, Peer, Connection) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let limits = Limits {
        max_connections: limits.max_connections.max(1),
        max_new_per_client: limits.max_new_per_client.max(1),
        ..limits
    };
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let registry = Arc::new(Mutex::new(Registry::default()));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: wait a little rather than spin.
                tracing::warn!(listener = what, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let client = peer.client();
        if let Some(ip) = client {
            let mut reg = registry.lock().unwrap_or_else(|e| e.into_inner());
            if reg.new_per_client.get(&ip).copied().unwrap_or(0) >= limits.max_new_per_client {
                if may_warn(&mut reg.warned_client) {
                    tracing::warn!(listener = what, client = %ip, limit = limits.max_new_per_client,
                        "a client address holds too many connections without a request; closing its new ones");
                }
                tracing::debug!(listener = what, %peer, "refused: too many new connections from this address");
                continue;
            }
        }
        let slot = take_slot(&slots, &registry, what).await;
        serve_one(&registry, limits, client, slot, stream, peer, &serve);
    }
}

/// A slot for a newcomer: a free one, or the one a closed connection gives back.
async fn take_slot(
    slots: &Arc<Semaphore>,
    registry: &Mutex<Registry>,
    what: &'static str,
) -> OwnedSemaphorePermit {
    if let Ok(slot) = slots.clone().try_acquire_owned() {
        return slot;
    }
    {
        let mut reg = registry.lock().unwrap_or_else(|e| e.into_inner());
        let evicted = reg.evict_one();
        if may_warn(&mut reg.warned_full) {
            tracing::warn!(
                listener = what,
                connections = reg.entries.len(),
                "at the connection limit: closing the oldest connections without a request \
                 (then the longest idle) to make room"
            );
        }
        if !evicted {
            tracing::debug!(
                listener = what,
                "every connection is answering; the newcomer waits"
            );
        }
    }
    slots
        .clone()
        .acquire_owned()
        .await
        .expect("the semaphore is never closed")
}

fn serve_one<F, Fut>(
    registry: &Arc<Mutex<Registry>>,
    limits: Limits,
    client: Option<IpAddr>,
    slot: OwnedSemaphorePermit,
    stream: Stream,
    peer: Peer,
    serve: &F,
) where
    F: Fn(Stream, Peer, Connection) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let close = Arc::new(Notify::new());
    let now = Instant::now();
    let id = {
        let mut reg = registry.lock().unwrap_or_else(|e| e.into_inner());
        let id = reg.next_id;
        reg.next_id += 1;
        reg.entries.insert(
            id,
            Entry {
                client,
                phase: Phase::New,
                since: now,
                evicted: false,
                close: close.clone(),
            },
        );
        if let Some(ip) = client {
            *reg.new_per_client.entry(ip).or_default() += 1;
        }
        id
    };
    let conn = Connection {
        registry: registry.clone(),
        id,
        limits,
        close,
        accepted: now,
    };
    let served = serve(stream, peer, conn);
    tokio::spawn(async move {
        served.await;
        drop(slot);
    });
}

/// Serves one connection, a request at a time: reads it with `read` (within the
/// connection's limits), answers it with `answer`, writes the answer. Ends when the client
/// leaves or stays silent too long, when the listener closes the connection to make room,
/// when `answer` has no answer, or when `read` fails: then what `refuse` makes of the
/// error, if anything, is written before the connection closes.
pub(crate) async fn serve_requests<Req, E>(
    stream: Stream,
    conn: Connection,
    mut read: impl AsyncFnMut(&mut BufReader<Stream>) -> Result<Option<Req>, E>,
    refuse: impl FnOnce(E) -> Option<Vec<u8>>,
    mut answer: impl AsyncFnMut(Req) -> Option<Vec<u8>>,
) {
    // One buffered stream for both directions: reads go through the buffer, writes
    // straight to the socket.
    let mut io = BufReader::new(stream);
    // The first request's deadline runs from the accept, not per read: trickling bytes
    // does not extend it.
    let mut deadline = conn.accepted + conn.limits.first_request;
    loop {
        let read = tokio::select! {
            read = tokio::time::timeout_at(deadline, read(&mut io)) => read,
            () = conn.close.notified() => return,
        };
        let request = match read {
            Ok(Ok(Some(request))) => request,
            Ok(Ok(None)) | Err(_) => return,
            Ok(Err(e)) => {
                if let Some(last) = refuse(e) {
                    let _ = io.write_all(&last).await;
                }
                return;
            }
        };
        conn.set_phase(Phase::Answering);
        let Some(reply) = answer(request).await else {
            return;
        };
        // Idle before the client can see the answer, so that what the client does next
        // finds the connection idle, whenever this task runs again. Closing it to make room
        // now lets the answer finish first: the close is seen at the next read.
        conn.set_phase(Phase::Idle);
        if io.write_all(&reply).await.is_err() {
            return;
        }
        deadline = Instant::now() + conn.limits.idle;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_connections_count_by_address_and_ipv6_by_its_64() {
        let client = |s: &str| Peer::Tcp(s.parse().unwrap()).client().unwrap().to_string();
        assert_eq!(client("192.0.2.7:25"), "192.0.2.7");
        assert_eq!(client("[::ffff:192.0.2.7]:25"), "192.0.2.7");
        assert_eq!(client("[2001:db8:1:2:aaaa::1]:25"), "2001:db8:1:2::");
        assert_eq!(
            client("[2001:db8:1:2:bbbb::9]:25"),
            client("[2001:db8:1:2:aaaa::1]:25")
        );
        assert!(Peer::Unix.client().is_none());
    }

    #[test]
    fn groups_by_name_or_number() {
        assert_eq!(group_id("0").unwrap(), 0);
        assert_eq!(group_id("root").unwrap(), 0);
        assert!(group_id("no-such-group-here").is_err());
    }
}
