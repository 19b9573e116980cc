//! Tests of the HTTP client against tiny HTTP/1.1 servers on 127.0.0.1 (plain and mTLS).
//!
//! The servers are hand-rolled on blocking threads (one request per connection,
//! `Connection: close`) so the tests need no server framework or extra TLS crate, and so they
//! can misbehave on purpose (stall a body).

use super::*;
use crate::threeport::api::API_PAGE_SIZE;
use crate::threeport::models::{WORKLOAD_INSTANCE, WORKLOAD_RESOURCE_INSTANCE};
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use tokio::net::TcpListener;

const RSA_CA_PKCS8: &str = include_str!("../../../tests/fixtures/threeport/rsa4096_ca_pkcs8.pem");
const RSA_LEAF_PKCS1: &str =
    include_str!("../../../tests/fixtures/threeport/rsa4096_leaf_pkcs1.pem");
const RSA_LEAF_PKCS8: &str =
    include_str!("../../../tests/fixtures/threeport/rsa4096_leaf_pkcs8.pem");
const EC_SEC1: &str = include_str!("../../../tests/fixtures/threeport/ec_p256_sec1.pem");
const EC_PKCS8: &str = include_str!("../../../tests/fixtures/threeport/ec_p256_pkcs8.pem");

// ---------------------------------------------------------------------------------------------
// Test server.

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    client_cert: bool,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

enum Reply {
    Send {
        status: u16,
        body: String,
    },
    /// Send the head and part of the body, then stall.
    StallBody {
        status: u16,
    },
}

fn reply(status: u16, body: Value) -> Reply {
    Reply::Send {
        status,
        body: body.to_string(),
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// Blocking threads rather than tokio tasks, so the TLS side needs only `rustls::StreamOwned`
/// (no tokio-rustls dependency). Dropping the server stops its accept loop.
struct TestServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag.
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

impl TestServer {
    fn start(handler: Handler, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(tcp) = tcp else { continue };
                let (handler, seen, tls) = (handler.clone(), seen2.clone(), tls.clone());
                std::thread::spawn(move || match tls {
                    None => serve_one(tcp, |_| false, |_| {}, &handler, &seen),
                    Some(cfg) => {
                        let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                            return;
                        };
                        // The handshake runs on the first read; a failed handshake is a
                        // read error that drops the connection, and the client reports it.
                        serve_one(
                            rustls::StreamOwned::new(conn, tcp),
                            |s| s.conn.peer_certificates().is_some(),
                            |s| {
                                s.conn.send_close_notify();
                                let _ = s.flush();
                            },
                            &handler,
                            &seen,
                        );
                    }
                });
            }
        });
        Self { addr, seen, stop }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve_one<S: Read + Write>(
    stream: S,
    client_cert: impl FnOnce(&S) -> bool,
    finish: impl FnOnce(&mut S),
    handler: &Handler,
    seen: &Mutex<Vec<Seen>>,
) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let req = Seen {
        method,
        target,
        headers,
        body,
        client_cert: client_cert(reader.get_ref()),
    };
    let answer = handler(&req);
    seen.lock().unwrap().push(req);
    let mut stream = reader.into_inner();
    match answer {
        Reply::Send { status, body } => {
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
            finish(&mut stream);
        }
        Reply::StallBody { status } => {
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"Data\":["
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.flush();
            std::thread::sleep(Duration::from_secs(30));
        }
    }
}

fn envelope(data: Value, code: u16) -> Value {
    let n = data.as_array().map_or(0, |a| a.len());
    json!({
        "Meta": {"Page": 1, "Size": n, "TotalCount": n},
        "Type": "WorkloadInstance",
        "Data": data,
        "Status": {"code": code, "message": "OK", "error": ""}
    })
}

fn plain_config(addr: SocketAddr) -> ApiClientConfig {
    ApiClientConfig {
        server: addr.to_string(),
        auth_enabled: false,
        cert_file: PathBuf::from("/nonexistent/tls.crt"),
        key_file: PathBuf::from("/nonexistent/tls.key"),
        ca_file: PathBuf::from("/nonexistent/ca.crt"),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
    }
}

