package plugins

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	m, _ := testManager(t, Options{})
	exe, _ := os.Executable()
	want, err := hashFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		source string
		origin Origin
		short  string
	}{
		{"builtin/" + helperName, OriginBuiltin, helperName},
		{helperName, OriginBuiltin, helperName}, // short builtin name
		{exe, OriginPath, filepath.Base(exe)},
	} {
		b, err := m.Resolve(tc.source)
		if err != nil {
			t.Errorf("%s: %v", tc.source, err)
			continue
		}
		if b.Origin != tc.origin || b.ShortName != tc.short || b.Checksum() != hex.EncodeToString(want) {
			t.Errorf("%s: %+v", tc.source, b)
		}
	}
	for _, bad := range []string{"", "builtin/nope", "nope", "builtin/../x", "./missing"} {
		if _, err := m.Resolve(bad); err == nil {
			t.Errorf("Resolve(%q) succeeded", bad)
		}
	}
	_, err = m.Resolve("builtin/nope")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "make plugins") || !strings.Contains(err.Error(), helperName) {
		t.Errorf("missing builtin error does not help: %v", err)
	}
}

// TestInstall installs the helper plugin, checks the copy, the lock file and
// that the installed name resolves before a builtin of the same name.
func TestInstall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, _ := testManager(t, Options{})
	src := copyTestBinary(t, t.TempDir(), BinaryPrefix+helperName)
	b, err := m.Install(ctx, src, "")
	if err != nil {
		t.Fatal(err)
	}
	if b.Source != helperName || b.Origin != OriginInstalled || filepath.Dir(b.Path) != filepath.Join(m.opts.Home, "plugins") {
		t.Fatalf("installed %+v", b)
	}
	raw, err := os.ReadFile(filepath.Join(m.opts.Home, "plugins", LockFileName))
	if err != nil {
		t.Fatal(err)
	}
	var lf lockFile
	if err := json.Unmarshal(raw, &lf); err != nil {
		t.Fatal(err)
	}
	e := lf.Plugins[helperName]
	if e.SHA256 != b.Checksum() || e.Version != "1.2.3" || strings.Join(e.Kinds, ",") != "embeddings,llm" || e.InstalledFrom != src {
		t.Fatalf("lock entry %+v", e)
	}
	got, err := m.Resolve(helperName)
	if err != nil || got.Origin != OriginInstalled {
		t.Fatalf("Resolve(%q) = %+v, %v; want the installed plugin first", helperName, got, err)
	}
	s, err := m.Start(ctx, Spec{Source: helperName})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "embeddings."+helperName || s.Info().Version != "1.2.3" {
		t.Fatalf("started %s %+v", s.Name(), s.Info())
	}
	installed, err := m.Installed()
	if err != nil || len(installed) != 1 {
		t.Fatalf("Installed() = %v, %v", installed, err)
	}

	if _, err := m.Install(ctx, src, "Bad Name"); err == nil || !strings.Contains(err.Error(), "--name") {
		t.Fatalf("invalid name: %v", err)
	}
	notPlugin := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notPlugin, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Install(ctx, notPlugin, ""); err == nil || !strings.Contains(err.Error(), "does not run as a nemoclave plugin") {
		t.Fatalf("installing a non-plugin: %v", err)
	}
	if _, err := m.Resolve("script"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused install left an entry: %v", err)
	}
}

// TestClientIsSharedAndReplacedWhenDead: probes (inspect, list, schema
// lookups) share one process per source, and a dead one is not reused.
func TestClientIsSharedAndReplacedWhenDead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, _ := testManager(t, Options{})
	a, _, err := m.Client(ctx, helperName)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := m.Client(ctx, helperName)
	if err != nil || a != b {
		t.Fatalf("second Client: %v, same=%v", err, a == b)
	}
	sc, err := a.Schema(ctx)
	if err != nil || len(sc.Block.Attributes) != 2 {
		t.Fatalf("schema %+v, %v", sc, err)
	}
	a.Kill()
	c, _, err := m.Client(ctx, helperName)
	if err != nil || c == a || c.Exited() {
		t.Fatalf("after the probe died: %v, reused=%v", err, c == a)
	}
}
