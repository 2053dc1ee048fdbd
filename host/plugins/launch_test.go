package plugins

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// TestLaunchFailures starts helper plugins that break the handshake in
// different ways: each launch must fail with an error that says what went
// wrong and what to do, and the process must not outlive the failure.
func TestLaunchFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode string
		want []string
	}{
		{"bad-handshake", []string{"incompatible core API version", "recompiled"}},
		{"noise", []string{"Unrecognized remote plugin message: hello from a chatty plugin", "print nothing to stdout"}},
		{"slow", []string{"timeout while waiting for plugin to start"}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			// Only "slow" needs the timeout to pass; the others must get
			// to their handshake line first, which a race-built helper on
			// a loaded machine can take seconds to print.
			timeout := 30 * time.Second
			if tc.mode == "slow" {
				// Well below the helper's minute of sleep, and long
				// enough for a loaded machine to start it and let it
				// write its pid file (2 s was not, once).
				timeout = 15 * time.Second
			}
			m, _ := testManager(t, Options{StartTimeout: timeout})
			pidFile := filepath.Join(t.TempDir(), "pid")
			_, err := m.Start(context.Background(), helperSpec(tc.mode, pidFileEnv, pidFile))
			if err == nil {
				t.Fatal("Start succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			waitGone(t, readPid(t, pidFile))
		})
	}
}

// TestChecksumMismatch replaces a plugin binary after nemoclave trusted its
// hash (at discovery for builtins and paths, at install for installed
// plugins): the launch is refused and the replacement never runs.
func TestChecksumMismatch(t *testing.T) {
	t.Parallel()
	for _, origin := range []Origin{OriginBuiltin, OriginPath, OriginInstalled} {
		t.Run(string(origin), func(t *testing.T) {
			t.Parallel()
			binDir := t.TempDir()
			m, _ := testManager(t, Options{BinDir: binDir})
			var source, file string
			switch origin {
			case OriginBuiltin:
				file = copyTestBinary(t, binDir, BinaryPrefix+helperName)
				source = "builtin/" + helperName
			case OriginPath:
				file = copyTestBinary(t, t.TempDir(), "my-plugin")
				source = file
			case OriginInstalled:
				src := copyTestBinary(t, t.TempDir(), "nemoclave-plugin-embeddings-mine")
				b, err := m.Install(context.Background(), InstallRequest{Address: "example.com/acme/mine", Path: src, Version: "0.1.0"})
				if err != nil {
					t.Fatal(err)
				}
				file, source = b.Path, b.Source
			}
			b, err := m.Resolve(source)
			if err != nil {
				t.Fatal(err)
			}
			if b.Origin != origin {
				t.Fatalf("origin = %s, want %s", b.Origin, origin)
			}
			// The replacement would leave a mark if it ever ran.
			mark := filepath.Join(t.TempDir(), "ran")
			replaceFile(t, file, "#!/bin/sh\ntouch "+mark+"\n")
			_, err = m.Launch(context.Background(), b, helperSpec("serve"))
			if err == nil {
				t.Fatal("a replaced binary was launched")
			}
			for _, w := range []string{"refused: checksum mismatch", b.Hash} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if origin == OriginInstalled && !strings.Contains(err.Error(), "nemoclave plugin install example.com/acme/mine --path <binary> --version 0.1.0") {
				t.Errorf("error does not say how to reinstall:\n%v", err)
			}
			if _, err := os.Stat(mark); err == nil {
				t.Fatal("the replaced binary ran")
			}
		})
	}
}

