package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/sdktest"
	"github.com/nemoclave/nemoclave/sdk/status"
)

func configured(t *testing.T, cfg string) embeddings.Embedder {
	t.Helper()
	c := plugin.InProcess(t, newPlugin())
	if ds, err := c.Configure(context.Background(), plugin.ConfigureOptions{Config: json.RawMessage(cfg)}); err != nil || len(ds) > 0 {
		t.Fatalf("configure: %v %+v", err, ds)
	}
	return c.Embeddings()
}

type standinStats struct {
	Batches []int  `json:"batches"`
	XTest   string `json:"x_test"`
}

func stats(t *testing.T, base string) standinStats {
	t.Helper()
	resp, err := http.Get(base + "/_batches")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s standinStats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBatchingAndOrder(t *testing.T) {
	t.Parallel()
	base := startStandin(t)
	e := configured(t, `{"base_url":"`+base+`","api_key":"`+standinKey+`","model":"m","batch_size":3,"headers":{"X-Test":"yes"}}`)
	var inputs []string
	for i := range 8 {
		inputs = append(inputs, fmt.Sprintf("text number %d", i))
	}
	res, err := e.Embed(context.Background(), &embeddings.EmbedRequest{Inputs: inputs})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Vectors) != 8 || res.Model != "m-served" || res.InputTokens != 24 {
		t.Fatalf("got %d vectors, model %q, tokens %d", len(res.Vectors), res.Model, res.InputTokens)
	}
	for i, v := range res.Vectors {
		want := fakeVector(inputs[i], 16)
		for j := range v {
			if v[j] != want[j] {
				t.Fatalf("vector %d is not the one for %q: order lost", i, inputs[i])
			}
		}
	}
	s := stats(t, base)
	if fmt.Sprint(s.Batches) != "[3 3 2]" || s.XTest != "yes" {
		t.Errorf("batches %v, header %q; want [3 3 2] and yes", s.Batches, s.XTest)
	}
	res, err = e.Embed(context.Background(), &embeddings.EmbedRequest{Inputs: []string{"a"}, Dimensions: 4, Model: "other"})
	if err != nil || len(res.Vectors[0]) != 4 || res.Model != "other-served" {
		t.Fatalf("dimensions/model override: %v %+v", err, res)
	}
	if res, err := e.Embed(context.Background(), &embeddings.EmbedRequest{}); err != nil || len(res.Vectors) != 0 {
		t.Errorf("empty batch: %v %+v", err, res)
	}
	if len(stats(t, base).Batches) != 1 {
		t.Error("an empty batch should not reach the server")
	}
}

func TestDimensions(t *testing.T) {
	t.Parallel()
	base := startStandin(t)
	e := configured(t, `{"base_url":"`+base+`","api_key":"`+standinKey+`","model":"m"}`)
	for range 2 {
		if d, err := e.Dimensions(context.Background(), ""); err != nil || d != 16 {
			t.Fatalf("dimensions = %d, %v", d, err)
		}
	}
	if n := len(stats(t, base).Batches); n != 1 {
		t.Errorf("dimensions probed %d times, want once", n)
	}
	e = configured(t, `{"base_url":"`+base+`","api_key":"`+standinKey+`","model":"m","dimensions":8}`)
	if d, err := e.Dimensions(context.Background(), ""); err != nil || d != 8 {
		t.Fatalf("configured dimensions = %d, %v", d, err)
	}
	if res, err := e.Embed(context.Background(), &embeddings.EmbedRequest{Inputs: []string{"x"}}); err != nil || len(res.Vectors[0]) != 8 {
		t.Fatalf("configured dimensions not sent: %v", err)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	base := startStandin(t)
	ctx := context.Background()
	good := `"base_url":"` + base + `","api_key":"` + standinKey + `"`

	bad := configured(t, `{"base_url":"`+base+`","api_key":"sk-wrong-key-abcdefghijklmnop"}`)
	_, err := bad.Embed(ctx, &embeddings.EmbedRequest{Inputs: []string{"x"}})
	if status.CodeOf(err) != status.Unauthenticated || strings.Contains(err.Error(), "abcdefghijklmnop") || !strings.Contains(err.Error(), "credential") {
		t.Errorf("wrong key: %v (must be Unauthenticated, say what to do, and not echo the key)", err)
	}
	_, err = configured(t, `{`+good+`,"model":"missing"}`).Embed(ctx, &embeddings.EmbedRequest{Inputs: []string{"x"}})
	if status.CodeOf(err) != status.NotFound || !strings.Contains(err.Error(), "model name") {
		t.Errorf("missing model: %v", err)
	}
	res, err := configured(t, `{`+good+`,"model":"flaky","max_retries":1}`).Embed(ctx, &embeddings.EmbedRequest{Inputs: []string{"x", "y"}})
	if err != nil || len(res.Vectors) != 2 {
		t.Errorf("a 429 should be retried: %v", err)
	}
	_, err = configured(t, `{`+good+`,"model":"broken","max_retries":1}`).Embed(ctx, &embeddings.EmbedRequest{Inputs: []string{"x"}})
	if status.CodeOf(err) != status.Unavailable {
		t.Errorf("500: %v", err)
	}
	_, err = configured(t, `{"base_url":"http://127.0.0.1:1/v1","max_retries":0}`).Embed(ctx, &embeddings.EmbedRequest{Inputs: []string{"x"}})
	if status.CodeOf(err) != status.Unavailable || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("unreachable: %v", err)
	}
}

func TestVectorDecoding(t *testing.T) {
	t.Parallel()
	v, err := vector("AACAPwAAAMA=") // 1.0, -2.0 little-endian float32
	if err != nil || len(v) != 2 || v[0] != 1 || v[1] != -2 {
		t.Errorf("base64: %v %v", v, err)
	}
	if _, err := vector([]any{1.0, "x"}); err == nil {
		t.Error("non-number element accepted")
	}
	if _, err := vector("!!"); err == nil {
		t.Error("bad base64 accepted")
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ raw, path string }{
		{`{"base_url":"ftp://x"}`, "base_url"},
		{`{"batch_size":0}`, "batch_size"},
		{`{"batch_size":5000}`, "batch_size"},
		{`{"dimensions":-1}`, "dimensions"},
		{`{"timeout":"soon"}`, "timeout"},
		{`{"max_retries":50}`, "max_retries"},
		{`{"headers":{"authorization":"Bearer x"}}`, "headers"},
		{`{"api_key":"a\nb"}`, "api_key"},
	} {
		ds := newPlugin().ValidateConfig(context.Background(), json.RawMessage(tc.raw))
		if len(ds) != 1 || ds[0].Path[0] != tc.path {
			t.Errorf("%s: diags %+v, want one at %s", tc.raw, ds, tc.path)
		}
	}
	for _, a := range configSchema().Block.Attributes {
		if a.Name == "api_key" && (!a.Credential || !a.Sensitive) {
			t.Error("api_key must be a sensitive credential attribute")
		}
	}
	p := newPlugin()
	if err := p.Configure(context.Background(), plugin.Config{JSON: json.RawMessage(`{"api_key":"sk-secret-value"}`)}, nil); err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(p); strings.Contains(s, "secret") {
		t.Errorf("String() leaks the key: %s", s)
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	base := startStandin(t)
	cfg := sdktest.WithConfig(`{"base_url":"` + base + `","api_key":"` + standinKey + `","model":"m","batch_size":2}`)
	sdktest.Common(t, newPlugin(), cfg)
	sdktest.Embeddings(t, newPlugin(), cfg, sdktest.WithDeterministic())
}
