package runtime

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/nemoclave/nemoclave/host/plugins"
)

// prefetchSchemas asks src, concurrently, for the config schema of every
// builtin plugin the blueprint at path names with a literal source, so
// that the loader, which asks for one plugin block after the other, finds
// the schemas cached or their probes already launched (the manager shares
// one probe per source). A daemon that has seen these builtins answers
// from its cache and launches nothing. Only builtins are prefetched: they
// come from the daemon's own bin directory, while a path or installed
// plugin must first pass the loader's lock check, which a probe launched
// ahead of it would skip. Best effort: what it cannot read it leaves to
// the loader, which reports it. The returned wait waits for the
// prefetches (each ends with ctx) and lists the sources they asked for.
func prefetchSchemas(ctx context.Context, src *plugins.SchemaSource, path string) (wait func() []string) {
	var wg sync.WaitGroup
	var asked []string
	seen := map[string]bool{}
	for _, file := range blueprintFiles(path) {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		f, diags := hclsyntax.ParseConfig(b, file, hcl.InitialPos)
		if diags.HasErrors() {
			continue
		}
		body, ok := f.Body.(*hclsyntax.Body)
		if !ok {
			continue
		}
		for _, blk := range body.Blocks {
			if blk.Type != "plugin" || len(blk.Labels) != 2 {
				continue
			}
			attr := blk.Body.Attributes["source"]
			if attr == nil {
				continue
			}
			v, diags := attr.Expr.Value(nil)
			if diags.HasErrors() || !v.IsKnown() || v.IsNull() || v.Type() != cty.String {
				continue
			}
			source, kind := v.AsString(), blk.Labels[0]
			if !strings.HasPrefix(source, plugins.BuiltinPrefix) || seen[kind+"\x00"+source] {
				continue
			}
			seen[kind+"\x00"+source] = true
			asked = append(asked, source)
			wg.Go(func() { _, _ = src.ConfigSchema(ctx, kind, source) })
		}
	}
	return func() []string {
		wg.Wait()
		return asked
	}
}

// blueprintFiles is path itself, or the .hcl files of a directory.
func blueprintFiles(path string) []string {
	st, err := os.Stat(path)
	if err != nil {
		return nil
	}
	if !st.IsDir() {
		return []string{path}
	}
	files, _ := filepath.Glob(filepath.Join(path, "*.hcl"))
	return files
}
