// Package kubernetes is the sandbox driver for a Kubernetes cluster. A
// sandbox is a ServiceAccount (the root object, which owns the rest), a
// ConfigMap with the in-pod supervisor's configuration, a NetworkPolicy that
// lets the pod reach only the gateway, an optional PersistentVolumeClaim for
// the workspace, and a Pod that passes Pod Security Admission "restricted".
//
// How Start's contract maps. The local driver creates the gateway
// listeners inside the sandbox's network namespace; a connection's sandbox
// is known from the listener it arrived on. Here the gateway runs in its own
// pod, so the driver serves one gateway-side TCP listener (the Front,
// reached through the gateway Service) and Start returns per-sandbox
// listeners fed by it. Inside the pod the supervisor listens on 127.0.0.1
// (one port per ListenerSpec) and forwards each connection to the Front,
// preceded by one line naming the listener and carrying the pod's projected
// service-account token (audience Options.Audience). The Front verifies the
// token with a TokenReview, requires the user to be the sandbox's own
// service account and the token to be bound to the sandbox's current pod
// (by UID), and only then hands the connection to that sandbox's listener.
// Identity never comes from headers: a sandbox can only present the token
// the kubelet mounted into its own pod, and the API server stops accepting
// that token when the pod is deleted. With Options.FrontCA the supervisor
// speaks TLS to the Front and verifies it before the token leaves the pod.
//
// Inside the pod the supervisor (the nemoclave binary, unprivileged) applies
// the same no_new_privs, Landlock and seccomp confinement as the local
// driver (sandbox/confine.Thread) to the thread that forks the agent; the
// token directory is outside every path the policy may grant.
//
// This package owns the objects it labels managed-by=nemoclave in its
// namespace. It must not touch other objects, must not import the gateway,
// and must never put a credential into a pod, a ConfigMap or an environment.
package kubernetes