fn metrics() -> IntCounterVec {
    IntCounterVec::new(
        prometheus::Opts::new("threeport_api_requests_total", "test"),
        &["method", "route", "code"],
    )
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Pure functions.

#[test]
fn base_url_rules() {
    assert_eq!(
        base_url("threeport-api-server", true).unwrap(),
        "https://threeport-api-server"
    );
    assert_eq!(
        base_url("threeport-api-server", false).unwrap(),
        "http://threeport-api-server"
    );
    assert_eq!(
        base_url("127.0.0.1:1323", false).unwrap(),
        "http://127.0.0.1:1323"
    );
    assert_eq!(
        base_url(" [::1]:1323 ", true).unwrap(),
        "https://[::1]:1323"
    );
    // A full URL is used as given, whatever auth says.
    assert_eq!(
        base_url("http://api:1323/", true).unwrap(),
        "http://api:1323"
    );
    assert_eq!(
        base_url("https://api:8443", false).unwrap(),
        "https://api:8443"
    );
    assert_eq!(
        base_url("https://api/prefix/", false).unwrap(),
        "https://api/prefix"
    );
    for bad in [
        "",
        "  ",
        "ftp://api",
        "http://",
        "http://api?x=1",
        "http://u:p@api",
        "a b",
    ] {
        assert!(
            matches!(base_url(bad, true), Err(ApiError::Config(_))),
            "{bad:?} should be rejected"
        );
    }
}

#[test]
fn query_names_and_values_are_escaped() {
    let q = vec![
        ("name".to_string(), "my app/v1 & co+".to_string()),
        ("odd key=".to_string(), "é".to_string()),
        ("objectid".to_string(), "917190976565575681".to_string()),
    ];
    assert_eq!(
        encode_query(&q),
        "name=my+app%2Fv1+%26+co%2B&odd+key%3D=%C3%A9&objectid=917190976565575681"
    );
}

#[test]
fn envelope_decoding() {
    let body = br#"{"Meta":{"Page":1,"Size":1,"TotalCount":1},"Type":"WorkloadInstance",
        "Data":[{"ID":917190976565575681,"KubernetesRuntimeInstanceID":18446744073709551615}],
        "Status":{"code":200,"message":"OK","error":""}}"#;
    let r = interpret_response(Method::Get, "/v0/workload-instances/{id}", 200, body).unwrap();
    assert_eq!(
        r.meta,
        PageMeta {
            page: 1,
            size: 1,
            total_count: 1
        }
    );
    assert_eq!(r.data[0]["ID"].as_u64(), Some(917_190_976_565_575_681));
    assert_eq!(
        r.data[0]["KubernetesRuntimeInstanceID"].as_u64(),
        Some(u64::MAX)
    );

    let empty = br#"{"Meta":{"Page":1,"Size":50,"TotalCount":0},"Type":"X","Data":null,"Status":{"code":200,"message":"OK","error":""}}"#;
    let r = interpret_response(Method::Get, "/v0/xs", 200, empty).unwrap();
    assert!(r.data.is_empty());
    assert_eq!(r.meta.total_count, 0);

    assert!(matches!(
        interpret_response(Method::Get, "/v0/xs", 200, b"<html>"),
        Err(ApiError::Decode { .. })
    ));
    assert!(matches!(
        interpret_response(Method::Get, "/v0/xs", 200, br#"{"Data":"x"}"#),
        Err(ApiError::Decode { .. })
    ));
}

#[test]
fn status_mapping() {
    let err_env = |code: u16, msg: &str, err: &str| {
        json!({"Meta":{"Page":0,"Size":0,"TotalCount":0},"Type":"WorkloadInstance","Data":null,
               "Status":{"code":code,"message":msg,"error":err}})
        .to_string()
    };
    let r = "/v0/workload-instances/{id}";
    let e = interpret_response(
        Method::Get,
        r,
        404,
        err_env(404, "Not Found", "record not found").as_bytes(),
    )
    .unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(
        e.to_string(),
        "GET /v0/workload-instances/{id}: object not found (404)"
    );

    let e = interpret_response(
        Method::Post,
        "/v0/workload-instances",
        409,
        err_env(409, "Conflict", "object with provided name already exists").as_bytes(),
    )
    .unwrap_err();
    assert!(e.is_conflict());
    assert!(
        e.to_string()
            .contains("object with provided name already exists"),
        "{e}"
    );

    let e = interpret_response(
        Method::Patch,
        r,
        400,
        err_env(
            400,
            "Bad Request",
            "Update of GORM Model fields is not allowed",
        )
        .as_bytes(),
    )
    .unwrap_err();
    assert!(
        matches!(&e, ApiError::BadRequest { message, .. } if message == "Update of GORM Model fields is not allowed")
    );

    let e = interpret_response(
        Method::Get,
        r,
        401,
        err_env(401, "Unauthorized", "").as_bytes(),
    )
    .unwrap_err();
    assert!(matches!(&e, ApiError::Unauthorized { message, .. } if message == "Unauthorized"));
    let e = interpret_response(Method::Get, r, 403, b"").unwrap_err();
    assert!(matches!(&e, ApiError::Forbidden { message, .. } if message == "Forbidden"));

    // echo's default body for unknown routes.
    let e = interpret_response(
        Method::Get,
        "/v0/nope",
        405,
        br#"{"message":"Method Not Allowed"}"#,
    )
    .unwrap_err();
    assert!(
        matches!(&e, ApiError::Status { status: 405, message, .. } if message == "Method Not Allowed")
    );

    // A non-JSON body is quoted, truncated.
    let long = "x".repeat(5000);
    let e = interpret_response(Method::Get, r, 502, long.as_bytes()).unwrap_err();
    match &e {
        ApiError::Status {
            status: 502,
            message,
            ..
        } => {
            assert_eq!(message.len(), ERROR_BODY_QUOTE + 3);
            assert!(message.ends_with("..."));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(e.retry_class(), crate::threeport::RetryClass::Transient);

    // Truncation never splits a UTF-8 character.
    let wide = "é".repeat(600);
    let e = interpret_response(Method::Get, r, 500, wide.as_bytes()).unwrap_err();
    assert!(e.to_string().ends_with("..."));

    // The expected code is exact: a POST answered with 200 is an error.
    let e = interpret_response(
        Method::Post,
        "/v0/events",
        200,
        envelope(json!([]), 200).to_string().as_bytes(),
    )
    .unwrap_err();
    assert_eq!(e.status(), Some(200));
}

// ---------------------------------------------------------------------------------------------
// Plain HTTP against a local server.

#[tokio::test]
async fn http_round_trip_headers_ids_and_metrics() {
    let server = TestServer::start(
        Arc::new(
            |req: &Seen| match (req.method.as_str(), req.target.as_str()) {
                ("GET", "/v0/workload-instances/917190976565575681") => reply(
                    200,
                    envelope(
                        json!([{"ID": 917_190_976_565_575_681u64, "Name": "web", "KubernetesRuntimeInstanceID": u64::MAX}]),
                        200,
                    ),
                ),
                ("POST", "/v0/workload-resource-instances") => {
                    let mut obj: Value = serde_json::from_slice(&req.body).unwrap();
                    obj["ID"] = json!(917_190_976_565_575_999u64);
                    reply(201, envelope(json!([obj]), 201))
                }
                ("PATCH", _) => reply(
                    400,
                    json!({"Meta":{"Page":0,"Size":0,"TotalCount":0},"Type":"WorkloadInstance","Data":null,
                       "Status":{"code":400,"message":"Bad Request","error":"Unsupported fields are not allowed"}}),
                ),
                _ => reply(404, json!({"message": "Not Found"})),
            },
        ),
        None,
    );
    let counter = metrics();
    let client = ThreeportClient::new(&plain_config(server.addr), Some(counter.clone())).unwrap();
    assert_eq!(client.base_url(), format!("http://{}", server.addr));

    let wi = client
        .get(WORKLOAD_INSTANCE, 917_190_976_565_575_681)
        .await
        .unwrap();
    assert_eq!(wi["ID"].as_u64(), Some(917_190_976_565_575_681));
    assert_eq!(wi["KubernetesRuntimeInstanceID"].as_u64(), Some(u64::MAX));

    let created = client
        .create(
            WORKLOAD_RESOURCE_INSTANCE,
            json!({"WorkloadInstanceID": 917_190_976_565_575_681u64, "Reconciled": true, "JSONDefinition": {"kind": "Service"}}),
        )
        .await
        .unwrap();
    assert_eq!(created["ID"].as_u64(), Some(917_190_976_565_575_999));
    assert_eq!(
        created["WorkloadInstanceID"].as_u64(),
        Some(917_190_976_565_575_681)
    );

    let err = client
        .patch(WORKLOAD_INSTANCE, 7, json!({"Bogus": 1}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ApiError::BadRequest { message, .. } if message == "Unsupported fields are not allowed")
    );

    let err = client.get(WORKLOAD_INSTANCE, 8).await.unwrap_err();
    assert!(err.is_not_found());

    let seen = server.seen();
    assert_eq!(seen.len(), 4);
    for s in &seen {
        assert_eq!(s.header("content-type"), Some("application/json"), "{s:?}");
    }
    assert!(seen[0].body.is_empty());
    let posted: Value = serde_json::from_slice(&seen[1].body).unwrap();
    // The exact digits went over the wire.
    assert!(String::from_utf8_lossy(&seen[1].body).contains("917190976565575681"));
    assert_eq!(posted["JSONDefinition"]["kind"], "Service");

    let get_route = "/v0/workload-instances/{id}";
    assert_eq!(
        counter.with_label_values(&["GET", get_route, "200"]).get(),
        1
    );
    assert_eq!(
        counter.with_label_values(&["GET", get_route, "404"]).get(),
        1
    );
    assert_eq!(
        counter
            .with_label_values(&["PATCH", get_route, "400"])
            .get(),
        1
    );
    assert_eq!(
        counter
            .with_label_values(&["POST", "/v0/workload-resource-instances", "201"])
            .get(),
        1
    );
}

#[tokio::test]
async fn list_reads_every_page_with_escaped_filters() {
    let server = TestServer::start(
        Arc::new(|req: &Seen| {
            let url = url::Url::parse(&format!("http://x{}", req.target)).unwrap();
            let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
            let page: u64 = q["page"].parse().unwrap();
            let total = API_PAGE_SIZE + 3;
            let start = (page - 1) * API_PAGE_SIZE;
            let end = (start + API_PAGE_SIZE).min(total);
            let items: Vec<Value> = (start..end)
                .map(|i| json!({"ID": (1u64 << 60) + i}))
                .collect();
            let mut env = envelope(json!(items), 200);
            env["Meta"] = json!({"Page": page, "Size": API_PAGE_SIZE, "TotalCount": total});
            reply(200, env)
        }),
        None,
    );
    let client = ThreeportClient::new(&plain_config(server.addr), None).unwrap();
    let all = client
        .list(WORKLOAD_INSTANCE, &[("name", "a b&c".to_string())])
        .await
        .unwrap();
    assert_eq!(all.len() as u64, API_PAGE_SIZE + 3);
    assert_eq!(all[52]["ID"].as_u64(), Some((1u64 << 60) + 52));
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].target,
        "/v0/workload-instances?name=a+b%26c&page=1&size=50"
    );
    assert_eq!(
        seen[1].target,
        "/v0/workload-instances?name=a+b%26c&page=2&size=50"
    );
}

#[tokio::test]
async fn stalled_body_times_out() {
    let server = TestServer::start(Arc::new(|_: &Seen| Reply::StallBody { status: 200 }), None);
    let mut cfg = plain_config(server.addr);
    cfg.request_timeout = Duration::from_millis(300);
    let counter = metrics();
    let client = ThreeportClient::new(&cfg, Some(counter.clone())).unwrap();
    let started = Instant::now();
    let err = client.get(WORKLOAD_INSTANCE, 1).await.unwrap_err();
    assert!(
        matches!(err, ApiError::Timeout { after, .. } if after == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(err.retry_class(), crate::threeport::RetryClass::Transient);
    assert_eq!(
        counter
            .with_label_values(&["GET", "/v0/workload-instances/{id}", "timeout"])
            .get(),
        1
    );
}

#[tokio::test]
async fn refused_connection_is_transport_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let counter = metrics();
    let client = ThreeportClient::new(&plain_config(addr), Some(counter.clone())).unwrap();
    let err = client.get(WORKLOAD_INSTANCE, 1).await.unwrap_err();
    assert!(matches!(err, ApiError::Transport { .. }), "{err:?}");
    assert_eq!(err.retry_class(), crate::threeport::RetryClass::Transient);
    assert_eq!(
        counter
            .with_label_values(&["GET", "/v0/workload-instances/{id}", "error"])
            .get(),
        1
    );
}

// ---------------------------------------------------------------------------------------------
// mTLS with Threeport-style certificates.

struct Pki {
    ca_pem: String,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
    dir: tempfile::TempDir,
}

fn dn(cn: Option<&str>) -> rcgen::DistinguishedName {
    let mut dn = rcgen::DistinguishedName::new();
    if let Some(cn) = cn {
        dn.push(rcgen::DnType::CommonName, cn);
    }
    dn.push(rcgen::DnType::OrganizationName, "Threeport");
    dn.push(rcgen::DnType::CountryName, "US");
    dn.push(rcgen::DnType::LocalityName, "Tampa");
    dn
}

/// Threeport's CA (`GenerateCACert`): IsCA, KeyUsage DigitalSignature|CertSign, EKU
/// clientAuth+serverAuth.
fn threeport_ca(key: &rcgen::KeyPair) -> rcgen::Certificate {
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = dn(None);
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyCertSign,
    ];
    p.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    ];
    p.not_before = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    p.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
    p.self_signed(key).unwrap()
}

