//! What a person (a page) or a script (JSON) is shown for each [`GatewayError`]: the one
//! place errors become answers.

use super::{Action, Bilingual, Page};
use crate::http::error::{wait_secs, GatewayError, Refusal};
use crate::http::reply::{Header, Reply};
use crate::wechat::errcode::ErrClass;
use crate::wechat::ExchangeError;

const RETRY: Bilingual = Bilingual { zh: "重新登录", en: "Log in again" };
const TRY_AGAIN: Bilingual = Bilingual { zh: "重试", en: "Try again" };
const HOME: Bilingual = Bilingual { zh: "返回首页", en: "Go to the home page" };

/// The answer for `e`: the page, or for a script (`api`) the same status with
/// `{"error": code, "message": ..., "request_id": ...}`. A 429 says when to retry.
pub fn reply_for(e: &GatewayError, request_id: &str, api: bool) -> Reply {
    let mut reply = if api {
        let body = serde_json::json!({ "error": e.code(), "message": e.to_string(), "request_id": request_id });
        Reply::json(e.status(), body.to_string())
    } else {
        page(e, request_id)
    };
    if let GatewayError::TooMany { wait } = e {
        reply = reply.with_header(Header::RetryAfter, wait_secs(*wait).to_string());
    }
    reply
}

/// The page for `e`, carrying `request_id`.
pub fn page(e: &GatewayError, request_id: &str) -> Reply {
    let status = e.status();
    let page = |title: Bilingual<'_>, message: Bilingual<'_>, action: Option<Action<'_>>| {
        Page { status, title, message, action, request_id, details: &[], figure: None }.render()
    };
    match e {
        GatewayError::NoRoute | GatewayError::NoEndpoint | GatewayError::NoApp => page(
            Bilingual { zh: "页面不存在", en: "Not found" },
            Bilingual { zh: "没有找到这个地址对应的页面。", en: "Nothing is served at this address." },
            None,
        ),
        GatewayError::LoginCookieMissing => loop_page(
            status,
            "/",
            Bilingual {
                zh: "从微信返回时，浏览器没有带回登录信息（登录超时或 Cookie 未保存），因此已停止自动跳转。常见原因：",
                en: "The browser came back from WeChat without its login cookie (the login took too long, or the cookie was not kept), so automatic redirects have stopped. Common causes:",
            },
            request_id,
        ),
        GatewayError::LoginLoop { retry } => loop_page(
            status,
            retry,
            Bilingual {
                zh: "这个浏览器被多次送去微信登录，但没有保存登录状态，因此已停止自动跳转。常见原因：",
                en: "This browser was sent to WeChat login several times without keeping the login, so automatic redirects have stopped. Common causes:",
            },
            request_id,
        ),
        GatewayError::BadRequest { .. } => page(
            Bilingual { zh: "请求无效", en: "Bad request" },
            Bilingual {
                zh: "这个地址的写法无法被安全地处理（例如含有编码的斜杠、反斜杠或 ..），已被拒绝。",
                en: "This address is written in a way that cannot be handled safely (such as an encoded slash, a backslash or ..), so it was refused.",
            },
            again("/", HOME),
        ),
        GatewayError::BadHost => page(
            Bilingual { zh: "请求无效", en: "Bad request" },
            Bilingual {
                zh: "请求中的主机名（Host）不是有效的“主机名[:端口]”，已被拒绝。请检查网址后重试。",
                en: "The host name (Host) of this request is not a valid host[:port], so it was refused. Check the address and try again.",
            },
            None,
        ),
        GatewayError::UriTooLong => page(
            Bilingual { zh: "网址过长", en: "Address too long" },
            Bilingual { zh: "这个网址超过了允许的长度。", en: "This address is longer than allowed." },
            again("/", HOME),
        ),
        GatewayError::HeadersTooLarge => page(
            Bilingual { zh: "请求头过大", en: "Request headers too large" },
            Bilingual {
                zh: "浏览器发送的 Cookie 或请求头过多。请清除本站 Cookie 后重试。",
                en: "The browser sent too many or too large cookies or headers. Clear this site's cookies and try again.",
            },
            None,
        ),
        GatewayError::BodyTooLarge => page(
            Bilingual { zh: "内容过大", en: "Content too large" },
            Bilingual { zh: "上传的内容超过了允许的大小。", en: "What was sent is larger than allowed." },
            None,
        ),
        GatewayError::HeaderTimeout => page(
            Bilingual { zh: "请求超时", en: "Request timeout" },
            Bilingual { zh: "请求没有在规定时间内发送完成。", en: "The request was not received in time." },
            again("/", TRY_AGAIN),
        ),
        GatewayError::TooMany { wait } => {
            let secs = wait_secs(*wait);
            Page {
                status,
                title: Bilingual { zh: "请求过于频繁", en: "Too many requests" },
                message: Bilingual {
                    zh: &format!("来自这个网络的登录请求过多，请 {secs} 秒后再试。"),
                    en: &format!("Too many logins from this network. Please try again in {secs} seconds."),
                },
                action: None,
                request_id,
                details: &[],
                figure: None,
            }
            .render()
        }
        GatewayError::LoginSpent { retry } => page(
            Bilingual { zh: "登录链接已失效", en: "Login link expired" },
            Bilingual {
                zh: "这次登录已经使用过。请重新登录。",
                en: "This login was already used. Please log in again.",
            },
            again(retry, RETRY),
        ),
        GatewayError::BadReturn { .. } => page(
            Bilingual { zh: "无效的跳转地址", en: "Invalid return address" },
            Bilingual {
                zh: "这个链接要跳转到本站以外的地址，已被拦截。",
                en: "This link asked to go to an address outside this site, so it was stopped.",
            },
            again("/", HOME),
        ),
        GatewayError::StateMismatch { retry } => page(
            Bilingual { zh: "登录校验失败", en: "Login check failed" },
            Bilingual {
                zh: "这次登录与当前浏览器不匹配（可能是旧链接或在另一个窗口中登录）。",
                en: "This login does not belong to this browser (an old link, or a login from another window).",
            },
            again(retry, RETRY),
        ),
        GatewayError::NoCode { retry } => page(
            Bilingual { zh: "未获得授权", en: "Authorization not given" },
            Bilingual {
                zh: "微信没有返回授权码。如果您拒绝了授权，可以重新登录。",
                en: "WeChat returned no authorization code. If you declined, you can log in again.",
            },
            again(retry, RETRY),
        ),
        GatewayError::SnapshotUser { retry } => page(
            Bilingual { zh: "请使用完整服务", en: "Please use the full service" },
            Bilingual {
                zh: "当前为微信快照页，无法识别您的身份。请点击页面底部的“使用完整服务”后继续。",
                en: "This is WeChat's snapshot preview, which carries no identity. Tap \"使用完整服务\" (use full service) at the bottom of the page.",
            },
            again(retry, TRY_AGAIN),
        ),
        GatewayError::MembersOnly => page(
            Bilingual { zh: "仅限企业成员", en: "Members only" },
            Bilingual {
                zh: "这个页面只对本企业的成员开放。您当前不是以企业成员身份登录的。",
                en: "This page is open to the corp's members only, and you are not signed in as one.",
            },
            None,
        ),
        GatewayError::Exchange { source, retry } => exchange_page(status, source, retry, request_id),
        GatewayError::StateUnavailable => page(
            Bilingual { zh: "暂时无法确认登录状态", en: "Sign-in can't be confirmed right now" },
            Bilingual {
                zh: "网关暂时无法确认您的登录是否有效，请稍后再试。",
                en: "The gateway cannot confirm your sign-in at the moment. Please try again shortly.",
            },
            again("/", TRY_AGAIN),
        ),
        GatewayError::Handoff { refusal, retry } => {
            let (title, message) = refusal_text(*refusal);
            page(title, message, retry.as_deref().and_then(|r| again(r, TRY_AGAIN)))
        }
        GatewayError::Untrusted => page(
            Bilingual { zh: "禁止访问", en: "Forbidden" },
            Bilingual {
                zh: "这个地址只回答受信任的前置代理（trusted_proxies）。",
                en: "This address answers only the front proxies in trusted_proxies.",
            },
            None,
        ),
        GatewayError::PageUrl { .. } | GatewayError::CrossSite | GatewayError::Credentials { .. } => {
            let why = e.to_string();
            let details = [Bilingual { zh: "原因：", en: &why }];
            Page {
                status,
                title: Bilingual { zh: "无法为此页面签名", en: "This page cannot be signed" },
                message: Bilingual {
                    zh: "网关没有为这个页面生成微信 JS-SDK 签名（wx.config）。",
                    en: "The gateway made no WeChat JS-SDK signature (wx.config) for this page.",
                },
                action: None,
                request_id,
                details: &details,
                figure: None,
            }
            .render()
        }
        GatewayError::UpstreamTimeout(_) => page(
            Bilingual { zh: "服务响应超时", en: "Service timed out" },
            Bilingual {
                zh: "应用服务器没有及时响应，请稍后再试。",
                en: "The application server did not answer in time. Please try again shortly.",
            },
            None,
        ),
        GatewayError::Upstream(_) => page(
            Bilingual { zh: "服务暂时不可用", en: "Service unavailable" },
            Bilingual {
                zh: "应用服务器没有响应，请稍后再试。",
                en: "The application server did not answer. Please try again shortly.",
            },
            None,
        ),
    }
}

