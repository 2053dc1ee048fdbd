package status

import "strings"

// Redacted replaces a secret in text.
const Redacted = "[REDACTED]"

// Redact removes secret, and any long-enough piece of it a provider might
// echo back ("Incorrect API key provided: sk-abc***xyz"), from text. Plugins
// call it on every upstream message they put in an error, since errors
// travel to the host, its logs and the operator.
func Redact(text, secret string) string {
	if secret == "" {
		return text
	}
	text = strings.ReplaceAll(text, secret, Redacted)
	const piece = 8
	if len(secret) > 2*piece {
		text = strings.ReplaceAll(text, secret[:piece], Redacted)
		text = strings.ReplaceAll(text, secret[len(secret)-piece:], Redacted)
	}
	return text
}