/// Threeport's leaf (`GenerateCertificate`): IsCA=false with basicConstraints present,
/// KeyUsage DigitalSignature|CertSign, EKU clientAuth+serverAuth, CN localhost, DNS + IP + URI
/// SANs, authority key identifier.
fn threeport_leaf(
    key: &rcgen::KeyPair,
    ca: &rcgen::Certificate,
    ca_key: &rcgen::KeyPair,
) -> rcgen::Certificate {
    let mut p = rcgen::CertificateParams::new(vec![
        "localhost".to_string(),
        "threeport-api-server".to_string(),
        "threeport-api-server.threeport-control-plane".to_string(),
        "threeport-api-server.threeport-control-plane.svc".to_string(),
        "threeport-api-server.threeport-control-plane.svc.cluster".to_string(),
        "threeport-api-server.threeport-control-plane.svc.cluster.local".to_string(),
    ])
    .unwrap();
    p.subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    p.subject_alt_names
        .push(rcgen::SanType::URI("https://localhost".try_into().unwrap()));
    p.distinguished_name = dn(Some("localhost"));
    p.is_ca = rcgen::IsCa::ExplicitNoCa;
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyCertSign,
    ];
    p.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    ];
    p.use_authority_key_identifier_extension = true;
    p.not_before = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    p.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
    p.signed_by(key, ca, ca_key).unwrap()
}

