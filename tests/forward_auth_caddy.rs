//! Forward auth behind a real Caddy (Debian's, started here on a free port): `forward_auth` to
//! `<prefix>/auth` copying the token header, `<prefix>/*` proxied to the gateway. A complete
//! silent login through Caddy lands on the upstream with a token that verifies; without a
//! session nothing is forwarded (Caddy passes the gateway's answer to the browser); a client's
//! own token or forged `X-Forwarded-Uri` gets nothing.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::process::Listening;
use common::*;

const CADDY: &str = "/usr/bin/caddy";

/// Caddy in front of `gateway` and `upstream`, as deploy/forward-auth/Caddyfile has it.
fn caddyfile(port: u16, gateway: SocketAddr, upstream: &str) -> String {
    format!(
        "{{\n\tadmin off\n\tauto_https off\n}}\n\
         http://{PUBLIC_HOST}:{port} {{\n\tbind 127.0.0.1\n\
         \thandle /.gateway/auth* {{\n\t\trespond 404\n\t}}\n\
         \thandle /.gateway/* {{\n\t\treverse_proxy {gateway}\n\t}}\n\
         \thandle {{\n\t\troute {{\n\
         \t\t\trequest_header -X-Openid-Token\n\t\t\trequest_header -X-Openid\n\t\t\trequest_header -X-Openid-Appid\n\
         \t\t\tforward_auth {gateway} {{\n\t\t\t\turi /.gateway/auth\n\
         \t\t\t\tcopy_headers X-Openid-Token X-Openid X-Openid-Appid\n\t\t\t}}\n\
         \t\t\treverse_proxy {upstream}\n\t\t}}\n\t}}\n}}\n"
    )
}

fn start_caddy(gateway: SocketAddr, upstream: &str) -> Listening {
    prepare::apt("caddy", &["caddy"], &[CADDY]);
    let dir = tempfile::tempdir().unwrap();
    let port = listener().local_addr().unwrap().port();
    let file = dir.path().join("Caddyfile");
    std::fs::write(&file, caddyfile(port, gateway, upstream)).unwrap();
    let mut cmd = Command::new(CADDY);
    cmd.args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&file)
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path());
    Listening::spawn(&mut cmd, "caddy", port, dir, None, Duration::from_secs(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_login_through_caddy_lands_on_the_upstream_with_a_token() {
    let h = Harness::with(Setup { top: "trusted_proxies = [\"127.0.0.1\"]\n".into(), ..Setup::default() }).await;
    let upstream = h.config.routes[0].upstream.address.clone();
    let caddy = start_caddy(h.gateway_addr, &upstream);
    let b = browser(WECHAT_UA, PUBLIC_HOST, caddy.addr);

    // Without a session nothing reaches the upstream: the browser gets the gateway's page.
    let forged = [("x-openid-token", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."), ("x-forwarded-uri", "/public/a")];
    let page = b.get_with(&format!("http://{PUBLIC_HOST}/shop/cart"), &forged).await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(page.body.contains("/.gateway/login"), "{}", page.body);
    assert!(h.upstream.seen().is_empty(), "forwarded without a session: {:?}", h.upstream.seen());

    // The whole silent login through Caddy (the fragment-keeping page, WeChat, the callback),
    // back on the page with a token.
    let pages = b.walk(&format!("http://{PUBLIC_HOST}/shop/cart?x=1")).await;
    let last = pages.last().unwrap();
    assert_eq!((last.status, last.body.as_str()), (200, "upstream saw /shop/cart?x=1"), "{pages:?}");
    let token = h.upstream.last().headers["x-openid-token"].to_str().unwrap().to_string();
    let c = claims(&token);
    assert_eq!((c.sub.as_str(), c.aud.as_str()), (h.mock.openid_for("alice").as_str(), "shop"));
    assert_eq!(h.upstream.last().headers["x-openid"].to_str().unwrap(), c.sub);

    // A client's own token is replaced by the gateway's; on a public path, emptied.
    b.get_with(&format!("http://{PUBLIC_HOST}/shop/again"), &forged[..1]).await;
    assert_eq!(claims(h.upstream.last().headers["x-openid-token"].to_str().unwrap()).sub, c.sub);
    let anon = browser(WECHAT_UA, PUBLIC_HOST, caddy.addr);
    let identity = [forged[0], ("x-openid", "o-forged"), ("x-openid-appid", "wx-forged")];
    let public = anon.get_with(&format!("http://{PUBLIC_HOST}/public/x"), &identity).await;
    assert_eq!(public.status, 200);
    for name in ["x-openid-token", "x-openid", "x-openid-appid"] {
        let seen = h.upstream.last().headers.get(name).map(|v| v.to_str().unwrap().to_string());
        assert!(seen.as_deref().unwrap_or_default().is_empty(), "a client's {name} reached the upstream: {seen:?}");
    }
    // Forward auth answers Caddy only: a client asking it through Caddy gets nothing.
    let direct = [("x-forwarded-uri", "/shop/cart")];
    assert_eq!(b.get_with(&format!("http://{PUBLIC_HOST}/.gateway/auth"), &direct).await.status, 404);
}
