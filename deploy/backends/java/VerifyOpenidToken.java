// Verifying openid-gateway's X-Openid-Token in Java with nimbus-jose-jwt
// (com.nimbusds:nimbus-jose-jwt).
//
//   JWTClaimsSet claims = VerifyOpenidToken.verify(request.getHeader("X-Openid-Token"));
//   claims.getSubject(); // the WeChat openid
//
// Pin the algorithm, and check issuer, audience and expiry. The remote key source fetches and
// caches the gateway's key set; an unknown kid (after a rotation) refetches it.
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.jwk.source.JWKSource;
import com.nimbusds.jose.jwk.source.JWKSourceBuilder;
import com.nimbusds.jose.proc.JWSVerificationKeySelector;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.proc.DefaultJWTClaimsVerifier;
import com.nimbusds.jwt.proc.DefaultJWTProcessor;
import java.net.URL;
import java.util.Set;

public final class VerifyOpenidToken {
    private static final String JWKS_URL = "https://h5.example.com/.gateway/jwks.json";
    private static final String ISSUER = "https://h5.example.com";
    private static final String AUDIENCE = "shop";
    private static final DefaultJWTProcessor<SecurityContext> PROCESSOR = processor();

    private static DefaultJWTProcessor<SecurityContext> processor() {
        try {
            JWKSource<SecurityContext> keys = JWKSourceBuilder.create(new URL(JWKS_URL)).retrying(true).build();
            DefaultJWTProcessor<SecurityContext> p = new DefaultJWTProcessor<>();
            p.setJWSKeySelector(new JWSVerificationKeySelector<>(JWSAlgorithm.ES256, keys));
            DefaultJWTClaimsVerifier<SecurityContext> claims = new DefaultJWTClaimsVerifier<>(
                    AUDIENCE,
                    new JWTClaimsSet.Builder().issuer(ISSUER).build(),
                    Set.of("sub", "exp", "iat"));
            claims.setMaxClockSkew(30);
            p.setJWTClaimsSetVerifier(claims);
            return p;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** The claims of a valid token; throws with the reason otherwise. */
    public static JWTClaimsSet verify(String token) throws Exception {
        if (token == null || token.isEmpty()) {
            throw new IllegalArgumentException("no X-Openid-Token header");
        }
        return PROCESSOR.process(token, null);
    }

    private VerifyOpenidToken() {}
}