/// A CA and a server leaf from it, both RSA-4096 like Threeport's; the CA PEM is written to a
/// temp dir for the client.
fn pki() -> (Pki, rcgen::Certificate, rcgen::KeyPair) {
    let ca_key = rcgen::KeyPair::from_pem(RSA_CA_PKCS8).unwrap();
    let ca = threeport_ca(&ca_key);
    // The server reuses the leaf key: fine for a test, and the client uses a separate
    // certificate (same key, different serial) so both directions are verified.
    let server_key_pair = rcgen::KeyPair::from_pem(RSA_LEAF_PKCS8).unwrap();
    let server_cert = threeport_leaf(&server_key_pair, &ca, &ca_key);
    let dir = tempfile::tempdir().unwrap();
    let ca_pem = ca.pem();
    std::fs::write(dir.path().join("ca.crt"), &ca_pem).unwrap();
    let server_key = PrivateKeyDer::try_from(server_key_pair.serialize_der()).unwrap();
    (
        Pki {
            ca_pem,
            server_chain: vec![server_cert.der().clone()],
            server_key,
            dir,
        },
        ca,
        ca_key,
    )
}

fn mtls_server_config(pki: &Pki) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut pki.ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
            .unwrap(),
    )
}

fn ok_handler() -> Handler {
    Arc::new(|req: &Seen| {
        reply(
            200,
            envelope(
                json!([{"ID": 917_190_976_565_575_681u64, "ClientCert": req.client_cert}]),
                200,
            ),
        )
    })
}

