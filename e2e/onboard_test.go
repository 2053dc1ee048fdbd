package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// onboard with a self-hosted server (vLLM here; Ollama and NIM speak the
// same API) probes the server's GET /models through the real provider
// plugin before it writes anything: a listed model passes and lands in the
// blueprint with --base-url; a model the server does not list, or a server
// that is not there, fails with what to do and leaves nothing behind.
func TestOnboardProbesSelfHostedServer(t *testing.T) {
	var probes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/models" {
			http.NotFound(w, r)
			return
		}
		probes.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"object":"list","data":[{"id":"served-model","object":"model","owned_by":"me"}]}`))
	}))
	defer srv.Close()
	e := newEnv(t)
	ctx := context.Background()
	nothingWritten := func(dir string) {
		t.Helper()
		for _, p := range []string{filepath.Join(dir, "blueprint.hcl"), filepath.Join(e.home, "config.yaml")} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("a refused onboard wrote %s", p)
			}
		}
	}

	dir := t.TempDir()
	r := e.run(ctx, "onboard", "--non-interactive", "--provider", "vllm", "--base-url", srv.URL+"/v1", "--model", "not-served", "--dir", dir)
	if r.code == 0 || !strings.Contains(r.stderr, `does not list model "not-served"`) || !strings.Contains(r.stderr, "served-model") || !strings.Contains(r.stderr, "nothing was written") {
		t.Fatalf("unlisted model: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	nothingWritten(dir)

	closed := freeAddr(t)
	r = e.run(ctx, "onboard", "--non-interactive", "--provider", "ollama", "--base-url", "http://"+closed+"/v1", "--dir", dir)
	if r.code == 0 || !strings.Contains(r.stderr, "did not answer") || !strings.Contains(r.stderr, "start the server") {
		t.Fatalf("no server: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	nothingWritten(dir)

	out := e.must("onboard", "--non-interactive", "--provider", "vllm", "--base-url", srv.URL+"/v1", "--model", "served-model", "--dir", dir)
	if !strings.Contains(out, "lists model served-model") {
		t.Fatalf("onboard output:\n%s", out)
	}
	bp, err := os.ReadFile(filepath.Join(dir, "blueprint.hcl"))
	if err != nil || !strings.Contains(string(bp), `base_url = "`+srv.URL+`/v1"`) || !strings.Contains(string(bp), `"served-model"`) {
		t.Fatalf("blueprint: %v\n%s", err, bp)
	}
	if n := probes.Load(); n < 2 {
		t.Fatalf("the server saw %d GET /models, want one per checked onboard", n)
	}
	// The same answers again: nothing to change, and it says so.
	if out := e.must("onboard", "--non-interactive", "--provider", "vllm", "--base-url", srv.URL+"/v1", "--model", "served-model", "--dir", dir); !strings.Contains(out, "already this blueprint") {
		t.Fatalf("re-run:\n%s", out)
	}
	e.must("validate", filepath.Join(dir, "blueprint.hcl"))
}
