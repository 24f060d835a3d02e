//! `openid-gateway check`: every mistake at once, each with its key path; exit non-zero.

use std::process::Command;

fn check(toml: &str) -> (bool, String) {
    check_with_env(toml, &[])
}

fn check_with_env(toml: &str, env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, toml).unwrap();
    std::fs::write(dir.path().join("session.key"), "a-session-key-of-at-least-32-bytes-0123").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_openid-gateway"))
        .args(["check", "-c"])
        .arg(&path)
        .env_remove("OGW_UNSET_SECRET")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Every one of `paths` (a key path and the start of its message) is named in `err`.
fn assert_named(err: &str, paths: &[&str]) {
    for path in paths {
        assert!(err.contains(path), "{path} not named in:\n{err}");
    }
}

const GOOD: &str = r#"
public_url = "https://h5.example.com"
[wechat]
appid = "wx1234567890abcdef"
secret = { file = "session.key" }
[session]
keys = [{ file = "session.key" }]
[token]
algorithm = "HS256"
key = { file = "session.key" }
[[routes]]
upstream = "http://127.0.0.1:3000"
"#;

#[test]
fn a_good_config_passes() {
    let (ok, err) = check(GOOD);
    assert!(ok, "{err}");
}

#[test]
fn three_mistakes_are_all_named() {
    let bad = GOOD
        .replace("[token]\n", "[token]\ncolour = \"red\"\n")
        .replace("upstream = \"http://127.0.0.1:3000\"", "upstream = \"http://127.0.0.1:3000\"\npolicy = \"sometimes\"")
        .replace("[session]\n", "[session]\nlifetime = \"7 days\"\n");
    let (ok, err) = check(&bad);
    assert!(!ok);
    assert!(err.contains("3 mistake(s)"), "{err}");
    assert_named(&err, &["token.colour: unknown key", "routes[0].policy:", "session.lifetime:"]);
}

#[test]
fn secrets_are_never_inline_and_must_exist() {
    let bad = GOOD
        .replace("secret = { file = \"session.key\" }", "secret = \"plain-text-secret\"")
        .replace("keys = [{ file = \"session.key\" }]", "keys = [{ env = \"OGW_UNSET_SECRET\" }, { ephemeral = true }]")
        .replace("key = { file = \"session.key\" }", "key = { file = \"missing.pem\" }");
    let (ok, err) = check(&bad);
    assert!(!ok);
    for expected in [
        "wechat.secret: secrets are never written in the config file",
        "session.keys[0]: environment variable OGW_UNSET_SECRET is not set",
        "session.keys[1]: ephemeral secrets are only for the embedded demo",
        "token.key: cannot read",
    ] {
        assert!(err.contains(expected), "{expected} not in:\n{err}");
    }
}

#[test]
fn structure_mistakes() {
    let bad = r#"
publik_url = "x"
[wechat]
appid = "wx1"
secret = { file = "session.key", env = "X" }
scope = "snsapi_login"
[session]
keys = [{ file = "session.key" }]
[token]
algorithm = "RS999"
key = { file = "session.key" }
[[routes]]
path = "/a"
upstream = "ftp://app.internal"
[[routes]]
path = "/a/"
upstream = "http://127.0.0.1:1"
"#;
    let (ok, err) = check(bad);
    assert!(!ok);
    for expected in [
        "publik_url: unknown key",
        "public_url: is required",
        "wechat.secret: name exactly one of",
        "wechat.scope: snsapi_login is for Open Platform",
        "token.algorithm:",
        "routes[0].upstream:",
        "routes[1]: matches the same host and path as routes[0]",
    ] {
        assert!(err.contains(expected), "{expected} not in:\n{err}");
    }
}

#[test]
fn short_keys_are_refused() {
    let bad = GOOD.replace("keys = [{ file = \"session.key\" }]", "keys = [{ env = \"OGW_SHORT_KEY\" }]");
    let (ok, err) = check_with_env(&bad, &[("OGW_SHORT_KEY", "short")]);
    assert!(!ok);
    assert!(err.contains("session.keys[0]: is 5 bytes; at least 32 are needed"), "{err}");
}