/// Write `cert_pem` + `key_pem` as the client's files and return an auth-enabled config.
fn mtls_client_config(
    pki: &Pki,
    server: String,
    cert_pem: &str,
    key_pem: &str,
    tag: &str,
) -> ApiClientConfig {
    let cert_file = pki.dir.path().join(format!("{tag}.crt"));
    let key_file = pki.dir.path().join(format!("{tag}.key"));
    std::fs::write(&cert_file, cert_pem).unwrap();
    std::fs::write(&key_file, key_pem).unwrap();
    ApiClientConfig {
        server,
        auth_enabled: true,
        cert_file,
        key_file,
        ca_file: pki.dir.path().join("ca.crt"),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn mtls_with_threeport_style_certificates() {
    let (pki, ca, ca_key) = pki();
    let server = TestServer::start(ok_handler(), Some(mtls_server_config(&pki)));

    // Client identity: a Threeport-style leaf with an RSA-4096 PKCS#1 key file.
    let client_kp = rcgen::KeyPair::from_pem(RSA_LEAF_PKCS8).unwrap();
    let client_cert = threeport_leaf(&client_kp, &ca, &ca_key);
    assert!(RSA_LEAF_PKCS1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));

    // "host:port" without scheme + auth => https, server name is the IP SAN.
    let cfg = mtls_client_config(
        &pki,
        server.addr.to_string(),
        &client_cert.pem(),
        RSA_LEAF_PKCS1,
        "pkcs1",
    );
    let client = ThreeportClient::new(&cfg, None).unwrap();
    assert_eq!(client.base_url(), format!("https://{}", server.addr));
    let obj = client
        .get(WORKLOAD_INSTANCE, 917_190_976_565_575_681)
        .await
        .unwrap();
    assert_eq!(obj["ID"].as_u64(), Some(917_190_976_565_575_681));
    assert_eq!(
        obj["ClientCert"], true,
        "server must have verified a client certificate"
    );

    // Full URL with the DNS SAN.
    let cfg = mtls_client_config(
        &pki,
        format!("https://localhost:{}", server.addr.port()),
        &client_cert.pem(),
        RSA_LEAF_PKCS1,
        "dns",
    );
    let client = ThreeportClient::new(&cfg, None).unwrap();
    client.get(WORKLOAD_INSTANCE, 1).await.unwrap();

    // SEC1 and PKCS#8 EC keys work as well.
    let ec_kp = rcgen::KeyPair::from_pem(EC_PKCS8).unwrap();
    let ec_cert = threeport_leaf(&ec_kp, &ca, &ca_key);
    for (tag, key) in [("sec1", EC_SEC1), ("pkcs8", EC_PKCS8)] {
        let cfg = mtls_client_config(&pki, server.addr.to_string(), &ec_cert.pem(), key, tag);
        let client = ThreeportClient::new(&cfg, None).unwrap();
        client.get(WORKLOAD_INSTANCE, 1).await.unwrap();
    }
    assert_eq!(server.seen().len(), 4);
    assert!(server.seen().iter().all(|s| s.client_cert));
}

#[tokio::test]
async fn mtls_rejections() {
    let (pki, _ca, _ca_key) = pki();
    let server = TestServer::start(ok_handler(), Some(mtls_server_config(&pki)));

    // A client certificate from another CA is refused by the server.
    let other_ca_key = rcgen::KeyPair::generate().unwrap();
    let other_ca = threeport_ca(&other_ca_key);
    let kp = rcgen::KeyPair::from_pem(EC_PKCS8).unwrap();
    let foreign = threeport_leaf(&kp, &other_ca, &other_ca_key);
    let cfg = mtls_client_config(
        &pki,
        server.addr.to_string(),
        &foreign.pem(),
        EC_PKCS8,
        "foreign",
    );
    let err = ThreeportClient::new(&cfg, None)
        .unwrap()
        .get(WORKLOAD_INSTANCE, 1)
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Transport { .. }), "{err:?}");

    // Auth disabled with an https URL: server verified with the CA file, but no client
    // certificate, so this server refuses the handshake.
    let mut cfg = mtls_client_config(
        &pki,
        format!("https://{}", server.addr),
        &foreign.pem(),
        EC_PKCS8,
        "anon",
    );
    cfg.auth_enabled = false;
    let err = ThreeportClient::new(&cfg, None)
        .unwrap()
        .get(WORKLOAD_INSTANCE, 1)
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Transport { .. }), "{err:?}");

    // The client trusts only the CA file: a server certificate from another CA fails.
    let mut cfg = mtls_client_config(
        &pki,
        server.addr.to_string(),
        &foreign.pem(),
        EC_PKCS8,
        "wrongca",
    );
    cfg.ca_file = pki.dir.path().join("other-ca.crt");
    std::fs::write(&cfg.ca_file, other_ca.pem()).unwrap();
    let err = ThreeportClient::new(&cfg, None)
        .unwrap()
        .get(WORKLOAD_INSTANCE, 1)
        .await
        .unwrap_err();
    match &err {
        ApiError::Transport { reason, .. } => {
            assert!(reason.to_lowercase().contains("certificate"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(server.seen().is_empty());
}

#[test]
fn config_errors_name_the_file() {
    let (pki, ca, ca_key) = pki();
    let kp = rcgen::KeyPair::from_pem(RSA_LEAF_PKCS8).unwrap();
    let cert = threeport_leaf(&kp, &ca, &ca_key);
    let good = mtls_client_config(
        &pki,
        "127.0.0.1:1".into(),
        &cert.pem(),
        RSA_LEAF_PKCS1,
        "good",
    );
    ThreeportClient::new(&good, None).unwrap();

    let expect_config = |cfg: &ApiClientConfig, needle: &str| {
        let err = ThreeportClient::new(cfg, None).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ApiError::Config(_)), "{text}");
        assert!(text.contains(needle), "{text:?} should mention {needle:?}");
        // Never the key material.
        assert!(!text.contains("MII"), "{text}");
    };

    let mut missing = good.clone();
    missing.cert_file = pki.dir.path().join("missing.crt");
    expect_config(&missing, "missing.crt");

    let mut missing = good.clone();
    missing.ca_file = pki.dir.path().join("missing-ca.crt");
    expect_config(&missing, "missing-ca.crt");

    let garbage = mtls_client_config(
        &pki,
        "127.0.0.1:1".into(),
        &cert.pem(),
        "not a key",
        "garbage",
    );
    expect_config(&garbage, "garbage.key");

    // A certificate where the key should be.
    let swapped = mtls_client_config(
        &pki,
        "127.0.0.1:1".into(),
        &cert.pem(),
        &cert.pem(),
        "swapped",
    );
    expect_config(&swapped, "swapped.key");

    let no_cert = mtls_client_config(
        &pki,
        "127.0.0.1:1".into(),
        RSA_LEAF_PKCS1,
        RSA_LEAF_PKCS1,
        "nocert",
    );
    expect_config(&no_cert, "nocert.crt");

    // Key does not belong to the certificate.
    let mismatch = mtls_client_config(&pki, "127.0.0.1:1".into(), &cert.pem(), EC_SEC1, "mismatch");
    expect_config(&mismatch, "mismatch.key");

    let mut bad_ca = good.clone();
    bad_ca.ca_file = pki.dir.path().join("garbage.key");
    expect_config(&bad_ca, "garbage.key");

    // https without auth and without a CA file.
    let mut no_ca = good.clone();
    no_ca.auth_enabled = false;
    no_ca.server = "https://127.0.0.1:1".into();
    no_ca.ca_file = pki.dir.path().join("absent-ca.crt");
    expect_config(&no_ca, "absent-ca.crt");

    // Plain http needs no files at all.
    ThreeportClient::new(&plain_config("127.0.0.1:1".parse().unwrap()), None).unwrap();
}

#[test]
fn debug_output_has_no_secrets() {
    let client = ThreeportClient::new(&plain_config("127.0.0.1:9".parse().unwrap()), None).unwrap();
    let dbg = format!("{client:?}");
    assert!(dbg.contains("http://127.0.0.1:9"), "{dbg}");
}
