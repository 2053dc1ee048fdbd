package llmhttp

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// TestErrorsNameNeitherURLNorKey checks the errors an agent may see: an
// unreachable provider and a refusal echoing the key.
func TestErrorsNameNeitherURLNorKey(t *testing.T) {
	const key = "sk-test-0123456789abcdefXYZ"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	p := Provider{Key: key, Code: func(int) status.Code { return status.Unauthenticated }}
	hc := NewClient(5*time.Second, 5*time.Second)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, dead+"/v1/messages", nil)
	_, err = p.Send(context.Background(), hc, req)
	if status.CodeOf(err) != status.Unavailable || strings.Contains(err.Error(), ln.Addr().String()) || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("unreachable: %v", err)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("Incorrect API key provided: " + r.Header.Get("x-api-key")))
	}))
	defer srv.Close()
	err = p.Forward(context.Background(), hc, srv.URL+"/v1/messages", &llm.ForwardRequest{Body: []byte(`{}`), Headers: map[string]string{"x-api-key": "agent"}},
		func(h http.Header) { h.Set("x-api-key", key) }, func(*llm.ForwardChunk) error { t.Fatal("a refusal must not be sent as an answer"); return nil })
	if status.CodeOf(err) != status.Unauthenticated || strings.Contains(err.Error(), key) || strings.Contains(err.Error(), srv.URL) || !strings.Contains(err.Error(), "nemoclave provider add") {
		t.Fatalf("refusal: %v", err)
	}
}

// TestForwardStreamsAndFiltersHeaders checks the answer arrives in order
// with only the allowed headers, and the agent's credential never leaves.
func TestForwardStreamsAndFiltersHeaders(t *testing.T) {
	var gotKey, gotBeta string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotKey, gotBeta = r.Header.Get("x-api-key")+r.Header.Get("Authorization"), r.Header.Get("anthropic-beta")
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Set-Cookie", "a=b")
		w.Header().Set("request-id", "req_1")
		_, _ = w.Write([]byte("event: ping\ndata: {}\n\n"))
	}))
	defer srv.Close()
	var chunks []*llm.ForwardChunk
	err := Provider{}.Forward(context.Background(), NewClient(0, 5*time.Second), srv.URL, &llm.ForwardRequest{Stream: true, Body: []byte(`{}`),
		Headers: map[string]string{"Authorization": "Bearer agent", "anthropic-beta": "x"}}, func(h http.Header) { h.Set("x-api-key", "plugin") },
		func(c *llm.ForwardChunk) error { chunks = append(chunks, c); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if gotKey != "plugin" || gotBeta != "x" {
		t.Fatalf("provider got key %q beta %q", gotKey, gotBeta)
	}
	if len(chunks) < 2 || chunks[0].Status != 200 || chunks[0].Headers["request-id"] != "req_1" || chunks[0].Headers["set-cookie"] != "" {
		t.Fatalf("first chunk %+v", chunks[0])
	}
	var body strings.Builder
	for _, c := range chunks {
		body.Write(c.Data)
	}
	if body.String() != "event: ping\ndata: {}\n\n" {
		t.Fatalf("body %q", body.String())
	}
}

// Do sends the body as JSON with the plugin's headers; a request without
// a body carries no Content-Type.
func TestDo(t *testing.T) {
	type seen struct{ method, path, ctype, auth, body string }
	got := make(chan seen, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), string(b)}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	p := Provider{Key: "k"}
	set := func(h http.Header) { h.Set("Authorization", "Bearer k") }
	for _, tc := range []struct {
		method string
		body   []byte
		want   seen
	}{
		{http.MethodPost, []byte(`{"a":1}`), seen{http.MethodPost, "/v1/x", "application/json", "Bearer k", `{"a":1}`}},
		{http.MethodGet, nil, seen{http.MethodGet, "/v1/x", "", "Bearer k", ""}},
	} {
		resp, err := p.Do(context.Background(), srv.Client(), tc.method, srv.URL+"/v1/x", tc.body, set)
		if err != nil {
			t.Fatalf("%s: %v", tc.method, err)
		}
		resp.Body.Close()
		if s := <-got; s != tc.want {
			t.Errorf("%s: the server saw %+v, want %+v", tc.method, s, tc.want)
		}
	}
	if _, err := p.Do(context.Background(), srv.Client(), "BAD METHOD", srv.URL, nil, set); status.CodeOf(err) != status.InvalidArgument {
		t.Errorf("a request that cannot be built: %v, want InvalidArgument", err)
	}
}