#[test]
fn h5_config_mistakes() {
    let bad = GOOD
        .replace(
            "public_url = \"https://h5.example.com\"",
            "public_url = \"https://h5.example.com\"\ntrusted_proxies = [\"10.0.0.0/33\", \"not-an-ip\"]",
        )
        .replace(
            "[[routes]]\nupstream = \"http://127.0.0.1:3000\"\n",
            "[[routes]]\nhost = \"*.example.com\"\nupstream = \"http://127.0.0.1:3000\"\nnon_wechat = \"block\"\n\n\
             [[routes]]\nhost = \"*.EXAMPLE.com\"\nupstream = \"http://127.0.0.1:3001\"\npolicy = \"public\"\n\n\
             [[routes]]\nhost = \"other.example.org\"\nupstream = \"http://127.0.0.1:3002\"\napp = \"nope\"\n\n\
             [[routes]]\nhost = \"shop.example.org\"\nupstream = \"http://127.0.0.1:3003\"\n\n\
             [[routes]]\nhost = \"bad host:80\"\nupstream = \"http://127.0.0.1:3004\"\n",
        );
    let (ok, err) = check(&bad);
    assert!(!ok);
    for expected in [
        "trusted_proxies[0]: \"10.0.0.0/33\": prefix must be 0 to 32",
        "trusted_proxies[1]:",
        "routes[0].non_wechat:",
        "routes[1]: matches the same host and path as routes[0]",
        "routes[2].app: no app is called \"nope\"",
        "routes[3].host: is not the host of app \"default\"",
        "routes[4].host:",
    ] {
        assert!(err.contains(expected), "{expected} not in:\n{err}");
    }
}

#[test]
fn several_apps_need_names_and_routes_need_an_app() {
    let two = r#"
[[apps]]
name = "a"
public_url = "https://a.example.com"
[apps.wechat]
appid = "wx1"
secret = { file = "session.key" }
[[apps]]
name = "a"
public_url = "https://a.example.com"
[apps.wechat]
appid = "wx2"
secret = { file = "session.key" }
[session]
keys = [{ file = "session.key" }]
[token]
algorithm = "HS256"
key = { file = "session.key" }
[[routes]]
upstream = "http://127.0.0.1:3000"
"#;
    let (ok, err) = check(two);
    assert!(!ok);
    for expected in [
        "apps[1].name: \"a\" names two apps",
        "apps[1].public_url: another app already logs in on this host",
        "routes[0].app: is required when several apps are listed",
    ] {
        assert!(err.contains(expected), "{expected} not in:\n{err}");
    }
}

#[test]
fn a_cookie_domain_must_cover_the_public_host() {
    let bad = GOOD.replace("[session]\n", "[session]\ncookie_domain = \"example.org\"\n");
    let (ok, err) = check(&bad);
    assert!(!ok);
    assert!(err.contains("session.cookie_domain: does not cover app \"default\"'s host h5.example.com"), "{err}");
    let good = GOOD.replace("[session]\n", "[session]\ncookie_domain = \".example.com\"\n");
    assert!(check(&good).0);
}

#[test]
fn limits_and_path_choices_are_checked_and_explained() {
    let bad = format!(
        "{GOOD}max_body = \"lots\"\nread_timeout = \"soon\"\n\n[paths]\nescaped_slashes = \"maybe\"\n\n\
         [limits]\nmax_headers = 0\nheader_timeout = \"0s\"\nmax_url_bytes = \"big\"\n\n[rate_limit]\nburst = -1\n"
    );
    let (ok, err) = check(&bad);
    assert!(!ok);
    assert_named(
        &err,
        &[
            "routes[0].max_body:",
            "routes[0].read_timeout:",
            "paths.escaped_slashes: \"maybe\" must be \"reject\"",
            "limits.max_headers: must be at least 1",
            "limits.header_timeout: must be longer than 0s",
            "limits.max_url_bytes:",
            "rate_limit.burst:",
        ],
    );
    let keep = format!("{GOOD}\n[paths]\nescaped_slashes = \"keep\"\nmerge_slashes = false\n");
    let (ok, err) = check(&keep);
    assert!(ok, "{err}");
    assert!(
        err.contains("warning: paths.escaped_slashes = \"keep\"") && err.contains("merge_slashes = false"),
        "{err}"
    );
}

