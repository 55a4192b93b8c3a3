//! Accept loops shared by both listeners: a bounded number of connections, each served by
//! its own task until the peer leaves or breaks the protocol.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Most connections served at once per listener. Postfix keeps a handful per process; the
/// bound keeps a misbehaving client from exhausting file descriptors.
const MAX_CONNECTIONS: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
}

/// Binds `addr` (`host:port`). With `loopback_only`, an address reachable from other
/// hosts is refused: the socketmap hands out relay passwords.
pub async fn bind(addr: &str, loopback_only: bool) -> Result<TcpListener, ListenError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| ListenError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    if loopback_only && !local.ip().is_loopback() {
        return Err(ListenError::Refused(format!(
            "{addr} is not a loopback address; the socketmap serves relay passwords and \
             listens on loopback only"
        )));
    }
    Ok(listener)
}

/// Serves every connection of `listener` with `serve`, forever.
pub(crate) async fn accept_loop<F, Fut>(listener: TcpListener, what: &'static str, serve: F)
where
    F: Fn(TcpStream, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
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
    stream: TcpStream,
    idle: Duration,
    mut read: impl AsyncFnMut(&mut BufReader<OwnedReadHalf>) -> Result<Option<Req>, E>,
    refuse: impl FnOnce(E) -> Option<Vec<u8>>,
    mut answer: impl AsyncFnMut(Req) -> Option<Vec<u8>>,
) {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    loop {
        let request = match tokio::time::timeout(idle, read(&mut reader)).await {
            Ok(Ok(Some(request))) => request,
            Ok(Ok(None)) | Err(_) => return,
            Ok(Err(e)) => {
                if let Some(last) = refuse(e) {
                    let _ = writer.write_all(&last).await;
                }
                return;
            }
        };
        let Some(reply) = answer(request).await else {
            return;
        };
        if writer.write_all(&reply).await.is_err() {
            return;
        }
    }
}
