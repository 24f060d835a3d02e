"""Every config deploy/ ships passes `openid-gateway check` (run by deploy/validate).

The configs: the repository's gateway.toml, deploy/*.toml, deploy/replicated/*.toml, every TOML
file a compose file (deploy/docker-compose*.yml) mounts, and the gateway.toml inside the
Kubernetes ConfigMaps (deploy/kubernetes/configmap.yaml and the replicated overlay's patch,
deploy/kubernetes-replicated/configmap.yaml).

They name secrets that do not exist here. Each config is read as TOML and every secret it
names is made up to suit its key path: an AppSecret or session key of random bytes, a token
key from `openid-gateway keygen` for the token's algorithm, a certificate and its key for each
`[tls]` entry, a CA certificate for `upstream_ca` and `state.ca`. A copy of the config is checked in a folder
of its own: a relative path is made up in that folder, an absolute one under it (the copy is
pointed there), and `{ env = "NAME" }` becomes an environment variable of the check.

usage: validate_configs.py OPENID_GATEWAY WORKDIR
"""

import base64
import glob
import os
import subprocess
import sys
import tomllib
from urllib.parse import urlsplit

import yaml

COMPOSE_FILES = ["deploy/docker-compose.yml", "deploy/docker-compose.replicated.yml"]
CONFIG_MAPS = ["deploy/kubernetes/configmap.yaml", "deploy/kubernetes-replicated/configmap.yaml"]


def compose_tomls(compose_file):
    """The TOML files a compose file mounts (paths relative to the repository root)."""
    compose = yaml.safe_load(open(compose_file))
    folder = os.path.dirname(compose_file)
    return [os.path.normpath(os.path.join(folder, v.split(":")[0]))
            for service in compose["services"].values()
            for v in service.get("volumes", []) if v.split(":")[0].endswith(".toml")]


def configmap_toml(path):
    """The gateway.toml of the one ConfigMap in `path`."""
    maps = [d for d in yaml.safe_load_all(open(path))
            if d and d.get("kind") == "ConfigMap" and "gateway.toml" in d.get("data", {})]
    if len(maps) != 1:
        sys.exit(f"{path}: expected one ConfigMap with gateway.toml, found {len(maps)}")
    return maps[0]["data"]["gateway.toml"]


def shipped_configs():
    """(label, TOML text) of each shipped config."""
    paths = ["gateway.toml", *sorted(glob.glob("deploy/*.toml")), *sorted(glob.glob("deploy/replicated/*.toml"))]
    for compose_file in COMPOSE_FILES:
        mounted = compose_tomls(compose_file)
        if not mounted:
            sys.exit(f"{compose_file}: mounts no TOML config")
        paths += [m for m in mounted if m not in paths]
    configs = [(path, open(path).read()) for path in paths]
    configs += [(f"{path} (gateway.toml)", configmap_toml(path)) for path in CONFIG_MAPS]
    return configs


def walk(value, path=""):
    """Every (key path, value) in a parsed config, tables and arrays included."""
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, f"{path}[{i}]")


def is_source(value):
    return isinstance(value, dict) and len(value) == 1 and ("file" in value or "env" in value)


class Maker:
    """Makes up secrets and certificates; its own files go to `scratch`."""

    def __init__(self, binary, scratch):
        self.binary, self.scratch, self.n = binary, scratch, 0

    def tmp(self, suffix):
        self.n += 1
        os.makedirs(os.path.join(self.scratch, ".made"), exist_ok=True)
        return os.path.join(self.scratch, ".made", f"{self.n}{suffix}")

    def random(self):
        return base64.b64encode(os.urandom(32)) + b"\n"

    def token_key(self, alg):
        if alg == "HS256":
            return self.random()
        out = self.tmp(".pem")
        subprocess.run([self.binary, "keygen", "--alg", alg, "--out", out], check=True, capture_output=True)
        return open(out, "rb").read()

    def certificate(self, names):
        """A self-signed certificate (also usable as a CA) for `names`, and its key."""
        key, cert = self.tmp(".key"), self.tmp(".crt")
        san = ",".join(f"DNS:{n}" for n in names)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "1", "-subj", f"/CN={names[0]}", "-addext", f"subjectAltName={san}",
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
        return open(cert, "rb").read(), open(key, "rb").read()


def hosts(cfg):
    names = [urlsplit(u).hostname for p, u in walk(cfg) if p.endswith("public_url") and isinstance(u, str)]
    names += [h for p, h in walk(cfg) if p.endswith(".host") and isinstance(h, str) and "*" not in h]
    return sorted({n for n in names if n}) or ["localhost"]


def materialize(cfg, make):
    """Writes every secret and certificate `cfg` names; returns (environment, absolute paths used)."""
    env, files = {}, {}
    alg = cfg.get("token", {}).get("algorithm", "ES256")
    certs = {}
    for path, value in walk(cfg):
        if path.startswith("tls.certificates[") and path.endswith("]"):
            certs[path] = make.certificate(hosts(cfg))
            if isinstance(value.get("cert"), str):
                files[value["cert"]] = certs[path][0]
        elif (path.endswith(".upstream_ca") or path == "state.ca") and isinstance(value, str):
            files[value] = make.certificate(["ca.invalid"])[0]
    for path, value in walk(cfg):
        if not is_source(value):
            continue
        owner = path.rsplit(".", 1)[0]
        if owner in certs and path.endswith(".key"):
            content = certs[owner][1]
        elif path.startswith("token."):
            content = make.token_key(alg)
        else:  # AppSecrets, session keys
            content = make.random()
        if "env" in value:
            env[value["env"]] = content.decode().strip()
        else:
            files[value["file"]] = content
    absolute = []
    for name, content in files.items():
        where = os.path.normpath(make.scratch + name if os.path.isabs(name) else os.path.join(make.scratch, name))
        if not where.startswith(make.scratch + os.sep):
            sys.exit(f"{name}: a relative path out of the config's folder")
        if os.path.isabs(name):
            absolute.append(name)
        os.makedirs(os.path.dirname(where), exist_ok=True)
        with open(where, "wb") as f:
            f.write(content)
    return env, absolute


def main():
    binary, work = sys.argv[1], sys.argv[2]
    failed = []
    for n, (label, text) in enumerate(shipped_configs()):
        # The copy is checked in a folder of its own, where its relative paths are made up too.
        scratch = os.path.join(work, f"config-{n}")
        os.makedirs(scratch)
        make = Maker(binary, scratch)
        try:
            cfg = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            print(f"{label}: not TOML: {e}", file=sys.stderr)
            failed.append(label)
            continue
        env, absolute = materialize(cfg, make)
        for p in sorted(absolute, key=len, reverse=True):
            for q in ('"', "'"):
                text = text.replace(f"{q}{p}{q}", f"{q}{scratch}{p}{q}")
        copy = os.path.join(scratch, "gateway.toml")
        with open(copy, "w") as f:
            f.write(text)
        r = subprocess.run([binary, "check", "-c", copy], env={**os.environ, **env}, capture_output=True, text=True)
        if r.returncode == 0:
            print(f"  check {label}: ok")
        else:
            print((r.stdout + r.stderr).replace(copy, label).replace(scratch, "").rstrip(), file=sys.stderr)
            failed.append(label)
    if failed:
        sys.exit(f"openid-gateway check failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
