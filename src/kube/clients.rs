//! One `kube::Client` per runtime instance, reused across reconciles and workers.
//!
//! Threeport builds a new client (and a full discovery) for every reconcile (spec 3.1.1, 4.3
//! item 29). Here a client is built once per runtime instance and cloned (a `kube::Client` is
//! a cheap handle on a shared connection pool); it is rebuilt when the instance's credential
//! [fingerprint](super::RuntimeCredentials::fingerprint) changes, e.g. after a token or
//! certificate rotation or an endpoint change. Credentials are never logged, only the runtime
//! label and the first characters of the fingerprint.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use tracing::debug;

use super::credentials::{RuntimeAuth, RuntimeCredentials, IN_CLUSTER_ENDPOINT};
use super::error::KubeError;

/// Timeouts of every request to a runtime cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// TCP + TLS connect.
    pub connect_timeout: Duration,
    /// Waiting for a response (counted from when the request was written).
    pub read_timeout: Duration,
    /// Writing the request.
    pub write_timeout: Duration,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// Build a `kube::Config` for the credentials. The CA PEM becomes the only trust root (as
/// client-go's `CAData`); without a CA the platform's default roots apply.
pub fn kube_config(
    creds: &RuntimeCredentials,
    settings: &ClientSettings,
) -> Result<kube::Config, KubeError> {
    let fail = |reason: String| KubeError::ClientConfig {
        runtime: creds.runtime.clone(),
        reason,
    };
    let uri: hyper::Uri = creds
        .endpoint
        .parse()
        .map_err(|e| fail(format!("API endpoint is not a valid URL: {e}")))?;
    let mut config = kube::Config::new(uri);
    config.connect_timeout = Some(settings.connect_timeout);
    config.read_timeout = Some(settings.read_timeout);
    config.write_timeout = Some(settings.write_timeout);
    // Count the read timeout from the request, not from when a pooled connection went idle.
    config.reset_reader_on_write = true;
    // Retries belong to the engine (backoff, events, metrics), not hidden inside one call.
    config.default_retry = false;
    // Name ourselves in the cluster's audit log and metrics, as client-go's controllers do
    // (`workload-controller/v0.0.0 ...`); kube sends no User-Agent by default.
    config.headers.push((
        hyper::header::USER_AGENT,
        hyper::header::HeaderValue::from_static(crate::USER_AGENT),
    ));

    if let Some(ca) = &creds.ca_pem {
        let mut reader = std::io::Cursor::new(ca.as_bytes());
        let certs: Vec<Vec<u8>> = rustls_pemfile::certs(&mut reader)
            .map(|c| c.map(|der| der.as_ref().to_vec()))
            .collect::<Result<_, _>>()
            .map_err(|e| fail(format!("CACertificate is not valid PEM: {e}")))?;
        if certs.is_empty() {
            return Err(fail(
                "CACertificate contains no PEM certificate".to_string(),
            ));
        }
        config.root_cert = Some(certs);
    }

    // kube's `AuthInfo` keeps secret fields in `secrecy::SecretString`; going through its
    // (kubeconfig-shaped) serde form avoids a direct dependency on `secrecy`. The JSON value is
    // dropped right after.
    let auth = match &creds.auth {
        RuntimeAuth::ClientCert { cert_pem, key_pem } => serde_json::json!({
            "client-certificate-data": STANDARD.encode(cert_pem.as_bytes()),
            "client-key-data": STANDARD.encode(key_pem.expose().as_bytes()),
        }),
        RuntimeAuth::Token(token) => serde_json::json!({ "token": token.expose() }),
    };
    config.auth_info = serde_json::from_value(auth)
        .map_err(|_| fail("cannot build authentication settings".to_string()))?;
    Ok(config)
}

/// Build a client for the credentials (no request is made).
pub fn build_client(
    creds: &RuntimeCredentials,
    settings: &ClientSettings,
) -> Result<kube::Client, KubeError> {
    let config = kube_config(creds, settings)?;
    kube::Client::try_from(config).map_err(|e| KubeError::ClientConfig {
        runtime: creds.runtime.clone(),
        reason: e.to_string(),
    })
}

