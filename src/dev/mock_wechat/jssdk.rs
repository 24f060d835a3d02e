//! The JS-SDK's side of the credentials: `GET /mock/jssdk/check` verifies a `wx.config`
//! signature as WeChat does (appId, the page's domain, SHA-1 over a living jsapi ticket), and
//! `GET /open/js/jweixin-1.6.0.js` is a fake SDK whose `wx.config` signs nothing itself but asks
//! that endpoint, with the page's own URL as the real SDK takes it.

use std::fmt::Write as _;

use http::Response;
use url::Url;

use super::{param, text, MockWechat};

/// `wx.config`'s signature: lowercase hex SHA-1 of
/// `jsapi_ticket=T&noncestr=N&timestamp=TS&url=U` (fields in ASCII order, names lower case).
pub fn jssdk_signature(ticket: &str, noncestr: &str, timestamp: &str, url: &str) -> String {
    let plain = format!("jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}");
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, plain.as_bytes());
    digest.as_ref().iter().fold(String::with_capacity(40), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

const OK: &str = "config:ok";
const BAD_SIGNATURE: &str = "config:invalid signature";
const BAD_DOMAIN: &str = "config:invalid url domain";
const BAD_APPID: &str = "config:invalid appId";

impl MockWechat {
    /// The `errMsg` WeChat gives `wx.config` for these parameters (`appId`, `timestamp`,
    /// `nonceStr`, `signature`, `url`), counted in the stats.
    pub(super) fn jssdk_check(&self, query: &str) -> &'static str {
        let verdict = self.jssdk_verdict(query);
        let mut st = self.lock();
        st.stats.jssdk_checks += 1;
        if verdict == OK {
            st.stats.jssdk_ok += 1;
        }
        verdict
    }

    fn jssdk_verdict(&self, query: &str) -> &'static str {
        let get = |k: &str| param(query, k).unwrap_or_default();
        if get("appId") != self.cfg.appid {
            return BAD_APPID;
        }
        let (timestamp, nonce, signature, url) = (get("timestamp"), get("nonceStr"), get("signature"), get("url"));
        let Ok(parsed) = Url::parse(&url) else { return BAD_DOMAIN };
        let ip = matches!(parsed.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)));
        let host = parsed.host_str().unwrap_or("");
        let registered = self.cfg.domains.iter().any(|d| d.eq_ignore_ascii_case(host));
        let web = matches!(parsed.scheme(), "http" | "https");
        if !web || ip || !registered || (parsed.port().is_some() && !self.cfg.allow_port) {
            return BAD_DOMAIN;
        }
        let well_formed = !timestamp.is_empty()
            && timestamp.bytes().all(|b| b.is_ascii_digit())
            && !nonce.is_empty()
            && nonce.len() <= 32
            && !url.contains('#');
        if !well_formed {
            return BAD_SIGNATURE;
        }
        let now = self.clock.now();
        let tickets = self.lock().creds.valid_tickets(now);
        if tickets.iter().any(|t| jssdk_signature(t, &nonce, &timestamp, &url) == signature) {
            OK
        } else {
            BAD_SIGNATURE
        }
    }

    /// `GET /mock/jssdk/check`: `{"errMsg":…}`, readable from any page (CORS `*`).
    pub(super) fn jssdk_check_http(&self, query: &str) -> Response<Vec<u8>> {
        let body = serde_json::json!({ "errMsg": self.jssdk_check(query) }).to_string();
        let mut r = text(200, "application/json", body);
        r.headers_mut().insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, http::HeaderValue::from_static("*"));
        r
    }
}

/// The fake `jweixin-1.6.0.js`; `__MOCK_ORIGIN__` becomes the mock's own origin.
const SCRIPT: &str = r##"// Fake jweixin-1.6.0.js from the mock WeChat: wx.config asks the mock to check the signature.
(function () {
  var origin = "__MOCK_ORIGIN__";
  var st = { done: false, ok: false, res: null, ready: [], error: [], debug: false };
  function log(m) { if (st.debug && window.console) console.log("[mock jweixin] " + m); }
  function settle(ok, res) {
    st.done = true; st.ok = ok; st.res = res;
    var fns = ok ? st.ready : st.error;
    st.ready = []; st.error = [];
    log(res.errMsg);
    fns.forEach(function (f) { ok ? f() : f(res); });
  }
  function succeed(o, name, extra) {
    var res = extra || {};
    res.errMsg = name + ":ok";
    if (o && typeof o.success === "function") o.success(res);
  }
  window.wx = {
    config: function (o) {
      o = o || {};
      st.debug = !!o.debug; st.done = false;
      var q = { appId: o.appId, timestamp: o.timestamp, nonceStr: o.nonceStr, signature: o.signature,
                url: location.href.split("#")[0] };
      var qs = Object.keys(q).map(function (k) {
        return k + "=" + encodeURIComponent(q[k] == null ? "" : String(q[k]));
      }).join("&");
      fetch(origin + "/mock/jssdk/check?" + qs)
        .then(function (r) { return r.json(); })
        .then(function (j) { settle(j.errMsg === "config:ok", { errMsg: String(j.errMsg) }); },
              function (e) { settle(false, { errMsg: "config:fail " + e }); });
    },
    ready: function (f) { if (!st.done) st.ready.push(f); else if (st.ok) f(); },
    error: function (f) { if (!st.done) st.error.push(f); else if (!st.ok) f(st.res); },
    checkJsApi: function (o) { succeed(o, "checkJsApi", { checkResult: {} }); },
    updateAppMessageShareData: function (o) { succeed(o, "updateAppMessageShareData"); }
  };
})();
"##;

