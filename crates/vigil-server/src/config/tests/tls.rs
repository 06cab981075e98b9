//! The TLS pair: a certificate without its key, or a key without its
//! certificate, is refused with both names.

use super::check_refused;

#[test]
fn a_certificate_needs_its_key_and_a_key_its_certificate() {
    check_refused(
        &["--tls-cert", "/etc/vigil/tls.crt"],
        &[],
        &["--tls-cert is set but tls_key is not: the two go together"],
    );
    check_refused(
        &[],
        &[("VIGIL_TLS_KEY", "/etc/vigil/tls.key")],
        &["VIGIL_TLS_KEY is set but tls_cert is not: the two go together"],
    );
}
