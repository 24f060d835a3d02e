// Command verify-openid-token checks one X-Openid-Token read from stdin, like the Python and
// Node recipes: it prints the openid of a valid token, or "rejected: ..." and exits 1.
//
//	OPENID_GATEWAY_JWKS=https://h5.example.com/.gateway/jwks.json \
//	OPENID_GATEWAY_ISSUER=https://h5.example.com OPENID_GATEWAY_AUDIENCE=shop \
//	OPENID_GATEWAY_ALGS=ES256 verify-openid-token < token
//
// Built from Debian's packages in GOPATH mode, with deploy/backends/go as the package
// openidtoken (this is what the tests do, in tests/common/go.rs):
//
//	mkdir -p gopath/src && ln -s "$PWD/deploy/backends/go" gopath/src/openidtoken
//	GO111MODULE=off GOPATH="$PWD/gopath:/usr/share/gocode" \
//	    go build -o verify-openid-token openidtoken/cmd/verify-openid-token
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"openidtoken"
)

func main() {
	v := openidtoken.New(
		env("OPENID_GATEWAY_JWKS", "https://h5.example.com/.gateway/jwks.json"),
		env("OPENID_GATEWAY_ISSUER", "https://h5.example.com"),
		env("OPENID_GATEWAY_AUDIENCE", "shop"),
		strings.Split(env("OPENID_GATEWAY_ALGS", "ES256"), ",")...,
	)
	token, err := io.ReadAll(io.LimitReader(os.Stdin, 64<<10))
	if err != nil {
		fmt.Println("rejected: reading stdin:", err)
		os.Exit(1)
	}
	claims, err := v.Verify(strings.TrimSpace(string(token)))
	if err != nil {
		fmt.Println("rejected:", err)
		os.Exit(1)
	}
	fmt.Println(claims.Subject)
}

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
