package main

import (
	"context"
	"hash/fnv"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/sdktest"
)

// wordEmbedder is a minimal in-process embeddings plugin (hashed bag of
// words) for the conformance suite, which wires targets in process; the
// real embeddings-hash binary is used by TestHybridRecall.
type wordEmbedder struct{ plugin.Base }

func (wordEmbedder) Info() plugin.Info {
	return plugin.Info{Name: "test-words", Version: "0", Kinds: []plugin.Kind{plugin.KindEmbeddings}}
}

func (wordEmbedder) Dimensions(context.Context, string) (int, error) { return 64, nil }

func (wordEmbedder) Embed(_ context.Context, req *embeddings.EmbedRequest) (*embeddings.EmbedResponse, error) {
	out := &embeddings.EmbedResponse{Model: "test-words"}
	for _, in := range req.Inputs {
		v := make([]float32, 64)
		for _, w := range strings.Fields(strings.ToLower(in)) {
			h := fnv.New32a()
			h.Write([]byte(w))
			v[h.Sum32()%64]++
		}
		out.Vectors = append(out.Vectors, v)
	}
	return out, nil
}

func TestConformance(t *testing.T) {
	t.Parallel()
	t.Run("bm25 only", func(t *testing.T) {
		t.Parallel()
		sdktest.Common(t, newPlugin(), sdktest.WithStateDir(t.TempDir()))
		sdktest.Memory(t, newPlugin(), sdktest.WithStateDir(t.TempDir()))
	})
	t.Run("hybrid", func(t *testing.T) {
		t.Parallel()
		sdktest.Memory(t, newPlugin(), sdktest.WithStateDir(t.TempDir()),
			sdktest.WithWiring("embeddings", plugin.KindEmbeddings, wordEmbedder{}, `{}`))
	})
}
