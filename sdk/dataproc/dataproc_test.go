package dataproc_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nemoclave/nemoclave/sdk/dataproc"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// recorder is a dataproc plugin that records the request and answers as
// scripted.
type recorder struct {
	plugin.Base
	ops  []dataproc.Operation
	resp *dataproc.TransformResponse
	err  error

	mu  sync.Mutex
	got *dataproc.TransformRequest
}

func (*recorder) Info() plugin.Info {
	return plugin.Info{Name: "recorder", Version: "0.0.1", Kinds: []plugin.Kind{plugin.KindDataProc}}
}
func (r *recorder) ListOperations(context.Context) ([]dataproc.Operation, error) { return r.ops, r.err }
func (r *recorder) Transform(_ context.Context, req *dataproc.TransformRequest) (*dataproc.TransformResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = req
	return r.resp, r.err
}

func TestTransformRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		req  *dataproc.TransformRequest
		resp *dataproc.TransformResponse
	}{
		{"empty", &dataproc.TransformRequest{Operation: dataproc.OpExtractText}, &dataproc.TransformResponse{}},
		{"extract", &dataproc.TransformRequest{Operation: dataproc.OpExtractText, Input: dataproc.Document{Name: "a.html", MIMEType: "text/html", Data: []byte("<p>hi</p>")}},
			&dataproc.TransformResponse{Text: "hi"}},
		{"chunk", &dataproc.TransformRequest{Operation: dataproc.OpChunk, Input: dataproc.Document{MIMEType: "text/plain", Data: []byte("one two")}, Options: json.RawMessage(`{"size":3}`)},
			&dataproc.TransformResponse{Text: "one two", Chunks: []dataproc.Chunk{{Index: 0, Text: "one", Start: 0, End: 3}, {Index: 1, Text: "two", Start: 4, End: 7}}}},
		{"generate", &dataproc.TransformRequest{Operation: dataproc.OpGenerate, Input: dataproc.Document{MIMEType: "application/json", Data: []byte(`[{"a":1}]`)}},
			&dataproc.TransformResponse{Outputs: []dataproc.Document{{Name: "out.csv", MIMEType: "text/csv", Data: []byte("a\n1\n")}, {Name: "empty.txt", MIMEType: "text/plain"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{resp: tc.resp}
			got, err := plugin.InProcess(t, rec).DataProc().Transform(context.Background(), tc.req)
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

func TestListOperationsAndErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ops := []dataproc.Operation{
		{Name: dataproc.OpChunk, Description: "split text", InputTypes: []string{"text/*"}, OutputTypes: []string{"text/plain"}, OptionsSchema: json.RawMessage(`{"type":"object"}`)},
		{Name: "ocr"},
	}
	got, err := plugin.InProcess(t, &recorder{ops: ops}).DataProc().ListOperations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(ops, got, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("operations (-sent +received):\n%s", d)
	}
	p := plugin.InProcess(t, &recorder{err: status.Errorf(status.NotFound, "no operation %q", "x")}).DataProc()
	if _, err := p.Transform(ctx, &dataproc.TransformRequest{Operation: "x"}); status.CodeOf(err) != status.NotFound {
		t.Errorf("Transform: %v, want NotFound", err)
	}
	if _, err := plugin.InProcess(t, &recorder{}).DataProc().Transform(ctx, &dataproc.TransformRequest{}); status.CodeOf(err) != status.Internal {
		t.Errorf("nil response: %v, want Internal", err)
	}
	var ns dataproc.NotSupported
	if _, err := ns.ListOperations(ctx); status.CodeOf(err) != status.NotSupported {
		t.Errorf("NotSupported.ListOperations: %v", err)
	}
}
