package sdktest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/sdk/dataproc"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/status"
)

var defaultDocument = dataproc.Document{Name: "sdktest.txt", MIMEType: "text/plain",
	Data: []byte("nemoclave runs agents in sandboxes.\n\nPlugins extend it with models, memory and tools.\n")}

// DataProc checks the Processor contract: operations are listed with
// unique names and object option schemas; an unknown operation is
// NotFound; each WithDocument sample (or, without any, a short text/plain
// document for every operation that takes text) transforms without error
// into the output its operation promises: text for extract_text, ordered
// chunks with sane offsets for chunk, typed non-empty documents for
// convert and generate.
func DataProc(t *testing.T, p plugin.Plugin, opts ...Option) {
	t.Helper()
	o := collect(opts)
	ctx := suiteContext(t, o)
	c, _ := start(t, p, o)
	proc := c.DataProc()

	ops, err := proc.ListOperations(ctx)
	if err != nil {
		t.Fatalf("ListOperations: %v", err)
	}
	if len(ops) == 0 {
		t.Fatal("ListOperations returned no operations")
	}
	byName := map[string]dataproc.Operation{}
	for _, op := range ops {
		if op.Name == "" {
			t.Errorf("an operation has no name: %+v", op)
		}
		if _, dup := byName[op.Name]; dup {
			t.Errorf("operation %q listed twice", op.Name)
		}
		byName[op.Name] = op
		if len(op.OptionsSchema) > 0 {
			if err := checkObjectSchema(op.OptionsSchema); err != nil {
				t.Errorf("operation %q options schema: %v", op.Name, err)
			}
		}
	}

	t.Run("unknown operation", func(t *testing.T) {
		_, err := proc.Transform(ctx, &dataproc.TransformRequest{Operation: "sdktest-no-such-operation", Input: defaultDocument})
		if status.CodeOf(err) != status.NotFound {
			t.Errorf("Transform with an unknown operation: %v, want NotFound", err)
		}
	})

	samples := o.documents
	if len(samples) == 0 {
		for _, op := range ops {
			if accepts(op.InputTypes, defaultDocument.MIMEType) {
				samples = append(samples, docSample{operation: op.Name, doc: defaultDocument})
			}
		}
		if len(samples) == 0 {
			t.Fatal("no operation takes text/plain; give a sample input with sdktest.WithDocument")
		}
	}

	t.Run("samples", func(t *testing.T) {
		for _, s := range samples {
			op, ok := byName[s.operation]
			if !ok {
				t.Errorf("WithDocument(%q): no such operation", s.operation)
				continue
			}
			if !accepts(op.InputTypes, s.doc.MIMEType) {
				t.Errorf("operation %s lists input types %v, which do not include the sample's %q", op.Name, op.InputTypes, s.doc.MIMEType)
			}
			resp, err := proc.Transform(ctx, &dataproc.TransformRequest{Operation: s.operation, Input: s.doc, Options: s.options})
			if err != nil {
				t.Errorf("Transform(%s, %s): %v", s.operation, s.doc.Name, err)
				continue
			}
			checkTransform(t, op, resp)
		}
	})
}

func checkTransform(t *testing.T, op dataproc.Operation, resp *dataproc.TransformResponse) {
	t.Helper()
	if resp.Text == "" && len(resp.Chunks) == 0 && len(resp.Outputs) == 0 {
		t.Errorf("%s produced nothing", op.Name)
	}
	switch op.Name {
	case dataproc.OpExtractText:
		if strings.TrimSpace(resp.Text) == "" {
			t.Errorf("%s returned no text", op.Name)
		}
	case dataproc.OpChunk:
		if len(resp.Chunks) == 0 {
			t.Errorf("%s returned no chunks", op.Name)
		}
		for i, ch := range resp.Chunks {
			if ch.Index != i {
				t.Errorf("%s: chunk %d has Index %d; chunks are numbered in order from 0", op.Name, i, ch.Index)
			}
			if ch.Text == "" || ch.Start < 0 || ch.End < ch.Start {
				t.Errorf("%s: chunk %d = %+v; want text and 0 <= Start <= End", op.Name, i, ch)
			}
			if i > 0 && ch.Start < resp.Chunks[i-1].Start {
				t.Errorf("%s: chunk %d starts before chunk %d", op.Name, i, i-1)
			}
			if resp.Text != "" && ch.End <= int64(len(resp.Text)) && resp.Text[ch.Start:ch.End] != ch.Text {
				t.Errorf("%s: chunk %d text %q is not Text[%d:%d] = %q", op.Name, i, ch.Text, ch.Start, ch.End, resp.Text[ch.Start:ch.End])
			}
		}
	case dataproc.OpConvert, dataproc.OpGenerate:
		if len(resp.Outputs) == 0 {
			t.Errorf("%s returned no output documents", op.Name)
		}
	}
	for _, d := range resp.Outputs {
		if d.MIMEType == "" || len(d.Data) == 0 {
			t.Errorf("%s: output %q has no MIME type or no data", op.Name, d.Name)
		}
		if len(op.OutputTypes) > 0 && !accepts(op.OutputTypes, d.MIMEType) {
			t.Errorf("%s: output %q is %s, not one of the declared %v", op.Name, d.Name, d.MIMEType, op.OutputTypes)
		}
		if strings.HasSuffix(d.MIMEType, "json") && !json.Valid(d.Data) {
			t.Errorf("%s: output %q claims %s but is not valid JSON", op.Name, d.Name, d.MIMEType)
		}
	}
}

// accepts matches a MIME type against a list that may use "type/*";
// an empty list accepts anything.
func accepts(types []string, mime string) bool {
	if len(types) == 0 {
		return true
	}
	mime, _, _ = strings.Cut(mime, ";")
	for _, ty := range types {
		if ty == mime || ty == "*/*" || (strings.HasSuffix(ty, "/*") && strings.HasPrefix(mime, strings.TrimSuffix(ty, "*"))) {
			return true
		}
	}
	return false
}
