package e2e

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestGatewayTelemetry: with the standard OTLP variables set, the daemon
// exports the inference gateway's spans to the collector; with
// --metrics-listen (here $NEMOCLAVE_METRICS_LISTEN) it serves the GenAI
// metrics.
func TestGatewayTelemetry(t *testing.T) {
	var mu sync.Mutex
	var spans [][]byte
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/v1/traces" {
			mu.Lock()
			spans = append(spans, b)
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	metricsAddr := freeAddr(t)
	e := newEnv(t, "OTEL_EXPORTER_OTLP_ENDPOINT="+collector.URL, "OTEL_BSP_SCHEDULE_DELAY=100",
		"NEMOCLAVE_METRICS_LISTEN="+metricsAddr)
	dir := filepath.Join(t.TempDir(), "quickstart")
	copyDir(t, filepath.Join(repoRoot(t), "examples", "quickstart"), dir)
	e.must("run", filepath.Join(dir, "blueprint.hcl"))

	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `gen_ai_client_token_usage_bucket`) || !strings.Contains(string(body), `sandbox="quickstart"`) {
		t.Fatalf("metrics lack the GenAI token usage of the run:\n%.2000s", body)
	}

	e.must("daemon", "stop") // flushes the span batcher
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		all := bytes.Join(spans, nil)
		mu.Unlock()
		if bytes.Contains(all, []byte("nemoclave-gateway")) && bytes.Contains(all, []byte("chat")) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no gateway span reached the collector (%d bytes received)", len(all))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
