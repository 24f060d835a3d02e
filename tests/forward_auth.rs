//! Forward auth in process: the sub-requests nginx, Traefik and Caddy make, answered as the
//! gateway would answer the original request in front.

mod common;

use common::*;

fn trusted() -> Setup {
    Setup { top: "trusted_proxies = [\"127.0.0.1\"]\n".into(), ..Setup::default() }
}

/// The front proxy's sub-request for the original `uri` on gw.test, with `extra` headers.
async fn ask(h: &Harness, endpoint: &str, uri: &str, extra: &[(&str, &str)]) -> Page {
    let b = h.browser();
    let mut headers = vec![
        ("x-original-uri", uri),
        ("x-forwarded-uri", uri),
        ("x-forwarded-host", PUBLIC_HOST),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-method", "GET"),
        ("accept", NAV_ACCEPT),
    ];
    headers.extend_from_slice(extra);
    b.get_with(&h.url(&format!("/.gateway/{endpoint}")), &headers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_granted_with_a_token_and_none_is_sent_to_the_login() {
    let h = Harness::with(trusted()).await;
    // No session: nginx is told 401; Traefik and Caddy pass on what the browser gets in front,
    // never with a 2xx status.
    assert_eq!(ask(&h, "auth/nginx", "/shop", &[]).await.status, 401);
    let page = ask(&h, "auth", "/shop", &[]).await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(page.body.contains("/.gateway/login"), "{}", page.body);
    // A public path is granted, without a token.
    let public = ask(&h, "auth", "/public/a", &[]).await;
    assert_eq!(public.status, 200);
    assert_eq!(public.headers.get("x-openid-token").map(|v| v.to_str().unwrap()), Some(""));

    // After a login, the session cookie is granted a token for the route's audience.
    let b = logged_in(&h).await;
    let cookie = format!("ogw_session={}", cookie_value(&b.cookies("/"), "ogw_session").unwrap());
    for endpoint in ["auth", "auth/nginx"] {
        let page = ask(&h, endpoint, "/shop/x?y=1", &[("cookie", &cookie)]).await;
        assert_eq!(page.status, 200, "{endpoint}: {}", page.body);
        let token = page.headers["x-openid-token"].to_str().unwrap();
        let c = claims(token);
        assert_eq!((c.sub.as_str(), c.aud.as_str()), (h.mock.openid_for("alice").as_str(), "shop"));
        assert_eq!(page.headers["x-openid"].to_str().unwrap(), c.sub);
    }
    // A path trick is judged on the canonical path.
    let tricked = ask(&h, "auth/nginx", "/public/../shop", &[]).await;
    assert_eq!(tricked.status, 401, "/public/../shop is /shop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_trusted_proxies_are_answered() {
    let h = Harness::start().await;
    let page = ask(&h, "auth/nginx", "/public/a", &[]).await;
    assert_eq!(page.status, 403, "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_and_ingress_nginx_describe_the_original_request_their_way() {
    let h = Harness::with(trusted()).await;
    let b = logged_in(&h).await;
    let cookie = format!("ogw_session={}", cookie_value(&b.cookies("/"), "ogw_session").unwrap());
    let anon = h.browser();

    // Envoy: the original path after path_prefix, the original Host and method as they are.
    let granted = anon.get_with(&h.url("/.gateway/auth/envoy/shop/x?y=1"), &[("cookie", &cookie)]).await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    assert_eq!(claims(granted.headers["x-openid-token"].to_str().unwrap()).aud, "shop");
    let login = anon.get_with(&h.url("/.gateway/auth/envoy/shop/x"), &[("accept", NAV_ACCEPT)]).await;
    assert_eq!(login.status, 401, "never 2xx without a session: {}", login.body);
    let script = anon.get_with(&h.url("/.gateway/auth/envoy/shop/x"), &[("x-requested-with", "XMLHttpRequest")]).await;
    assert_eq!(script.status, 401);
    assert!(script.body.contains("/.gateway/login"), "{}", script.body);
    // A path that climbs out of the prefix is not the envoy endpoint at all.
    let climbed = anon.get(&h.url("/.gateway/auth/envoy/../../shop")).await;
    assert_ne!(climbed.status, 200);

    // ingress-nginx: the whole original URL in X-Original-URL; Host is the gateway's Service.
    let svc = browser(WECHAT_UA, "openid-gateway.h5.svc.cluster.local", h.gateway_addr);
    let url = "http://openid-gateway.h5.svc.cluster.local/.gateway/auth/nginx";
    let original = [("x-original-url", "http://gw.test/shop/y?z=2"), ("x-original-method", "GET")];
    let with_cookie = [original[0], original[1], ("cookie", cookie.as_str())];
    assert_eq!(svc.get_with(url, &with_cookie).await.status, 200);
    assert_eq!(svc.get_with(url, &original).await.status, 401);
    // Without any description of the original request: refused, never granted.
    assert_eq!(svc.get_with(url, &[("cookie", cookie.as_str())]).await.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_own_paths_are_never_granted() {
    let h = Harness::with(trusted()).await;
    for uri in ["/.gateway/callback?code=x&state=y", "/.gateway/jwks.json", "/shop/../.gateway/login"] {
        for endpoint in ["auth", "auth/nginx"] {
            let page = ask(&h, endpoint, uri, &[]).await;
            assert_ne!(page.status, 200, "{endpoint} {uri}: {}", page.body);
        }
    }
}
