package inference

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/nemoclave/nemoclave/internal/testupstream"
	"github.com/nemoclave/nemoclave/plugins/llm-anthropic/anthropicplugin"
	"github.com/nemoclave/nemoclave/plugins/llm-openai/openaiplugin"
	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// upstreamKey is the provider key only the plugins hold. Tests assert it
// never reaches the agent side.
const upstreamKey = "sk-upstream-SECRET-0123456789abcdef"

// env is a gateway for one sandbox in front of the real llm-openai and
// llm-anthropic plugins (served over gRPC in-process), which call the
// testupstream stand-in running as a separate process.
type env struct {
	url      string
	upstream string
	router   *Router
	reg      *prometheus.Registry
	spans    *tracetest.SpanRecorder
	logs     *syncBuffer
	store    *SQLUsage
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testEmbedder is a small embeddings plugin: vector = [len, words, 1].
type testEmbedder struct{ plugin.Base }

func (testEmbedder) Info() plugin.Info {
	return plugin.Info{Name: "embeddings-test", Version: "0", Kinds: []plugin.Kind{plugin.KindEmbeddings}}
}

func (testEmbedder) Embed(_ context.Context, req *embeddings.EmbedRequest) (*embeddings.EmbedResponse, error) {
	out := &embeddings.EmbedResponse{Model: req.Model}
	for _, in := range req.Inputs {
		out.Vectors = append(out.Vectors, []float32{float32(len(in)), float32(len(strings.Fields(in))), 1})
		out.InputTokens += int64(len(strings.Fields(in)))
	}
	return out, nil
}

func (testEmbedder) Dimensions(context.Context, string) (int, error) { return 3, nil }

type providers struct {
	openai, anthropic llm.Provider
	embed             embeddings.Embedder
	openaiEmbed       embeddings.Embedder
	upstream          string
}

// startProviders runs the stand-in and the plugins once per test.
func startProviders(t *testing.T) providers {
	t.Helper()
	up := testupstream.Start(t, upstreamKey)
	ctx := context.Background()
	oc := plugin.InProcess(t, openaiplugin.New())
	cfg, _ := json.Marshal(map[string]any{"base_url": up + "/v1", "api_key": upstreamKey, "timeout": "30s"})
	if diags, err := oc.Configure(ctx, plugin.ConfigureOptions{Config: cfg}); err != nil || len(diags) > 0 {
		t.Fatalf("configure llm-openai: %v %v", err, diags)
	}
	ac := plugin.InProcess(t, anthropicplugin.New())
	cfg, _ = json.Marshal(map[string]any{"base_url": up, "api_key": upstreamKey, "timeout": "30s"})
	if diags, err := ac.Configure(ctx, plugin.ConfigureOptions{Config: cfg}); err != nil || len(diags) > 0 {
		t.Fatalf("configure llm-anthropic: %v %v", err, diags)
	}
	ec := plugin.InProcess(t, testEmbedder{})
	if _, err := ec.Configure(ctx, plugin.ConfigureOptions{}); err != nil {
		t.Fatal(err)
	}
	return providers{openai: oc.LLM(), anthropic: ac.LLM(), embed: ec.Embeddings(), openaiEmbed: oc.Embeddings(), upstream: up}
}

func testRoutes() Routes {
	return Routes{
		Default: "gpt",
		Models: map[string]Route{
			"gpt":    {Provider: "openai", Model: "gpt-test"},
			"claude": {Provider: "anthropic", Model: "claude-test"},
			"flaky":  {Provider: "openai", Model: "fail-429", Fallback: []string{"claude"}},
			"broken": {Provider: "openai", Model: "fail-500", Retries: 1},
			"bad":    {Provider: "openai", Model: "fail-400", Fallback: []string{"gpt"}},
			"leaky":  {Provider: "openai", Model: "leak-key"},
			"leaky2": {Provider: "anthropic", Model: "leak-key"},
		},
		Embeddings: map[string]EmbeddingsRoute{
			"embed":     {Embedder: "embed", Model: "test-embed"},
			"oai-embed": {Embedder: "openai", Model: "text-embedding-test"},
		},
		DefaultEmbeddings: "embed",
	}
}

type envOption func(*Config)

// nativeResponses adds provider "openai-native", a second llm-openai in
// front of the same stand-in configured with responses_api = true, and
// the alias "gpt-native" routed to it.
func nativeResponses(t *testing.T, p providers) envOption {
	t.Helper()
	nc := plugin.InProcess(t, openaiplugin.New())
	cfg, _ := json.Marshal(map[string]any{"base_url": p.upstream + "/v1", "api_key": upstreamKey, "timeout": "30s", "responses_api": true})
	if diags, err := nc.Configure(context.Background(), plugin.ConfigureOptions{Config: cfg}); err != nil || len(diags) > 0 {
		t.Fatalf("configure llm-openai with responses_api: %v %v", err, diags)
	}
	return func(c *Config) {
		c.Providers["openai-native"] = nc.LLM()
		c.Routes.Models["gpt-native"] = Route{Provider: "openai-native", Model: "gpt-test"}
		c.Routes.Models["native-then-claude"] = Route{Provider: "openai-native", Model: "fail-429", Fallback: []string{"claude"}}
	}
}

func newEnv(t *testing.T, p providers, opts ...envOption) *env {
	t.Helper()
	e := &env{upstream: p.upstream, reg: prometheus.NewRegistry(), spans: tracetest.NewSpanRecorder(), logs: &syncBuffer{}}
	m, err := NewMetrics(e.reg)
	if err != nil {
		t.Fatal(err)
	}
	store, err := OpenSQLiteUsage(t.TempDir() + "/state.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e.store = store
	cfg := Config{
		Sandbox:        "sb1",
		Routes:         testRoutes(),
		Providers:      map[string]llm.Provider{"openai": p.openai, "anthropic": p.anthropic},
		Embedders:      map[string]embeddings.Embedder{"embed": p.embed, "openai": p.openaiEmbed},
		Usage:          store,
		Metrics:        m,
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(e.spans)),
		Logger:         slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	r, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.router = r
	srv := httptest.NewServer(r)
	t.Cleanup(func() { srv.Close(); r.Close() })
	e.url = srv.URL
	return e
}

// post sends a raw JSON body and returns status, headers and body.
func (e *env) post(t *testing.T, path, body string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header, b.String()
}

func newTestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
