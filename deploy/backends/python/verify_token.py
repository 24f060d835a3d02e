"""Verifying openid-gateway's X-Openid-Token in Python with PyJWT.

    from verify_token import verify_openid_token
    claims = verify_openid_token(request.headers["X-Openid-Token"])  # raises if invalid
    claims["sub"]  # the WeChat openid

Pin the algorithm, and check issuer, audience and expiry. PyJWKClient fetches the gateway's
key set and caches it; an unknown kid (after a rotation) refetches it.
Needs: pip install "pyjwt[crypto]"
"""
import os
import sys

import jwt

JWKS_URL = os.environ.get("OPENID_GATEWAY_JWKS", "https://h5.example.com/.gateway/jwks.json")
ISSUER = os.environ.get("OPENID_GATEWAY_ISSUER", "https://h5.example.com")
AUDIENCE = os.environ.get("OPENID_GATEWAY_AUDIENCE", "shop")
ALGORITHMS = os.environ.get("OPENID_GATEWAY_ALGS", "ES256").split(",")

_jwks = jwt.PyJWKClient(JWKS_URL, cache_keys=True)


def verify_openid_token(token):
    if not token:
        raise jwt.InvalidTokenError("no X-Openid-Token header")
    key = _jwks.get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        key.key,
        algorithms=ALGORITHMS,
        issuer=ISSUER,
        audience=AUDIENCE,
        leeway=30,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )


if __name__ == "__main__":
    # python verify_token.py < token  ->  prints the openid, or "rejected: ..." and exits 1.
    try:
        print(verify_openid_token(sys.stdin.read().strip())["sub"])
    except jwt.PyJWTError as e:
        print("rejected: %s: %s" % (type(e).__name__, e))
        sys.exit(1)
