// Command genschemas writes the blueprint language's offline copy of the
// builtin plugins' config schemas (blueprints/builtin_schemas.json) by
// launching each builtin plugin and asking it, so the copy never differs
// from the plugins. `go generate ./blueprints` runs it after `make plugins`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nemoclave/nemoclave/blueprints"
	"github.com/nemoclave/nemoclave/host/plugins"
)

func main() {
	bin := flag.String("bin", "", "directory of the built plugins (nemoclave-plugin-*); default $NEMOCLAVE_BIN_DIR")
	out := flag.String("o", "builtin_schemas.json", "file to write")
	flag.Parse()
	if err := run(*bin, *out); err != nil {
		fmt.Fprintln(os.Stderr, "genschemas:", err)
		os.Exit(1)
	}
}

func run(bin, out string) error {
	if bin == "" {
		bin = os.Getenv("NEMOCLAVE_BIN_DIR")
	}
	if bin == "" {
		return fmt.Errorf("no plugin directory: pass -bin or set NEMOCLAVE_BIN_DIR (make plugins builds bin/)")
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	home, err := os.MkdirTemp("", "genschemas-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(home)
	m, err := plugins.New(plugins.Options{Home: home, BinDir: bin, StartTimeout: time.Minute})
	if err != nil {
		return err
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	schemas, err := plugins.BuiltinSchemas(ctx, m)
	if err != nil {
		return err
	}
	data, err := blueprints.EncodeSchemas(schemas)
	if err != nil {
		return err
	}
	return os.WriteFile(out, data, 0o644)
}
