//! Credentials for a runtime cluster, from a `KubernetesRuntimeInstance` (spec 3.1.1,
//! Threeport's `GetRestConfig`).
//!
//! Differences from Go, on purpose: an empty string counts as absent (Go would build a client
//! that fails later with a vaguer error), an endpoint without a scheme gets `https://` (what
//! client-go does for a bare host), and an expired or soon-expiring token is a clear error.
//! Refreshing an EKS runtime's token needs the API and AWS, so it happens before, in
//! [`crate::reconcilers::runtime_token`]; a token still expiring here is one that could not be
//! refreshed (a runtime that is not EKS).
//!
//! Secret material lives only in [`SecretString`]s, whose `Debug` prints a length; the
//! fingerprint is a SHA-256 digest, so it can be logged and used as a cache key.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::error::KubeError;
use crate::threeport::crypto::EncryptionKey;
use crate::threeport::models::{KubernetesRuntimeInstance, SecretString};

/// The in-cluster API service, used when the runtime hosts the Threeport control plane and the
/// caller runs inside it (spec 3.1.1 step 2; client-go fills in `https` and port 443).
pub const IN_CLUSTER_ENDPOINT: &str = "https://kubernetes.default.svc.cluster.local";

/// Threeport refreshes a token that expires within this margin (spec 3.1.1 step 4); without a
/// refresh, such a token is treated as expired.
pub const TOKEN_EXPIRY_MARGIN: time::Duration = time::Duration::minutes(3);

/// Whether `kri` authenticates with a connection token (not a client certificate and key, which
/// take precedence) whose `ConnectionTokenExpiration` is earlier than `now` plus
/// [`TOKEN_EXPIRY_MARGIN`]: the token Threeport refreshes (spec 3.1.1 step 4). A token without
/// an expiration never expires.
pub fn token_expiring(kri: &KubernetesRuntimeInstance, now: OffsetDateTime) -> bool {
    matches!(presented(kri), Presented::Token(_)) && expiring_at(kri, now).is_some()
}

/// `ConnectionTokenExpiration` if it is earlier than `now` plus [`TOKEN_EXPIRY_MARGIN`].
fn expiring_at(kri: &KubernetesRuntimeInstance, now: OffsetDateTime) -> Option<OffsetDateTime> {
    kri.connection_token_expiration
        .filter(|expires| *expires < now + TOKEN_EXPIRY_MARGIN)
}

/// The credential fields Threeport authenticates with (spec 3.1.1 steps 3-4): a client
/// certificate and key pair first, else a connection token. Blank fields count as absent.
enum Presented<'a> {
    CertPair {
        cert: &'a str,
        key: &'a SecretString,
    },
    Token(&'a SecretString),
    Nothing,
}

fn presented(kri: &KubernetesRuntimeInstance) -> Presented<'_> {
    fn secret(v: Option<&SecretString>) -> Option<&SecretString> {
        v.filter(|v| !v.expose().trim().is_empty())
    }
    match (
        non_empty(kri.certificate.as_deref()),
        secret(kri.certificate_key.as_ref()),
        secret(kri.connection_token.as_ref()),
    ) {
        (Some(cert), Some(key), _) => Presented::CertPair { cert, key },
        (_, _, Some(token)) => Presented::Token(token),
        _ => Presented::Nothing,
    }
}

/// How the manager authenticates to a runtime cluster.
#[derive(Clone, PartialEq, Eq)]
pub enum RuntimeAuth {
    /// mTLS with the runtime's client certificate (PEM) and decrypted private key (PEM).
    ClientCert {
        /// The `Certificate` field: the client certificate, PEM.
        cert_pem: String,
        /// The decrypted `CertificateKey` field: the private key, PEM.
        key_pem: SecretString,
    },
    /// A decrypted bearer token.
    Token(SecretString),
}

