//! `Wire`: a test's TCP connection to one of mailplane's Postfix listeners (the policy
//! service, the socketmap), with the byte-level moves the protocol tests make: sending
//! whole, in pieces or regardless of errors, half-closing, reading, and asserting that the
//! server stays silent or closes. The protocols themselves (policy requests, netstrings)
//! stay with their tests, which wrap a `Wire`.
//!
//! Every read and write has a timeout: a server that hangs fails the test instead of
//! hanging it.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream, UnixStream};
use tokio::time::{sleep, timeout};

/// The longest any single read or write may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The pause between the pieces of [`Wire::send_in_pieces`].
const PIECE_PAUSE: Duration = Duration::from_millis(2);

/// One connection.
pub struct Wire {
    /// What the messages call the server, e.g. "the socketmap".
    server: &'static str,
    reader: BufReader<Box<dyn AsyncRead + Send + Unpin>>,
    writer: Option<Box<dyn AsyncWrite + Send + Unpin>>,
}

impl Wire {
    /// Connects to `addr` (`host:port`, or `unix:PATH`), where `server` listens, without
    /// Nagle's delay.
    pub async fn connect(addr: &str, server: &'static str) -> Wire {
        if let Some(path) = addr.strip_prefix("unix:") {
            let stream = timeout(TIMEOUT, UnixStream::connect(path))
                .await
                .unwrap_or_else(|_| panic!("connecting to {server} timed out"))
                .unwrap_or_else(|e| panic!("connect to {server} at {path}: {e}"));
            let (r, w) = stream.into_split();
            return Wire::new(server, r, w);
        }
        let stream = timeout(TIMEOUT, TcpStream::connect(addr))
            .await
            .unwrap_or_else(|_| panic!("connecting to {server} timed out"))
            .unwrap_or_else(|e| panic!("connect to {server}: {e}"));
        Wire::tcp(server, stream)
    }

    /// Connects to `addr` (`host:port`) from the local address `from` (e.g. `127.0.0.2`:
    /// every loopback address is this host's), as another client would.
    pub async fn connect_from(addr: &str, from: &str, server: &'static str) -> Wire {
        let socket = TcpSocket::new_v4().unwrap();
        socket
            .bind(std::net::SocketAddr::new(from.parse().unwrap(), 0))
            .unwrap_or_else(|e| panic!("bind {from}: {e}"));
        let stream = timeout(TIMEOUT, socket.connect(addr.parse().unwrap()))
            .await
            .unwrap_or_else(|_| panic!("connecting to {server} from {from} timed out"))
            .unwrap_or_else(|e| panic!("connect to {server} from {from}: {e}"));
        Wire::tcp(server, stream)
    }

    fn tcp(server: &'static str, stream: TcpStream) -> Wire {
        stream.set_nodelay(true).unwrap();
        let (r, w) = stream.into_split();
        Wire::new(server, r, w)
    }

    fn new(
        server: &'static str,
        r: impl AsyncRead + Send + Unpin + 'static,
        w: impl AsyncWrite + Send + Unpin + 'static,
    ) -> Wire {
        Wire {
            server,
            reader: BufReader::new(Box::new(r)),
            writer: Some(Box::new(w)),
        }
    }

    /// Writes and flushes `bytes`.
    pub async fn send(&mut self, bytes: &[u8]) {
        let server = self.server;
        self.try_send(bytes)
            .await
            .unwrap_or_else(|e| panic!("write to {server}: {e}"));
    }

    /// Writes, ignoring errors (the server may already have closed the connection).
    pub async fn send_regardless(&mut self, bytes: &[u8]) {
        let _ = self.try_send(bytes).await;
    }

    async fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let w = self.writer.as_mut().expect("not shut down");
        timeout(TIMEOUT, async {
            w.write_all(bytes).await?;
            w.flush().await
        })
        .await
        .unwrap_or_else(|_| panic!("writing to {} timed out", self.server))
    }

    /// Sends `bytes` in pieces of `len` bytes, each flushed, a few milliseconds apart.
    pub async fn send_in_pieces(&mut self, bytes: &[u8], len: usize) {
        for piece in bytes.chunks(len) {
            self.send(piece).await;
            sleep(PIECE_PAUSE).await;
        }
    }

    /// Sends `bytes` one at a time, each flushed, a few milliseconds apart.
    pub async fn send_byte_by_byte(&mut self, bytes: &[u8]) {
        self.send_in_pieces(bytes, 1).await;
    }

    /// Ends what this side sends (FIN); reading stays possible.
    pub async fn shutdown_write(&mut self) {
        let mut w = self.writer.take().expect("not shut down yet");
        timeout(TIMEOUT, w.shutdown())
            .await
            .expect("shutdown timed out")
            .expect("shutdown");
    }

    /// Reads one line, with its `\n`; `None` when the server closed the connection.
    pub async fn line(&mut self, what: &str) -> Option<String> {
        let mut line = String::new();
        let n = timeout(TIMEOUT, self.reader.read_line(&mut line))
            .await
            .unwrap_or_else(|_| panic!("no answer within {TIMEOUT:?} ({what})"))
            .unwrap_or_else(|e| panic!("reading the answer ({what}): {e}"));
        (n > 0).then_some(line)
    }

    /// Reads one byte; `None` when the server closed the connection (or reset it).
    pub async fn byte(&mut self, what: &str) -> Option<u8> {
        match timeout(TIMEOUT, self.reader.read_u8()).await {
            Err(_) => panic!("no answer within {TIMEOUT:?} ({what})"),
            Ok(Ok(b)) => Some(b),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof || is_reset(&e) => None,
            Ok(Err(e)) => panic!("reading ({what}): {e}"),
        }
    }

    /// Reads exactly `len` bytes.
    pub async fn bytes(&mut self, len: usize, what: &str) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        timeout(TIMEOUT, self.reader.read_exact(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("{what} did not arrive in time"))
            .unwrap_or_else(|e| panic!("the connection closed inside {what}: {e}"));
        buf
    }

    /// Asserts that nothing arrives for `wait`: no byte, and no close.
    pub async fn assert_silent_for(&mut self, wait: Duration, what: &str) {
        let mut byte = [0u8; 1];
        let early = timeout(wait, self.reader.read(&mut byte)).await;
        assert!(
            early.is_err(),
            "{} answered (or closed) {what}: {early:?}",
            self.server
        );
    }

    /// Asserts that the server closes the connection without sending a byte (more).
    pub async fn assert_closed(&mut self, what: &str) {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match timeout(TIMEOUT, self.reader.read(&mut buf)).await {
                Err(_) => panic!(
                    "{what}: the connection is still open after {TIMEOUT:?} (received {:?})",
                    String::from_utf8_lossy(&got)
                ),
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                // A close with unread input arrives as a reset: closed all the same.
                Ok(Err(e)) if is_reset(&e) => break,
                Ok(Err(e)) => panic!("{what}: reading: {e}"),
            }
        }
        assert!(
            got.is_empty(),
            "{what}: {} sent {:?} instead of closing the connection",
            self.server,
            String::from_utf8_lossy(&got)
        );
    }
}

/// Connects to `addr`, writes `bytes` and aborts the connection with a reset (`SO_LINGER`
/// 0), as a client that crashes mid-request.
pub async fn reset_after_sending(addr: &str, bytes: &[u8]) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    s.set_zero_linger().unwrap();
    drop(s);
}

fn is_reset(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionReset | ConnectionAborted | BrokenPipe)
}
