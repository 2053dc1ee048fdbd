// Package deploy holds the Kubernetes manifests (a kustomize base and one
// overlay per cloud) and the test that proves them against a real API
// server: every overlay passes a server-side dry-run in namespaces that
// enforce Pod Security "restricted", and the base's RBAC is exactly enough
// for the sandbox driver. deploy/image builds the images offline (`make
// image`); this package has no Go code of its own.
package deploy
