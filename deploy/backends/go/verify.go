// Verifying openid-gateway's X-Openid-Token in Go with golang-jwt and a JWKS fetcher.
//
//	go get github.com/golang-jwt/jwt/v5 github.com/MicahParks/keyfunc/v3
//
//	claims, err := VerifyOpenidToken(r.Header.Get("X-Openid-Token"))
//	claims.Subject // the WeChat openid
//
// Pin the algorithm, and check issuer, audience and expiry. keyfunc fetches and refreshes the
// gateway's key set; an unknown kid (after a rotation) refetches it.
package openidtoken

import (
	"errors"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

const (
	jwksURL  = "https://h5.example.com/.gateway/jwks.json"
	issuer   = "https://h5.example.com"
	audience = "shop"
)

var jwks, jwksErr = keyfunc.NewDefault([]string{jwksURL})

// Claims are the gateway's token claims.
type Claims struct {
	AppID    string `json:"appid"`
	Scope    string `json:"scope,omitempty"`
	UnionID  string `json:"unionid,omitempty"`
	Nickname string `json:"nickname,omitempty"`
	Avatar   string `json:"avatar,omitempty"`
	jwt.RegisteredClaims
}

// VerifyOpenidToken returns the claims of a valid token, or why it is not.
func VerifyOpenidToken(token string) (*Claims, error) {
	if jwksErr != nil {
		return nil, jwksErr
	}
	if token == "" {
		return nil, errors.New("no X-Openid-Token header")
	}
	claims := &Claims{}
	_, err := jwt.ParseWithClaims(token, claims, jwks.Keyfunc,
		jwt.WithValidMethods([]string{"ES256"}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(30*time.Second),
	)
	if err != nil {
		return nil, err
	}
	return claims, nil
}
