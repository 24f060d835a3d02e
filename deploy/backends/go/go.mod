// With modules: go mod tidy, then go build ./cmd/verify-openid-token. In GOPATH mode
// (GO111MODULE=off) only the module line is read; it lets this code import
// github.com/golang-jwt/jwt/v4 from Debian's /usr/share/gocode/src/github.com/golang-jwt/jwt.
module openidtoken

go 1.19

require (
	github.com/golang-jwt/jwt/v4 v4.5.2
	gopkg.in/square/go-jose.v2 v2.6.0
)
