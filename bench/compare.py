#!/usr/bin/env python3
"""The side-by-side benchmark behind BENCHMARKS.md, started by `bench/run`.

Systems, all in front of one upstream (nginx, bench/nginx/upstream.conf):
  a  the upstream directly
  b  nginx proxy_pass with upstream keep-alive
  c  nginx + Lua checking a signed session cookie and setting an identity header
  d  bare pingora pass-through (bench/bare_pingora.rs)
  m  the same with the gateway's allocator, mimalloc (bench/bare_pingora_mimalloc.rs)
  e  openid-gateway, public route
  f  openid-gateway, required route with a session
  n  nginx auth_request asking openid-gateway (forward auth, <prefix>/auth/nginx) with a
     session, then proxy_pass: the proxy CPU measured is the gateway's (nginx runs beside the
     load on CPU 0)
  g  complete silent logins per second against the mock WeChat (bench/login_load.rs)
  h  RSS: idle, with 10,000 idle keep-alive connections, during a 1 GiB streamed upload

The proxy runs alone on CPU 1; the upstream, wrk, the mock and the clients share CPU 0.
A run counts only if the upstream counted at least as many 200s as wrk counted answers.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import memory
import report
from procs import cpu_seconds, rss_kib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RELEASE = os.path.join(ROOT, "target", "release")
PROXY_CPU, LOAD_CPU = "1", "0"

SYSTEMS = {
    "a": "upstream directly",
    "b": "nginx proxy_pass",
    "c": "nginx + Lua cookie check",
    "d": "bare pingora",
    "m": "bare pingora + mimalloc",
    "e": "openid-gateway, public route",
    "f": "openid-gateway, required route",
    "n": "nginx auth_request + openid-gateway",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what):
    deadline = time.time() + 20
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bench: {what} exited at start (code {proc.returncode}); see its log in the work dir")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"bench: {what} did not listen on {port} within 20 s")


class Bench:
    def __init__(self, args, work):
        self.args, self.work, self.procs = args, work, []
        self.ports = {k: free_port() for k in ("upstream", "b", "c", "d", "m", "n", "gw", "mock")}
        self.wechat_secret = secrets.token_hex(16)
        self.lua_secret = secrets.token_hex(16)

    # -- processes ------------------------------------------------------------------------

    def spawn(self, name, cpu, argv, env=None):
        log = open(os.path.join(self.work, f"{name}.log"), "wb")
        proc = subprocess.Popen(["taskset", "-c", cpu, *argv], stdout=log, stderr=log,
                                env={**os.environ, **(env or {})}, cwd=self.work)
        self.procs.append(proc)
        return proc

    def nginx(self, name, port, cpu, extra=None):
        text = open(os.path.join(HERE, "nginx", f"{name}.conf")).read()
        for key, value in {"DIR": self.work, "PORT": port, "UPSTREAM": self.ports["upstream"],
                           "SECRET": self.lua_secret, **(extra or {})}.items():
            text = text.replace(f"@{key}@", str(value))
        conf = os.path.join(self.work, f"{name}.conf")
        open(conf, "w").write(text)
        proc = self.spawn(name, cpu, ["nginx", "-p", self.work, "-c", conf])
        wait_port(port, proc, f"nginx ({name})")
        return proc

    def gateway_config(self):
        key = os.path.join(self.work, "es256.pem")
        subprocess.run([os.path.join(RELEASE, "openid-gateway"), "keygen", "--alg", "ES256", "--out", key],
                       check=True, capture_output=True)
        gw, up, mock = self.ports["gw"], self.ports["upstream"], self.ports["mock"]
        text = f"""# bench/run: openid-gateway as measured, one worker thread like every other proxy here.
listen = "127.0.0.1:{gw}"
threads = 1
public_url = "http://localhost:{gw}"
# System (n): nginx on this machine asks the forward-auth endpoint.
trusted_proxies = ["127.0.0.1"]

[admin]
listen = "off"

[wechat]
appid = "wx0000000000demo0"
secret = {{ env = "BENCH_WECHAT_SECRET" }}
authorize_url = "http://localhost:{mock}/connect/oauth2/authorize"
api_base = "http://127.0.0.1:{mock}"

[session]
keys = [{{ env = "BENCH_SESSION_KEY" }}]

[rate_limit]
login_per_minute = 0
callback_per_minute = 0

[token]
algorithm = "ES256"
key = {{ file = "{key}" }}

[[routes]]
path = "/app/"
upstream = "http://127.0.0.1:{up}"
audience = "bench"
policy = "required"

