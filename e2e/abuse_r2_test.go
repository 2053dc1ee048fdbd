package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/gateway/listener"
)

// r2Flood runs inside the sandbox: 300 connections to each of the
// gateway's listeners (inference, agent API), each sending half a request
// header and then nothing (slowloris). It writes /workspace/r2-holding
// once they are all open and holds them a few seconds, then reads each
// until the server closes it and prints what happened, as JSON: how many
// were answered 503 at once (over the per-sandbox cap), how many were
// closed without an answer (the header deadline), how many the server
// kept open. Last, a fresh request to each listener.
const r2Flood = `
import json, os, socket, time, urllib.parse, urllib.request, urllib.error
addrs = {}
for var in ("OPENAI_BASE_URL", "NEMOCLAVE_API_URL"):
    u = urllib.parse.urlparse(os.environ[var])
    addrs[var] = (u.hostname, u.port)
socks = {var: [] for var in addrs}
for i in range(300):
    for var, addr in addrs.items():
        s = socket.create_connection(addr, timeout=10)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n")
        socks[var].append(s)
open("/workspace/r2-holding", "w").close()
time.sleep(4)
report = {}
for var, ss in socks.items():
    r = {"refused_503": 0, "closed": 0, "kept_open": 0, "other": ""}
    for s in ss:
        s.settimeout(40)
        data = b""
        try:
            while True:
                b = s.recv(4096)
                if not b:
                    break
                data += b
        except socket.timeout:
            r["kept_open"] += 1
            continue
        except ConnectionResetError:
            pass
        if data.startswith(b"HTTP/1.1 503") and b"close idle connections" in data:
            r["refused_503"] += 1
        elif data == b"" or data.startswith(b"HTTP/1.1 408"):
            r["closed"] += 1
        else:
            r["other"] = data[:200].decode("latin-1")
        s.close()
    base = os.environ[var].rstrip("/")
    try:
        resp = urllib.request.urlopen(base + "/models" if var == "OPENAI_BASE_URL" else base + "/", timeout=30)
        r["after"] = resp.status
    except urllib.error.HTTPError as e:
        r["after"] = e.code
    except Exception as e:
        r["after"] = str(e)
    report[var] = r
print(json.dumps(report))
`

// TestAbuse_R2_SlowlorisFromASandbox is R2 driven from inside a real
// sandbox against the daemon's real listeners: 300 half-sent requests to
// each of the inference and agent-API listeners. The daemon holds at most
// its per-sandbox cap open and answers the rest 503 at once, closes the
// trickling ones at the header deadline, keeps serving the CLI while the
// flood is held, and serves the sandbox again once it is gone.
func TestAbuse_R2_SlowlorisFromASandbox(t *testing.T) {
	e := newEnv(t, "E2E_PROVIDER_KEY="+providerKey)
	cassette := filepath.Join(repoRoot(t), "examples", "quickstart", "cassette.json")
	dir := filepath.Join(t.TempDir(), "r2")
	copyDir(t, filepath.Join(repoRoot(t), "e2e", "testdata", "keepalive"), dir)
	bp := filepath.Join(dir, "blueprint.hcl")
	b, err := os.ReadFile(bp)
	if err != nil {
		t.Fatal(err)
	}
	const old = `command = ["/bin/sh", "-c", "\"$NEMOCLAVE_BIN\" agent -p \"$PROMPT\" && exec sleep 600"]`
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("the keepalive blueprint's agent command changed; update this test")
	}
	b = bytes.Replace(b, []byte(old), []byte(`command = ["/bin/sh", "-c", "exec sleep 600"]`), 1)
	if err := os.WriteFile(bp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	e.must("run", "-d", bp, "--var", "cassette="+cassette)

	done := make(chan result, 1)
	go func() {
		done <- e.run(context.Background(), "sandbox", "exec", "e2e", "--", "python3", "-c", r2Flood)
	}()
	holding := filepath.Join(dir, "workspace", "r2-holding")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(holding); err == nil {
			break
		}
		select {
		case r := <-done:
			t.Fatalf("the flood ended before holding its connections: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the flood never held its connections")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// While the sandbox holds 600 connections: the daemon serves the CLI.
	var list []struct{ Name, State string }
	if err := json.Unmarshal([]byte(e.must("sandbox", "list", "-o", "json")), &list); err != nil || len(list) != 1 || list[0].State != "running" {
		t.Fatalf("sandbox list during the flood: %v %+v", err, list)
	}
	if out := e.must("sandbox", "exec", "e2e", "--", "echo", "exec-during-flood"); !strings.Contains(out, "exec-during-flood") {
		t.Fatalf("exec during the flood: %q", out)
	}

	r := <-done
	if r.code != 0 {
		t.Fatalf("flood script: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var report map[string]struct {
		Refused  int `json:"refused_503"`
		Closed   int `json:"closed"`
		KeptOpen int `json:"kept_open"`
		Other    string
		After    any
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &report); err != nil || len(report) != 2 {
		t.Fatalf("flood report %q: %v", r.stdout, err)
	}
	for name, rep := range report {
		t.Logf("%s: %+v", name, rep)
		// The default cap; what the daemon let in was closed at the
		// header deadline, never held.
		if rep.Refused < 300-listener.DefaultMaxConns || rep.KeptOpen != 0 || rep.Refused+rep.Closed != 300 || rep.Other != "" {
			t.Errorf("%s: %+v, want at least %d answered 503 over the cap of %d, the rest closed, none kept open", name, rep, 300-listener.DefaultMaxConns, listener.DefaultMaxConns)
		}
		if code, ok := rep.After.(float64); !ok || code == 503 {
			t.Errorf("%s after the flood: %v, want served (not 503)", name, rep.After)
		}
	}
	e.must("sandbox", "delete", "e2e")
}
