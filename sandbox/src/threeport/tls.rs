//! mTLS material laid out as Threeport mounts it (spec 2.1): `<dir>/ca/tls.crt`,
//! `<dir>/cert/tls.crt`, `<dir>/cert/tls.key`. The server certificate has SANs `localhost` and
//! `127.0.0.1`; the client certificate is signed by the same CA. Keys are ECDSA P-256 (rcgen's
//! default with ring) rather than Threeport's RSA-4096 PKCS#1.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, Ia5String, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls::pki_types::CertificateDer;

use crate::tls::{self_signed_ca, server_config, ClientCerts};

/// Where the sandbox wrote its certificates.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The directory holding `ca/` and `cert/` (Threeport's `/etc/threeport`).
    pub dir: PathBuf,
    /// `<dir>/ca/tls.crt`: the CA that signed both the server and the client certificate.
    pub ca_cert: PathBuf,
    /// `<dir>/cert/tls.crt`: the client certificate.
    pub client_cert: PathBuf,
    /// `<dir>/cert/tls.key`: the client key (PKCS#8 PEM).
    pub client_key: PathBuf,
    /// PEM text of the same files, for tests that build clients in memory.
    pub ca_cert_pem: String,
    /// PEM text of `client_cert`.
    pub client_cert_pem: String,
    /// PEM text of `client_key`.
    pub client_key_pem: String,
}

pub(crate) struct Generated {
    pub files: TlsFiles,
    pub server_config: Arc<rustls::ServerConfig>,
}

fn leaf_params(cn: &str, sans: Vec<String>) -> Result<CertificateParams, rcgen::Error> {
    let mut p = CertificateParams::new(sans)?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::ServerAuth,
    ];
    // Like Threeport's leaves (`pkg/auth/v0/auth.go`): DigitalSignature|CertSign on a
    // non-CA certificate, plus a URI SAN `https://localhost`, so clients are tested against
    // the same oddities.
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
    ];
    p.is_ca = IsCa::ExplicitNoCa;
    p.subject_alt_names
        .push(SanType::URI(Ia5String::try_from("https://localhost")?));
    Ok(p)
}

/// Generate the CA, server and client certificates, write the files under `dir` and build the
/// server config that requires a client certificate signed by the CA.
pub(crate) fn generate(dir: &Path) -> anyhow::Result<Generated> {
    let (ca, ca_key) = self_signed_ca("threeport-sandbox-ca")?;

    let server_key = KeyPair::generate()?;
    let server = leaf_params(
        "localhost",
        vec!["localhost".to_string(), "127.0.0.1".to_string()],
    )?
    .signed_by(&server_key, &ca, &ca_key)?;

    let client_key = KeyPair::generate()?;
    let client = leaf_params("localhost", vec!["localhost".to_string()])?.signed_by(
        &client_key,
        &ca,
        &ca_key,
    )?;

    std::fs::create_dir_all(dir.join("ca"))?;
    std::fs::create_dir_all(dir.join("cert"))?;
    let files = TlsFiles {
        dir: dir.to_path_buf(),
        ca_cert: dir.join("ca/tls.crt"),
        client_cert: dir.join("cert/tls.crt"),
        client_key: dir.join("cert/tls.key"),
        ca_cert_pem: ca.pem(),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    };
    std::fs::write(&files.ca_cert, &files.ca_cert_pem)?;
    std::fs::write(&files.client_cert, &files.client_cert_pem)?;
    std::fs::write(&files.client_key, &files.client_key_pem)?;

    let server_config = server_config(
        &ca,
        vec![
            CertificateDer::from(server.der().to_vec()),
            CertificateDer::from(ca.der().to_vec()),
        ],
        &server_key,
        ClientCerts::Required,
    )?;
    Ok(Generated {
        files,
        server_config,
    })
}