struct Entry {
    fingerprint: String,
    client: kube::Client,
}

/// Cache key: runtime instance ID and whether the in-cluster endpoint is used, so callers that
/// reach the same runtime in-cluster and from outside (spec 3.1.1 step 2) do not evict each
/// other's client.
fn cache_key(creds: &RuntimeCredentials) -> (u64, bool) {
    (creds.runtime_id, creds.endpoint == IN_CLUSTER_ENDPOINT)
}

/// Clients keyed by runtime instance ID.
pub struct ClientCache {
    settings: ClientSettings,
    entries: Mutex<HashMap<(u64, bool), Entry>>,
}

impl ClientCache {
    /// An empty cache whose clients are built with `settings`.
    pub fn new(settings: ClientSettings) -> Self {
        Self {
            settings,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cached client for `creds.runtime_id` if its fingerprint matches, otherwise a newly
    /// built one (which replaces the old entry). The bool is `true` when a client was built.
    pub fn get(&self, creds: &RuntimeCredentials) -> Result<(kube::Client, bool), KubeError> {
        let fingerprint = creds.fingerprint();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = entries.get(&cache_key(creds)) {
            if e.fingerprint == fingerprint {
                return Ok((e.client.clone(), false));
            }
        }
        // Building is synchronous and makes no request, so holding the lock is fine and keeps
        // two workers from building the same client twice.
        let client = build_client(creds, &self.settings)?;
        debug!(
            runtime = %creds.runtime,
            fingerprint = &fingerprint[..12],
            "built Kubernetes client"
        );
        entries.insert(
            cache_key(creds),
            Entry {
                fingerprint,
                client: client.clone(),
            },
        );
        Ok((client, true))
    }

    /// Forget the client of a runtime instance (e.g. after the instance was deleted).
    pub fn remove(&self, runtime_id: u64) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(id, _), _| *id != runtime_id);
    }

    /// Number of cached clients.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no client is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threeport::models::SecretString;

    fn creds(token: &str) -> RuntimeCredentials {
        RuntimeCredentials {
            runtime_id: 1,
            runtime: "r (ID 1)".into(),
            endpoint: "https://127.0.0.1:6443".into(),
            ca_pem: None,
            auth: RuntimeAuth::Token(SecretString(token.into())),
        }
    }

    #[test]
    fn config_from_token() {
        let c = kube_config(&creds("tok"), &ClientSettings::default()).unwrap();
        assert_eq!(c.cluster_url.to_string(), "https://127.0.0.1:6443/");
        assert_eq!(c.read_timeout, Some(Duration::from_secs(30)));
        assert_eq!(c.connect_timeout, Some(Duration::from_secs(5)));
        assert!(c.auth_info.token.is_some());
        assert!(!c.default_retry);
        assert!(c
            .headers
            .iter()
            .any(|(k, v)| k == hyper::header::USER_AGENT && v == crate::USER_AGENT));
        // kube's Debug of AuthInfo redacts secrets too.
        assert!(!format!("{:?}", c.auth_info).contains("tok\""));
    }

    #[test]
    fn bad_ca_and_url() {
        let mut c = creds("tok");
        c.ca_pem = Some("not a pem".into());
        let e = kube_config(&c, &ClientSettings::default()).unwrap_err();
        assert!(e.to_string().contains("CACertificate"), "{e}");
        let mut c = creds("tok");
        c.endpoint = "https://bad host".into();
        let e = kube_config(&c, &ClientSettings::default()).unwrap_err();
        assert!(e.to_string().contains("not a valid URL"), "{e}");
    }

    #[tokio::test]
    async fn cache_reuses_and_rebuilds() {
        let cache = ClientCache::new(ClientSettings::default());
        let (_, built) = cache.get(&creds("a")).unwrap();
        assert!(built);
        let (_, built) = cache.get(&creds("a")).unwrap();
        assert!(!built);
        let (_, built) = cache.get(&creds("b")).unwrap();
        assert!(built);
        assert_eq!(cache.len(), 1);
        cache.remove(1);
        assert!(cache.is_empty());
    }
}
