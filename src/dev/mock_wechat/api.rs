//! `GET /sns/oauth2/access_token`: the code exchange, with WeChat's error codes, always as
//! HTTP 200 JSON served as `text/plain`.

use http::Response;

use super::{param, text, Fault, Grant, MockWechat, CODE_LIFETIME_SECS};
use crate::util::clock::base62_nonce;

impl MockWechat {
    pub(super) async fn access_token(&self, query: &str) -> Response<Vec<u8>> {
        self.lock().stats.exchanges += 1;
        if let Some(failed) = self.play_fault().await {
            return failed;
        }
        let get = |k: &str| param(query, k).filter(|v| !v.is_empty());
        let (Some(appid), Some(secret)) = (get("appid"), get("secret")) else {
            return match get("appid") {
                None => self.error(41002, "appid missing"),
                Some(_) => self.error(41004, "appsecret missing"),
            };
        };
        if appid != self.cfg.appid {
            return self.error(40013, "invalid appid");
        }
        if secret != self.cfg.secret {
            return self.error(40125, "invalid appsecret");
        }
        let Some(code) = get("code") else {
            return self.error(41008, "missing code");
        };
        if get("grant_type").as_deref() != Some("authorization_code") {
            return self.error(40002, "invalid grant_type");
        }
        let now = self.clock.now();
        let answer = {
            let mut state = self.lock();
            match state.codes.get_mut(&code) {
                None => Err((40029, "invalid code")),
                Some(c) if c.used => Err((40163, "code been used")),
                Some(c) if now >= c.issued + CODE_LIFETIME_SECS => Err((40029, "invalid code")),
                Some(c) => {
                    c.used = true;
                    let (user, openid, scope, snapshot) =
                        (c.user.clone(), c.openid.clone(), c.scope.clone(), c.snapshot);
                    state.stats.successes += 1;
                    let token = base62_nonce(self.entropy.as_ref(), 86);
                    let grant = Grant { user, openid: openid.clone(), scope: scope.clone() };
                    state.tokens.insert(token.clone(), grant);
                    Ok((token, openid, scope, snapshot))
                }
            }
        };
        match answer {
            Err((errcode, msg)) => self.error(errcode, msg),
            Ok((token, openid, scope, snapshot)) => {
                let mut body = serde_json::json!({
                    "access_token": token,
                    "expires_in": 7200,
                    "refresh_token": base62_nonce(self.entropy.as_ref(), 86),
                    "openid": openid,
                    "scope": scope,
                });
                if snapshot {
                    body["is_snapshotuser"] = 1.into();
                }
                text(200, "text/plain", body.to_string())
            }
        }
    }

    /// `GET /sns/userinfo?access_token=&openid=&lang=`: the profile, for userinfo tokens only.
    pub(super) fn userinfo(&self, query: &str) -> Response<Vec<u8>> {
        let get = |k: &str| param(query, k).filter(|v| !v.is_empty());
        let profile = {
            let state = self.lock();
            match get("access_token").and_then(|t| state.tokens.get(&t)) {
                None => Err((40001, "invalid credential, access_token is invalid or not latest")),
                Some(g) if get("openid").as_deref() != Some(g.openid.as_str()) => Err((40003, "invalid openid")),
                Some(g) if g.scope != "snsapi_userinfo" => Err((48001, "api unauthorized")),
                Some(g) => Ok((g.user.clone(), g.openid.clone())),
            }
        };
        match profile {
            Err((errcode, msg)) => self.error(errcode, msg),
            Ok((user, openid)) => text(200, "text/plain", self::profile(&user, &openid).to_string()),
        }
    }

    /// Plays the next queued [`Fault`]: the answer to send instead, or `None` to answer
    /// normally (after a slow fault's delay, or when none is queued).
    pub(super) async fn play_fault(&self) -> Option<Response<Vec<u8>>> {
        let fault = self.lock().faults.pop_front();
        match fault {
            Some(Fault::Errcode(c)) => Some(self.error(c, "system error")),
            Some(Fault::Http500) => {
                Some(text(500, "text/html", "<html><body>500 Internal Server Error</body></html>".into()))
            }
            Some(Fault::Malformed) => Some(text(200, "text/plain", "<html>upstream gateway error".into())),
            Some(Fault::Slow(d)) => {
                tokio::time::sleep(d).await;
                None
            }
            None => None,
        }
    }

    /// `{"errcode":N,"errmsg":"..., rid: ..."}` with HTTP 200, as WeChat answers.
    pub(super) fn error(&self, errcode: i64, errmsg: &str) -> Response<Vec<u8>> {
        let rid = base62_nonce(self.entropy.as_ref(), 24).to_lowercase();
        let rid = format!("{}-{}-{}", &rid[..8], &rid[8..16], &rid[16..]);
        let body = serde_json::json!({ "errcode": errcode, "errmsg": format!("{errmsg}, rid: {rid}") });
        text(200, "text/plain", body.to_string())
    }
}

/// The `/sns/userinfo` profile of `user` under `openid`.
pub(super) fn profile(user: &str, openid: &str) -> serde_json::Value {
    serde_json::json!({
        "openid": openid,
        "nickname": format!("{user}·微信"),
        "sex": 0,
        "province": "",
        "city": "",
        "country": "",
        "headimgurl": format!("https://thirdwx.qlogo.cn/mmopen/vi_32/{}/132", super::openid("avatar", user)),
        "privilege": [],
        "unionid": super::unionid(user),
    })
}
