//! TLS with certificates made by the test: HTTP/2 over ALPN to a real client with the
//! identity header reaching the upstream, the certificate chosen by SNI, HSTS, the plain
//! listener's redirect to https, and `https://` upstreams verified against a configured CA.

mod common;

use std::sync::Arc;

use common::*;
use openid_gateway::serve::server::{proxy_service, server_conf, start_tls_on, Running};
use openid_gateway::serve::tls::listener_settings;
use pingora::listeners::tls::TlsSettings;
use pingora::services::listening::Service as ListeningService;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};

/// A CA and leaf certificates it signed, as PEM files for the config.
struct Pki {
    ca_pem: String,
    leaves: Vec<(String, String, CertificateDer<'static>)>,
}

fn pki(hosts: &[&str]) -> Pki {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, "openid-gateway test CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let leaves = hosts
        .iter()
        .map(|h| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec![h.to_string()]).unwrap();
            if h.parse::<std::net::IpAddr>().is_ok() {
                // Only the IP address subject alternative name: no common name either.
                params.distinguished_name = rcgen::DistinguishedName::new();
            }
            let cert = params.signed_by(&key, &ca).unwrap();
            (cert.pem(), key.serialize_pem(), cert.der().clone())
        })
        .collect();
    Pki { ca_pem: ca.pem(), leaves }
}

fn files(p: &Pki, names: &[&str]) -> Vec<(String, String)> {
    let mut out = vec![("ca.pem".to_string(), p.ca_pem.clone())];
    for (name, (cert, key, _)) in names.iter().zip(&p.leaves) {
        out.push((format!("{name}.pem"), cert.clone()));
        out.push((format!("{name}.key"), key.clone()));
    }
    out
}

/// A harness whose gateway also listens for TLS with the `gw.test` and `other.test`
/// certificates and HSTS, and the plain listener's redirect to it when `redirect`.
async fn tls_harness(redirect: bool) -> (Harness, Running, std::net::SocketAddr, Pki) {
    let p = pki(&["gw.test", "other.test"]);
    let tls_listener = listener();
    let tls_addr = tls_listener.local_addr().unwrap();
    let setup = Setup {
        tables: format!(
            "[limits]\nheader_timeout = \"1s\"\nkeepalive_timeout = \"1s\"\n\
             [tls]\nlisten = \"{tls_addr}\"\nhsts = \"365d\"\nredirect_http = {redirect}\n\
             certificates = [{{ cert = \"gw.pem\", key = {{ file = \"gw.key\" }} }}, \
             {{ cert = \"other.pem\", key = {{ file = \"other.key\" }} }}]\n"
        ),
        routes: "[[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\n".into(),
        ..Setup::default()
    };
    let owned = files(&p, &["gw", "other"]);
    let borrowed: Vec<(&str, &str)> = owned.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let h = Harness::with_files(setup, &borrowed).await;
    let conf = Arc::new(server_conf(1));
    let secure = proxy_service(h.live.clone(), &conf);
    let running = start_tls_on(secure, tls_listener, listener_settings(h.live.clone(), true)).unwrap();
    (h, running, tls_addr, p)
}