#[test]
fn process_and_state_mistakes_are_named_without_echoing_a_password() {
    let bad = format!(
        "threads = 0\n{GOOD}\n[state]\nbackend = \"redis\"\nurls = [\"redis://:hunter2-secret@10.0.0.1:6379\", \"redis://10.0.0.2:6379\"]\n\
         cluster = false\nkey_prefix = \"ogw{{x}}:\"\ncommand_timeout = \"0s\"\n"
    );
    let (ok, err) = check(&bad);
    assert!(!ok);
    for expected in [
        "threads: must be between 1 and 1024",
        "state.urls[0]: must be redis://host:port",
        "state.cluster: several urls are a cluster's nodes",
        "state.key_prefix: must not contain {",
        "state.command_timeout: must be between 1ms and 30s",
    ] {
        assert!(err.contains(expected), "{expected} not in:\n{err}");
    }
    assert!(!err.contains("hunter2"), "the password was echoed:\n{err}");
}

#[test]
fn app_host_mistakes_are_all_named() {
    let good = format!(
        "{GOOD}\n[[app_hosts]]\nhost = \"mall.example.org\"\naudience = \"mall\"\n\n\
         [[app_hosts]]\nhost = \"*.campaign.example.net\"\naudience = \"campaign\"\ncookie_name = \"campaign_session\"\nlifetime = \"1d\"\n\n\
         [[routes]]\nhost = \"mall.example.org\"\nupstream = \"http://127.0.0.1:3001\"\n"
    );
    let (ok, err) = check(&good);
    assert!(ok, "{err}");
    // Without the list, a route on another host has no way to log in.
    let (ok, err) =
        check(&format!("{GOOD}\n[[routes]]\nhost = \"mall.example.org\"\nupstream = \"http://127.0.0.1:3001\"\n"));
    assert!(!ok && err.contains("routes[1].host: is not the host of app") && err.contains("[[app_hosts]]"), "{err}");

    let bad = format!(
        "{GOOD}\n[[app_hosts]]\nhost = \"h5.example.com\"\naudience = \"x\"\n\n\
         [[app_hosts]]\nhost = \"*.example.com\"\naudience = \"y\"\n\n\
         [[app_hosts]]\nhost = \"mall.example.org\"\n\n\
         [[app_hosts]]\nhost = \"shop.example.net:8443\"\naudience = \"z\"\n\n\
         [[app_hosts]]\nhost = \"a.example.net\"\naudience = \"a\"\ncookie_domain = \"example.org\"\ncookie_name = \"ogw_login\"\n\n\
         [[app_hosts]]\nhost = \"a.example.net\"\naudience = \"b\"\napp = \"other\"\n"
    )
    .replace("[session]\n", "[session]\nticket_lifetime = \"1h\"\n");
    let (ok, err) = check(&bad);
    assert!(!ok);
    assert_named(
        &err,
        &[
            "app_hosts[0].host: is app \"default\"'s login host itself",
            "app_hosts[1].host: covers app \"default\"'s login host h5.example.com",
            "app_hosts[2].audience: is required",
            "app_hosts[3].host:",
            "app_hosts[4].cookie_domain: unknown key",
            "app_hosts[4].cookie_name: must differ from session.login_cookie_name",
            "app_hosts[5].app: no app is called \"other\"",
            "session.ticket_lifetime: must be between 1s and 5m",
        ],
    );
}

#[test]
fn a_gateway_for_app_hosts_only_needs_no_app_secret() {
    let hosts = "\n[[app_hosts]]\nhost = \"mall.example.org\"\naudience = \"mall\"\n";
    let elsewhere =
        format!("logins = \"elsewhere\"\n{GOOD}{hosts}").replace("secret = { file = \"session.key\" }\n", "");
    let (ok, err) = check(&elsewhere);
    assert!(ok, "{err}");
    let (ok, err) = check(&format!("logins = \"elsewhere\"\n{GOOD}{hosts}"));
    assert!(!ok && err.contains("wechat.secret: is not needed with logins = \"elsewhere\""), "{err}");
    let (ok, err) =
        check(&format!("logins = \"elsewhere\"\n{GOOD}").replace("secret = { file = \"session.key\" }\n", ""));
    assert!(!ok && err.contains("logins: app \"default\": \"elsewhere\" serves only app hosts"), "{err}");
    let (ok, err) = check(&format!("logins = \"there\"\n{GOOD}"));
    assert!(!ok && err.contains("logins: \"there\" must be"), "{err}");
}

