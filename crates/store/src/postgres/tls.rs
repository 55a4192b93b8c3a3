//! TLS to PostgreSQL with rustls, under libpq's `sslmode` and `sslrootcert`.
//!
//! | sslmode | encryption | the server's certificate |
//! | --- | --- | --- |
//! | `disable` | never | — |
//! | `prefer` (no sslmode) | if the server offers it, else plain text | not checked¹ |
//! | `require` | always | not checked¹ |
//! | `verify-ca` | always | signed by the CA of `sslrootcert` |
//! | `verify-full` | always | signed by `sslrootcert`'s CA (the system's without one), and names the host |
//!
//! ¹ Unless `sslrootcert` names a file: then it must be signed by that CA, as libpq does.
//! Even unchecked, the handshake's signature is checked against the certificate's key.
//!
//! tokio-postgres knows `disable`, `prefer` and `require` only: the verify modes reach it as
//! `require`, and the checks are the [`Verifier`]'s.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use super::conninfo::{RootCert, SslMode};
use crate::StoreError;

/// Which CAs vouch for the server.
#[derive(Debug, Clone)]
enum Roots {
    File(PathBuf),
    System,
}

impl Roots {
    /// For error messages: who was to have signed the certificate.
    fn describe(&self) -> String {
        match self {
            Roots::File(path) => format!("the CA in sslrootcert={}", path.display()),
            Roots::System => "a CA this system trusts".into(),
        }
    }
}

/// What is checked of the server's certificate.
#[derive(Debug, Clone)]
enum Check {
    /// Nothing but the handshake's signature: encryption against a passive listener only.
    Nothing,
    /// The chain up to `roots`, and the host name when `host` is true.
    Chain { roots: Roots, host: bool },
}

/// The TLS policy of a PostgreSQL URL.
#[derive(Debug, Clone)]
pub(crate) struct TlsPolicy {
    mode: SslMode,
    check: Check,
}

impl TlsPolicy {
    /// libpq's rules for `sslmode` and `sslrootcert` together.
    pub(crate) fn new(
        sslmode: Option<SslMode>,
        root_cert: Option<RootCert>,
    ) -> Result<Self, StoreError> {
        // libpq (16 and later): sslrootcert=system alone means verify-full.
        let mode = match (sslmode, &root_cert) {
            (Some(mode), _) => mode,
            (None, Some(RootCert::System)) => SslMode::VerifyFull,
            (None, _) => SslMode::Prefer,
        };
        let check = match (mode, root_cert) {
            (SslMode::Disable, _) => Check::Nothing,
            (SslMode::VerifyFull, None | Some(RootCert::System)) => Check::Chain {
                roots: Roots::System,
                host: true,
            },
            // Without a host name check, a CA the whole world's servers get certificates
            // from would vouch for any of them: libpq refuses this too.
            (_, Some(RootCert::System)) => {
                return Err(StoreError::Config(format!(
                    "sslrootcert=system needs sslmode=verify-full (not {}): without a host name check, any server with a publicly signed certificate would pass",
                    mode.name()
                )))
            }
            (SslMode::VerifyCa, None) => {
                return Err(StoreError::Config(
                    "sslmode=verify-ca needs sslrootcert=<a PEM file of the CA that signed the server's certificate>".into(),
                ))
            }
            (SslMode::VerifyFull, Some(RootCert::File(path))) => Check::Chain {
                roots: Roots::File(path),
                host: true,
            },
            // libpq: "if a root CA file exists, the behavior of sslmode=require will be the
            // same as that of verify-ca"; prefer likewise checks what it gets.
            (SslMode::Prefer | SslMode::Require | SslMode::VerifyCa, Some(RootCert::File(path))) => {
                Check::Chain {
                    roots: Roots::File(path),
                    host: false,
                }
            }
            (SslMode::Prefer | SslMode::Require, None) => Check::Nothing,
        };
        Ok(TlsPolicy { mode, check })
    }

    pub(crate) fn mode(&self) -> SslMode {
        self.mode
    }

    /// What tokio-postgres is told: it knows the verify modes only as `require`.
    pub(crate) fn driver_mode(&self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Driver;
        match self.mode {
            SslMode::Disable => Driver::Disable,
            SslMode::Prefer => Driver::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Driver::Require,
        }
    }

    /// The connector for the pool. The CA file is read here, at start-up, so that a
    /// missing or empty one is said then rather than at the first connection.
    pub(crate) fn connector(&self) -> Result<MakeRustlsConnect, StoreError> {
        // ring, not rustls's default aws-lc-rs: aws-lc-rs is a long C build (minutes on this
        // project's 2-core machines, on every fresh CI run). rustls 0.23.48 deprecates ring's
        // provider for its lack of post-quantum key exchange (X25519MLKEM768); the key
        // exchange is X25519 or ECDHE instead, the suites and checks are the same.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let check = match &self.check {
            Check::Nothing => VerifierCheck::Nothing,
            Check::Chain { roots, host } => VerifierCheck::Chain {
                roots: Arc::new(load_roots(roots)?),
                host: *host,
            },
        };
        let verifier = Verifier {
            check,
            provider: provider.clone(),
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Config(format!("PostgreSQL TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        // What libpq 17 sends, and what PostgreSQL 17 checks when the client names one.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(MakeRustlsConnect {
            config: Arc::new(config),
        })
    }