/// `GET /open/js/jweixin-1.6.0.js`: the fake SDK, calling back to `http://<Host>` (a Host of
/// other characters than `[A-Za-z0-9.:-[]]` becomes `127.0.0.1`).
pub(super) fn script(host: Option<&str>) -> Response<Vec<u8>> {
    let safe = |h: &&str| {
        !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".:-[]".contains(&b))
    };
    let host = host.filter(safe).unwrap_or("127.0.0.1");
    text(200, "application/javascript", SCRIPT.replace("__MOCK_ORIGIN__", &format!("http://{host}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::mock_wechat::credentials::tests::{mock, token_query, DOMAIN};
    use crate::dev::mock_wechat::CredentialRules;

    /// A query for the check, percent-encoding the URL.
    fn check(appid: &str, ts: &str, nonce: &str, sig: &str, url: &str) -> String {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!("appId={}&timestamp={}&nonceStr={}&signature={}&url={}", enc(appid), enc(ts), enc(nonce), sig, enc(url))
    }

    #[test]
    fn signature_is_sha1_of_the_sorted_fields() {
        // WeChat's documented example (JS-SDK appendix 1).
        let sig = jssdk_signature(
            "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg",
            "Wm3WZYTPz0wzccnW",
            "1414587457",
            "http://mp.weixin.qq.com?params=value",
        );
        assert_eq!(sig, "0f9de62fce790f9a083d5c99e95740ceb90c27ed");
    }

    #[test]
    fn a_page_signed_with_a_living_ticket_passes_and_forgeries_do_not() {
        let (m, _clock) = mock(CredentialRules::default());
        let (token, _) = m.classic_token(&token_query(), None).unwrap();
        let (ticket, _) = m.ticket(&format!("access_token={token}&type=jsapi")).unwrap();
        let appid = m.cfg.appid.clone();
        let page = format!("https://{DOMAIN}/shop/item?id=7&from=share");
        let good = jssdk_signature(&ticket, "nonce123", "1700000000", &page);
        assert_eq!(m.jssdk_check(&check(&appid, "1700000000", "nonce123", &good, &page)), OK);

        assert_eq!(m.jssdk_check(&check("wxOTHER", "1700000000", "nonce123", &good, &page)), BAD_APPID);
        assert_eq!(m.jssdk_check(&check(&appid, "1700000001", "nonce123", &good, &page)), BAD_SIGNATURE);
        assert_eq!(m.jssdk_check(&check(&appid, "1700000000", "nonce123", &good.to_uppercase(), &page)), BAD_SIGNATURE);
        let forged = jssdk_signature("made-up-ticket", "nonce123", "1700000000", &page);
        assert_eq!(m.jssdk_check(&check(&appid, "1700000000", "nonce123", &forged, &page)), BAD_SIGNATURE);
        // The URL as signed: with a fragment it is refused, whatever the signature.
        let frag = format!("{page}#top");
        let sig = jssdk_signature(&ticket, "nonce123", "1700000000", &frag);
        assert_eq!(m.jssdk_check(&check(&appid, "1700000000", "nonce123", &sig, &frag)), BAD_SIGNATURE);
        let long = "n".repeat(33);
        let sig = jssdk_signature(&ticket, &long, "1700000000", &page);
        assert_eq!(m.jssdk_check(&check(&appid, "1700000000", &long, &sig, &page)), BAD_SIGNATURE);

        for other in [
            "https://evil.test/shop".to_string(),
            format!("https://sub.{DOMAIN}/shop"),
            format!("https://{DOMAIN}:8443/shop"),
            format!("ftp://{DOMAIN}/shop"),
            "https://127.0.0.1/shop".to_string(),
        ] {
            let sig = jssdk_signature(&ticket, "nonce123", "1700000000", &other);
            assert_eq!(m.jssdk_check(&check(&appid, "1700000000", "nonce123", &sig, &other)), BAD_DOMAIN, "{other}");
        }

        // The ticket dies with its token.
        m.invalidate_tokens();
        assert_eq!(m.jssdk_check(&check(&appid, "1700000000", "nonce123", &good, &page)), BAD_SIGNATURE);
        let s = m.stats();
        assert_eq!((s.jssdk_checks, s.jssdk_ok), (13, 1));
    }

    #[test]
    fn the_script_calls_back_to_a_clean_host_only() {
        let body = |r: Response<Vec<u8>>| String::from_utf8(r.into_body()).unwrap();
        let r = script(Some("127.0.0.1:8081"));
        assert_eq!(r.headers()["content-type"], "application/javascript");
        let js = body(r);
        assert!(js.contains("\"http://127.0.0.1:8081\"") && js.contains("location.href.split(\"#\")[0]"));
        assert!(body(script(Some("[::1]:80"))).contains("\"http://[::1]:80\""));
        for bad in ["evil\";alert(1);//", "a b", ""] {
            assert!(body(script(Some(bad))).contains("\"http://127.0.0.1\""), "{bad}");
        }
        assert!(body(script(None)).contains("\"http://127.0.0.1\""));
    }
}
