// Package status is the error vocabulary shared by plugins and the host:
// a small set of codes that survive the gRPC boundary, so the gateway can
// tell a rate limit (retry elsewhere) from a bad request (return to the
// agent). It owns only the codes and their gRPC mapping.
package status