    /// A clear message for a TLS failure of the first connection, made at start-up: a
    /// wrong CA or host name is a mistake of configuration, not an outage to wait out.
    /// `None` when `e` is not such a failure.
    pub(crate) fn explain(&self, e: &deadpool_postgres::PoolError) -> Option<String> {
        let deadpool_postgres::PoolError::Backend(e) = e else {
            return None;
        };
        let tls = rustls_error(e)?;
        let mode = self.mode.name();
        let roots = match &self.check {
            Check::Chain { roots, .. } => roots.describe(),
            Check::Nothing => "a CA".into(),
        };
        Some(match tls {
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => format!(
                "PostgreSQL TLS: the server certificate does not name the host of the URL (sslmode={mode}): {tls}"
            ),
            rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer | CertificateError::BadSignature,
            ) => format!(
                "PostgreSQL TLS: the server certificate is not signed by {roots} (sslmode={mode}): {tls}"
            ),
            rustls::Error::InvalidCertificate(_) => format!(
                "PostgreSQL TLS: the server certificate is refused (sslmode={mode}): {tls}"
            ),
            _ => format!("PostgreSQL TLS: the handshake failed (sslmode={mode}): {tls}"),
        })
    }
}

/// The rustls error under a driver error, if any: the connector's `io::Error` holds it
/// (as its inner error, which `io::Error::source` skips, hence `get_ref`).
fn rustls_error(e: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(inner) = err.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return Some(tls);
            }
        }
        next = err.source();
    }
    None
}

fn load_roots(roots: &Roots) -> Result<RootCertStore, StoreError> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(path) => {
            let fail = |why: String| {
                StoreError::Config(format!(
                    "PostgreSQL TLS: sslrootcert={}: {why}",
                    path.display()
                ))
            };
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| fail(e.to_string()))?;
            if certs.is_empty() {
                return Err(fail("no PEM certificate in the file".into()));
            }
            for cert in certs {
                store
                    .add(cert)
                    .map_err(|e| fail(format!("not a CA certificate rustls can use: {e}")))?;
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default();
                return Err(StoreError::Config(format!(
                    "PostgreSQL TLS: sslmode=verify-full without sslrootcert checks against the system's CAs, and none were found{why}; name the CA's file with sslrootcert=<path>"
                )));
            }
        }
    }
    Ok(store)
}

/// The checks of [`Check`], with the CAs loaded.
#[derive(Debug)]
enum VerifierCheck {
    Nothing,
    Chain {
        roots: Arc<RootCertStore>,
        host: bool,
    },
}

#[derive(Debug)]
struct Verifier {
    check: VerifierCheck,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let VerifierCheck::Chain { roots, host } = &self.check else {
            return Ok(ServerCertVerified::assertion());
        };
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        if *host {
            rustls::client::verify_server_name(&cert, server_name)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    // Always checked, whatever the mode: the server proves it holds the certificate's key.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// tokio-postgres's TLS connector, on rustls.
#[derive(Clone)]
pub(crate) struct MakeRustlsConnect {
    config: Arc<ClientConfig>,
}

impl<S> MakeTlsConnect<S> for MakeRustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, host: &str) -> Result<RustlsConnect, io::Error> {
        let name = ServerName::try_from(host.to_string()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{host:?} is not a host name TLS can check: {e}"),
            )
        })?;
        Ok(RustlsConnect {
            config: self.config.clone(),
            name,
        })
    }
}

pub(crate) struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await
                .map(RustlsStream)
        })
    }
}

/// A TLS connection to the server.
pub(crate) struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    // No channel binding (SCRAM-SHA-256-PLUS): its tls-server-end-point hash follows the
    // certificate's signature algorithm, which would take an X.509 parser to read. SCRAM
    // authenticates without it, and verify-full is what keeps a man in the middle out.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: Option<SslMode>, root: Option<RootCert>) -> Result<TlsPolicy, StoreError> {
        TlsPolicy::new(mode, root)
    }

    #[test]
    fn libpq_rules() {
        let file = || Some(RootCert::File("/ca.pem".into()));
        let p = policy(None, None).unwrap();
        assert_eq!(p.mode(), SslMode::Prefer);
        assert!(matches!(p.check, Check::Nothing));
        assert!(matches!(
            policy(Some(SslMode::Require), None).unwrap().check,
            Check::Nothing
        ));
        assert!(matches!(
            policy(Some(SslMode::Require), file()).unwrap().check,
            Check::Chain { host: false, .. }
        ));
        assert!(matches!(
            policy(Some(SslMode::VerifyCa), file()).unwrap().check,
            Check::Chain { host: false, .. }
        ));
        assert!(matches!(
            policy(Some(SslMode::VerifyFull), None).unwrap().check,
            Check::Chain {
                roots: Roots::System,
                host: true
            }
        ));
        let p = policy(None, Some(RootCert::System)).unwrap();
        assert_eq!(p.mode(), SslMode::VerifyFull);
        assert!(policy(Some(SslMode::VerifyCa), None).is_err());
        assert!(policy(Some(SslMode::Require), Some(RootCert::System)).is_err());
        assert!(matches!(
            policy(Some(SslMode::Disable), file()).unwrap().check,
            Check::Nothing
        ));
        assert_eq!(
            policy(Some(SslMode::VerifyFull), file())
                .unwrap()
                .driver_mode(),
            tokio_postgres::config::SslMode::Require
        );
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_said_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        for path in [missing, empty] {
            let p = policy(
                Some(SslMode::VerifyFull),
                Some(RootCert::File(path.clone())),
            )
            .unwrap();
            let Err(StoreError::Config(message)) = p.connector() else {
                panic!("{} was accepted", path.display());
            };
            assert!(
                message.contains(&format!("sslrootcert={}", path.display())),
                "{message}"
            );
        }
    }
}
