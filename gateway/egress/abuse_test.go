package egress

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestAbuse_R7_AuditFailsClosed: when the audit log cannot be written
// (the disk is full: the log is /dev/full here), an allowed CONNECT is
// refused with a message for the operator instead of running unrecorded.
func TestAbuse_R7_AuditFailsClosed(t *testing.T) {
	up, port := rawUpstream(t, true)
	_ = up
	e := newEnv(t, map[string]string{"api.example.com": "127.0.0.1"}, func(c *Config) {
		if err := os.MkdirAll(c.AuditDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/dev/full", filepath.Join(c.AuditDir, auditName)); err != nil {
			t.Fatal(err)
		}
	})
	addr := e.serve(t, "sb", pol(1, "deny", ep("api.example.com", port)))
	_, _, resp := connect(t, addr, "api.example.com:"+strconv.Itoa(port))
	b := body(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(b, "cannot write this tunnel's audit record") {
		t.Fatalf("CONNECT with an unwritable audit log: %d %s", resp.StatusCode, b)
	}
}

// TestAbuse_R7_TornTailRepairedOnReopen: a torn last line (a crash or a
// full disk mid-write) is cut on reopen, so the next line stands alone;
// an allowed tunnel leaves an "open" line before any byte goes upstream.
func TestAbuse_R7_TornTailRepairedOnReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	whole := `{"sandbox":"sb","kind":"connect","decision":"deny","revision":1,"bytes_up":0,"bytes_down":0,"duration_ms":0}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, auditName), []byte(whole+`{"sandbox":"sb","kin`), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := openAudit(dir, 1<<20, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Write(Event{Sandbox: "sb", Kind: "connect", Decision: "open"}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b, _ := os.ReadFile(filepath.Join(dir, auditName))
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 || lines[0]+"\n" != whole || !strings.HasPrefix(lines[1], `{"time"`) {
		t.Fatalf("after reopen:\n%s", b)
	}

	up, port := rawUpstream(t, true)
	_ = up
	e := newEnv(t, map[string]string{"api.example.com": "127.0.0.1"})
	addr := e.serve(t, "sb", pol(1, "deny", ep("api.example.com", port)))
	c, _, resp := connect(t, addr, "api.example.com:"+strconv.Itoa(port))
	defer c.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT: %d", resp.StatusCode)
	}
	// The tunnel is still open (nothing sent yet): its open record exists.
	e.waitEvent(t, "open", func(ev Event) bool { return ev.Decision == "open" && ev.Host == "api.example.com" })
}
