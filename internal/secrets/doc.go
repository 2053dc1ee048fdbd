// Package secrets scrubs credentials from text that leaves a process:
// provider keys (whole, or any long enough piece of one, as careless
// providers echo "sk-abc…xyz" back) and the secret parts of a base_url
// (userinfo and query string, where signed-URL gateways put their
// tokens). The host's credential redactor and the provider plugins share
// it, so a message is scrubbed the same way wherever it was produced.
package secrets
