package plugins

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dev_overrides.hcl as sdk/README.md shows it maps a source to a local
// build; CheckLocked then uses that build unlocked, with a warning. The
// Terraform-style block, which HCL 2 cannot hold (quoted argument names),
// is refused with the form that works.
func TestDevOverrides(t *testing.T) {
	t.Parallel()
	home, dir := t.TempDir(), t.TempDir()
	build := filepath.Join(dir, "nemoclave-plugin-tools-wordcount")
	if err := os.WriteFile(build, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := New(Options{Home: home, BinDir: dir, LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(home, DevOverridesName), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("dev_overrides = {\n  \"example.com/acme/wordcount\" = \"" + build + "\"\n}\n")
	got, err := m.DevOverrides()
	if err != nil || got["example.com/acme/wordcount"] != build || len(got) != 1 {
		t.Fatalf("overrides %v, %v", got, err)
	}
	lock, err := ReadProjectLock(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.CheckLocked(lock, t.TempDir(), "example.com/acme/wordcount", ">= 0.1")
	if err != nil {
		t.Fatalf("an overridden plugin without a lock: %v", err)
	}
	if c.Pin == nil || c.Pin.DevOverride != build || !strings.Contains(c.Warning, "overridden by "+build) {
		t.Errorf("checked %+v %+v", c, c.Pin)
	}
	for _, bad := range []string{
		"dev_overrides {\n  \"example.com/acme/wordcount\" = \"" + build + "\"\n}\n",
		"dev_override = {}\n",
		"dev_overrides = [\"x\"]\n",
	} {
		write(bad)
		if _, err := m.DevOverrides(); err == nil || !strings.Contains(err.Error(), `dev_overrides = { "<source>" = "<binary>", ... }`) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
