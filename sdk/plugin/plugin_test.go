package plugin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// constEmbedder returns vectors of the input length, to prove data crosses.
type constEmbedder struct{ Base }

func (constEmbedder) Info() Info {
	return Info{Name: "const", Version: "1.0.0", Kinds: []Kind{KindEmbeddings}}
}
func (constEmbedder) Embed(_ context.Context, r *embeddings.EmbedRequest) (*embeddings.EmbedResponse, error) {
	out := &embeddings.EmbedResponse{Model: "const"}
	for _, in := range r.Inputs {
		out.Vectors = append(out.Vectors, []float32{float32(len(in))})
	}
	return out, nil
}
func (constEmbedder) Dimensions(context.Context, string) (int, error) { return 1, nil }

// consumer is wired to an embeddings plugin through the host and exposes
// what it got as its own embeddings (doubling), like a memory plugin would.
type consumer struct {
	embeddings.NotSupported
	host Host
}

func (*consumer) Info() Info {
	return Info{Name: "consumer", Version: "0.1.0", Kinds: []Kind{KindEmbeddings}}
}
func (*consumer) ConfigSchema() *schema.Schema {
	return &schema.Schema{Block: schema.Block{Attributes: []schema.Attribute{
		{Name: "embeddings", PluginKind: string(KindEmbeddings)},
		{Name: "scale", Type: "number", Default: json.RawMessage("2")},
	}}}
}
func (*consumer) ValidateConfig(_ context.Context, raw json.RawMessage) []Diagnostic {
	var c struct{ Scale float64 }
	_ = json.Unmarshal(raw, &c)
	if c.Scale <= 0 {
		return []Diagnostic{Errorf([]string{"scale"}, "scale must be positive, got %v", c.Scale)}
	}
	return nil
}
func (c *consumer) Configure(_ context.Context, _ Config, h Host) error { c.host = h; return nil }
func (c *consumer) Embed(ctx context.Context, r *embeddings.EmbedRequest) (*embeddings.EmbedResponse, error) {
	_ = c.host.Log(ctx, "info", "embedding through host", map[string]string{"n": "1"})
	e, err := c.host.Embeddings("embeddings")
	if err != nil {
		return nil, err
	}
	resp, err := e.Embed(ctx, r)
	if err != nil {
		return nil, err
	}
	for _, v := range resp.Vectors {
		v[0] *= 2
	}
	return resp, nil
}

func TestInfoSchemaValidate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := InProcess(t, &consumer{})
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "consumer" || len(info.Kinds) != 1 || info.Kinds[0] != KindEmbeddings || info.ProtocolVersions[0] != ProtocolVersion {
		t.Fatalf("info = %+v", info)
	}
	sc, err := c.Schema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := sc.AttributeNames(); strings.Join(got, ",") != "embeddings,scale" || sc.Block.Attributes[0].PluginKind != "embeddings" {
		t.Fatalf("schema = %+v", sc)
	}
	diags, err := c.ValidateConfig(ctx, json.RawMessage(`{"scale":-1}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(diags) != 1 || diags[0].Path[0] != "scale" || diags[0].Severity != SeverityError {
		t.Fatalf("diags = %+v", diags)
	}
}

func TestWiringThroughHost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	target := InProcess(t, constEmbedder{})
	c := InProcess(t, &consumer{})
	var logged strings.Builder
	logger := hclog.New(&hclog.LoggerOptions{Output: &logged, Level: hclog.Info})
	diags, err := c.Configure(ctx, ConfigureOptions{
		Config:  json.RawMessage(`{"scale":2}`),
		Wirings: []HostWiring{{Wiring: Wiring{Attribute: "embeddings", Kind: KindEmbeddings, Target: "plugin.embeddings.c"}, Plugin: target}},
		Logger:  logger,
	})
	if err != nil || len(diags) != 0 {
		t.Fatalf("configure: %v %+v", err, diags)
	}
	resp, err := c.Embeddings().Embed(ctx, &embeddings.EmbedRequest{Inputs: []string{"abc", "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Vectors[0][0] != 6 || resp.Vectors[1][0] != 10 {
		t.Fatalf("vectors = %v, want [[6] [10]]", resp.Vectors)
	}
	if !strings.Contains(logged.String(), "embedding through host") {
		t.Fatalf("host log did not receive the plugin's line: %q", logged.String())
	}
}

func TestConfigureRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	c := InProcess(t, &consumer{})
	diags, err := c.Configure(context.Background(), ConfigureOptions{Config: json.RawMessage(`{"scale":0}`)})
	if err != nil {
		t.Fatal(err)
	}
	if len(diags) != 1 || diags[0].Path[0] != "scale" {
		t.Fatalf("diags = %+v", diags)
	}
}

func TestUnwiredAndNotSupportedErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := InProcess(t, &consumer{})
	if _, err := c.Configure(ctx, ConfigureOptions{Config: json.RawMessage(`{"scale":1}`)}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Embeddings().Embed(ctx, &embeddings.EmbedRequest{Inputs: []string{"x"}})
	if status.CodeOf(err) != status.NotFound || !strings.Contains(err.Error(), "no plugin is wired") {
		t.Fatalf("unwired call: %v (code %v)", err, status.CodeOf(err))
	}
	_, err = c.Embeddings().Dimensions(ctx, "")
	if status.CodeOf(err) != status.NotSupported {
		t.Fatalf("Dimensions on NotSupported stub: %v", err)
	}
}

func TestCheckKinds(t *testing.T) {
	t.Parallel()
	type noKinds struct{ Base }
	for name, p := range map[string]Plugin{
		"none":          infoOnly{Info{Name: "x"}},
		"unknown":       infoOnly{Info{Name: "x", Kinds: []Kind{"telepathy"}}},
		"unimplemented": infoOnly{Info{Name: "x", Kinds: []Kind{KindEmbeddings}}},
	} {
		if err := checkKinds(p); err == nil {
			t.Errorf("%s: checkKinds accepted it", name)
		}
	}
	_ = noKinds{}
}

type infoOnly struct{ info Info }

func (i infoOnly) Info() Info                                                 { return i.info }
func (infoOnly) ConfigSchema() *schema.Schema                                 { return nil }
func (infoOnly) ValidateConfig(context.Context, json.RawMessage) []Diagnostic { return nil }
func (infoOnly) Configure(context.Context, Config, Host) error                { return nil }

// ConfigError joins the error diagnostics, names the plugin, and ignores
// warnings.
func TestConfigError(t *testing.T) {
	if err := ConfigError("llm-x", nil); err != nil {
		t.Errorf("no diagnostics: %v", err)
	}
	if err := ConfigError("llm-x", []Diagnostic{{Severity: SeverityWarning, Summary: "w"}}); err != nil {
		t.Errorf("a warning only: %v", err)
	}
	err := ConfigError("llm-x", []Diagnostic{Errorf([]string{"a"}, "a is bad"), {Severity: SeverityWarning, Summary: "w"}, Errorf(nil, "b is missing")})
	if err == nil || err.Error() != "llm-x config: a is bad; b is missing" {
		t.Errorf("got %v", err)
	}
}