impl std::fmt::Debug for RuntimeAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuntimeAuth::ClientCert { cert_pem, .. } => f
                .debug_struct("ClientCert")
                .field("cert_pem_bytes", &cert_pem.len())
                .field("key_pem", &"<redacted>")
                .finish(),
            RuntimeAuth::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// Everything needed to build a client for one runtime instance.
#[derive(Clone, PartialEq, Eq)]
pub struct RuntimeCredentials {
    /// KubernetesRuntimeInstance ID (0 when the object has none, e.g. in unit tests).
    pub runtime_id: u64,
    /// `"<name> (ID <id>)"`, for error messages and logs.
    pub runtime: String,
    /// `https://host[:port]`.
    pub endpoint: String,
    /// PEM bundle of the cluster CA, if the instance has one.
    pub ca_pem: Option<String>,
    /// How to authenticate: client certificate or bearer token.
    pub auth: RuntimeAuth,
}

impl std::fmt::Debug for RuntimeCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeCredentials")
            .field("runtime", &self.runtime)
            .field("endpoint", &self.endpoint)
            .field("ca_pem", &self.ca_pem.as_ref().map(|c| c.len()))
            .field("auth", &self.auth)
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

/// `"<name> (ID <id>)"` for a runtime instance, as errors name it.
pub fn runtime_label(kri: &KubernetesRuntimeInstance) -> String {
    let name = kri.instance.name.as_deref().unwrap_or("<unnamed>");
    match kri.common.id {
        Some(id) => format!("{name} (ID {id})"),
        None => name.to_string(),
    }
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|v| !v.trim().is_empty())
}

impl RuntimeCredentials {
    /// Credentials as spec 3.1.1 builds them, checked against the current time.
    ///
    /// `in_cluster`: the caller runs inside the control-plane cluster (the workload and helm
    /// controllers pass `true`, the kubernetes-runtime controller `false`); it only has an
    /// effect when the instance has `ThreeportControlPlaneHost == true`. `key`: the manager's
    /// `ENCRYPTION_KEY`; without one, encrypted fields are used as they are (Threeport does the
    /// same, for control planes that run without encryption).
    pub fn from_instance(
        kri: &KubernetesRuntimeInstance,
        in_cluster: bool,
        key: Option<&EncryptionKey>,
    ) -> Result<Self, KubeError> {
        Self::from_instance_at(kri, in_cluster, key, OffsetDateTime::now_utc())
    }

    /// [`from_instance`](Self::from_instance) with an explicit "now" (for token expiry tests).
    pub fn from_instance_at(
        kri: &KubernetesRuntimeInstance,
        in_cluster: bool,
        key: Option<&EncryptionKey>,
        now: OffsetDateTime,
    ) -> Result<Self, KubeError> {
        let runtime = runtime_label(kri);
        let fail = |reason: String| KubeError::Credentials {
            runtime: runtime.clone(),
            reason,
        };

        let endpoint = non_empty(kri.api_endpoint.as_deref())
            .ok_or_else(|| fail("APIEndpoint is not set".to_string()))?;
        let endpoint = if in_cluster && kri.threeport_control_plane_host == Some(true) {
            IN_CLUSTER_ENDPOINT.to_string()
        } else {
            normalize_endpoint(endpoint)
        };

        let decrypt = |field: &str, value: &SecretString| -> Result<SecretString, KubeError> {
            match key {
                Some(k) => k
                    .decrypt(value.expose())
                    .map(SecretString)
                    .map_err(|e| fail(format!("cannot decrypt {field}: {e}"))),
                // Threeport stores these as base64 ciphertext when it has a key; a PEM key is
                // plaintext. Without a key, ciphertext would only fail later as a puzzling
                // "bad PEM" TLS error, so say what it is.
                None if field == "CertificateKey"
                    && !value.expose().trim_start().starts_with("-----BEGIN") =>
                {
                    Err(fail(format!(
                        "{field} looks encrypted (it is not PEM) and no encryption key is \
                         configured (ENCRYPTION_KEY / encryption_key)"
                    )))
                }
                None => Ok(value.clone()),
            }
        };

        let auth = match presented(kri) {
            Presented::CertPair { cert, key } => RuntimeAuth::ClientCert {
                cert_pem: cert.to_string(),
                key_pem: decrypt("CertificateKey", key)?,
            },
            Presented::Token(token) => {
                if let Some(expires) = expiring_at(kri, now) {
                    let when = expires
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_else(|_| expires.to_string());
                    return Err(fail(format!(
                        "connection token expired or expires within 3 minutes (ConnectionTokenExpiration {when}); \
                         only an EKS runtime's token is refreshed"
                    )));
                }
                RuntimeAuth::Token(decrypt("ConnectionToken", token)?)
            }
            Presented::Nothing => {
                return Err(fail(
                    "did not find certificate, key pair or connection token".to_string(),
                ));
            }
        };

        Ok(Self {
            runtime_id: kri.common.id.unwrap_or(0),
            runtime,
            endpoint,
            ca_pem: non_empty(kri.ca_certificate.as_deref()).map(str::to_string),
            auth,
        })
    }

