"""An independent strict mock of WeChat's web authorization, written apart from the
gateway's own (standard library only), so the gateway is checked against a second reading
of ../shared/wechat-oauth.md.

Usage: strict_wechat.py APPID SECRET DOMAIN
Binds 127.0.0.1:0, prints {"port": N} on one line, and serves until its stdin closes.
GET /stats answers {"authorizes": N, "exchanges": N, "successes": N}.
"""
import hashlib
import json
import re
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

APPID, SECRET, DOMAIN = sys.argv[1], sys.argv[2], sys.argv[3]
# WeChat's check: these five, in this order, anything else only after state.
ORDER = re.compile(
    r"^appid=([^&]*)&redirect_uri=([^&]*)&response_type=([^&]*)&scope=([^&]*)&state=([^&]*)(&.*)?$"
)
ENCODED_WHOLE = re.compile(r"^[A-Za-z0-9\-_.!~*'()%]+$")
STATE = re.compile(r"^[A-Za-z0-9]{1,128}$")
CODE_LIFETIME = 300

lock = threading.Lock()
codes = {}  # code -> [openid, scope, issued_at, used]
stats = {"authorizes": 0, "exchanges": 0, "successes": 0}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, status, body, ctype="text/plain", location=None):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(data)

    def error_page(self, text):
        self.send(200, "<html><body><h1>%s</h1></body></html>" % text, "text/html; charset=utf-8")

    def wx_error(self, code, msg):
        rid = secrets.token_hex(4) + "-" + secrets.token_hex(4) + "-" + secrets.token_hex(4)
        self.send(200, json.dumps({"errcode": code, "errmsg": "%s, rid: %s" % (msg, rid)}))

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/connect/oauth2/authorize":
            return self.authorize(query)
        if path == "/sns/oauth2/access_token":
            return self.access_token(query)
        if path == "/stats":
            with lock:
                return self.send(200, json.dumps(stats), "application/json")
        self.send(404, "no such endpoint")

    def authorize(self, query):
        with lock:
            stats["authorizes"] += 1
        if "MicroMessenger" not in self.headers.get("User-Agent", ""):
            return self.error_page("请在微信客户端打开链接")
        m = ORDER.match(query)
        if not m:
            return self.error_page("10005 Scope 参数错误或没有 Scope 权限")
        appid, redirect_raw, response_type, scope, state = m.group(1, 2, 3, 4, 5)
        if appid != APPID:
            return self.error_page("appid error")
        if response_type != "code" or scope not in ("snsapi_base", "snsapi_userinfo"):
            return self.error_page("10005 Scope 参数错误或没有 Scope 权限")
        if not STATE.match(state):
            return self.error_page("state error")
        if not ENCODED_WHOLE.match(redirect_raw):
            return self.error_page("redirect_uri not encoded")
        redirect = urllib.parse.unquote(redirect_raw)
        parts = urllib.parse.urlsplit(redirect)
        if parts.scheme not in ("http", "https") or parts.hostname != DOMAIN or parts.port is not None:
            return self.error_page("10003 redirect_uri 域名与后台配置不一致")
        code = secrets.token_hex(16)
        openid = "o" + hashlib.sha256((APPID + "|" + DOMAIN).encode()).hexdigest()[:27]
        with lock:
            codes[code] = [openid, scope, time.time(), False]
        sep = "&" if parts.query else "?"
        base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))
        frag = "#" + parts.fragment if parts.fragment else ""
        self.send(302, "", "text/html", "%s%scode=%s&state=%s%s" % (base, sep, code, state, frag))

    def access_token(self, query):
        q = dict(urllib.parse.parse_qsl(query))
        with lock:
            stats["exchanges"] += 1
        if not q.get("appid"):
            return self.wx_error(41002, "appid missing")
        if not q.get("secret"):
            return self.wx_error(41004, "appsecret missing")
        if q["appid"] != APPID:
            return self.wx_error(40013, "invalid appid")
        if q["secret"] != SECRET:
            return self.wx_error(40125, "invalid appsecret")
        if not q.get("code"):
            return self.wx_error(41008, "missing code")
        if q.get("grant_type") != "authorization_code":
            return self.wx_error(40002, "invalid grant_type")
        with lock:
            entry = codes.get(q["code"])
            if entry is None or time.time() - entry[2] > CODE_LIFETIME:
                return self.wx_error(40029, "invalid code")
            if entry[3]:
                return self.wx_error(40163, "code been used")
            entry[3] = True
            stats["successes"] += 1
        self.send(200, json.dumps({
            "access_token": secrets.token_urlsafe(48), "expires_in": 7200,
            "refresh_token": secrets.token_urlsafe(48), "openid": entry[0], "scope": entry[1],
        }))


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()  # the test closes stdin (or dies): stop
    server.shutdown()


if __name__ == "__main__":
    main()
