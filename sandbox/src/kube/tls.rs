//! Certificates for the Kubernetes sandbox: a CA, a server certificate (SANs `localhost`,
//! `127.0.0.1`) and a client certificate (CN `kubernetes-admin`, O `system:masters`, like the
//! admin certificate kubeadm and kind write into a kubeconfig), all ECDSA P-256.
//!
//! The server *requests* a client certificate but does not require one (rustls
//! `allow_unauthenticated`), so requests authenticated with a bearer token also work — the
//! kube-apiserver does the same (`--client-ca-file` plus token authenticators). A presented
//! certificate that does not chain to the CA fails the handshake, as with the real server.

use std::sync::Arc;

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::CertificateDer;

use crate::tls::{self_signed_ca, server_config, ClientCerts};

pub(crate) struct Generated {
    pub ca_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
}

pub(crate) fn generate() -> anyhow::Result<Generated> {
    let (ca, ca_key) = self_signed_ca("kubernetes")?;

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

    let server_config = server_config(
        &ca,
        vec![CertificateDer::from(server.der().to_vec())],
        &server_key,
        ClientCerts::Optional,
    )?;
    Ok(Generated {
        ca_pem: ca.pem(),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
        server_config,
    })
}
