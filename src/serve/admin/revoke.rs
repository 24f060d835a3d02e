//! `POST /revoke`: ends sessions of a user or of an app, on every replica.

use http::Response;
use serde_json::json;

use super::json_reply;
use crate::runtime::live::LiveGateway;

/// `POST /revoke?app=NAME&openid=OPENID` ends every session of that user; `POST
/// /revoke?app=NAME&all=true` every session of the app. `app` may be left out with one app.
pub(super) async fn revoke(live: &LiveGateway, query: &str) -> Response<Vec<u8>> {
    let gw = live.current();
    let param =
        |k: &str| url::form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == k).map(|(_, v)| v.into_owned());
    let bad = |m: &str| json_reply(400, json!({"error": "bad_request", "message": m}));
    let app = match param("app") {
        Some(name) => gw.apps().iter().find(|a| a.config.name == name),
        None if gw.apps().len() == 1 => gw.apps().first(),
        None => return bad("name the app: app=NAME"),
    };
    let Some(app) = app else { return bad("no app by that name") };
    let appid = &app.config.wechat.appid;
    let (now, lifetime) = (gw.now(), gw.config.session.lifetime.as_secs());
    let (everywhere, body) = match (param("openid").filter(|o| !o.is_empty()), param("all").as_deref()) {
        (Some(openid), _) => {
            let everywhere = gw.state().revoke_all(appid, Some(&openid), now, lifetime).await;
            log::warn!("admin: every session of one user of app {} revoked", app.config.name);
            (everywhere, json!({"revoked": "user", "app": app.config.name}))
        }
        (None, Some("true")) => {
            let everywhere = gw.state().revoke_all(appid, None, now, lifetime).await;
            log::warn!("admin: every session of app {} revoked", app.config.name);
            (everywhere, json!({"revoked": "app", "app": app.config.name}))
        }
        _ => return bad("give openid=OPENID, or all=true for every session of the app"),
    };
    if !everywhere {
        let body = json!({"error": "state_unavailable", "message": "Redis did not answer: revoked on this replica now, on the others once Redis answers again"});
        return json_reply(503, body);
    }
    json_reply(200, body)
}