/// What a person is told when a login through the login host is refused.
fn refusal_text(refusal: Refusal) -> (Bilingual<'static>, Bilingual<'static>) {
    match refusal {
        Refusal::Damaged => (
            Bilingual { zh: "登录链接无效", en: "Invalid login link" },
            Bilingual {
                zh: "这个登录链接已损坏或被修改，无法使用。请回到原页面重新打开。",
                en: "This login link is damaged or was altered. Please open the page you came from again.",
            },
        ),
        Refusal::Unlisted => (
            Bilingual { zh: "此网站不能在这里登录", en: "This site cannot log in here" },
            Bilingual {
                zh: "发起登录的网站不在本登录服务允许的列表中。",
                en: "The site that asked for this login is not one this login service serves.",
            },
        ),
        Refusal::Expired => (
            Bilingual { zh: "登录已超时", en: "Login timed out" },
            Bilingual {
                zh: "这次登录用时太长，已失效。请重试。",
                en: "This login took too long and has expired. Please try again.",
            },
        ),
        Refusal::NoNonce => (
            Bilingual { zh: "登录校验失败", en: "Login check failed" },
            Bilingual {
                zh: "这个登录凭证不属于当前浏览器（可能在另一个窗口打开，或 Cookie 未保存）。",
                en: "This login pass does not belong to this browser (opened in another window, or cookies were not kept).",
            },
        ),
        Refusal::Replayed => (
            Bilingual { zh: "登录凭证已使用", en: "Login pass already used" },
            Bilingual {
                zh: "这个登录凭证只能使用一次，已经使用过了。",
                en: "This login pass works only once and has already been used.",
            },
        ),
        Refusal::OtherHost => (
            Bilingual { zh: "登录凭证不属于此网站", en: "Login pass for another site" },
            Bilingual {
                zh: "这个登录凭证是为另一个网站签发的，不能在这里使用。",
                en: "This login pass was issued for another site and cannot be used here.",
            },
        ),
    }
}