[[routes]]
path = "/pub/"
upstream = "http://127.0.0.1:{up}"
audience = "bench"
policy = "public"
"""
        path = os.path.join(self.work, "gateway.toml")
        open(path, "w").write(text)
        return path

    def start(self):
        p = self.ports
        self.upstream = self.nginx("upstream", p["upstream"], LOAD_CPU)
        self.servers = {
            "b": self.nginx("proxy", p["b"], PROXY_CPU),
            "c": self.nginx("lua", p["c"], PROXY_CPU),
        }
        bare = self.spawn("bare_pingora", PROXY_CPU,
                          [os.path.join(RELEASE, "examples", "bare_pingora"), f"127.0.0.1:{p['d']}",
                           f"127.0.0.1:{p['upstream']}"])
        wait_port(p["d"], bare, "bare pingora")
        self.servers["d"] = bare
        bare = self.spawn("bare_pingora_mimalloc", PROXY_CPU,
                          [os.path.join(RELEASE, "examples", "bare_pingora_mimalloc"), f"127.0.0.1:{p['m']}",
                           f"127.0.0.1:{p['upstream']}"])
        wait_port(p["m"], bare, "bare pingora with mimalloc")
        self.servers["m"] = bare
        mock = self.spawn("mock_wechat", LOAD_CPU,
                          [os.path.join(RELEASE, "openid-gateway"), "mock-wechat", "--listen",
                           f"127.0.0.1:{p['mock']}", "--allow-port", "--secret-env", "BENCH_WECHAT_SECRET"],
                          env={"BENCH_WECHAT_SECRET": self.wechat_secret})
        wait_port(p["mock"], mock, "the mock WeChat")
        env = {"BENCH_WECHAT_SECRET": self.wechat_secret, "BENCH_SESSION_KEY": secrets.token_urlsafe(32)}
        gateway = self.spawn("gateway", PROXY_CPU,
                             [os.path.join(RELEASE, "openid-gateway"), "run", "-c", self.gateway_config()], env)
        wait_port(p["gw"], gateway, "openid-gateway")
        self.servers["e"] = self.servers["f"] = self.servers["n"] = gateway
        self.auth_nginx = self.nginx("auth", p["n"], LOAD_CPU, {"GATEWAY": p["gw"]})
        self.fresh = {k: rss_kib(v) for k, v in self.servers.items()}
        login = subprocess.run(
            ["taskset", "-c", LOAD_CPU, os.path.join(RELEASE, "examples", "login_load"), self.page_url(), "--cookie"],
            capture_output=True, text=True)
        if login.returncode != 0:
            sys.exit(f"bench: the first login failed: {login.stderr.strip()}")
        self.session_cookie = login.stdout.strip()
        expires = int(time.time()) + 86400
        payload = f"bench-openid.{expires}"
        mac = base64.b64encode(hmac.new(self.lua_secret.encode(), payload.encode(), hashlib.sha1).digest())
        self.lua_cookie = f"sess={payload}.{mac.decode()}"

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def page_url(self):
        return f"http://localhost:{self.ports['gw']}/app/"

    # -- measuring ------------------------------------------------------------------------

    def target(self, system):
        """(url, extra wrk arguments, the server whose CPU is measured)."""
        p = self.ports
        return {
            "a": (f"http://127.0.0.1:{p['upstream']}/pub/", [], None),
            "b": (f"http://127.0.0.1:{p['b']}/pub/", [], self.servers["b"]),
            "c": (f"http://127.0.0.1:{p['c']}/app/", ["-H", f"Cookie: {self.lua_cookie}"], self.servers["c"]),
            "d": (f"http://127.0.0.1:{p['d']}/pub/", [], self.servers["d"]),
            "m": (f"http://127.0.0.1:{p['m']}/pub/", [], self.servers["m"]),
            "e": (f"http://127.0.0.1:{p['gw']}/pub/", ["-H", "Host: localhost"], self.servers["e"]),
            "f": (f"http://127.0.0.1:{p['gw']}/app/",
                  ["-H", "Host: localhost", "-H", f"Cookie: {self.session_cookie}"], self.servers["f"]),
            "n": (f"http://127.0.0.1:{p['n']}/app/",
                  ["-H", "Host: localhost", "-H", f"Cookie: {self.session_cookie}"], self.servers["n"]),
        }[system]

    def upstream_ok(self):
        url = f"http://127.0.0.1:{self.ports['upstream']}/count"
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.read().decode().strip())

    def wrk(self, system, connections, seconds):
        url, extra, server = self.target(system)
        argv = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
                "--timeout", "5s", "-s", os.path.join(HERE, "wrk.lua"), *extra, url]
        ok_before, cpu_before = self.upstream_ok(), cpu_seconds(server)
        out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
        cpu_after, ok_after = cpu_seconds(server), self.upstream_ok()
        line = next(l for l in out.splitlines() if l.startswith("{"))
        figures = json.loads(line)
        answered = figures["requests"]
        errors = sum(v for k, v in figures.items() if k.startswith("errors_"))
        upstream = ok_after - ok_before
        valid = answered > 0 and errors == 0 and upstream >= answered
        return {
            "system": system, "connections": connections, "valid": valid,
            "requests": answered, "upstream_200s": upstream, "errors": errors,
            "rps": answered / (figures["duration_us"] / 1e6),
            "p50_ms": figures["p50_us"] / 1e3, "p99_ms": figures["p99_us"] / 1e3,
            "p999_ms": figures["p999_us"] / 1e3,
            "cpu_us": (cpu_after - cpu_before) * 1e6 / answered if server and answered else None,
        }

    def throughput(self):
        runs = []
        order = list(self.args.systems)
        for r in range(self.args.rounds):
            for c in self.args.connections:
                random.Random(r * 1000 + c).shuffle(order)
                for system in order:
                    self.wrk(system, c, 1)  # warm-up: connections, pools and caches
                    run = self.wrk(system, c, self.args.seconds)
                    run["round"] = r
                    runs.append(run)
                    cpu = f"{run['cpu_us']:.1f} µs" if run["cpu_us"] else "-"
                    mark = "" if run["valid"] else "  NOT COUNTED (not the upstream's 200s)"
                    print(f"round {r + 1} c={c:<3} {system} {SYSTEMS[system]:<32} {run['rps']:>9.0f} req/s "
                          f"p99 {run['p99_ms']:.2f} ms  cpu/req {cpu}{mark}", flush=True)
        return runs

    def logins(self):
        runs = []
        gateway = self.servers["f"]
        for r in range(self.args.rounds):
            before = cpu_seconds(gateway)
            out = subprocess.run(["taskset", "-c", LOAD_CPU, os.path.join(RELEASE, "examples", "login_load"),
                                  self.page_url(), str(self.args.login_concurrency), str(self.args.seconds)],
                                 check=True, capture_output=True, text=True).stdout
            cpu = cpu_seconds(gateway) - before
            figures = json.loads(out.strip().splitlines()[-1])
            figures["round"] = r
            figures["logins_per_s"] = figures["logins"] / figures["seconds"]
            figures["cpu_us"] = cpu * 1e6 / figures["logins"] if figures["logins"] else None
            figures["valid"] = figures["logins"] > 0 and figures["failures"] == 0
            runs.append(figures)
            print(f"round {r + 1} g complete logins: {figures['logins_per_s']:.0f}/s, "
                  f"gateway CPU {figures['cpu_us'] or 0:.0f} µs per login, failures {figures['failures']}"
                  f"{'' if figures['valid'] else '  NOT COUNTED: ' + figures['first_failure']}", flush=True)
        return runs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8, help="length of each measured run (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--connections", type=lambda s: [int(x) for x in s.split(",")], default=[16, 64, 256])
    parser.add_argument("--systems", default="abcdmefn")
    parser.add_argument("--login-concurrency", type=int, default=32)
    parser.add_argument("--upload-mib", type=int, default=1024)
    parser.add_argument("--idle-connections", type=int, default=10000)
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--keep", action="store_true", help="keep the work directory (configs, logs)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when any run does not count (answers that were not the upstream's 200s)")
    args = parser.parse_args()
    args.seconds = int(args.seconds) if args.seconds >= 1 else 1

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    work = tempfile.mkdtemp(prefix="ogw-bench-")
    # nginx's workers drop root for nobody, and keep large bodies in their temp folders here.
    os.chmod(work, 0o755)
    for name in ("upstream", "proxy", "lua", "auth"):
        for kind in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.mkdir(os.path.join(work, f"{name}.{kind}"), 0o777)
            os.chmod(os.path.join(work, f"{name}.{kind}"), 0o777)
    bench = Bench(args, work)
    try:
        bench.start()
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        runs = bench.throughput()
        logins = bench.logins()
        memory_figures = memory.measure(bench, args)
        for system, figures in memory_figures.items():
            figures["fresh_kib"] = bench.fresh[system]
    finally:
        bench.stop()
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    results = {"started": started, "machine": report.machine(), "args": vars(args), "systems": SYSTEMS,
               "runs": runs, "logins": logins, "memory": memory_figures}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    report.write(results, args.out)
    uncounted = [f"{r['system']} c={r['connections']}" for r in runs if not r["valid"]]
    uncounted += [f"logins round {r['round'] + 1}" for r in logins if not r["valid"]]
    uncounted += [f"upload through {k}" for k, m in memory_figures.items() if not m["upload"]["valid"]]
    if uncounted:
        print(f"runs not counted: {', '.join(uncounted)}")
        if args.strict:
            sys.exit(1)


if __name__ == "__main__":
    main()
