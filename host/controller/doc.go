//go:build kubernetes

// Package controller reconciles AgentEnvironment resources (group
// nemoclave.dev, CRD in deploy/crds): a blueprint as a Kubernetes resource,
// inline HCL or a ConfigMap whose keys become the files beside the
// blueprint, plus its variables.
//
// The daemon runs it (--kubernetes-controller, kubernetes build only: the
// default binary links neither client-go nor controller-runtime). Every
// replica serves the gateway; the replicas elect one leader with a
// coordination.k8s.io Lease and only the leader reconciles, through the same
// runtime calls as `nemoclave run -d --replace` and `nemoclave sandbox
// delete`:
//
//   - create: the blueprint is written below $NEMOCLAVE_HOME/agentenvironments/
//     <namespace>/<name>/ (one directory per resource, so that the runtime's
//     "a sandbox belongs to the blueprint at one path" keeps resources apart)
//     and run detached; status lists the sandboxes, the hash of what was run,
//     observedGeneration and the Ready and BlueprintValid conditions, and an
//     event is recorded;
//   - update (a new generation, or a changed ConfigMap): run again with
//     replace; sandboxes the new blueprint drops are deleted;
//   - delete: the finalizer nemoclave.dev/sandboxes holds the resource until
//     its sandboxes are deleted;
//   - an invalid blueprint: BlueprintValid=False with the validate
//     diagnostic as message, and no retry until the spec or ConfigMap
//     changes.
//
// A new leader adopts what the previous one ran: a resource whose status
// already describes its generation and hash, and whose sandboxes still
// exist in the cluster, is not run again; only status.reconciledBy and the
// Ready reason (SandboxesAdopted) change. Sandboxes this replica's state does
// not know (another replica's SQLite) are deleted through the driver.
//
// Every replica, leader or not, also runs the serving controller (no
// Lease): for each Ready resource it evaluates the same blueprint and makes
// its own gateway serve the sandboxes' current pods (runtime.ServeRunning),
// so a pod's connections are answered by whichever replica the gateway
// Service picks, through rolling upgrades, leader changes and restarts.
// Sandboxes started by hand (`nemoclave run`) are served on every replica
// by the runtime itself, from the blueprint the run kept in the shared
// state (host/runtime, handruns.go); they need no resource.
//
// A replica that loses the Lease exits at once (os.Exit) rather than
// shutting the runtime down, because the runtime's shutdown deletes the
// pods of the runs it holds; the kubelet restarts it.
package controller
