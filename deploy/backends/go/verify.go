// Package openidtoken verifies openid-gateway's X-Openid-Token in Go with golang-jwt (v4), the
// gateway's key set read with go-jose's JWK parser (keyset.go).
//
//	var openid = openidtoken.New("https://h5.example.com/.gateway/jwks.json",
//		"https://h5.example.com", "shop", "ES256")
//
//	claims, err := openid.Verify(r.Header.Get("X-Openid-Token"))  // err: refuse the request
//	claims.Subject // the WeChat openid
//
// Pin the algorithm, and check issuer, audience and expiry, allowing 30 s of clock skew. The key
// set is fetched from the gateway and kept for 5 minutes; an unknown kid (after a rotation)
// refetches it.
//
// The same source builds in either Go setup; keep this folder as the package openidtoken, or
// copy verify.go and keyset.go into your package:
//
//   - Debian 12's packages, GOPATH mode, nothing downloaded (the tests build it this way):
//     apt-get install golang-go golang-github-golang-jwt-jwt-dev golang-gopkg-square-go-jose.v2-dev
//     and build with GO111MODULE=off GOPATH=$HOME/go:/usr/share/gocode (a complete line is in
//     cmd/verify-openid-token). Debian installs golang-jwt v4 as github.com/golang-jwt/jwt; Go
//     finds it by its module name, .../jwt/v4, only from code with a go.mod in its folder or
//     above it: this folder's go.mod, or one you bring along with the copied files.
//   - Go modules, with the internet: in your module,
//     go get github.com/golang-jwt/jwt/v4@v4.5.2 gopkg.in/square/go-jose.v2@v2.6.0
//     (or go mod tidy in this folder). go-jose's maintained fork, github.com/go-jose/go-jose/v4,
//     reads key sets with the same API: only the import changes.
package openidtoken

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

const (
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway = 30 * time.Second
	// maxTokenLen bounds what is parsed (the gateway's tokens are under 2 KiB); it also keeps
	// Debian's golang-jwt 4.4.3 clear of CVE-2025-30204, fixed upstream in v4.5.2.
	maxTokenLen = 16 << 10
)

// Claims are the gateway's token claims; Subject is the openid.
type Claims struct {
	AppID    string `json:"appid"`
	Scope    string `json:"scope,omitempty"`
	UnionID  string `json:"unionid,omitempty"`
	Nickname string `json:"nickname,omitempty"`
	Avatar   string `json:"avatar,omitempty"`
	jwt.RegisteredClaims
}

// Verifier checks tokens of one gateway for one audience. It is safe for concurrent use.
type Verifier struct {
	issuer   string
	audience string
	parser   *jwt.Parser
	keys     *keySet
}

// New returns a verifier of tokens signed with one of algorithms ("ES256", "EdDSA", "RS256")
// by the keys published at jwksURL, issued by issuer for audience. With no algorithms, every
// token is refused.
func New(jwksURL, issuer, audience string, algorithms ...string) *Verifier {
	// Never nil: golang-jwt reads a nil list as "any algorithm".
	pinned := append([]string{}, algorithms...)
	return &Verifier{
		issuer:   issuer,
		audience: audience,
		// The claims are checked by check, with leeway: v4's own check allows none.
		parser: jwt.NewParser(jwt.WithValidMethods(pinned), jwt.WithoutClaimsValidation()),
		keys:   newKeySet(jwksURL, &http.Client{Timeout: 5 * time.Second}),
	}
}

// Verify returns the claims of a valid token, or why it is not valid.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if token == "" {
		return nil, errors.New("no X-Openid-Token header")
	}
	if len(token) > maxTokenLen {
		return nil, errors.New("the token is too long")
	}
	claims := &Claims{}
	if _, err := v.parser.ParseWithClaims(token, claims, v.key); err != nil {
		return nil, err
	}
	if err := v.check(claims, time.Now()); err != nil {
		return nil, err
	}
	return claims, nil
}

// key is the public key named by the token's kid, if it is meant for the token's algorithm.
func (v *Verifier) key(t *jwt.Token) (interface{}, error) {
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, errors.New("the token names no key (kid)")
	}
	k, err := v.keys.key(kid)
	if err != nil {
		return nil, err
	}
	if (k.Algorithm != "" && k.Algorithm != t.Method.Alg()) || (k.Use != "" && k.Use != "sig") {
		return nil, fmt.Errorf("key %q is not for %s signatures", kid, t.Method.Alg())
	}
	return k.Key, nil
}

// check is every claim rule: exp required, and iss, aud and sub.
func (v *Verifier) check(c *Claims, now time.Time) error {
	switch {
	case !c.VerifyExpiresAt(now.Add(-Leeway), true):
		return jwt.ErrTokenExpired
	case !c.VerifyNotBefore(now.Add(Leeway), false):
		return jwt.ErrTokenNotValidYet
	case !c.VerifyIssuedAt(now.Add(Leeway), false):
		return jwt.ErrTokenUsedBeforeIssued
	case !c.VerifyIssuer(v.issuer, true):
		return jwt.ErrTokenInvalidIssuer
	case !c.VerifyAudience(v.audience, true):
		return jwt.ErrTokenInvalidAudience
	case c.Subject == "":
		return errors.New("the token has no subject (openid)")
	}
	return nil
}
