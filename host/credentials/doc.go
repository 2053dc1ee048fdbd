// Package credentials stores the provider keys blueprints reference with
// credential("NAME"): $NEMOCLAVE_HOME/credentials.json (mode 0600, read
// only by the daemon), the environment as a fallback, and a Backend
// interface for other stores (kubernetes.go serves credentials from a Kubernetes Secret).
//
// Values are Secret: they print, format, marshal and log as [REDACTED],
// so a value reaches only the code that calls Reveal (the host, when it
// configures a plugin). Redactor scrubs every known value from text that
// leaves the gateway. The package must not log, and must not put a value
// in an error.
package credentials
