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
		{exe, OriginPath, filepath.Base(exe)},
	} {
		b, err := m.Resolve(tc.source)
		if err != nil {
			t.Errorf("%s: %v", tc.source, err)
			continue
		}
		if b.Origin != tc.origin || b.ShortName != tc.short || b.Checksum() != hex.EncodeToString(want) || b.Hash != "sha256:"+hex.EncodeToString(want) {
			t.Errorf("%s: %+v", tc.source, b)
		}
	}
	// A bare name is not a source (the grammar is shared with blueprints
	// and install); neither is a two-part address or an uninstalled one.
	for _, bad := range []string{"", "builtin/nope", helperName, "nope", "builtin/../x", "./missing", "acme/wordcount", "example.com/acme/wordcount"} {
		if _, err := m.Resolve(bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("Resolve(%q) = %v, want ErrNotFound", bad, err)
		}
	}
	_, err = m.Resolve("builtin/embeddings-nope")
	if !strings.Contains(err.Error(), "make plugins") || !strings.Contains(err.Error(), helperName) {
		t.Errorf("missing builtin error does not help: %v", err)
	}
	_, err = m.Resolve("example.com/acme/wordcount")
	if !strings.Contains(err.Error(), "nemoclave plugin install example.com/acme/wordcount --path") {
		t.Errorf("uninstalled address error does not say how to install: %v", err)
	}
}

// TestInstall installs the helper plugin under an address in two versions
// side by side, checks the copies and the lock file, resolution by
// constraint, and refusals.
func TestInstall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, _ := testManager(t, Options{})
	src := copyTestBinary(t, t.TempDir(), BinaryPrefix+helperName)
	const addr = "example.com/acme/helper"
	b, err := m.Install(ctx, InstallRequest{Address: addr, Path: src})
	if err != nil {
		t.Fatal(err)
	}
	// The version defaults to the one the plugin reports.
	wantDir := filepath.Join(m.opts.Home, "plugins", "example.com", "acme", "helper", "1.2.3")
	if b.Source != addr+"@1.2.3" || b.Version != "1.2.3" || b.Origin != OriginInstalled || filepath.Dir(b.Path) != wantDir {
		t.Fatalf("installed %+v", b)
	}
	if st, err := os.Stat(b.Path); err != nil || st.Mode().Perm()&0o222 != 0 {
		t.Fatalf("installed file should be read-only: %v %v", st.Mode(), err)
	}
	if _, err := m.Install(ctx, InstallRequest{Address: addr, Path: src, Version: "0.1.0"}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(m.opts.Home, "plugins", LockFileName))
	if err != nil {
		t.Fatal(err)
	}
	var lf lockFile
	if err := json.Unmarshal(raw, &lf); err != nil {
		t.Fatal(err)
	}
	e := lf.Plugins[addr]["1.2.3"]
	if e.SHA256 != b.Checksum() || e.Hash != b.Hash || strings.Join(e.Kinds, ",") != "embeddings,llm" || e.InstalledFrom != src || len(lf.Plugins[addr]) != 2 {
		t.Fatalf("lock %+v", lf)
	}
	for _, tc := range []struct{ source, constraint, want string }{
		{addr, "", "1.2.3"},
		{addr, "< 1.0", "0.1.0"},
		{addr + "@0.1.0", "", "0.1.0"},
		{addr, ">= 0.1, < 2", "1.2.3"},
	} {
		got, err := m.ResolveConstraint(tc.source, tc.constraint)
		if err != nil || got.Version != tc.want {
			t.Errorf("ResolveConstraint(%q, %q) = %+v, %v; want %s", tc.source, tc.constraint, got, err, tc.want)
		}
	}
	_, err = m.ResolveConstraint(addr, ">= 2.0")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "installed: 1.2.3, 0.1.0") {
		t.Errorf("unsatisfiable constraint: %v", err)
	}
	s, err := m.Start(ctx, Spec{Source: addr + "@0.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "embeddings."+helperName || s.Info().Version != "1.2.3" {
		t.Fatalf("started %s %+v", s.Name(), s.Info())
	}
	installed, err := m.Installed()
	if err != nil || len(installed) != 2 || installed[0].Version != "1.2.3" {
		t.Fatalf("Installed() = %v, %v", installed, err)
	}

	for _, bad := range []InstallRequest{
		{Address: "helper", Path: src},
		{Address: "builtin/embeddings-x", Path: src},
		{Address: addr, Path: src, Version: "v1"},
	} {
		if _, err := m.Install(ctx, bad); err == nil {
			t.Errorf("Install(%+v) succeeded", bad)
		}
	}
	notPlugin := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notPlugin, []byte("#!/bin/sh\necho hi >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = m.Install(ctx, InstallRequest{Address: "example.com/acme/script", Path: notPlugin, Version: "1.0.0"})
	// The refusal shows the plugin's own exit status and stderr.
	for _, w := range []string{"does not run as a nemoclave plugin", "exited with exit status 3", "hi"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Fatalf("installing a non-plugin: error lacks %q: %v", w, err)
		}
	}
	if _, err := m.Resolve("example.com/acme/script"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused install left an entry: %v", err)
	}
}

// TestClientIsSharedAndReplacedWhenDead: probes (inspect, list, schema
// lookups) share one process per source, and a dead one is not reused.
func TestClientIsSharedAndReplacedWhenDead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, _ := testManager(t, Options{})
	a, _, err := m.Client(ctx, "builtin/"+helperName)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := m.Client(ctx, "builtin/"+helperName)
	if err != nil || a != b {
		t.Fatalf("second Client: %v, same=%v", err, a == b)
	}
	sc, err := a.Schema(ctx)
	if err != nil || len(sc.Block.Attributes) != 2 {
		t.Fatalf("schema %+v, %v", sc, err)
	}
	a.Kill()
	c, _, err := m.Client(ctx, "builtin/"+helperName)
	if err != nil || c == a || c.Exited() {
		t.Fatalf("after the probe died: %v, reused=%v", err, c == a)
	}
}
