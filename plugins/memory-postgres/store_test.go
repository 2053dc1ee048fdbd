package main

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/sdktest"
)

// The servers come from scripts/test-postgres.sh (sourced by .ci/run):
// Debian's PostgreSQL 15 for the relational and full-text paths, PGlite
// with pgvector for the vector path. Tests skip only when a URL is unset.
func serverURL(t *testing.T, env string) string {
	t.Helper()
	u := os.Getenv(env)
	if u == "" {
		t.Skipf("%s is unset; run `. scripts/test-postgres.sh` to start the test databases", env)
	}
	return u
}

func cfgJSON(dsn string) string {
	b, _ := json.Marshal(map[string]any{"dsn": dsn, "max_connections": 4})
	return string(b)
}

// wordEmbedder is a minimal in-process embeddings plugin (hashed bag of
// words) for the conformance suite, which wires targets in process.
type wordEmbedder struct{ plugin.Base }

func (wordEmbedder) Info() plugin.Info {
	return plugin.Info{Name: "test-words", Version: "0", Kinds: []plugin.Kind{plugin.KindEmbeddings}}
}

func (wordEmbedder) Dimensions(context.Context, string) (int, error) { return 64, nil }

func (wordEmbedder) Embed(_ context.Context, req *embeddings.EmbedRequest) (*embeddings.EmbedResponse, error) {
	out := &embeddings.EmbedResponse{Model: "test-words"}
	for _, in := range req.Inputs {
		v := make([]float32, 64)
		v[0] = 0.01 // never the zero vector, whose cosine is undefined
		for _, w := range strings.Fields(strings.ToLower(in)) {
			h := fnv.New32a()
			h.Write([]byte(w))
			v[h.Sum32()%64]++
		}
		out.Vectors = append(out.Vectors, v)
	}
	return out, nil
}

func TestConformancePostgres(t *testing.T) {
	t.Parallel()
	url := serverURL(t, "NEMOCLAVE_TEST_POSTGRES_URL")
	sdktest.Common(t, newPlugin(), sdktest.WithConfig(cfgJSON(url)))
	sdktest.Memory(t, newPlugin(), sdktest.WithConfig(cfgJSON(url)))
}

func TestConformancePgvector(t *testing.T) {
	t.Parallel()
	url := serverURL(t, "NEMOCLAVE_TEST_PGVECTOR_URL")
	sdktest.Memory(t, newPlugin(), sdktest.WithConfig(cfgJSON(url)), sdktest.WithTimeout(2*time.Minute),
		sdktest.WithWiring("embeddings", plugin.KindEmbeddings, wordEmbedder{}, `{}`))
}

// TestVectorPathNeedsPgvector: wiring an embedder against a server
// without pgvector fails at configure with a message saying what to do.
func TestVectorPathNeedsPgvector(t *testing.T) {
	t.Parallel()
	url := serverURL(t, "NEMOCLAVE_TEST_POSTGRES_URL")
	emb := plugin.InProcess(t, wordEmbedder{})
	c := plugin.InProcess(t, newPlugin())
	ds, err := c.Configure(context.Background(), plugin.ConfigureOptions{Config: json.RawMessage(cfgJSON(url)), Wirings: []plugin.HostWiring{{
		Wiring: plugin.Wiring{Attribute: "embeddings", Kind: plugin.KindEmbeddings, Target: "plugin.embeddings.w"}, Plugin: emb}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || !strings.Contains(ds[0].Detail, "install the pgvector extension") {
		t.Fatalf("configure with an embedder on PostgreSQL without pgvector: %+v; want a diagnostic saying to install pgvector", ds)
	}
}

// TestHybridRecall wires the real embeddings-hash binary and checks that
// the vector side finds a spelling variant full-text search misses.
func TestHybridRecall(t *testing.T) {
	t.Parallel()
	url := serverURL(t, "NEMOCLAVE_TEST_PGVECTOR_URL")
	ctx := context.Background()
	bin := filepath.Join(t.TempDir(), "embeddings-hash")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/nemoclave/nemoclave/plugins/embeddings-hash").CombinedOutput(); err != nil {
		t.Fatalf("go build embeddings-hash: %v\n%s", err, out)
	}
	e, err := plugin.Launch(ctx, plugin.LaunchOptions{Path: bin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Kill)
	if ds, err := e.Configure(ctx, plugin.ConfigureOptions{Config: json.RawMessage(`{"dimensions":256}`)}); err != nil || len(ds) > 0 {
		t.Fatalf("configure embedder: %v %+v", err, ds)
	}
	c := plugin.InProcess(t, newPlugin())
	if ds, err := c.Configure(ctx, plugin.ConfigureOptions{Config: json.RawMessage(cfgJSON(url)), Wirings: []plugin.HostWiring{{
		Wiring: plugin.Wiring{Attribute: "embeddings", Kind: plugin.KindEmbeddings, Target: "plugin.embeddings.hash"}, Plugin: e.Client}}}); err != nil || len(ds) > 0 {
		t.Fatalf("configure: %v %+v", err, ds)
	}
	st := c.Memory()
	sc := memory.Scope{Agent: fmt.Sprintf("hybrid-%d", time.Now().UnixNano()), User: "u", Session: "s"}
	for _, txt := range []string{"The user's favourite colour is teal", "The build uses Go and make", "Quarterly revenue grew in Europe"} {
		if _, err := st.Remember(ctx, sc, txt, nil); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := st.Recall(ctx, sc, "favorite color", 3, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec) == 0 || !strings.Contains(rec[0].Memory.Text, "teal") {
		t.Fatalf("vector side missed the spelling variant: %+v", rec)
	}
	rec, err = st.Recall(ctx, sc, "Go build make", 3, 0)
	if err != nil || len(rec) == 0 || !strings.Contains(rec[0].Memory.Text, "build") {
		t.Fatalf("keyword match not first: %+v %v", rec, err)
	}
	for i, r := range rec {
		if r.Score < 0 || r.Score > 1 || (i > 0 && r.Score > rec[i-1].Score) {
			t.Fatalf("scores not in [0,1] best first: %+v", rec)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	p := newPlugin()
	if err := p.ConfigSchema().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ raw, path string }{
		{`{}`, "dsn"},
		{`{"dsn":"postgres://x@h/db","max_connections":0}`, "max_connections"},
		{`{"dsn":"postgres://x@h/db","vector_weight":3}`, "vector_weight"},
		{`{"dsn":"postgres://x@h:notaport/db"}`, "dsn"},
	} {
		ds := p.ValidateConfig(context.Background(), json.RawMessage(tc.raw))
		if len(ds) != 1 || ds[0].Path[0] != tc.path {
			t.Errorf("%s: %+v, want one diagnostic at %s", tc.raw, ds, tc.path)
		}
	}
}
