//! Port builders shared by the gateway modules' unit tests.

use crate::threeport::models::{GatewayHttpPort, GatewayTcpPort};

/// An HTTP port.
pub fn http(port: i64, path: &str, tls: bool, redirect: bool) -> GatewayHttpPort {
    GatewayHttpPort {
        port: Some(port),
        path: Some(path.into()),
        tls_enabled: Some(tls),
        https_redirect: Some(redirect),
        ..Default::default()
    }
}

/// A TCP port without TLS.
pub fn tcp(port: i64) -> GatewayTcpPort {
    GatewayTcpPort {
        port: Some(port),
        tls_enabled: Some(false),
        ..Default::default()
    }
}
