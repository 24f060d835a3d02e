// Verifying openid-gateway's X-Openid-Token in Node with jose.
//
//   import { verifyOpenidToken } from "./verify.mjs";
//   const user = await verifyOpenidToken(req.headers["x-openid-token"]);  // throws if invalid
//   user.sub  // the WeChat openid
//
// Pin the algorithm, and check issuer and audience; jose checks exp and nbf. The key set is
// fetched from the gateway and cached; an unknown kid (after a rotation) refetches it.
import { createRemoteJWKSet, jwtVerify } from "jose";

const JWKS_URL = process.env.OPENID_GATEWAY_JWKS || "https://h5.example.com/.gateway/jwks.json";
const ISSUER = process.env.OPENID_GATEWAY_ISSUER || "https://h5.example.com";
const AUDIENCE = process.env.OPENID_GATEWAY_AUDIENCE || "shop";
const ALGORITHMS = (process.env.OPENID_GATEWAY_ALGS || "ES256").split(",");

const jwks = createRemoteJWKSet(new URL(JWKS_URL));

export async function verifyOpenidToken(token) {
  if (!token) throw new Error("no X-Openid-Token header");
  const { payload } = await jwtVerify(token, jwks, {
    algorithms: ALGORITHMS,
    issuer: ISSUER,
    audience: AUDIENCE,
    clockTolerance: 30,
  });
  return payload;
}

// As a command: node verify.mjs < token  ->  prints the openid, or "rejected: ..." and exits 1.
if (import.meta.url === `file://${process.argv[1]}`) {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  try {
    const claims = await verifyOpenidToken(Buffer.concat(chunks).toString().trim());
    console.log(claims.sub);
  } catch (e) {
    console.log(`rejected: ${e.code || e.name}: ${e.message}`);
    process.exit(1);
  }
}
