"""Verifies an identity token the way a Python backend would, with PyJWT.

Usage: verify_pyjwt.py ALGORITHM ISSUER AUDIENCE < token
The key comes from OGW_VERIFY_KEY (HS256 secret or public key PEM). Prints the claims as
JSON and exits 0, or prints why the token was rejected and exits 1.
"""
import json
import os
import sys

import jwt

algorithm, issuer, audience = sys.argv[1:4]
token = sys.stdin.read().strip()
try:
    claims = jwt.decode(
        token,
        os.environ["OGW_VERIFY_KEY"],
        algorithms=[algorithm],
        issuer=issuer,
        audience=audience,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )
except jwt.PyJWTError as e:
    print("rejected: %s: %s" % (type(e).__name__, e))
    sys.exit(1)
print(json.dumps(claims))
