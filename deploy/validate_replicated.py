"""The replicated forms hang together (run by deploy/validate, after validate_configs.py).

What a schema cannot see: that the files of one form agree with each other.

Compose (deploy/docker-compose.replicated.yml):
- deploy/replicated/make-secrets makes its four secrets, and a second run keeps them;
- each service that runs the gateway passes `openid-gateway check` with exactly what compose
  gives it: the secrets it lists (at /run/secrets/<name>, as made by make-secrets), the
  variables of its env_file, and nothing else;
- the gateway runs as several replicas, with Redis state and without [demo] (whose embedded mock
  WeChat would be one per replica);
- the host names in its config (Redis, the WeChat API, the upstreams) are services on a network
  it shares with them; the mock WeChat accepts its appid, secret and public host; its
  trusted_proxies cover the network it shares with the balancer;
- HAProxy's servers are that service on the gateway's listen and admin ports.

Kubernetes (deploy/kubernetes-replicated/):
- the ConfigMap patch is the base's gateway.toml plus [state] and nothing else, whose Redis is
  the Service of redis.yaml and whose password variable the Deployment patch sets;
- redis.yaml's redis.conf holds the settings of deploy/replicated/redis.conf.

usage: validate_replicated.py OPENID_GATEWAY WORKDIR
"""

import ipaddress
import os
import re
import shutil
import subprocess
import sys
import tomllib
from urllib.parse import urlsplit

import yaml

COMPOSE = "deploy/docker-compose.replicated.yml"
MAKE_SECRETS = "deploy/replicated/make-secrets"
HAPROXY = "deploy/replicated/haproxy.cfg"
REDIS_CONF = "deploy/replicated/redis.conf"
OVERLAY = "deploy/kubernetes-replicated"
BASE_CONFIGMAP = "deploy/kubernetes/configmap.yaml"

failures = []


def fail(message):
    failures.append(message)
    print(f"  {message}", file=sys.stderr)


