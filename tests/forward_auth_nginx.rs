//! Forward auth behind a real nginx (Debian's, started here on a free port): `auth_request`
//! to `<prefix>/auth/nginx`, `error_page 401` to `<prefix>/auth/signin`, `<prefix>/` proxied
//! to the gateway. A complete silent login through nginx lands on the upstream with a token
//! that verifies; without a session nothing is forwarded; a client's own token or forged
//! original URI gets nothing.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::process::Listening;
use common::*;

const NGINX: &str = "/usr/sbin/nginx";

/// nginx in front of `gateway` and `upstream`, as deploy/forward-auth/nginx.conf has it.
fn nginx_conf(dir: &std::path::Path, port: u16, gateway: SocketAddr, upstream: &str) -> String {
    let upstream = upstream.trim_start_matches("http://");
    let d = dir.display();
    let proxy_headers = "proxy_set_header Host $host;\n\
         proxy_set_header X-Forwarded-Proto $scheme;\n\
         proxy_set_header X-Forwarded-Host $host;\n\
         proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n";
    format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/tmp;\n proxy_temp_path {d}/tmp;\n\
         fastcgi_temp_path {d}/tmp;\n uwsgi_temp_path {d}/tmp;\n scgi_temp_path {d}/tmp;\n\
         server {{\n listen 127.0.0.1:{port};\n\
         location ^~ /.gateway/auth {{ return 404; }}\n\
         location /.gateway/ {{ proxy_pass http://{gateway}; {proxy_headers} }}\n\
         location = /_openid_auth {{\n internal;\n proxy_pass http://{gateway}/.gateway/auth/nginx;\n\
           proxy_pass_request_body off;\n proxy_set_header Content-Length \"\";\n\
           proxy_set_header X-Original-URI $request_uri;\n proxy_set_header X-Original-Method $request_method;\n\
           proxy_set_header X-Original-URL \"\";\n\
           {proxy_headers} }}\n\
         location @openid_signin {{\n rewrite ^ /.gateway/auth/signin break;\n proxy_pass http://{gateway};\n\
           proxy_set_header X-Original-URI $request_uri;\n proxy_set_header X-Original-Method $request_method;\n\
           {proxy_headers} }}\n\
         location / {{\n auth_request /_openid_auth;\n auth_request_set $openid_token $upstream_http_x_openid_token;\n\
           error_page 401 = @openid_signin;\n proxy_set_header X-Openid-Token $openid_token;\n\
           proxy_pass http://{upstream};\n }}\n }}\n}}\n"
    )
}

fn free_port() -> u16 {
    listener().local_addr().unwrap().port()
}

fn start_nginx(gateway: SocketAddr, upstream: &str) -> Listening {
    prepare::apt("nginx", &["nginx"], &[NGINX]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
    let port = free_port();
    std::fs::write(dir.path().join("nginx.conf"), nginx_conf(dir.path(), port, gateway, upstream)).unwrap();
    let mut cmd = Command::new(NGINX);
    cmd.arg("-c").arg(dir.path().join("nginx.conf")).arg("-p").arg(dir.path());
    Listening::spawn(&mut cmd, "nginx", port, dir, Some("error.log"), Duration::from_secs(10))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_login_through_nginx_lands_on_the_upstream_with_a_token() {
    // A second host whose every path is public: judging a request as if for it would let it
    // through.
    let routes = format!(
        "{}\n[[routes]]\nhost = \"open.test\"\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"open\"\npolicy = \"public\"\n",
        Setup::default().routes
    );
    let setup = Setup { top: "trusted_proxies = [\"127.0.0.1\"]\n".into(), routes, ..Setup::default() };
    let h = Harness::with(setup).await;
    let upstream = h.config.routes[0].upstream.address.clone();
    let nginx = start_nginx(h.gateway_addr, &format!("http://{upstream}"));
    let b = browser(WECHAT_UA, PUBLIC_HOST, nginx.addr);

    // Without a session nothing reaches the upstream, whatever the client sends.
    let forged = [("x-openid-token", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."), ("x-original-uri", "/public/a")];
    let page = b.get_with(&format!("http://{PUBLIC_HOST}/shop/cart"), &forged).await;
    assert!(page.status != 200 || page.body.contains("/.gateway/login"), "{}", page.body);
    for other in [
        ("x-original-url", "http://gw.test/public/a"),
        ("x-original-url", "http://open.test/shop/cart"),
        ("x-forwarded-uri", "/public/a"),
        ("x-forwarded-host", "elsewhere.test"),
        ("x-original-method", "OPTIONS"),
    ] {
        let page = b.get_with(&format!("http://{PUBLIC_HOST}/shop/cart"), &[other]).await;
        assert!(page.status != 200 || page.body.contains("/.gateway/login"), "{other:?}: {}", page.body);
    }
    assert!(h.upstream.seen().is_empty(), "forwarded without a session: {:?}", h.upstream.seen());
    // Forward auth answers nginx only: a client asking it through nginx gets nothing.
    let direct = [("x-original-uri", "/shop/cart")];
    let page = b.get_with(&format!("http://{PUBLIC_HOST}/.gateway/auth/nginx"), &direct).await;
    assert_eq!(page.status, 404, "{}", page.body);

    // The whole silent login through nginx, back on the page with a token.
    let pages = b.walk(&format!("http://{PUBLIC_HOST}/shop/cart?x=1")).await;
    let last = pages.last().unwrap();
    assert_eq!((last.status, last.body.as_str()), (200, "upstream saw /shop/cart?x=1"), "{pages:?}");
    let token = h.upstream.last().headers["x-openid-token"].to_str().unwrap().to_string();
    let c = claims(&token);
    assert_eq!((c.sub.as_str(), c.aud.as_str()), (h.mock.openid_for("alice").as_str(), "shop"));

    // A client's own token is replaced by the gateway's; on a public path, dropped.
    b.get_with(&format!("http://{PUBLIC_HOST}/shop/again"), &forged[..1]).await;
    assert_eq!(claims(h.upstream.last().headers["x-openid-token"].to_str().unwrap()).sub, c.sub);
    let anon = browser(WECHAT_UA, PUBLIC_HOST, nginx.addr);
    let public = anon.get_with(&format!("http://{PUBLIC_HOST}/public/x"), &forged[..1]).await;
    assert_eq!(public.status, 200);
    assert!(h.upstream.last().headers.get("x-openid-token").is_none(), "a client's token reached the upstream");

    // A path trick is judged on the canonical path: /public/../shop is /shop.
    let tricked = anon.get(&format!("http://{PUBLIC_HOST}/public/%2e%2e/shop")).await;
    assert!(h.upstream.last().path.starts_with("/public/x"), "{tricked:?}");
}
