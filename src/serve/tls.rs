//! TLS: the certificate each client gets, chosen by the name it asks for (SNI) among the
//! certificates of the gateway serving now (so a reload rotates them), the listener's
//! settings (HTTP/2 over ALPN).

use std::fmt;
use std::sync::Arc;

use pingora::listeners::tls::TlsSettings;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::ServerCert;
use crate::runtime::live::LiveGateway;

/// Picks the certificate for a handshake from the current config's `[tls]` certificates.
pub struct SniResolver {
    live: Arc<LiveGateway>,
}

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SniResolver")
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let gw = self.live.current();
        let certs = &gw.config.tls.as_ref()?.certificates;
        choose(certs, hello.server_name()).map(|c| c.key.clone())
    }
}

/// The certificate naming `host` (exactly, or by a `*.` wildcard one label deep); the first
/// one when none does. A client that names no host (SNI) is one that connected by an IP
/// address (no client sends one as SNI): it gets the first certificate naming an IP address,
/// else the first one.
pub fn choose<'a>(certs: &'a [ServerCert], host: Option<&str>) -> Option<&'a ServerCert> {
    let named = match host {
        Some(h) => {
            let h = h.to_ascii_lowercase();
            certs.iter().find(|c| c.names.iter().any(|n| covers(n, &h)))
        }
        None => certs.iter().find(|c| c.names.iter().any(|n| n.parse::<std::net::IpAddr>().is_ok())),
    };
    named.or_else(|| certs.first())
}

fn covers(name: &str, host: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(suffix) => host.split_once('.').is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => name == host,
    }
}

/// The TLS listener's settings: certificates by SNI, HTTP/2 offered when `http2`.
pub fn listener_settings(live: Arc<LiveGateway>, http2: bool) -> TlsSettings {
    // No certificate files: the resolver supplies every certificate.
    let mut settings = match TlsSettings::intermediate("", "") {
        Ok(s) => s,
        Err(e) => unreachable!("intermediate settings without files cannot fail: {e}"),
    };
    settings.set_cert_resolver(Arc::new(SniResolver { live }));
    if http2 {
        settings.enable_h2();
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(names: &[&str]) -> ServerCert {
        let key = rcgen::KeyPair::generate().unwrap();
        let der = rcgen::CertificateParams::new(vec!["x.test".to_string()]).unwrap().self_signed(&key).unwrap();
        let private = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let signing = rustls::crypto::ring::sign::any_supported_type(&private).unwrap();
        ServerCert {
            names: names.iter().map(|n| n.to_string()).collect(),
            key: Arc::new(CertifiedKey::new(vec![der.der().clone()], signing)),
        }
    }

    #[test]
    fn a_client_that_names_no_host_gets_a_certificate_for_an_ip_address() {
        let certs = [cert(&["gw.test"]), cert(&["*.shop.test"]), cert(&["127.0.0.1", "::1"])];
        let names = |c: Option<&ServerCert>| c.map(|c| c.names[0].clone());
        // Positive controls: by name, exactly or by wildcard; an unknown name gets the first.
        assert_eq!(names(choose(&certs, Some("GW.test"))).as_deref(), Some("gw.test"));
        assert_eq!(names(choose(&certs, Some("a.shop.test"))).as_deref(), Some("*.shop.test"));
        assert_eq!(names(choose(&certs, Some("other.test"))).as_deref(), Some("gw.test"));
        assert_eq!(names(choose(&certs, None)).as_deref(), Some("127.0.0.1"));
        // Without a certificate for an address: the first.
        assert_eq!(names(choose(&certs[..2], None)).as_deref(), Some("gw.test"));
        assert!(choose(&[], None).is_none());
    }

    #[test]
    fn wildcards_cover_one_label() {
        assert!(covers("*.example.com", "a.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("*.example.com", "a.b.example.com"));
        assert!(!covers("*.example.com", ".example.com"));
        assert!(covers("h5.example.com", "h5.example.com"));
        assert!(!covers("h5.example.com", "x.h5.example.com"));
    }
}
