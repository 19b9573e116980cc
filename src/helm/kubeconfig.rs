//! The kubeconfig helm reaches a runtime with, from the runtime's credentials (the same
//! endpoint, CA and client certificate or token the manager's own client uses), and the
//! secrets in it that must not appear in an error.

use base64::Engine as _;
use serde_json::json;

use crate::kube::{RuntimeAuth, RuntimeCredentials};

const NAME: &str = "runtime";

/// A kubeconfig (YAML) with one cluster, user and context for `credentials`.
pub fn kubeconfig_yaml(credentials: &RuntimeCredentials) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut cluster = json!({"server": credentials.endpoint});
    if let Some(ca) = &credentials.ca_pem {
        cluster["certificate-authority-data"] = json!(b64(ca));
    }
    let user = match &credentials.auth {
        RuntimeAuth::ClientCert { cert_pem, key_pem } => json!({
            "client-certificate-data": b64(cert_pem),
            "client-key-data": b64(key_pem.expose()),
        }),
        RuntimeAuth::Token(token) => json!({"token": token.expose()}),
    };
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": NAME, "cluster": cluster}],
        "users": [{"name": NAME, "user": user}],
        "contexts": [{"name": NAME, "context": {"cluster": NAME, "user": NAME}}],
        "current-context": NAME,
    });
    // Serialising a JSON value as YAML cannot fail.
    serde_yaml_ng::to_string(&config).unwrap_or_default()
}

/// The secret strings of `credentials`, as they could appear in helm's output: the key or
/// token, and their base64 forms in the kubeconfig.
pub fn secrets(credentials: &RuntimeCredentials) -> Vec<String> {
    let secret = match &credentials.auth {
        RuntimeAuth::ClientCert { key_pem, .. } => key_pem.expose().to_string(),
        RuntimeAuth::Token(token) => token.expose().to_string(),
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(&secret);
    [secret, encoded]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect()
}

/// `text` with every one of `secrets` replaced by `<redacted>`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), "<redacted>"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threeport::models::SecretString;

    fn creds(auth: RuntimeAuth) -> RuntimeCredentials {
        RuntimeCredentials {
            runtime_id: 3,
            runtime: "edge (ID 3)".into(),
            endpoint: "https://127.0.0.1:6443".into(),
            ca_pem: Some("CA PEM".into()),
            auth,
        }
    }

    #[test]
    fn the_kubeconfig_has_the_endpoint_ca_and_credentials() {
        let token = creds(RuntimeAuth::Token(SecretString("tok-123456789".into())));
        let yaml: serde_json::Value = serde_yaml_ng::from_str(&kubeconfig_yaml(&token)).unwrap();
        assert_eq!(
            yaml["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            yaml["clusters"][0]["cluster"]["certificate-authority-data"],
            base64::engine::general_purpose::STANDARD.encode("CA PEM")
        );
        assert_eq!(yaml["users"][0]["user"]["token"], "tok-123456789");
        assert_eq!(yaml["current-context"], "runtime");
        let cert = creds(RuntimeAuth::ClientCert {
            cert_pem: "CERT".into(),
            key_pem: SecretString("KEY PEM secret".into()),
        });
        let yaml: serde_json::Value = serde_yaml_ng::from_str(&kubeconfig_yaml(&cert)).unwrap();
        assert_eq!(
            yaml["users"][0]["user"]["client-key-data"],
            base64::engine::general_purpose::STANDARD.encode("KEY PEM secret")
        );
    }

    #[test]
    fn errors_lose_the_key_or_token_in_either_form() {
        let c = creds(RuntimeAuth::Token(SecretString("tok-123456789".into())));
        let encoded = base64::engine::general_purpose::STANDARD.encode("tok-123456789");
        let text = format!("bad token tok-123456789 or {encoded}");
        let out = redact(&text, &secrets(&c));
        assert_eq!(out, "bad token <redacted> or <redacted>");
    }
}
