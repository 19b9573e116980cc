//! TLS pieces both halves of the sandbox share: a self-signed CA and a rustls server config
//! that verifies client certificates against it. The leaf certificates differ on purpose
//! (Threeport's oddities vs Kubernetes conventions) and stay with each half.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A self-signed CA with its key (ECDSA P-256, rcgen's default with ring).
pub(crate) fn self_signed_ca(common_name: &str) -> anyhow::Result<(rcgen::Certificate, KeyPair)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key)?;
    Ok((cert, key))
}

/// Whether a client must present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientCerts {
    /// The handshake fails without a certificate signed by the CA (Threeport's API).
    Required,
    /// A presented certificate must chain to the CA, but none is needed, so bearer tokens
    /// work too (kube-apiserver with `--client-ca-file` and token authenticators).
    Optional,
}

/// An HTTP/1.1 rustls server config serving `chain` with `server_key`, verifying client
/// certificates against `ca`.
pub(crate) fn server_config(
    ca: &rcgen::Certificate,
    chain: Vec<CertificateDer<'static>>,
    server_key: &KeyPair,
    client_certs: ClientCerts,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.der().to_vec()))?;
    let builder = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    );
    let verifier = match client_certs {
        ClientCerts::Required => builder.build()?,
        ClientCerts::Optional => builder.allow_unauthenticated().build()?,
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    // HTTP/1.1 only; hyper, kube-rs and kubectl all negotiate it through ALPN.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
