package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
)

// TestTextQueryWithWiredEmbedder wires the real embeddings-hash plugin
// binary: documents upserted as text are embedded, and a query by text
// finds the document sharing its words.
func TestTextQueryWithWiredEmbedder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bin := filepath.Join(t.TempDir(), "embeddings-hash")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/nemoclave/nemoclave/plugins/embeddings-hash").CombinedOutput(); err != nil {
		t.Fatalf("go build embeddings-hash: %v\n%s", err, out)
	}
	e, err := plugin.Launch(ctx, plugin.LaunchOptions{Path: bin, Env: os.Environ()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Kill)
	if ds, err := e.Configure(ctx, plugin.ConfigureOptions{Config: json.RawMessage(`{"dimensions":128}`)}); err != nil || len(ds) > 0 {
		t.Fatalf("configure embedder: %v %+v", err, ds)
	}
	c := plugin.InProcess(t, newPlugin())
	ds, err := c.Configure(ctx, plugin.ConfigureOptions{Config: json.RawMessage(`{}`), StateDir: t.TempDir(), Wirings: []plugin.HostWiring{{
		Wiring: plugin.Wiring{Attribute: "embeddings", Kind: plugin.KindEmbeddings, Target: "plugin.embeddings.hash"}, Plugin: e.Client}}})
	if err != nil || len(ds) > 0 {
		t.Fatalf("configure: %v %+v", err, ds)
	}
	st := c.Retrieval()
	col, err := st.CreateCollection(ctx, "kb", 0)
	if err != nil || col.Dimensions != 128 {
		t.Fatalf("create with embedder dims: %+v %v", col, err)
	}
	texts := []string{"How to rotate the API credentials", "Kubernetes pod eviction policies", "Brewing green tea at 80 degrees", "Quarterly revenue report for Europe"}
	var docs []retrieval.Document
	for i, tx := range texts {
		docs = append(docs, retrieval.Document{ID: fmt.Sprint(i), Text: tx, Metadata: map[string]any{"n": i}})
	}
	if _, err := st.Upsert(ctx, "kb", docs); err != nil {
		t.Fatal(err)
	}
	ms, err := st.Query(ctx, &retrieval.QueryRequest{Collection: "kb", Text: "pods evicted by kubernetes", TopK: 2, IncludeVectors: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Document.ID != "1" || len(ms[0].Document.Vector) != 128 || ms[0].Score <= ms[1].Score {
		t.Fatalf("text query = %+v", ms)
	}
}