#[test]
fn apps_of_one_account_fetch_its_token_one_way() {
    let two = |second: &str| {
        format!(
            "[[apps]]\nname = \"a\"\npublic_url = \"https://a.example.com\"\n\
             [apps.wechat]\nappid = \"wx1234567890abcdef\"\nsecret = {{ file = \"session.key\" }}\n\
             [[apps]]\nname = \"b\"\npublic_url = \"https://b.example.com\"\n\
             [apps.wechat]\nappid = \"wx1234567890abcdef\"\nsecret = {{ file = \"session.key\" }}\n{second}\n\
             [session]\nkeys = [{{ file = \"session.key\" }}]\n\
             [token]\nalgorithm = \"HS256\"\nkey = {{ file = \"session.key\" }}\n\
             [[routes]]\nupstream = \"http://127.0.0.1:3000\"\napp = \"a\"\n"
        )
    };
    let (ok, err) = check(&two(""));
    assert!(ok, "{err}");
    let (ok, err) = check(&two("token_api = \"token\""));
    assert!(!ok);
    assert!(err.contains("apps[1].wechat") && err.contains("shares its appid with app \"a\""), "{err}");
}

const WECOM: &str = r#"
public_url = "https://tools.example.com"
provider = "wecom"
[wecom]
corpid = "ww1234567890abcdef"
agentid = 1000002
secret = { file = "session.key" }
desktop_login = true
[session]
keys = [{ file = "session.key" }]
[token]
algorithm = "HS256"
key = { file = "session.key" }
[[routes]]
path = "/staff"
upstream = "http://127.0.0.1:3000"
members_only = true
[[routes]]
upstream = "http://127.0.0.1:3000"
"#;

#[test]
fn a_wecom_app_passes_and_its_mistakes_are_all_named() {
    let (ok, err) = check(WECOM);
    assert!(ok, "{err}");
    let bad = WECOM
        .replace("agentid = 1000002", "agentid = \"10-02\"\nscope = \"snsapi_userinfo\"\ntoken_api = \"token\"")
        .replace("corpid = \"ww1234567890abcdef\"", "corpid = \"ww 12\"")
        .replace("provider = \"wecom\"", "provider = \"wecom\"\n[wechat]\nappid = \"wx1\"");
    let (ok, err) = check(&bad);
    assert!(!ok);
    assert_named(
        &err,
        &[
            "wecom.agentid: must be the app's AgentId",
            "wecom.scope:",
            "wecom.token_api: unknown key",
            "wecom.corpid: must be the corp's ID",
            "wechat: does not go with provider = \"wecom\"",
        ],
    );
    assert!(!err.contains("routes[0]"), "a broken app is not blamed on its routes:\n{err}");
    let bad_routes = WECOM.replace(
        "members_only = true",
        "members_only = true\npolicy = \"optional\"\nscope = \"snsapi_userinfo\"\nnon_wechat = \"pass\"",
    );
    let (ok, err) = check(&bad_routes);
    assert!(!ok);
    assert_named(
        &err,
        &[
            "routes[0].members_only: needs policy = \"required\"",
            "routes[0].scope: WeCom's silent login is snsapi_base",
            "routes[0].non_wechat: \"pass\" forwards other browsers without identity",
        ],
    );
}

#[test]
fn desktop_sign_in_and_members_only_need_what_they_use() {
    let no_website = GOOD.replace("[session]", "desktop_login = true\n[session]");
    let (ok, err) = check(&no_website);
    assert!(!ok && err.contains("wechat.desktop_login: needs [wechat.website]"), "{err}");
    let stray_website = GOOD
        .replace("[session]", "[wechat.website]\nappid = \"wxweb1\"\nsecret = { file = \"session.key\" }\n[session]");
    let (ok, err) = check(&stray_website);
    assert!(!ok && err.contains("wechat.website: is only used with desktop_login = true"), "{err}");
    let website = GOOD.replace(
        "[session]",
        "desktop_login = true\n[wechat.website]\nappid = \"wxweb1\"\nsecret = { file = \"session.key\" }\n[session]",
    );
    let (ok, err) = check(&website);
    assert!(ok, "{err}");
    let members = GOOD
        .replace("upstream = \"http://127.0.0.1:3000\"", "upstream = \"http://127.0.0.1:3000\"\nmembers_only = true");
    let (ok, err) = check(&members);
    assert!(!ok && err.contains("routes[0].members_only: is for routes of a WeCom app"), "{err}");
    let (ok, err) = check(&GOOD.replace("public_url", "provider = \"qq\"\npublic_url"));
    assert!(!ok && err.contains("provider: \"qq\" must be \"wechat\""), "{err}");
}
