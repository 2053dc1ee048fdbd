package embeddings_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// recorder is an embeddings plugin that records the request and answers
// as scripted.
type recorder struct {
	plugin.Base
	resp *embeddings.EmbedResponse
	dims int
	err  error

	mu       sync.Mutex
	got      *embeddings.EmbedRequest
	gotModel string
}

func (*recorder) Info() plugin.Info {
	return plugin.Info{Name: "recorder", Version: "0.0.1", Kinds: []plugin.Kind{plugin.KindEmbeddings}}
}
func (r *recorder) Embed(_ context.Context, req *embeddings.EmbedRequest) (*embeddings.EmbedResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = req
	return r.resp, r.err
}
func (r *recorder) Dimensions(_ context.Context, model string) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gotModel = model
	return r.dims, r.err
}

func TestEmbedRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		req  *embeddings.EmbedRequest
		resp *embeddings.EmbedResponse
	}{
		{"empty batch", &embeddings.EmbedRequest{}, &embeddings.EmbedResponse{}},
		{"batch", &embeddings.EmbedRequest{Model: "m", Inputs: []string{"a", "", "ü"}, Dimensions: 2},
			&embeddings.EmbedResponse{Model: "m", InputTokens: 3, Vectors: [][]float32{{1, 0}, {0, 0}, {-0.5, 0.25}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{resp: tc.resp}
			got, err := plugin.InProcess(t, rec).Embeddings().Embed(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.req, rec.got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("request (-sent +received):\n%s", d)
			}
			if d := cmp.Diff(tc.resp, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("response (-sent +received):\n%s", d)
			}
		})
	}
}

func TestDimensionsAndErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rec := &recorder{dims: 384}
	if d, err := plugin.InProcess(t, rec).Embeddings().Dimensions(ctx, "small"); err != nil || d != 384 || rec.gotModel != "small" {
		t.Errorf("Dimensions = %d, %v (model seen %q)", d, err, rec.gotModel)
	}
	e := plugin.InProcess(t, &recorder{err: status.Errorf(status.RateLimited, "slow down")}).Embeddings()
	if _, err := e.Embed(ctx, &embeddings.EmbedRequest{Inputs: []string{"x"}}); status.CodeOf(err) != status.RateLimited {
		t.Errorf("Embed: %v, want RateLimited", err)
	}
}
