// Package deploy holds the Kubernetes manifests (a kustomize base, one
// overlay per cloud, components for Front TLS and Prometheus monitoring, and
// crds/ with the AgentEnvironment CustomResourceDefinition) and the tests
// that prove them against a real API server: every overlay passes a
// server-side dry-run in namespaces that enforce Pod Security "restricted",
// and the base's RBAC is exactly enough for the sandbox driver and for the
// AgentEnvironment controller with its leader Lease. deploy/image builds the
// images offline (`make image`); this package has no Go code of its own.
package deploy
