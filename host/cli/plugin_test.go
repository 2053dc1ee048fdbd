package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// hashPluginBinDir builds plugins/embeddings-hash into a fresh bin dir, as
// `make plugins` would (the go build cache makes repeats cheap).
func hashPluginBinDir(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-C", root, "-o", filepath.Join(dir, "nemoclave-plugin-embeddings-hash"), "./plugins/embeddings-hash").CombinedOutput()
	if err != nil {
		t.Fatalf("build plugins/embeddings-hash: %v\n%s", err, out)
	}
	return dir
}

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := NewRoot("nemoclave")
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// TestPluginCommands drives install, list and inspect against the real
// embeddings-hash plugin: inspect by short builtin name, install under an
// address and version, list both.
func TestPluginCommands(t *testing.T) {
	t.Setenv("NEMOCLAVE_BIN_DIR", hashPluginBinDir(t))
	home := t.TempDir()

	out, err := runCLI(t, "plugin", "inspect", "embeddings-hash", "-o", "json", "--home", home)
	if err != nil {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	var in pluginInspection
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		t.Fatalf("inspect -o json is not JSON: %v\n%s", err, out)
	}
	if in.Source != "builtin/embeddings-hash" || in.Version == "" || len(in.Kinds) != 1 || in.Kinds[0] != "embeddings" ||
		len(in.ProtocolVersions) == 0 || in.Schema == nil || len(in.Schema.Block.Attributes) == 0 {
		t.Fatalf("inspect: %+v", in)
	}

	out, err = runCLI(t, "plugin", "install", "--path", filepath.Join(os.Getenv("NEMOCLAVE_BIN_DIR"), "nemoclave-plugin-embeddings-hash"), "example.com/me/my-hash", "--version", "0.1.0", "--home", home)
	if err != nil || !strings.Contains(out, "installed example.com/me/my-hash 0.1.0 (embeddings") {
		t.Fatalf("install: %v\n%s", err, out)
	}
	out, err = runCLI(t, "plugin", "list", "-o", "json", "--home", home)
	if err != nil {
		t.Fatalf("list: %v\n%s", err, out)
	}
	var rows []pluginSummary
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("list -o json: %v\n%s", err, out)
	}
	if len(rows) != 2 || rows[0].Source != "builtin/embeddings-hash" || rows[1].Source != "example.com/me/my-hash@0.1.0" || rows[1].Origin != "installed" || rows[1].Error != "" || rows[1].Version != in.Version {
		t.Fatalf("list: %+v", rows)
	}
	out, err = runCLI(t, "plugin", "inspect", "example.com/me/my-hash", "--home", home)
	if err != nil || !strings.Contains(out, "dimensions") || !strings.Contains(out, "installed") {
		t.Fatalf("inspect table: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "plugin", "inspect", "embeddings-nope", "--home", home); err == nil || !strings.Contains(err.Error(), "nemoclave plugin install") {
		t.Fatalf("inspect of an unknown plugin: %v", err)
	}
}

// TestPluginSchemaSource asks the real plugin through the hook validate and
// plan use: its schema, and its own verdict on a config with a path.
func TestPluginSchemaSource(t *testing.T) {
	t.Setenv("NEMOCLAVE_BIN_DIR", hashPluginBinDir(t))
	ctx := context.Background()
	src, release, err := schemaSource(ctx, &Globals{Home: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	sc, err := src.ConfigSchema(ctx, "embeddings", "builtin/embeddings-hash")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(sc.AttributeNames(), ","), "dimensions") {
		t.Fatalf("schema %v", sc.AttributeNames())
	}
	diags, err := src.ValidateConfig(ctx, "embeddings", "builtin/embeddings-hash", json.RawMessage(`{"dimensions":0}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(diags) == 0 || diags[0].Severity != hcl.DiagError || len(diags[0].Path) == 0 || diags[0].Path[0] != "dimensions" {
		t.Fatalf("diags %+v", diags)
	}
	if _, err := src.ConfigSchema(ctx, "llm", "builtin/embeddings-hash"); err == nil || !strings.Contains(err.Error(), "serves embeddings, not llm") {
		t.Fatalf("kind mismatch: %v", err)
	}
	// Not built here: the static fallback answers.
	if sc, err := src.ConfigSchema(ctx, "tools", "builtin/tools-files"); err != nil || len(sc.Block.Attributes) == 0 {
		t.Fatalf("fallback: %v %v", sc, err)
	}
}
