package main

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
)

// wordEmbedder is a minimal in-process embeddings plugin (hashed bag of
// words).
type wordEmbedder struct{ plugin.Base }

func (wordEmbedder) Info() plugin.Info {
	return plugin.Info{Name: "test-words", Version: "0", Kinds: []plugin.Kind{plugin.KindEmbeddings}}
}

func (wordEmbedder) Dimensions(context.Context, string) (int, error) { return 32, nil }

func (wordEmbedder) Embed(_ context.Context, req *embeddings.EmbedRequest) (*embeddings.EmbedResponse, error) {
	out := &embeddings.EmbedResponse{Model: "test-words"}
	for _, in := range req.Inputs {
		v := make([]float32, 32)
		v[0] = 0.01
		for _, w := range strings.Fields(strings.ToLower(in)) {
			h := fnv.New32a()
			h.Write([]byte(w))
			v[h.Sum32()%32]++
		}
		out.Vectors = append(out.Vectors, v)
	}
	return out, nil
}

// TestTextThroughWiredEmbedder: with an embedder wired, a collection
// created with dimensions 0 takes the embedder's size, text-only
// documents are embedded, and a text query finds its document first.
func TestTextThroughWiredEmbedder(t *testing.T) {
	t.Parallel()
	url := serverURL(t, "NEMOCLAVE_TEST_PGVECTOR_URL")
	ctx := context.Background()
	emb := plugin.InProcess(t, wordEmbedder{})
	c := plugin.InProcess(t, newPlugin())
	if ds, err := c.Configure(ctx, plugin.ConfigureOptions{Config: json.RawMessage(cfgJSON(url)), Wirings: []plugin.HostWiring{{
		Wiring: plugin.Wiring{Attribute: "embeddings", Kind: plugin.KindEmbeddings, Target: "plugin.embeddings.w"}, Plugin: emb}}}); err != nil || len(ds) > 0 {
		t.Fatalf("configure: %v %+v", err, ds)
	}
	st := c.Retrieval()
	name := fmt.Sprintf("embed-%d", time.Now().UnixNano())
	t.Cleanup(func() { st.DeleteCollection(context.WithoutCancel(ctx), name) })
	col, err := st.CreateCollection(ctx, name, 0)
	if err != nil || col.Dimensions != 32 {
		t.Fatalf("create: %+v %v", col, err)
	}
	texts := []string{"rotate api credentials monthly", "kubernetes pod eviction policies", "green tea brewing temperature"}
	var docs []retrieval.Document
	for i, tx := range texts {
		docs = append(docs, retrieval.Document{ID: fmt.Sprint(i), Text: tx})
	}
	if _, err := st.Upsert(ctx, name, docs); err != nil {
		t.Fatal(err)
	}
	ms, err := st.Query(ctx, &retrieval.QueryRequest{Collection: name, Text: "kubernetes eviction", TopK: 2, IncludeVectors: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Document.ID != "1" || len(ms[0].Document.Vector) != 32 || ms[0].Score <= ms[1].Score {
		t.Fatalf("text query = %+v", ms)
	}
}
