//! TLS on the server's own port (rustls with the aws-lc-rs provider, no
//! OpenSSL, through vigil-ws's light TLS stream): the certificate chain and
//! key from PEM files, TLS 1.2 and 1.3, ALPN `http/1.1`. SIGHUP reloads the pair for new handshakes without
//! touching open connections; a reload that fails keeps the old pair and
//! says why. A client that speaks plain HTTP to the TLS port is handed back,
//! so that it gets a 400 saying so, in plain HTTP, instead of a TLS alert
//! it cannot read.

use parking_lot::RwLock;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use vigil_ws::tls::TlsStream;

/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Why a certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    #[error("cannot read the certificate file {path}: {problem}")]
    Certificate { path: PathBuf, problem: String },
    #[error("{path} holds no certificate (expected `-----BEGIN CERTIFICATE-----`)")]
    NoCertificate { path: PathBuf },
    #[error(
        "cannot read a private key from {path} (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC): {problem}"
    )]
    Key { path: PathBuf, problem: String },
    #[error("the key in {key} cannot be used with the certificate in {cert}: {problem}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        problem: String,
    },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// Why a connection to the TLS port got no TLS stream.
#[derive(Debug)]
pub(crate) enum Refused {
    /// It spoke plain HTTP: its socket, for the caller to answer.
    PlainHttp(TcpStream),
    /// Its handshake did not finish within the handshake timeout.
    Timeout,
    /// Its handshake failed (a bad or unknown certificate on its side, no
    /// common protocol version or cipher, a closed socket).
    Handshake,
}

/// The certificate new handshakes present, replaced by a reload.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0.read()))
    }
}

/// The TLS side of the listener.
pub(crate) struct Tls {
    config: Arc<rustls::ServerConfig>,
    current: Arc<Current>,
    cert: PathBuf,
    key: PathBuf,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// TLS with the pair in `cert` and `key`, read now.
    pub(crate) fn new(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let current = Arc::new(Current(RwLock::new(Arc::new(load(cert, key)?))));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&current) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            current,
            cert: cert.to_owned(),
            key: key.to_owned(),
        })
    }

    /// Reads the pair again; new handshakes use it, open connections keep
    /// theirs. On failure the old pair stays.
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        let fresh = load(&self.cert, &self.key)?;
        *self.current.0.write() = Arc::new(fresh);
        Ok(())
    }

    /// The TLS stream of `stream`, within `deadline`; a client that speaks
    /// plain HTTP is handed back untouched.
    pub(crate) async fn accept(
        &self,
        stream: TcpStream,
        deadline: Duration,
    ) -> Result<TlsStream, Refused> {
        let until = tokio::time::Instant::now() + deadline;
        let mut first = [0u8; 1];
        match tokio::time::timeout_at(until, stream.peek(&mut first)).await {
            Err(_) => return Err(Refused::Timeout),
            Ok(Ok(1)) if first[0] != TLS_HANDSHAKE_RECORD => {
                return Err(Refused::PlainHttp(stream));
            }
            Ok(Ok(1)) => {}
            Ok(_) => return Err(Refused::Handshake),
        }
        let handshake = vigil_ws::tls::accept(Arc::clone(&self.config), stream);
        match tokio::time::timeout_at(until, handshake).await {
            Err(_) => Err(Refused::Timeout),
            Ok(Err(_)) => Err(Refused::Handshake),
            Ok(Ok(tls)) => Ok(tls),
        }
    }
}

/// The certificate chain in `cert` and the private key in `key`, checked
/// against each other.
pub(crate) fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let certificate = |problem: String| TlsError::Certificate {
        path: cert.to_owned(),
        problem,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| certificate(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| certificate(e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_owned(),
        });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_owned(),
        problem: e.to_string(),
    })?;
    let mismatch = |problem: String| TlsError::Mismatch {
        cert: cert.to_owned(),
        key: key.to_owned(),
        problem,
    };
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| mismatch(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| mismatch(e.to_string()))?;
    Ok(certified)
}
