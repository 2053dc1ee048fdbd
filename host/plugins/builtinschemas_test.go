package plugins

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/blueprints"
)

// TestBuiltinSchemasGenerated keeps the blueprint language's offline copy
// of the builtin schemas equal to what the built plugins answer: a plugin
// that changes its schema fails here until the copy is regenerated.
func TestBuiltinSchemasGenerated(t *testing.T) {
	dir := os.Getenv("NEMOCLAVE_BIN_DIR")
	if dir == "" {
		t.Skip("NEMOCLAVE_BIN_DIR is not set: run through `make test`, which builds the plugins into bin/ and sets it")
	}
	m, err := New(Options{Home: t.TempDir(), BinDir: dir, StartTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	live, err := BuiltinSchemas(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := blueprints.EncodeSchemas(live)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, blueprints.BuiltinSchemasJSON()) {
		t.Fatalf("blueprints/builtin_schemas.json differs from the schemas the plugins in %s declare: run `make plugins && go generate ./blueprints` and commit the result", dir)
	}
}
