package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/host/plugins"
)

// The builtins a blueprint names are probed ahead of the loader and end
// up in the schema cache; a path plugin is never launched ahead of the
// loader's lock check.
func TestPrefetchSchemasBuiltinsOnly(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	script := filepath.Join(dir, "nemoclave-plugin-tools-marker")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	bp := filepath.Join(dir, "blueprint.hcl")
	src := fmt.Sprintf(`
plugin "llm" "replay" {
  source = "builtin/llm-replay"
}
plugin "llm" "again" {
  source = "builtin/llm-replay"
}
plugin "tools" "marker" {
  source = %q
}
`, script)
	if err := os.WriteFile(bp, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := plugins.Options{Home: t.TempDir(), BinDir: pluginDir}
	m, err := plugins.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	cache := plugins.NewSchemaCache()
	// Both a file and its directory name the blueprint.
	for _, path := range []string{bp, dir} {
		asked := prefetchSchemas(ctx, plugins.NewSchemaSource(m, nil).WithCache(cache), path)()
		if !slices.Equal(asked, []string{"builtin/llm-replay"}) {
			t.Fatalf("prefetch of %s asked for %v, want only builtin/llm-replay", path, asked)
		}
	}
	m.Close()
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the prefetch launched a path plugin ahead of the lock check")
	}
	// The schema is cached: a source over a closed manager, which can
	// launch nothing, answers it.
	closed, err := plugins.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	if _, err := plugins.NewSchemaSource(closed, nil).WithCache(cache).ConfigSchema(ctx, "llm", "builtin/llm-replay"); err != nil {
		t.Fatalf("the prefetched schema is not in the cache: %v", err)
	}
	if _, err := plugins.NewSchemaSource(closed, nil).WithCache(plugins.NewSchemaCache()).ConfigSchema(ctx, "llm", "builtin/llm-replay"); err == nil {
		t.Fatal("a closed manager answered a schema without a cache: the check above proves nothing")
	}
	// A missing or unparsable blueprint prefetches nothing.
	if asked := prefetchSchemas(ctx, plugins.NewSchemaSource(closed, nil), filepath.Join(dir, "none.hcl"))(); len(asked) != 0 {
		t.Fatalf("missing blueprint: asked %v", asked)
	}
}
