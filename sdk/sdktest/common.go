package sdktest

import (
	"slices"
	"testing"

	"github.com/nemoclave/nemoclave/sdk/dataproc"
	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// Common checks what every plugin owes the host whatever its kinds: a
// complete Info, declared kinds implemented, a config schema that
// validates, its defaults (plus WithConfig) accepted by ValidateConfig,
// and Configure succeeding twice, as it does on a blueprint change.
func Common(t *testing.T, p plugin.Plugin, opts ...Option) {
	t.Helper()
	o := collect(opts)
	ctx := suiteContext(t, o)
	c := connect(t, ctx, p, o)
	var info plugin.Info
	if o.binary != nil {
		// A binary has no in-process value: its Info over the wire is
		// the reference, and each kind suite checks the kind is served.
		ri, err := c.Info(ctx)
		if err != nil {
			t.Fatalf("GetInfo: %v", err)
		}
		info = ri.Info
	} else {
		info = p.Info()
	}

	t.Run("info", func(t *testing.T) {
		if info.Name == "" || info.Version == "" {
			t.Errorf("Info() = %+v: Name and Version must be set; the host shows them in `nemoclave plugin inspect` and logs", info)
		}
		if len(info.Kinds) == 0 {
			t.Fatal("Info().Kinds is empty: declare every kind the plugin serves")
		}
		seen := map[plugin.Kind]bool{}
		for _, k := range info.Kinds {
			if seen[k] {
				t.Errorf("kind %q declared twice", k)
			}
			seen[k] = true
			if !slices.Contains(plugin.Kinds(), k) {
				t.Errorf("kind %q is unknown to this SDK (known: %v)", k, plugin.Kinds())
			} else if o.binary == nil && !implementsKind(p, k) {
				t.Errorf("kind %q is declared but %T does not implement its interface", k, p)
			}
		}
	})

	t.Run("remote info", func(t *testing.T) {
		ri, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ri.Name != info.Name || ri.Version != info.Version || !slices.Equal(ri.Kinds, info.Kinds) {
			t.Errorf("Info over the wire = %+v, in process = %+v", ri.Info, info)
		}
		if !slices.Contains(ri.ProtocolVersions, plugin.ProtocolVersion) {
			t.Errorf("protocol versions %v do not include %d", ri.ProtocolVersions, plugin.ProtocolVersion)
		}
	})

	t.Run("schema", func(t *testing.T) {
		sc, err := c.Schema(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := sc.Validate(); err != nil {
			t.Errorf("ConfigSchema does not validate: %v", err)
		}
		for _, a := range sc.Block.Attributes {
			if a.PluginKind != "" && !slices.Contains(plugin.Kinds(), plugin.Kind(a.PluginKind)) {
				t.Errorf("attribute %q references unknown plugin kind %q", a.Name, a.PluginKind)
			}
		}
	})

	t.Run("validate defaults", func(t *testing.T) {
		sc, err := c.Schema(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := withDefaults(ctx, c, o.config)
		if err != nil {
			t.Fatal(err)
		}
		diags, err := c.ValidateConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, a := range sc.Block.Attributes {
			names[a.Name] = true
		}
		for _, nb := range sc.Block.Blocks {
			names[nb.Name] = true
		}
		for _, d := range diags {
			if d.Severity != plugin.SeverityWarning {
				t.Errorf("ValidateConfig(%s) rejected the schema defaults: %s %s (path %v); fix the defaults or pass a working config with sdktest.WithConfig", cfg, d.Summary, d.Detail, d.Path)
			}
			if len(d.Path) > 0 && !names[d.Path[0]] {
				t.Errorf("diagnostic %q points at %v, which the schema does not declare; the host cannot show where it is", d.Summary, d.Path)
			}
		}
	})

	t.Run("configure twice", func(t *testing.T) {
		c, copts := start(t, p, o)
		diags, err := c.Configure(ctx, copts)
		failOnDiags(t, "second Configure (a blueprint change)", diags, err)
	})
}

func implementsKind(p any, k plugin.Kind) bool {
	var ok bool
	switch k {
	case plugin.KindLLM:
		_, ok = p.(llm.Provider)
	case plugin.KindEmbeddings:
		_, ok = p.(embeddings.Embedder)
	case plugin.KindRetrieval:
		_, ok = p.(retrieval.Store)
	case plugin.KindMemory:
		_, ok = p.(memory.Store)
	case plugin.KindTools:
		_, ok = p.(tools.Provider)
	case plugin.KindDataProc:
		_, ok = p.(dataproc.Processor)
	}
	return ok
}
