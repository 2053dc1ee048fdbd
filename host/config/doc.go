// Package config is $NEMOCLAVE_HOME/config.yaml: the operator's defaults —
// the sandbox name and inference provider and model that onboard chose and
// `inference set` changes — read by the CLI and the daemon.
//
// It owns the file's schema, reading and atomic writing. It must not hold
// credentials: those live in credentials.json (host/credentials).
package config
