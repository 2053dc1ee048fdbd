// Package oidctest is a local OpenID Connect issuer for tests: a real HTTP
// server with a discovery document, a JWKS of its RSA signing key, the
// OAuth device authorization endpoint and a token endpoint (device code
// and refresh token grants). Tokens are RS256 JWTs that go-oidc verifies
// exactly as it verifies a production issuer's.
package oidctest
