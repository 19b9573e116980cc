use serde_json::json;

use super::*;
use crate::reconcilers::gateway::test_ports::{http, tcp};

fn dnd(domain: &str, email: &str) -> DomainNameDefinition {
    DomainNameDefinition {
        domain: Some(domain.into()),
        admin_email: Some(email.into()),
        ..Default::default()
    }
}

#[test]
fn the_domain_is_the_subdomain_under_the_definitions_domain_without_scheme() {
    let d = dnd("https://example.com", "ops@example.com");
    assert_eq!(
        gateway_domain(Some("app"), Some(&d)).name,
        "app.example.com"
    );
    assert_eq!(gateway_domain(Some(""), Some(&d)).name, "example.com");
    assert_eq!(
        gateway_domain(None, Some(&d)).admin_email,
        "ops@example.com"
    );
    assert_eq!(gateway_domain(Some("app"), None), GatewayDomain::default());
}

#[test]
fn kebab_case_matches_threeports_names() {
    // strcase v0.3.0's behaviour (its own test table where it has the case): separators are
    // not collapsed or trimmed, digits are words, non-ASCII is left alone.
    for (input, want) in [
        ("app.example.com", "app-example-com"),
        ("My Gateway", "my-gateway"),
        ("myGateway", "my-gateway"),
        ("HTTPServer", "http-server"),
        ("JSONData", "json-data"),
        ("AAAbbb", "aa-abbb"),
        ("A1B", "a-1-b"),
        ("userID", "user-id"),
        ("numbers2And55with000", "numbers-2-and-55-with-000"),
        ("web-app_1", "web-app-1"),
        ("api.v2.Example.COM", "api-v-2-example-com"),
        ("a..b", "a--b"),
        ("-lead", "-lead"),
        ("trail-", "trail-"),
        ("  padded  ", "padded"),
        ("ÄpfelBaum", "Äpfel-baum"),
    ] {
        assert_eq!(kebab(input), want, "{input}");
    }
}

#[test]
fn names_follow_threeports_rules() {
    assert_eq!(virtual_service_name("web", "", 443), "web-443");
    assert_eq!(
        virtual_service_name("web", "app.example.com", 443),
        "app-example-com-443"
    );
    assert_eq!(tcp_gateway_name("web", 5432), "web-5432");
    assert_eq!(template_workload_definition_name("web"), "web-gateway");
    assert_eq!(tls_secret_name("app.example.com"), "app-example-com-tls");
}

#[test]
fn the_template_has_every_port_then_issuer_and_certificate_when_tls() {
    let domain = gateway_domain(Some("app"), Some(&dnd("example.com", "ops@example.com")));
    let docs = template_documents(
        "web",
        &domain,
        &[http(443, "/", true, false), http(80, "/", false, true)],
        &[tcp(5432), tcp(6379)],
        &TemplateSettings::default(),
    )
    .expect("template");
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "VirtualService",
            "VirtualService",
            "Gateway",
            "Gateway",
            "Issuer",
            "Certificate"
        ]
    );
    // TLS port: routed to the placeholder upstream, SSL from the domain's secret.
    assert_eq!(docs[0]["metadata"]["name"], "app-example-com-443");
    assert_eq!(
        docs[0]["spec"]["sslConfig"],
        json!({"secretRef": {"name": "app-example-com-tls", "namespace": "default"},
               "sniDomains": ["app.example.com"]})
    );
    assert_eq!(
        docs[0]["spec"]["virtualHost"]["routes"][0]["routeAction"]["single"]["upstream"],
        json!({"name": "my-upstream", "namespace": "gloo-system"})
    );
    // Redirect port: a host redirect to HTTPS, no upstream.
    assert_eq!(
        docs[1]["spec"]["virtualHost"]["routes"][0]["redirectAction"],
        json!({"hostRedirect": "app.example.com", "httpsRedirect": true})
    );
    assert!(docs[1]["spec"]["virtualHost"]["routes"][0]["routeAction"].is_null());
    // Every TCP port has its gateway, bound at 8000 + port.
    assert_eq!(docs[2]["metadata"]["name"], "web-5432");
    assert_eq!(docs[2]["spec"]["bindPort"], 13432);
    assert_eq!(docs[3]["spec"]["bindPort"], 14379);
    // Issuer and Certificate of the domain, Threeport's ACME server and region by default.
    assert_eq!(docs[4]["metadata"]["name"], "app-example-com");
    assert_eq!(
        docs[4]["spec"]["acme"]["server"],
        "https://acme-staging-v02.api.letsencrypt.org/directory"
    );
    assert_eq!(docs[4]["spec"]["acme"]["email"], "ops@example.com");
    assert_eq!(
        docs[4]["spec"]["acme"]["solvers"][0]["dns01"]["route53"]["region"],
        "us-east-1"
    );
    assert_eq!(
        docs[5]["spec"],
        json!({"secretName": "app-example-com-tls", "dnsNames": ["app.example.com"],
               "issuerRef": {"name": "app-example-com", "kind": "Issuer"}})
    );
}

#[test]
fn settings_replace_the_hard_coded_values() {
    let domain = gateway_domain(None, Some(&dnd("example.com", "ops@example.com")));
    let settings = TemplateSettings {
        acme_server: "https://acme-v02.api.letsencrypt.org/directory".into(),
        route53_region: "eu-west-1".into(),
    };
    let docs = template_documents(
        "web",
        &domain,
        &[http(443, "/", true, false)],
        &[],
        &settings,
    )
    .expect("template");
    assert_eq!(docs[1]["spec"]["acme"]["server"], settings.acme_server);
    assert_eq!(
        docs[1]["spec"]["acme"]["solvers"][0]["dns01"]["route53"]["region"],
        "eu-west-1"
    );
}

#[test]
fn tls_without_a_domain_is_an_error_naming_the_gateway() {
    let err = template_documents(
        "web",
        &GatewayDomain::default(),
        &[http(443, "/", true, false)],
        &[],
        &TemplateSettings::default(),
    )
    .expect_err("no domain");
    assert!(err.to_string().contains("gateway definition web"), "{err}");
    // Without TLS no domain is needed: the host is `*` and the names use the definition's.
    let docs = template_documents(
        "web",
        &GatewayDomain::default(),
        &[http(80, "/api", false, false)],
        &[],
        &TemplateSettings::default(),
    )
    .expect("template");
    assert_eq!(docs[0]["metadata"]["name"], "web-80");
    assert_eq!(docs[0]["spec"]["virtualHost"]["domains"], json!(["*"]));
    assert_eq!(
        docs[0]["spec"]["virtualHost"]["routes"][0]["matchers"],
        json!([{"prefix": "/api"}])
    );
}

#[test]
fn the_yaml_stream_is_hyphen_delimited_documents_that_parse_back() {
    let docs = vec![json!({"kind": "A", "b": 1}), json!({"kind": "B"})];
    let yaml = yaml_stream(&docs).expect("yaml");
    assert!(yaml.starts_with("---\n"), "{yaml}");
    assert_eq!(yaml.matches("---\n").count(), 2, "{yaml}");
    let back: Vec<serde_json::Value> = serde_yaml_ng::Deserializer::from_str(&yaml)
        .map(|d| serde::Deserialize::deserialize(d).expect("document"))
        .collect();
    assert_eq!(back, docs);
}
