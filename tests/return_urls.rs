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

/// The page a request asked for is a return value too: with `merge_slashes = false`, a request
/// for `//evil.test/x` has that canonical path, and the login it starts must land on
/// `http://gw.test//evil.test/x`, never `Location: //evil.test/x#`, and no error page may link
/// there. Each way into the login: the direct one (`keep_fragment = false`), and the page that
/// keeps the fragment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_whose_canonical_path_is_scheme_relative_is_returned_to_on_this_site() {
    for keep_fragment in [false, true] {
        let h = Harness::with(Setup {
            tables: "[paths]\nmerge_slashes = false\n".into(),
            routes: format!(
                "[[routes]]\npath = \"/\"\nupstream = \"UPSTREAM\"\naudience = \"shop\"\nkeep_fragment = {keep_fragment}\n"
            ),
            ..Setup::default()
        })
        .await;
        // Positive control: an ordinary page is returned to by its path.
        let pages = h.browser().walk(&h.url("/orders//42")).await;
        assert_eq!(
            (pages.last().unwrap().status, pages.last().unwrap().url.as_str()),
            (200, "http://gw.test/orders//42")
        );

        let b = h.browser();
        let off_site = |u: &str| url::Url::parse(u).unwrap().host_str() == Some("evil.test");
        let pages = b.walk_until(&h.url("//evil.test/x"), off_site).await;
        let trail: Vec<_> = pages.iter().map(|p| (p.status, p.url.clone(), p.location().to_string())).collect();
        for p in &pages {
            assert!(
                !p.location().starts_with("//") && !p.location().starts_with("/\\"),
                "keep_fragment={keep_fragment}: {trail:?}"
            );
            assert!(!p.body.contains("href=\"//"), "a link off the site: {}", p.body);
        }
        let last = pages.last().unwrap();
        assert_eq!(
            (last.status, last.url.as_str()),
            (200, "http://gw.test//evil.test/x"),
            "keep_fragment={keep_fragment}: {trail:?}"
        );
        assert_eq!(h.upstream.last().path, "//evil.test/x");
    }
}
