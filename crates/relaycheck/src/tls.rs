//! TLS to the relay: the trusted CAs, the name the certificate must carry, and what a
//! failed handshake tells the user.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::failure::{Fail, FailureKind};
use crate::ConfigError;

/// The client configuration: the system's CAs (none found is no error: then only
/// `extra_roots` is trusted, and without it every certificate fails as untrusted) and
/// those of the PEM file `extra_roots`.
pub fn connector(extra_roots: Option<&Path>) -> Result<TlsConnector, ConfigError> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = extra_roots {
        add_pem_file(&mut roots, path)?;
    }
    // The provider is named rather than taken from the process default, which nothing
    // in mailplane installs. ring, as for PostgreSQL (mailplane-store): aws-lc-rs is a
    // long C build; rustls deprecates ring's provider only for its lack of post-quantum
    // key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

fn add_pem_file(roots: &mut RootCertStore, path: &Path) -> Result<(), ConfigError> {
    let text = std::fs::read(path).map_err(|source| ConfigError::ReadCa {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |reason: String| ConfigError::InvalidCa {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in the file".into()));
    }
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| bad(format!("not a CA certificate rustls can use: {e}")))?;
    }
    Ok(())
}

/// The name the certificate is checked against. rustls sends it as SNI when it is a DNS
/// name and sends no SNI for an IP address (RFC 6066 3 forbids literal addresses there),
/// checking the certificate's IP addresses instead.
pub fn server_name(name: &str) -> Result<ServerName<'static>, Fail> {
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    ServerName::try_from(bare.to_string()).map_err(|_| {
        Fail::new(
            FailureKind::Tls,
            format!("the server name {name:?} is neither a host name nor an IP address"),
        )
    })
}

/// The TLS handshake over `stream`, whose SMTP dialogue (if any) is done with.
pub async fn handshake<S>(
    connector: &TlsConnector,
    name: ServerName<'static>,
    stream: S,
) -> Result<TlsStream<S>, Fail>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    connector.connect(name, stream).await.map_err(failure)
}

fn failure(e: io::Error) -> Fail {
    let tls = |text: String| Fail::new(FailureKind::Tls, text);
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        // "invalid peer certificate: UnknownIssuer", "… certificate not valid for name …"
        Some(rustls::Error::InvalidCertificate(_)) => {
            tls(format!("certificate not trusted: {}", e.get_ref().unwrap()))
        }
        Some(other) => tls(format!("TLS handshake failed: {other}")),
        None => match e.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => {
                tls("the server closed the connection during the TLS handshake".into())
            }
            _ => tls(format!("TLS handshake failed: {e}")),
        },
    }
}
