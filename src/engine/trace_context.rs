//! W3C trace context from NATS message headers.
//!
//! A publisher that sets `traceparent` (and optionally `tracestate`) on a notification makes
//! the reconcile span a child of its span. Extraction goes through the global text-map
//! propagator, which trace export set-up makes the W3C `TraceContextPropagator`; without
//! export the propagator is a no-op and so is this.

use async_nats::HeaderMap;
use opentelemetry::propagation::Extractor;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Reads NATS headers as a text-map carrier. W3C header names are lower case; NATS header
/// names are case-sensitive, so a `Traceparent` spelling is found too.
struct NatsHeaders<'a>(&'a HeaderMap);

impl Extractor for NatsHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        if let Some(v) = self.0.get(key) {
            return Some(v.as_str());
        }
        self.0
            .iter()
            .find(|(name, _)| AsRef::<str>::as_ref(*name).eq_ignore_ascii_case(key))
            .and_then(|(_, values)| values.first())
            .map(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .iter()
            .map(|(name, _)| AsRef::<str>::as_ref(name))
            .collect()
    }
}

/// Make `span` a child of the trace context in `headers`, if there is one. Call it before the
/// span is first entered. Malformed headers are ignored (the span starts a new trace).
pub fn set_remote_parent(span: &tracing::Span, headers: Option<&HeaderMap>) {
    let Some(headers) = headers else { return };
    let carrier = NatsHeaders(headers);
    if carrier.get("traceparent").is_none() {
        return;
    }
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
    // Errors only mean there is no OpenTelemetry layer or the span is filtered out.
    let _ = span.set_parent(cx);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_headers_case_insensitively() {
        let mut h = HeaderMap::new();
        h.insert(
            "Traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        );
        h.insert("tracestate", "vendor=1");
        let c = NatsHeaders(&h);
        assert_eq!(
            c.get("traceparent"),
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        );
        assert_eq!(c.get("tracestate"), Some("vendor=1"));
        assert_eq!(c.get("baggage"), None);
        assert_eq!(c.keys().len(), 2);
    }

    #[test]
    fn no_headers_is_a_no_op() {
        set_remote_parent(&tracing::Span::none(), None);
        set_remote_parent(&tracing::Span::none(), Some(&HeaderMap::new()));
    }
}
