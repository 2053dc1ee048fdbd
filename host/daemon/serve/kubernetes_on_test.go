//go:build kubernetes

package serve

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
		flags KubernetesConfig
		want  string // "" means no kubernetes driver and no error
	}{
		{"nothing configured", KubernetesConfig{}, ""},
		{"missing kubeconfig", KubernetesConfig{Kubeconfig: filepath.Join(dir, "absent")}, "load --kubeconfig"},
		{"no image", KubernetesConfig{Kubeconfig: kc}, "--kubernetes-image"},
		{"bad workspace size", KubernetesConfig{Kubeconfig: kc, Image: "i", WorkspaceSize: "lots"}, "--kubernetes-workspace-size"},
		{"half the TLS flags", KubernetesConfig{Kubeconfig: kc, Image: "i", FrontAddress: "127.0.0.1:0", FrontCert: "c.pem"}, "needs all of"},
		{"bad credentials secret", KubernetesConfig{Kubeconfig: kc, CredentialsSecret: "no-slash"}, "namespace/name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KUBERNETES_SERVICE_HOST", "") // never pick up an in-cluster account here
			got, err := setupKubernetes(context.Background(), dir, tc.flags, slog.New(slog.DiscardHandler))
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
