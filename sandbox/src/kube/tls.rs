//! Certificates for the Kubernetes sandbox: a CA, a server certificate (SANs `localhost`,
//! `127.0.0.1`) and a client certificate (CN `kubernetes-admin`, O `system:masters`, like the
//! admin certificate kubeadm and kind write into a kubeconfig), all ECDSA P-256.
//!
//! The server *requests* a client certificate but does not require one (rustls
//! `allow_unauthenticated`), so requests authenticated with a bearer token also work — the
//! kube-apiserver does the same (`--client-ca-file` plus token authenticators). A presented
//! certificate that does not chain to the CA fails the handshake, as with the real server.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub(crate) struct Generated {
    pub ca_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
}

pub(crate) fn generate() -> anyhow::Result<Generated> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kubernetes");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key)?;

    let server_key = KeyPair::generate()?;
    let mut sp = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    sp.distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    sp.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    sp.is_ca = IsCa::ExplicitNoCa;
    let server = sp.signed_by(&server_key, &ca, &ca_key)?;

    let client_key = KeyPair::generate()?;
    let mut cp = CertificateParams::new(Vec::<String>::new())?;
    cp.distinguished_name
        .push(DnType::CommonName, "kubernetes-admin");
    cp.distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    cp.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    cp.is_ca = IsCa::ExplicitNoCa;
    let client = cp.signed_by(&client_key, &ca, &ca_key)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.der().to_vec()))?;
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()?;
    let chain = vec![CertificateDer::from(server.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    // HTTP/1.1 only; kube-rs and kubectl both fall back from h2 through ALPN.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Generated {
        ca_pem: ca.pem(),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
        server_config: Arc::new(cfg),
    })
}