// replaceFile swaps path for a new executable with content, atomically, as
// a rebuild or an attacker would.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestEnvAllowList sets secrets in the host's environment and checks the
// plugin's complete environ: only the allow list, HOME as its state dir, the
// explicit additions and go-plugin's handshake variables reach it.
func TestEnvAllowList(t *testing.T) {
	t.Setenv("NEMOCLAVE_TEST_SECRET", "hunter2")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "hunter3")
	t.Setenv("TZ", "Europe/Paris")
	m, logs := testManager(t, Options{})
	stateDir := filepath.Join(t.TempDir(), "state")
	spec := helperSpec("serve", "EXTRA_SETTING", "on")
	spec.StateDir, spec.Name = stateDir, "envtest"
	spec.Config = []byte(`{"scale":2}`)
	s, err := m.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	var environ []string
	if err := json.Unmarshal([]byte(s.Info().Description), &environ); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for _, secret := range []string{"hunter2", "hunter3"} {
		for k, v := range env {
			if strings.Contains(v, secret) {
				t.Errorf("host secret leaked into the plugin as %s", k)
			}
		}
	}
	allowed := []string{"PATH", "TMPDIR", "LANG", "TZ", "HOME", logLevelEnv, pycacheEnv, "EXTRA_SETTING", helperEnv,
		plugin.Handshake.MagicCookieKey, "PLUGIN_MIN_PORT", "PLUGIN_MAX_PORT", "PLUGIN_PROTOCOL_VERSIONS", "PLUGIN_CLIENT_CERT", "PLUGIN_UNIX_SOCKET_DIR"}
	for k := range env {
		if !slices.Contains(allowed, k) {
			t.Errorf("plugin sees %s, which is not on the allow list", k)
		}
	}
	// Sockets go in the manager's directory under the home, not /tmp.
	if d := env["PLUGIN_UNIX_SOCKET_DIR"]; !strings.HasPrefix(d, filepath.Join(m.opts.Home, "run", ".sock")+"/") {
		t.Errorf("PLUGIN_UNIX_SOCKET_DIR = %q, want a directory under %s/run/.sock", d, m.opts.Home)
	}
	want := map[string]string{"HOME": stateDir, "TZ": "Europe/Paris", "EXTRA_SETTING": "on", logLevelEnv: "debug",
		pycacheEnv: filepath.Join(stateDir, ".cache", "pycache")}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("plugin %s = %q, want %q", k, env[k], v)
		}
	}
	if env["PATH"] == "" {
		t.Errorf("PATH is missing: %v", env)
	}
	// The socket is authenticated by SO_PEERCRED, not AutoMTLS: no
	// certificate is sent and the plugin serves plain gRPC on it.
	if c := env["PLUGIN_CLIENT_CERT"]; c != "" {
		t.Errorf("the host sent a TLS certificate (PLUGIN_CLIENT_CERT = %.40q...); plugins are authenticated by their kernel credentials", c)
	}
	// The plugin's stderr log arrives under the plugin.<kind>.<name> logger.
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(logs.String(), "plugin.embeddings.envtest") || !strings.Contains(logs.String(), "configured") {
		if time.Now().After(deadline) {
			t.Fatalf("plugin log line not routed to plugin.embeddings.envtest:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEnvRefusesReservedAdditions(t *testing.T) {
	t.Parallel()
	m, _ := testManager(t, Options{})
	for _, k := range []string{"HOME", plugin.Handshake.MagicCookieKey, "PLUGIN_CLIENT_CERT", "A=B", ""} {
		if _, err := m.environ(t.TempDir(), map[string]string{k: "x"}); err == nil {
			t.Errorf("addition %q accepted", k)
		}
	}
}

// TestReattach starts the helper plugin by hand in debug mode, as a
// developer would under dlv, feeds the line it prints to the host through
// NEMOCLAVE_REATTACH_PLUGINS, and checks that the host talks to that process
// instead of launching the binary.
func TestReattach(t *testing.T) {
	t.Parallel()
	line, cmd := startDebugPlugin(t)
	m, _ := testManager(t, Options{Reattach: nil, LookupEnv: func(k string) (string, bool) {
		if k == plugin.ReattachEnv {
			return line, true
		}
		return "", false
	}})
	if len(m.reattach) != 1 {
		t.Fatalf("reattach map = %v", m.reattach)
	}
	s, err := m.Start(context.Background(), Spec{Source: "builtin/" + helperName, Name: "debug", Config: []byte(`{"scale":2}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.Info().Description, "DEBUG_MARK=by-hand") || s.Pid() != cmd.Process.Pid {
		t.Fatalf("host did not attach to the debug process (pid %d, want %d)", s.Pid(), cmd.Process.Pid)
	}
	resp, err := s.Embeddings().Embed(context.Background(), &embeddings.EmbedRequest{Inputs: []string{"abcd"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(resp.Vectors[0], helperVector("abcd", 2)) {
		t.Fatalf("vector = %v", resp.Vectors[0])
	}
}
