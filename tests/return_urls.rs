//! Return URLs through the running gateway under the `[paths]` setting that used to reopen an
//! open redirect: with `merge_slashes = false`, `/.//evil.test` is canonically `//evil.test`,
//! which a browser reads as another host. Neither the logout nor the login may send a browser
//! there. (The rule itself, under every setting, is property-tested in `login::returns`.)

mod common;

use common::*;

const PAYLOADS: [&str; 4] = ["%2F.%2F%2Fevil.test", "/.//evil.test", "/x/..//evil.test%2Fpath", "/./%2F%2Fevil.test"];

fn setup(escaped_slashes: &str) -> Setup {
    Setup {
        tables: format!("[paths]\nmerge_slashes = false\nescaped_slashes = \"{escaped_slashes}\"\n"),
        ..Setup::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_never_sends_a_browser_off_the_site() {
    for escaped in ["reject", "keep", "unescape"] {
        let h = Harness::with(setup(escaped)).await;
        let b = h.browser();
        // Positive control: a path on this site is where logout goes.
        let ok = b.get(&h.url("/.gateway/logout?return=%2Forders%2F%2F42")).await;
        assert_eq!((ok.status, ok.location()), (302, "/orders//42"), "{escaped}");
        for payload in PAYLOADS {
            let page = b.get(&h.url(&format!("/.gateway/logout?return={payload}"))).await;
            let target = page.next_url();
            assert!(
                target.as_deref().is_none_or(|t| url::Url::parse(t).unwrap().host_str() == Some(PUBLIC_HOST)),
                "{payload} with escaped_slashes={escaped}: {} {:?}",
                page.status,
                target
            );
            assert!(!page.body.contains("evil.test"), "{payload}: the refused value is not echoed");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_lands_on_the_site_whatever_return_it_was_given() {
    let h = Harness::with(setup("unescape")).await;
    // Positive control: a login with a good return lands there.
    let pages = h.browser().walk(&h.url("/.gateway/login?return=%2Fpublic%2F%2Fx")).await;
    assert_eq!(pages.last().unwrap().url, h.url("/public//x"));
    for payload in PAYLOADS {
        let b = h.browser();
        let pages =
            b.walk_until(&h.url(&format!("/.gateway/login?return={payload}")), |u| u.contains("evil.test")).await;
        let last = pages.last().unwrap();
        let trail: Vec<_> = pages.iter().map(|p| (p.status, p.url.clone())).collect();
        assert!(!last.next_url().unwrap_or_default().contains("evil.test"), "{payload}: {trail:?}");
        // Refused on the spot (400), or logged in and landed on a page of the site.
        assert!(matches!(last.status, 200 | 400), "{payload}: {trail:?}");
        assert_eq!(url::Url::parse(&last.url).unwrap().host_str(), Some(PUBLIC_HOST), "{payload}: {trail:?}");
    }
}
