package main

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

func cosine(a, b []float32) float64 {
	var d float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
	}
	return d
}

func TestEmbedNormalisedDeterministicAndLexical(t *testing.T) {
	t.Parallel()
	c := defaultConfig()
	a, _ := c.embed("The quick brown fox jumps over the lazy dog", 256)
	a2, _ := c.embed("The quick brown fox jumps over the lazy dog", 256)
	near, _ := c.embed("a quick brown fox jumped over a lazy dog", 256)
	far, _ := c.embed("quarterly revenue grew in the European market", 256)
	if math.Abs(cosine(a, a)-1) > 1e-5 {
		t.Fatalf("not unit length: %v", cosine(a, a))
	}
	for i := range a {
		if a[i] != a2[i] {
			t.Fatal("not deterministic")
		}
	}
	if sn, sf := cosine(a, near), cosine(a, far); sn <= sf || sn < 0.5 {
		t.Fatalf("similar text should be nearer: near=%.3f far=%.3f", sn, sf)
	}
}

func TestEmbedEmptyTextIsZeroVector(t *testing.T) {
	t.Parallel()
	v, n := defaultConfig().embed("  ,.;  ", 16)
	if n != 0 || len(v) != 16 {
		t.Fatalf("n=%d len=%d", n, len(v))
	}
	for _, x := range v {
		if x != 0 || math.IsNaN(float64(x)) {
			t.Fatalf("want zero vector, got %v", v)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw  string
		path string
	}{
		{`{"dimensions":0}`, "dimensions"},
		{`{"dimensions":100000}`, "dimensions"},
		{`{"word_ngrams":0}`, "word_ngrams"},
		{`{"char_ngram_min":4,"char_ngram_max":2}`, "char_ngram_max"},
	} {
		ds := (&hashPlugin{}).ValidateConfig(context.Background(), json.RawMessage(tc.raw))
		if len(ds) != 1 || ds[0].Path[0] != tc.path {
			t.Errorf("%s: diags %+v, want one at %s", tc.raw, ds, tc.path)
		}
	}
	if ds := (&hashPlugin{}).ValidateConfig(context.Background(), json.RawMessage(`{"dimensions":64}`)); len(ds) != 0 {
		t.Errorf("valid config rejected: %+v", ds)
	}
}

func TestOverGRPC(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := plugin.InProcess(t, &hashPlugin{cfg: defaultConfig()})
	if ds, err := c.Configure(ctx, plugin.ConfigureOptions{Config: json.RawMessage(`{"dimensions":64}`)}); err != nil || len(ds) > 0 {
		t.Fatalf("configure: %v %+v", err, ds)
	}
	d, err := c.Embeddings().Dimensions(ctx, "")
	if err != nil || d != 64 {
		t.Fatalf("dimensions = %d, %v", d, err)
	}
	resp, err := c.Embeddings().Embed(ctx, &embeddings.EmbedRequest{Inputs: []string{"alpha beta", "gamma"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Vectors) != 2 || len(resp.Vectors[0]) != 64 || resp.Model != modelName || resp.InputTokens != 3 {
		t.Fatalf("resp = %d vectors, model %q, tokens %d", len(resp.Vectors), resp.Model, resp.InputTokens)
	}
	resp, err = c.Embeddings().Embed(ctx, &embeddings.EmbedRequest{Inputs: []string{"x"}, Dimensions: 32})
	if err != nil || len(resp.Vectors[0]) != 32 {
		t.Fatalf("requested dimensions not honoured: %v", err)
	}
}