fn https_client(p: &Pki, tls_addr: std::net::SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(p.ca_pem.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .resolve("gw.test", tls_addr)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(WECHAT_UA)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_client_gets_the_identity_header_through_to_the_upstream_with_hsts() {
    let (h, _tls, tls_addr, p) = tls_harness(false).await;
    // Log in (over the plain listener, whose public URL the mock knows), then use the session over TLS.
    let b = h.browser();
    assert_eq!(b.walk(&h.url("/")).await.last().unwrap().status, 200);
    let session = cookie_value(&b.cookies("/"), "ogw_session").expect("a session");
    let before = h.upstream.seen().len();

    let client = https_client(&p, tls_addr);
    let url = format!("https://gw.test:{}/orders?page=2", tls_addr.port());
    let res = client.get(&url).header("cookie", format!("ogw_session={session}")).send().await.unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_2, "ALPN should choose HTTP/2");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["strict-transport-security"], "max-age=31536000");
    assert_eq!(h.upstream.seen().len(), before + 1, "the request reached the upstream");
    let seen = h.upstream.last();
    assert_eq!(seen.path, "/orders?page=2");
    let token = seen.headers["x-openid-token"].to_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "a JWT");
    assert_eq!(seen.headers["x-forwarded-proto"], "https");

    // The HTTP/1 client deadlines (1 s here) do not cut an HTTP/2 connection that is quiet
    // between its streams.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    // The browser's plain connections were closed as idle; the HTTP/2 one is still open.
    assert_eq!(h.live.deps().metrics.connections.get(), 1, "open client connections");
    let again = client.get(&url).header("cookie", format!("ogw_session={session}")).send().await.unwrap();
    assert_eq!((again.version(), again.status().as_u16()), (reqwest::Version::HTTP_2, 200));

    // Without a session the TLS listener sends the browser to log in like the plain one, with HSTS
    // (the page that keeps the #fragment through login).
    let anonymous = client.get(&url).header("accept", "text/html").send().await.unwrap();
    assert!(anonymous.headers().contains_key("strict-transport-security"));
    assert!(anonymous.text().await.unwrap().contains("/.gateway/login"));
    assert_eq!(h.upstream.seen().len(), before + 2, "nothing forwarded without a session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_is_chosen_by_the_name_the_client_asks_for() {
    let (_h, _tls, tls_addr, p) = tls_harness(false).await;
    let mut roots = rustls::RootCertStore::empty();
    let ca = rustls::pki_types::pem::PemObject::from_pem_slice(p.ca_pem.as_bytes()).unwrap();
    roots.add(ca).unwrap();
    let config = Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth());
    let presented = |name: &'static str| {
        let config = config.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect(tls_addr).await.unwrap();
            let connector = tokio_rustls::TlsConnector::from(config);
            let stream = connector.connect(ServerName::try_from(name).unwrap(), tcp).await;
            stream.map(|s| s.get_ref().1.peer_certificates().unwrap()[0].clone())
        }
    };
    assert_eq!(presented("gw.test").await.unwrap(), p.leaves[0].2);
    assert_eq!(presented("other.test").await.unwrap(), p.leaves[1].2);
    // An unknown name gets the first certificate, which does not name it: the handshake fails.
    assert!(presented("unknown.test").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_listener_redirects_to_https_keeping_the_target() {
    let (h, _tls, tls_addr, _p) = tls_harness(true).await;
    let page = h.browser().get(&h.url("/shop/cart?x=1")).await;
    assert_eq!(page.status, 308);
    assert_eq!(page.headers["location"], format!("https://gw.test:{}/shop/cart?x=1", tls_addr.port()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_upstreams_are_verified_against_the_configured_ca_and_name() {
    let p = pki(&["backend.test"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.pem"), &p.leaves[0].0).unwrap();
    std::fs::write(dir.path().join("b.key"), &p.leaves[0].1).unwrap();
    let cert = dir.path().join("b.pem").to_string_lossy().into_owned();
    let key = dir.path().join("b.key").to_string_lossy().into_owned();
    let backend = Recorder::default();
    let up_listener = listener();
    let up_addr = up_listener.local_addr().unwrap();
    let settings = TlsSettings::intermediate(&cert, &key).unwrap();
    let _up =
        start_tls_on(ListeningService::new("https upstream".into(), backend.clone()), up_listener, settings).unwrap();

    let routes = "[[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\npolicy = \"public\"\n\
                  upstream_sni = \"backend.test\"\nupstream_ca = \"ca.pem\"\n\n\
                  [[routes]]\npath = \"/wrong-name\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\npolicy = \"public\"\n\
                  upstream_sni = \"elsewhere.test\"\nupstream_ca = \"ca.pem\"\n\n\
                  [[routes]]\npath = \"/system-roots\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\npolicy = \"public\"\n\
                  upstream_sni = \"backend.test\"\n";
    let setup = Setup { routes: routes.into(), upstream_url: Some(format!("https://{up_addr}")), ..Setup::default() };
    let h = Harness::with_files(setup, &[("ca.pem", &p.ca_pem)]).await;
    let b = h.browser();
    // First, while no verified connection to the upstream is pooled for reuse.
    for refused in ["/wrong-name/x", "/system-roots/x"] {
        let page = b.get(&h.url(refused)).await;
        assert_eq!(page.status, 502, "{refused}: an upstream that fails verification is not trusted");
    }
    assert!(backend.seen().is_empty());
    let ok = b.get(&h.url("/hello")).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(backend.last().path, "/hello");
}

/// A certificate that names only an IP address (no DNS name): `check` takes it, and the real
/// process serves it to a client that connects by that address (which sends no SNI), though a
/// certificate for a name comes first; a client naming that name still gets its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_an_ip_address_only_is_checked_and_served() {
    use common::process::{config, route, ConfigDir, Process};
    let p = pki(&["gw.test", "127.0.0.1"]);
    let up = Recorder::default();
    let up_srv =
        openid_gateway::serve::server::start_on(ListeningService::new("up".into(), up.clone()), listener()).unwrap();
    let tls = "[tls]\nlisten = \"127.0.0.1:0\"\ncertificates = [{ cert = \"gw.pem\", key = { file = \"gw.key\" } }, \
               { cert = \"ip.pem\", key = { file = \"ip.key\" } }]\n";
    let dir = ConfigDir::new(&config("http://127.0.0.1:9", "", &format!("{tls}{}", route("/", &up_srv.url()))));
    for (name, content) in files(&p, &["gw", "ip"]) {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    let checked = common::process::bin().arg("check").arg("-c").arg(dir.config()).output().unwrap();
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));

    let gw = Process::start(&dir, "gateway", &[]).await;
    let addr = gw.addr("tls.listen");
    let ca = || reqwest::Certificate::from_pem(p.ca_pem.as_bytes()).unwrap();
    // Positive control: by name (SNI gw.test), the name's certificate.
    let by_name = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca())
        .resolve("gw.test", addr)
        .build()
        .unwrap();
    let res = by_name.get(format!("https://gw.test:{}/name", addr.port())).send().await.unwrap();
    assert_eq!(res.status(), 200, "verified against gw.test");
    let by_ip = reqwest::Client::builder().tls_built_in_root_certs(false).add_root_certificate(ca()).build().unwrap();
    let res = by_ip.get(format!("https://{addr}/ip")).send().await.unwrap();
    assert_eq!(res.status(), 200, "verified against the IP address in the certificate");
    assert_eq!(up.last().path, "/ip");
}