fn again<'a>(href: &'a str, label: Bilingual<'a>) -> Option<Action<'a>> {
    Some(Action { href, label })
}

fn exchange_page(status: u16, err: &ExchangeError, retry: &str, request_id: &str) -> Reply {
    let (title, message, action) = match err.class() {
        ErrClass::CodeRejected | ErrClass::MissingCode => (
            Bilingual { zh: "登录链接已失效", en: "Login link expired" },
            Bilingual {
                zh: "微信授权码已使用或已过期。请重新登录。",
                en: "The WeChat authorization code was already used or has expired. Please log in again.",
            },
            Some(Action { href: retry, label: RETRY }),
        ),
        ErrClass::Transient | ErrClass::Unknown => (
            Bilingual { zh: "微信暂时繁忙", en: "WeChat is busy" },
            Bilingual {
                zh: "暂时无法从微信获取您的身份，请稍后重试。",
                en: "Your identity could not be obtained from WeChat just now. Please try again shortly.",
            },
            Some(Action { href: retry, label: TRY_AGAIN }),
        ),
        ErrClass::Misconfigured => (
            Bilingual { zh: "登录服务配置有误", en: "Login is misconfigured" },
            Bilingual {
                zh: "网站的微信登录配置有误，管理员已可在日志中看到原因。请稍后再来。",
                en: "This site's WeChat login is misconfigured; the reason is in the gateway's log. Please come back later.",
            },
            None,
        ),
    };
    Page { status, title, message, action, request_id, details: &[], figure: None }.render()
}

