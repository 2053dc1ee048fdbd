//go:build kubernetes

package cli

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The daemon's kubernetes set-up refuses half a configuration before it
// talks to any cluster.
func TestDaemonKubernetesConfiguration(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		flags kubernetesDaemonFlags
		want  string // "" means no kubernetes driver and no error
	}{
		{"nothing configured", kubernetesDaemonFlags{}, ""},
		{"missing kubeconfig", kubernetesDaemonFlags{kubeconfig: filepath.Join(dir, "absent")}, "load --kubeconfig"},
		{"no image", kubernetesDaemonFlags{kubeconfig: kc}, "--kubernetes-image"},
		{"bad workspace size", kubernetesDaemonFlags{kubeconfig: kc, image: "i", workspaceSize: "lots"}, "--kubernetes-workspace-size"},
		{"half the TLS flags", kubernetesDaemonFlags{kubeconfig: kc, image: "i", frontAddress: "127.0.0.1:0", frontCert: "c.pem"}, "needs all of"},
		{"bad credentials secret", kubernetesDaemonFlags{kubeconfig: kc, credentialsSecret: "no-slash"}, "namespace/name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			saved := k8sFlags
			t.Cleanup(func() { k8sFlags = saved })
			k8sFlags = tc.flags
			t.Setenv("KUBERNETES_SERVICE_HOST", "") // never pick up an in-cluster account here
			got, err := setupDaemonKubernetes(context.Background(), dir, slog.New(slog.DiscardHandler))
			if tc.want == "" {
				if err != nil || got.drivers != nil {
					t.Fatalf("got drivers %v, err %v; want neither", got.drivers, err)
				}
				l, r := got.wrap(nil, nil)
				if l != nil || r != nil {
					t.Fatal("without a cluster the credential lookup must be left alone")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}
