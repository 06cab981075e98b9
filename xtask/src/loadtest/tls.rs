//! `loadtest ... --tls`: a certificate authority and a server certificate
//! for 127.0.0.1 made for the run (rcgen), written under
//! `target/loadtest/tls/`: the server serves them, the loadgen trusts the
//! authority.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

/// A blocking TLS client of `addr` over `stream`, trusting the authority
/// in `ca` (for scraping `/metrics`).
pub(crate) fn client(
    ca: &Path,
    addr: std::net::SocketAddr,
    stream: std::net::TcpStream,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>> {
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca).context("the run's CA file")? {
        roots
            .add(certificate.context("the run's CA")?)
            .context("the run's CA")?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::from(addr.ip());
    let connection =
        rustls::ClientConnection::new(std::sync::Arc::new(config), name).context("TLS client")?;
    Ok(rustls::StreamOwned::new(connection, stream))
}

/// The files of a TLS run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) ca: PathBuf,
}

impl TlsFiles {
    /// Makes a fresh authority and a certificate for 127.0.0.1 in `dir`.
    pub(crate) fn make(dir: &Path) -> Result<TlsFiles> {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let ca_key = KeyPair::generate().context("a CA key")?;
        let mut params = CertificateParams::new(Vec::<String>::new()).context("CA params")?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).context("the CA")?;
        let key = KeyPair::generate().context("a server key")?;
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .context("server params")?
            .signed_by(&key, &ca, &ca_key)
            .context("the server certificate")?;
        let files = TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            ca: dir.join("ca.pem"),
        };
        for (path, text) in [
            (&files.cert, cert.pem()),
            (&files.key, key.serialize_pem()),
            (&files.ca, ca.pem()),
        ] {
            fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(files)
    }
}
