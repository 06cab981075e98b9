//! Certificates made at test time (rcgen): a certificate authority of the
//! run, server certificates it signs (for `localhost` and `127.0.0.1`, or
//! expired, or for another host), written to a temporary directory for
//! `vigil --tls-cert/--tls-key`, and a rustls client configuration that
//! trusts only this authority.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A certificate authority for one test, and a directory for its files.
pub struct TestCa {
    ca: rcgen::Certificate,
    key: KeyPair,
    dir: PathBuf,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// A server certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The certificate itself (DER), to recognise it on the wire.
    pub der: Vec<u8>,
}

impl TestCa {
    /// A fresh authority; its files go under a new temporary directory
    /// named after `test`.
    pub fn new(test: &str) -> Self {
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("vigil test CA ({test})"));
        let ca = params.self_signed(&key).expect("a self-signed CA");
        let dir = std::env::temp_dir().join(format!("vigil-tls-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        Self { ca, key, dir }
    }

    /// The authority's certificate, as a PEM file (for clients).
    pub fn ca_file(&self) -> PathBuf {
        let path = self.dir.join("ca.pem");
        std::fs::write(&path, self.ca.pem()).expect("write the CA");
        path
    }

    /// A certificate for `names` (DNS names or IP addresses), valid now,
    /// written as `<file>.crt` and `<file>.key`.
    pub fn issue(&self, file: &str, names: &[&str]) -> ServerCert {
        self.issue_with(file, names, |_| {})
    }

    /// [`TestCa::issue`] of a certificate that expired a year ago.
    pub fn issue_expired(&self, file: &str, names: &[&str]) -> ServerCert {
        self.issue_with(file, names, |params| {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        })
    }

    fn issue_with(
        &self,
        file: &str,
        names: &[&str],
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> ServerCert {
        let key = KeyPair::generate().expect("a server key");
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, format!("vigil test server ({file})"));
        adjust(&mut params);
        let cert = params
            .signed_by(&key, &self.ca, &self.key)
            .expect("signed by the CA");
        let written = ServerCert {
            cert: self.dir.join(format!("{file}.crt")),
            key: self.dir.join(format!("{file}.key")),
            der: cert.der().to_vec(),
        };
        std::fs::write(&written.cert, cert.pem()).expect("write the certificate");
        std::fs::write(&written.key, key.serialize_pem()).expect("write the key");
        written
    }

    /// A rustls client configuration trusting this authority only.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.ca.der().clone())
            .expect("the CA is a valid root");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }

    /// The directory of this authority's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
