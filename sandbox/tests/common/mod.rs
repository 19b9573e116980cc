//! A minimal JSON-over-HTTP(S) client for the sandbox tests (hyper + rustls, no Threeport
//! client code), so the tests exercise the wire format directly.
#![allow(dead_code)]

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Method;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sandbox::threeport::TlsFiles;
use serde_json::Value;

pub struct Http {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    pub base: String,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_certs(pem: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("certs")
}

impl Http {
    fn with_config(base: String, cfg: rustls::ClientConfig) -> Self {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(cfg)
            .https_or_http()
            .enable_http1()
            .build();
        Http {
            client: Client::builder(TokioExecutor::new()).build(https),
            base,
        }
    }

    /// Plain HTTP client (TLS config unused).
    pub fn plain(base: String) -> Self {
        let cfg = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        Self::with_config(base, cfg)
    }

    /// HTTPS client trusting the sandbox CA, optionally presenting the client certificate.
    pub fn tls(base: String, files: &TlsFiles, client_cert: bool) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        for c in pem_certs(&files.ca_cert_pem) {
            roots.add(c).expect("root");
        }
        let b = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
        let cfg = if client_cert {
            let key = rustls_pemfile::private_key(&mut files.client_key_pem.as_bytes())
                .expect("key pem")
                .expect("a key");
            b.with_client_auth_cert(pem_certs(&files.client_cert_pem), key)
                .expect("client auth")
        } else {
            b.with_no_client_auth()
        };
        Self::with_config(base, cfg)
    }

    /// Send a request; returns status and raw body text.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<(u16, String)> {
        let req = hyper::Request::builder()
            .method(Method::from_bytes(method.as_bytes())?)
            .uri(format!("{}{}", self.base, path))
            .header("Content-Type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or("").to_string())))?;
        let resp = self.client.request(req).await?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8(bytes.to_vec())?))
    }

    /// Send JSON, parse JSON (u64 exact); panics on transport errors.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let b = body.map(|v| v.to_string());
        let (s, text) = self
            .raw(method, path, b.as_deref())
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        (s, v)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("PATCH", path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("PUT", path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call("DELETE", path, None).await
    }
}

/// `Data[0].ID` of an envelope.
pub fn id_of(v: &Value) -> u64 {
    v["Data"][0]["ID"].as_u64().expect("Data[0].ID")
}

pub fn error_of(v: &Value) -> String {
    v["Status"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub fn wd(name: &str) -> Value {
    serde_json::json!({"Name": name, "YAMLDocument": "apiVersion: v1\nkind: Namespace\n"})
}

pub fn wi(name: &str, wd: u64, kri: u64) -> Value {
    serde_json::json!({"Name": name, "WorkloadDefinitionID": wd, "KubernetesRuntimeInstanceID": kri})
}
