package plugins

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// A cached schema source answers a second evaluation without launching a
// probe: the second manager's log shows no plugin start.
func TestSchemaCacheAvoidsProbes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cache := NewSchemaCache()
	bin := helperBinDir(t)
	m1, _ := testManager(t, Options{BinDir: bin})
	src := NewSchemaSource(m1, nil).WithCache(cache)
	kind := "embeddings"
	source := "builtin/" + helperName
	sc, err := src.ConfigSchema(ctx, kind, source)
	if err != nil {
		t.Fatal(err)
	}
	cfg := json.RawMessage(`{"scale":1}`)
	v1, err := src.ValidateConfig(ctx, kind, source, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m1.Close()

	m2, logs := testManager(t, Options{BinDir: bin})
	src2 := NewSchemaSource(m2, nil).WithCache(cache)
	sc2, err := src2.ConfigSchema(ctx, kind, source)
	if err != nil || len(sc2.Block.Attributes) != len(sc.Block.Attributes) {
		t.Fatalf("cached schema: %v %+v", err, sc2)
	}
	v2, err := src2.ValidateConfig(ctx, kind, source, cfg)
	if err != nil || len(v2) != len(v1) {
		t.Fatalf("cached verdict: %v %+v vs %+v", err, v2, v1)
	}
	if strings.Contains(logs.String(), "starting plugin") {
		t.Fatalf("a probe was launched despite the cache:\n%s", logs.String())
	}
	// Another config is a miss and asks the plugin.
	if _, err := src2.ValidateConfig(ctx, kind, source, json.RawMessage(`{"scale":2}`)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "starting plugin") {
		t.Fatalf("a new config was not validated by the plugin:\n%s", logs.String())
	}
}
