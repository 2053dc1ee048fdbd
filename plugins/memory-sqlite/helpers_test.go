package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// binDir holds plugin binaries built once for the tests that launch real
// processes (the embedder and the kill -9 test).
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// pluginBinary builds plugins/<name> (without -race: the binary is the
// thing under test, not the test itself) and returns its path.
func pluginBinary(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "memory-sqlite-bins-")
		if buildErr != nil {
			return
		}
		for _, n := range []string{"memory-sqlite", "embeddings-hash"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, n), "github.com/nemoclave/nemoclave/plugins/"+n).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", n, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

func launch(t *testing.T, name string) *plugin.Launched {
	t.Helper()
	l, err := plugin.Launch(context.Background(), plugin.LaunchOptions{Path: pluginBinary(t, name)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Kill)
	return l
}

// hashEmbedder launches the real embeddings-hash plugin and returns the
// wiring that hands it to a memory plugin.
func hashEmbedder(t *testing.T) []plugin.HostWiring {
	t.Helper()
	e := launch(t, "embeddings-hash")
	if ds, err := e.Configure(context.Background(), plugin.ConfigureOptions{Config: json.RawMessage(`{"dimensions":256}`)}); err != nil || len(ds) > 0 {
		t.Fatalf("configure embeddings-hash: %v %+v", err, ds)
	}
	return []plugin.HostWiring{{
		Wiring: plugin.Wiring{Attribute: "embeddings", Kind: plugin.KindEmbeddings, Target: "plugin.embeddings.hash"},
		Plugin: e.Client,
	}}
}

func configure(t *testing.T, c *plugin.Client, stateDir, cfg string, wirings []plugin.HostWiring) {
	t.Helper()
	ds, err := c.Configure(context.Background(), plugin.ConfigureOptions{Config: json.RawMessage(cfg), StateDir: stateDir, Wirings: wirings})
	if err != nil || len(ds) > 0 {
		t.Fatalf("configure: %v %+v", err, ds)
	}
}

// inProcess serves a fresh memory plugin over gRPC in the test process.
func inProcess(t *testing.T, stateDir string, wirings []plugin.HostWiring) *plugin.Client {
	t.Helper()
	c := plugin.InProcess(t, newPlugin())
	configure(t, c, stateDir, `{}`, wirings)
	return c
}
