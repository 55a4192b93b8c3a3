//! Accept loops shared by both listeners: a bounded number of connections, each served by
//! its own task until the peer leaves or breaks the protocol. A listener is a TCP port or
//! a UNIX socket.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::Semaphore;

/// Most connections served at once per listener. Postfix keeps a handful per process; the
/// bound keeps a misbehaving client from exhausting file descriptors.
const MAX_CONNECTIONS: usize = 512;

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
    if let Some(path) = addr.strip_prefix("unix:") {
        return bind_unix(Path::new(path))
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

/// Creates the socket at `path` with [`SOCKET_MODE`]. A socket file left by a process that
/// is gone is replaced; a live one, or a file that is not a socket, is refused.
///
/// The socket is bound in a private directory (mode 0700) beside `path`, given its mode,
/// then renamed into place: no one can connect to it before its permissions are set,
/// whatever the umask.
fn bind_unix(path: &Path) -> Result<UnixSocket, ListenError> {
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

/// Serves every connection of `listener` with `serve`, forever.
pub(crate) async fn accept_loop<F, Fut>(listener: Listener, what: &'static str, serve: F)
where
    F: Fn(Stream, Peer) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, peer)) => {
                let conn = serve(stream, peer);
                tokio::spawn(async move {
                    conn.await;
                    drop(permit);
                });
            }
            Err(e) => {
                // Out of descriptors and the like: wait a little rather than spin.
                tracing::warn!(listener = what, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serves one connection, a request at a time: reads it with `read` (waiting `idle` at
/// most), answers it with `answer`, writes the answer. Ends when the client leaves or
/// stays idle, when `answer` has no answer, or when `read` fails: then what `refuse`
/// makes of the error, if anything, is written before the connection closes.
pub(crate) async fn serve_requests<Req, E>(
    stream: Stream,
    idle: Duration,
    mut read: impl AsyncFnMut(&mut BufReader<Stream>) -> Result<Option<Req>, E>,
    refuse: impl FnOnce(E) -> Option<Vec<u8>>,
    mut answer: impl AsyncFnMut(Req) -> Option<Vec<u8>>,
) {
    // One buffered stream for both directions: reads go through the buffer, writes
    // straight to the socket.
    let mut conn = BufReader::new(stream);
    loop {
        let request = match tokio::time::timeout(idle, read(&mut conn)).await {
            Ok(Ok(Some(request))) => request,
            Ok(Ok(None)) | Err(_) => return,
            Ok(Err(e)) => {
                if let Some(last) = refuse(e) {
                    let _ = conn.write_all(&last).await;
                }
                return;
            }
        };
        let Some(reply) = answer(request).await else {
            return;
        };
        if conn.write_all(&reply).await.is_err() {
            return;
        }
    }
}