    /// Hex SHA-256 over endpoint, CA, certificate and key or token (each length-prefixed so
    /// fields cannot run into each other). Equal fingerprints mean a cached client can be
    /// reused; it reveals nothing about the secrets.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        let mut field = |tag: &[u8], v: &str| {
            h.update(tag);
            h.update((v.len() as u64).to_be_bytes());
            h.update(v.as_bytes());
        };
        field(b"endpoint", &self.endpoint);
        field(b"ca", self.ca_pem.as_deref().unwrap_or(""));
        match &self.auth {
            RuntimeAuth::ClientCert { cert_pem, key_pem } => {
                field(b"cert", cert_pem);
                field(b"key", key_pem.expose());
            }
            RuntimeAuth::Token(t) => field(b"token", t.expose()),
        }
        hex(&h.finalize())
    }
}

/// Lower-case hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `host[:port]` -> `https://host[:port]`; anything with a scheme stays as it is (minus a
/// trailing slash, which would double up in request paths).
fn normalize_endpoint(endpoint: &str) -> String {
    let e = endpoint.trim().trim_end_matches('/');
    if e.contains("://") {
        e.to_string()
    } else {
        format!("https://{e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threeport::models::{Common, Instance};

    const KEY_PEM: &str =
        "-----BEGIN EC PRIVATE KEY-----\nsecretkeymaterial\n-----END EC PRIVATE KEY-----\n";
    const TOKEN: &str = "sometoken-abcdef";

    fn kri() -> KubernetesRuntimeInstance {
        KubernetesRuntimeInstance {
            common: Common {
                id: Some(7),
                ..Default::default()
            },
            instance: Instance {
                name: Some("kind".into()),
                ..Default::default()
            },
            api_endpoint: Some("https://10.0.0.1:6443".into()),
            ca_certificate: Some("CA PEM".into()),
            ..Default::default()
        }
    }

    fn key() -> EncryptionKey {
        EncryptionKey::generate().0
    }

    #[test]
    fn cert_and_encrypted_key() {
        let k = key();
        let mut r = kri();
        r.certificate = Some("CERT PEM".into());
        r.certificate_key = Some(SecretString(k.encrypt(KEY_PEM).unwrap()));
        // A token is present too: the cert pair wins.
        r.connection_token = Some(SecretString(k.encrypt(TOKEN).unwrap()));
        let c = RuntimeCredentials::from_instance(&r, true, Some(&k)).unwrap();
        assert_eq!(c.endpoint, "https://10.0.0.1:6443");
        assert_eq!(c.ca_pem.as_deref(), Some("CA PEM"));
        assert_eq!(c.runtime, "kind (ID 7)");
        assert_eq!(c.runtime_id, 7);
        match &c.auth {
            RuntimeAuth::ClientCert { cert_pem, key_pem } => {
                assert_eq!(cert_pem, "CERT PEM");
                assert_eq!(key_pem.expose(), KEY_PEM);
            }
            other => panic!("expected cert auth, got {other:?}"),
        }
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("secretkeymaterial"), "{dbg}");
        assert!(dbg.contains(&c.fingerprint()));
    }

    #[test]
    fn token_with_ca() {
        let k = key();
        let mut r = kri();
        r.connection_token = Some(SecretString(k.encrypt(TOKEN).unwrap()));
        // A certificate without key does not count as a pair.
        r.certificate = Some("CERT PEM".into());
        r.connection_token_expiration = Some(OffsetDateTime::now_utc() + time::Duration::hours(1));
        let c = RuntimeCredentials::from_instance(&r, false, Some(&k)).unwrap();
        assert_eq!(c.auth, RuntimeAuth::Token(SecretString(TOKEN.into())));
        assert_eq!(c.ca_pem.as_deref(), Some("CA PEM"));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains(TOKEN), "{dbg}");
    }

    #[test]
    fn no_key_uses_raw_values() {
        let mut r = kri();
        r.connection_token = Some(SecretString(TOKEN.into()));
        let c = RuntimeCredentials::from_instance(&r, false, None).unwrap();
        assert_eq!(c.auth, RuntimeAuth::Token(SecretString(TOKEN.into())));
    }

    #[test]
    fn in_cluster_switch_needs_both() {
        let mut r = kri();
        r.connection_token = Some(SecretString(TOKEN.into()));
        r.threeport_control_plane_host = Some(true);
        let c = RuntimeCredentials::from_instance(&r, true, None).unwrap();
        assert_eq!(c.endpoint, IN_CLUSTER_ENDPOINT);
        let c = RuntimeCredentials::from_instance(&r, false, None).unwrap();
        assert_eq!(c.endpoint, "https://10.0.0.1:6443");
        r.threeport_control_plane_host = Some(false);
        let c = RuntimeCredentials::from_instance(&r, true, None).unwrap();
        assert_eq!(c.endpoint, "https://10.0.0.1:6443");
        r.threeport_control_plane_host = None;
        let c = RuntimeCredentials::from_instance(&r, true, None).unwrap();
        assert_eq!(c.endpoint, "https://10.0.0.1:6443");
    }

    #[test]
    fn endpoint_without_scheme() {
        let mut r = kri();
        r.api_endpoint = Some("10.0.0.1:6443/".into());
        r.connection_token = Some(SecretString(TOKEN.into()));
        let c = RuntimeCredentials::from_instance(&r, false, None).unwrap();
        assert_eq!(c.endpoint, "https://10.0.0.1:6443");
    }

    fn err_text(r: &KubernetesRuntimeInstance, k: Option<&EncryptionKey>) -> String {
        let e = RuntimeCredentials::from_instance(r, true, k).unwrap_err();
        assert!(matches!(e, KubeError::Credentials { .. }), "{e:?}");
        assert_eq!(e.retry_class(), crate::threeport::RetryClass::Permanent);
        e.to_string()
    }

    #[test]
    fn missing_fields() {
        let mut r = kri();
        r.connection_token = Some(SecretString(TOKEN.into()));
        r.api_endpoint = None;
        let e = err_text(&r, None);
        assert!(
            e.contains("APIEndpoint") && e.contains("kind (ID 7)"),
            "{e}"
        );
        r.api_endpoint = Some(String::new());
        assert!(err_text(&r, None).contains("APIEndpoint"));

        let mut r = kri();
        r.certificate = Some("CERT".into());
        let e = err_text(&r, None);
        assert!(
            e.contains("did not find certificate, key pair or connection token"),
            "{e}"
        );
        r.connection_token = Some(SecretString(String::new()));
        assert!(err_text(&r, None).contains("did not find"));
    }

    #[test]
    fn bad_ciphertext() {
        let k = key();
        let other = key();
        let mut r = kri();
        r.certificate = Some("CERT".into());
        r.certificate_key = Some(SecretString(other.encrypt(KEY_PEM).unwrap()));
        let e = err_text(&r, Some(&k));
        assert!(e.contains("cannot decrypt CertificateKey"), "{e}");
        assert!(!e.contains("secretkeymaterial"));

        r.certificate_key = Some(SecretString("not base64!!".into()));
        assert!(err_text(&r, Some(&k)).contains("cannot decrypt CertificateKey"));

        let mut r = kri();
        r.connection_token = Some(SecretString("AAAA".into()));
        let e = err_text(&r, Some(&k));
        assert!(e.contains("cannot decrypt ConnectionToken"), "{e}");
    }

    #[test]
    fn expired_token() {
        let now = OffsetDateTime::now_utc();
        let mut r = kri();
        r.connection_token = Some(SecretString(TOKEN.into()));
        r.connection_token_expiration = Some(now - time::Duration::minutes(1));
        let e = RuntimeCredentials::from_instance_at(&r, false, None, now).unwrap_err();
        let t = e.to_string();
        assert!(t.contains("kind (ID 7)") && t.contains("expire"), "{t}");
        assert!(!t.contains(TOKEN));
        // within the 3-minute margin
        r.connection_token_expiration = Some(now + time::Duration::minutes(2));
        assert!(RuntimeCredentials::from_instance_at(&r, false, None, now).is_err());
        r.connection_token_expiration = Some(now + time::Duration::minutes(4));
        assert!(RuntimeCredentials::from_instance_at(&r, false, None, now).is_ok());
    }

    #[test]
    fn only_a_token_in_use_expires() {
        let now = OffsetDateTime::now_utc();
        let soon = Some(now + time::Duration::minutes(2));
        let mut r = kri();
        r.connection_token_expiration = soon;
        assert!(!token_expiring(&r, now), "no token");
        r.connection_token = Some(SecretString(" ".into()));
        assert!(!token_expiring(&r, now), "a blank token is no token");
        r.connection_token = Some(SecretString(TOKEN.into()));
        assert!(token_expiring(&r, now), "within the 3-minute margin");
        r.connection_token_expiration = Some(now + time::Duration::minutes(4));
        assert!(!token_expiring(&r, now), "outside the margin");
        r.connection_token_expiration = None;
        assert!(!token_expiring(&r, now), "no expiration: never expires");
        r.connection_token_expiration = soon;
        r.certificate = Some("CERT PEM".into());
        r.certificate_key = Some(SecretString(KEY_PEM.into()));
        assert!(
            !token_expiring(&r, now),
            "a certificate pair takes precedence over the token"
        );
        r.certificate_key = None;
        assert!(token_expiring(&r, now), "a certificate alone is not a pair");
    }

    #[test]
    fn fingerprint_changes_with_each_field() {
        let mut r = kri();
        r.connection_token = Some(SecretString(TOKEN.into()));
        let base = RuntimeCredentials::from_instance(&r, false, None).unwrap();
        let fp = base.fingerprint();
        assert_eq!(fp.len(), 64);
        assert_eq!(fp, base.clone().fingerprint());
        let mut c = base.clone();
        c.auth = RuntimeAuth::Token(SecretString("other".into()));
        assert_ne!(c.fingerprint(), fp);
        let mut c = base.clone();
        c.ca_pem = None;
        assert_ne!(c.fingerprint(), fp);
        let mut c = base.clone();
        c.endpoint.push('x');
        assert_ne!(c.fingerprint(), fp);
        let mut c = base;
        c.auth = RuntimeAuth::ClientCert {
            cert_pem: String::new(),
            key_pem: SecretString(TOKEN.into()),
        };
        assert_ne!(c.fingerprint(), fp);
    }

    #[test]
    fn an_encrypted_key_without_a_configured_key_says_so() {
        let k = key();
        let mut r = kri();
        r.certificate = Some("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----".into());
        r.certificate_key = Some(SecretString(k.encrypt(KEY_PEM).unwrap()));
        let e = RuntimeCredentials::from_instance(&r, false, None).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("CertificateKey looks encrypted"), "{text}");
        assert!(text.contains("no encryption key is configured"), "{text}");
    }
}