/// Why a browser keeps coming back without a login, and a way to try once more.
const LOOP_CAUSES: [Bilingual; 3] = [
    Bilingual {
        zh: "浏览器禁用了 Cookie（或处于无痕模式且拦截第三方 Cookie）。", en: "The browser blocks cookies."
    },
    Bilingual {
        zh: "打开的网址与网关配置的 public_url 不一致（域名或 http/https 不同）。",
        en: "The address opened differs from the gateway's public_url (another host, or http versus https).",
    },
    Bilingual {
        zh: "网站使用 http，但会话 Cookie 带有 Secure 标记，浏览器不会保存。",
        en: "The site is served over http while its session cookie is marked Secure, so the browser drops it.",
    },
];

fn loop_page(status: u16, retry: &str, message: Bilingual<'_>, request_id: &str) -> Reply {
    Page {
        status,
        title: Bilingual { zh: "登录没有成功", en: "Login did not complete" },
        message,
        action: again(retry, RETRY),
        request_id,
        details: &LOOP_CAUSES,
        figure: None,
    }
    .render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rejected(errcode: i64) -> GatewayError {
        GatewayError::Exchange {
            source: ExchangeError::Rejected { errcode, errmsg: "x".into() },
            retry: "/shop".into(),
        }
    }

    #[test]
    fn every_page_carries_its_errors_status() {
        let retry = || "/shop".to_string();
        let all = [
            GatewayError::NoRoute,
            GatewayError::NoEndpoint,
            GatewayError::NoApp,
            GatewayError::LoginCookieMissing,
            GatewayError::LoginLoop { retry: retry() },
            GatewayError::BadReturn { reason: "r" },
            GatewayError::BadRequest { reason: "r" },
            GatewayError::BadHost,
            GatewayError::UriTooLong,
            GatewayError::HeadersTooLarge,
            GatewayError::BodyTooLarge,
            GatewayError::HeaderTimeout,
            GatewayError::TooMany { wait: Duration::from_secs(3) },
            GatewayError::LoginSpent { retry: retry() },
            GatewayError::StateMismatch { retry: retry() },
            GatewayError::NoCode { retry: retry() },
            GatewayError::SnapshotUser { retry: retry() },
            rejected(40029),
            rejected(-1),
            rejected(40125),
            GatewayError::Upstream("x".into()),
            GatewayError::UpstreamTimeout("x".into()),
            GatewayError::StateUnavailable,
            GatewayError::Handoff { refusal: Refusal::Unlisted, retry: None },
            GatewayError::Handoff { refusal: Refusal::Expired, retry: Some(retry()) },
            GatewayError::PageUrl { reason: "r" },
            GatewayError::CrossSite,
            GatewayError::Untrusted,
            GatewayError::Credentials { message: "m".into() },
        ];
        for e in &all {
            assert_eq!(page(e, "r").status, e.status(), "{e:?}");
            assert_eq!(reply_for(e, "r", true).status, e.status(), "{e:?}");
        }
    }

    #[test]
    fn each_class_has_its_status() {
        assert_eq!(page(&rejected(40163), "r").status, 400);
        assert_eq!(page(&rejected(-1), "r").status, 503);
        assert_eq!(page(&rejected(40125), "r").status, 500);
        assert!(page(&rejected(40125), "r").body.windows(6).all(|w| w != b"/shop\""));
        assert_eq!(page(&GatewayError::Upstream("x".into()), "r").status, 502);
        assert_eq!(page(&GatewayError::UpstreamTimeout("x".into()), "r").status, 504);
    }

    #[test]
    fn scripts_get_json_and_a_429_names_the_wait() {
        let e = GatewayError::TooMany { wait: Duration::from_millis(9_200) };
        let page = reply_for(&e, "r1", false);
        assert_eq!(page.status, 429);
        assert!(String::from_utf8_lossy(&page.body).contains("10 秒"));
        let json = reply_for(&e, "r1", true);
        let v: serde_json::Value = serde_json::from_slice(&json.body).unwrap();
        assert_eq!(
            (json.status, v["error"].as_str(), v["request_id"].as_str()),
            (429, Some("too_many_requests"), Some("r1"))
        );
        assert!(json.headers.contains(&(Header::RetryAfter, "10".to_string())));
    }
}