def env_file(path):
    """NAME=value lines of an env file."""
    pairs = (line.split("=", 1) for line in open(path).read().splitlines() if "=" in line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def options(argv):
    """{option: value or None} of `--name=value`, `--name value` and `--flag` arguments."""
    found, rest = {}, list(argv)
    while rest:
        name, eq, value = rest.pop(0).removeprefix("--").partition("=")
        if not eq and rest and not rest[0].startswith("--"):
            value = rest.pop(0)
        found[name] = value or None
    return found


def listed(value):
    """A compose key that may be one string or a list."""
    return [value] if isinstance(value, str) else list(value or [])


def host_of(url):
    return urlsplit(url).hostname


def port_of(address):
    return int(address.rsplit(":", 1)[1])


# --- compose --------------------------------------------------------------------------------

def make_secrets(work):
    """Runs make-secrets into `work`/secrets, twice; returns the folder."""
    out = os.path.join(work, "secrets")
    first = subprocess.run(["sh", MAKE_SECRETS, out], capture_output=True, text=True)
    second = subprocess.run(["sh", MAKE_SECRETS, out], capture_output=True, text=True)
    if first.returncode or "made" not in first.stdout:
        fail(f"{MAKE_SECRETS}: {first.stdout}{first.stderr}")
    elif second.returncode or "made" in second.stdout:
        fail(f"{MAKE_SECRETS}: a second run should keep every file: {second.stdout}{second.stderr}")
    return out


def service_toml(service):
    """(path, parsed config) of the TOML a service mounts and runs, or None."""
    command = service.get("command") or []
    if not command or command[0] != "run":
        return None
    target = command[command.index("-c") + 1]
    for volume in service.get("volumes", []):
        source, mounted = volume.split(":")[:2]
        if mounted == target:
            path = os.path.normpath(os.path.join(os.path.dirname(COMPOSE), source))
            return path, tomllib.loads(open(path).read())
    fail(f"{COMPOSE}: nothing is mounted at {target}")
    return None


def check_as_compose(binary, work, name, service, compose, secrets_dir):
    """`openid-gateway check` of a service's config with exactly the secrets and variables
    compose gives that service."""
    path, _ = service_toml(service)
    root = os.path.join(work, f"service-{name}")
    os.makedirs(os.path.join(root, "run", "secrets"))
    for secret in service.get("secrets", []):
        secret = secret if isinstance(secret, str) else secret["source"]
        source = compose["secrets"][secret]["file"]
        made = os.path.join(secrets_dir, os.path.basename(source))
        if os.path.dirname(os.path.normpath(source)) != "replicated/secrets" or not os.path.exists(made):
            fail(f"{COMPOSE}: secret {secret} ({source}) is not one make-secrets makes")
            continue
        shutil.copy(made, os.path.join(root, "run", "secrets", secret))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for file in listed(service.get("env_file")):
        env.update(env_file(os.path.join(secrets_dir, os.path.basename(file))))
    env.update(service.get("environment") or {})
    text = open(path).read()
    copy = os.path.join(root, os.path.basename(path))
    with open(copy, "w") as f:
        f.write(text.replace('"/run/secrets/', f'"{root}/run/secrets/'))
    r = subprocess.run([binary, "check", "-c", copy], env=env, capture_output=True, text=True)
    if r.returncode:
        fail(f"service {name} ({path}), with what compose gives it:\n"
             + (r.stdout + r.stderr).replace(copy, path).replace(root, "").rstrip())
    else:
        print(f"  check {path} as compose service {name}: ok")


def check_compose(binary, work):
    compose = yaml.safe_load(open(COMPOSE))
    services = compose["services"]
    secrets_dir = make_secrets(work)
    for name, service in services.items():
        if service_toml(service):
            check_as_compose(binary, work, name, service, compose, secrets_dir)

    gateways = [n for n, s in services.items() if (c := service_toml(s)) and "demo" not in c[1]]
    if len(gateways) != 1:
        fail(f"{COMPOSE}: expected one gateway service (a config without [demo]), found {gateways}")
        return
    name = gateways[0]
    gateway = services[name]
    _, config = service_toml(gateway)
    replicas = gateway.get("deploy", {}).get("replicas", 1)
    if replicas < 2:
        fail(f"{COMPOSE}: {name} runs {replicas} replica(s)")
    state = config.get("state", {})
    if state.get("backend") != "redis":
        fail(f"{COMPOSE}: {name}'s config has no [state] backend = \"redis\": its replicas would share nothing")

    networks = lambda s: set(services[s].get("networks") or ["default"])  # noqa: E731
    hosts = {"state.url": host_of(state.get("url", "")), "wechat.api_base": host_of(config["wechat"]["api_base"])}
    hosts.update({f"routes[{i}].upstream": host_of(r["upstream"]) for i, r in enumerate(config["routes"])})
    for key, host in hosts.items():
        if host not in services:
            fail(f"{COMPOSE}: {name}'s {key} names {host!r}, which is no service")
        elif not networks(name) & networks(host):
            fail(f"{COMPOSE}: {name} shares no network with {host} ({key})")

    # The mock WeChat: the one the replicas exchange codes with.
    mock_name = hosts["wechat.api_base"]
    mock = services.get(mock_name, {})
    args = options(mock.get("command", [])[1:])
    public = urlsplit(config["public_url"])
    expected_secret = config["wechat"]["secret"].get("env")
    if mock.get("command", [None])[0] != "mock-wechat":
        fail(f"{COMPOSE}: {mock_name} does not run mock-wechat")
    if args.get("appid") != config["wechat"]["appid"]:
        fail(f"{COMPOSE}: {mock_name} --appid {args.get('appid')} is not {name}'s {config['wechat']['appid']}")
    if args.get("secret-env") != expected_secret or listed(mock.get("env_file")) != listed(gateway.get("env_file")):
        fail(f"{COMPOSE}: {mock_name} must read the AppSecret {name} reads ({expected_secret}, same env_file)")
    if args.get("domain") != public.hostname or (public.port and "allow-port" not in args):
        fail(f"{COMPOSE}: {mock_name} must accept {config['public_url']} (--domain, --allow-port)")

    # The balancer: its network with the replicas is trusted, and it sends to their ports.
    trusted = [ipaddress.ip_network(n) for n in config.get("trusted_proxies", [])]
    balancers = [s for s in services if s != name and networks(s) & networks(name) and "haproxy" in services[s].get("image", "")]
    for lb in balancers:
        for net in networks(lb) & networks(name):
            subnets = [c["subnet"] for c in compose["networks"][net].get("ipam", {}).get("config", [])]
            if not subnets or not all(any(ipaddress.ip_network(s).subnet_of(t) for t in trusted) for s in subnets):
                fail(f"{COMPOSE}: network {net} (between {lb} and {name}) needs a fixed subnet within "
                     f"{name}'s trusted_proxies {config.get('trusted_proxies')}")
    if not balancers:
        fail(f"{COMPOSE}: no HAProxy service in front of {name}")
    servers = re.findall(r"^\s*server-template\s+\S+\s+(\d+)\s+(\S+):(\d+)", open(HAPROXY).read(), re.M)
    wanted = {(name, port_of(config["listen"])), (name, port_of(config["admin"]["listen"]))}
    if {(h, int(p)) for _, h, p in servers} != wanted or any(int(n) < replicas for n, _, _ in servers):
        fail(f"{HAPROXY}: server-template lines {servers} should be {sorted(wanted)}, {replicas} slots each")


# --- kubernetes -----------------------------------------------------------------------------

def docs(path):
    return [d for d in yaml.safe_load_all(open(path)) if d]


def settings(text):
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def check_kubernetes():
    base = tomllib.loads(docs(BASE_CONFIGMAP)[0]["data"]["gateway.toml"])
    overlay = tomllib.loads(docs(f"{OVERLAY}/configmap.yaml")[0]["data"]["gateway.toml"])
    state = overlay.pop("state", {})
    if overlay != base:
        changed = sorted(k for k in set(base) | set(overlay) if base.get(k) != overlay.get(k))
        fail(f"{OVERLAY}/configmap.yaml: its gateway.toml differs from the base's in {changed}; only [state] may")
    redis = {d["kind"]: d for d in docs(f"{OVERLAY}/redis.yaml")}
    service = redis["Service"]["metadata"]["name"]
    port = redis["Service"]["spec"]["ports"][0]["port"]
    url = urlsplit(state.get("url", ""))
    if state.get("backend") != "redis" or (url.hostname, url.port) != (service, port):
        fail(f"{OVERLAY}/configmap.yaml: [state] should be backend = \"redis\" at redis://{service}:{port}")
    variable = state.get("password", {}).get("env")
    secret = docs(f"{OVERLAY}/secret.yaml")[0]
    patch = docs(f"{OVERLAY}/deployment.yaml")[0]
    env = {e["name"]: e for c in patch["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])}
    ref = env.get(variable, {}).get("valueFrom", {}).get("secretKeyRef", {})
    if (ref.get("name"), ref.get("key")) != (secret["metadata"]["name"], next(iter(secret["stringData"]))):
        fail(f"{OVERLAY}/deployment.yaml: {variable} should come from the Secret in secret.yaml")
    mounted = redis["StatefulSet"]["spec"]["template"]["spec"]["volumes"]
    if secret["metadata"]["name"] not in [v.get("secret", {}).get("secretName") for v in mounted]:
        fail(f"{OVERLAY}/redis.yaml: Redis should read its password from the Secret in secret.yaml")
    if settings(redis["ConfigMap"]["data"]["redis.conf"]) != settings(open(REDIS_CONF).read()):
        fail(f"{OVERLAY}/redis.yaml: redis.conf should hold the settings of {REDIS_CONF}")
    print(f"  {OVERLAY}: the base's config plus [state], Redis, its password and redis.conf agree")


def main():
    binary, work = sys.argv[1], sys.argv[2]
    check_compose(binary, work)
    check_kubernetes()
    if failures:
        sys.exit(f"the replicated forms do not hang together: {len(failures)} mistake(s)")
    print(f"  {COMPOSE}: secrets, services, balancer and mock agree")


if __name__ == "__main__":
    main()
