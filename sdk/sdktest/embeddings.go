package sdktest

import (
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// Embeddings checks the Embedder contract: Dimensions is positive, Embed
// returns one vector per input, in order, each of that length, the same
// vector for the same text (batched or alone, within float tolerance),
// different vectors for different texts, an empty batch without error,
// and correct results under parallel calls (run the test with -race).
func Embeddings(t *testing.T, p plugin.Plugin, opts ...Option) {
	t.Helper()
	o := collect(opts)
	ctx := suiteContext(t, o)
	c, _ := start(t, p, o)
	e := c.Embeddings()
	inputs := o.embedInputs
	if len(inputs) < 2 {
		t.Fatal("sdktest.WithEmbedInputs needs at least two distinct texts")
	}

	dims, err := e.Dimensions(ctx, o.model)
	if err != nil {
		t.Fatalf("Dimensions(%q): %v", o.model, err)
	}
	if dims <= 0 {
		t.Fatalf("Dimensions(%q) = %d; it must be the positive vector length callers size their stores with", o.model, dims)
	}

	embed := func(t *testing.T, in []string) [][]float32 {
		t.Helper()
		resp, err := e.Embed(ctx, &embeddings.EmbedRequest{Model: o.model, Inputs: in})
		if err != nil {
			t.Fatalf("Embed(%d inputs): %v", len(in), err)
		}
		if len(resp.Vectors) != len(in) {
			t.Fatalf("Embed(%d inputs) returned %d vectors; it must return exactly one per input", len(in), len(resp.Vectors))
		}
		for i, v := range resp.Vectors {
			if len(v) != dims {
				t.Fatalf("vector %d has %d values, Dimensions said %d", i, len(v), dims)
			}
			for _, x := range v {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					t.Fatalf("vector %d for %q contains %v", i, in[i], x)
				}
			}
		}
		return resp.Vectors
	}
	ref := embed(t, inputs)

	t.Run("deterministic and in order", func(t *testing.T) {
		rev := slices.Clone(inputs)
		slices.Reverse(rev)
		got := embed(t, rev)
		for i := range inputs {
			if !sameVector(ref[i], got[len(got)-1-i]) {
				t.Errorf("%q embeds differently in a reversed batch: vectors are out of order or not deterministic", inputs[i])
			}
		}
		for i, in := range inputs {
			if alone := embed(t, []string{in}); !sameVector(ref[i], alone[0]) {
				t.Errorf("%q embeds differently alone than in a batch: vectors are out of order or not deterministic", in)
			}
		}
	})

	t.Run("distinct texts differ", func(t *testing.T) {
		for i := 1; i < len(inputs); i++ {
			if inputs[i] != inputs[0] && sameVector(ref[0], ref[i]) {
				t.Errorf("%q and %q have the same vector", inputs[0], inputs[i])
			}
		}
	})

	t.Run("empty batch", func(t *testing.T) {
		resp, err := e.Embed(ctx, &embeddings.EmbedRequest{Model: o.model})
		if err != nil {
			t.Fatalf("Embed of no inputs: %v; an empty batch must succeed with no vectors", err)
		}
		if len(resp.Vectors) != 0 {
			t.Errorf("Embed of no inputs returned %d vectors", len(resp.Vectors))
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan string, 8*len(inputs))
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				i := g % len(inputs)
				resp, err := e.Embed(ctx, &embeddings.EmbedRequest{Model: o.model, Inputs: []string{inputs[i]}})
				switch {
				case err != nil:
					errs <- err.Error()
				case len(resp.Vectors) != 1 || !sameVector(resp.Vectors[0], ref[i]):
					errs <- "a parallel call returned the wrong vector for " + inputs[i]
				}
			}(g)
		}
		wg.Wait()
		close(errs)
		for msg := range errs {
			t.Error(msg)
		}
	})
}

// sameVector reports whether two vectors are the same up to the float noise a
// remote model may add (cosine similarity above 0.9999, same norm ±1%).
func sameVector(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return na == nb
	}
	if math.Abs(math.Sqrt(na)-math.Sqrt(nb)) > 0.01*math.Sqrt(na) {
		return false
	}
	return dot/math.Sqrt(na*nb) > 0.9999
}
