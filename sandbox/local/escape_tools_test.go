package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nemoclave/nemoclave/policy"
)

// Gateway-side tools (catalogue T1-T4): the agent prepares the attack from
// inside a real sandbox (symlinks, FIFOs, sparse files, a swap loop), and
// the host then drives the real tools over MCP exactly as the agent would:
// the gateway's document tools (document_read, document_ingest,
// spreadsheet_create) and the real tools-files plugin binary, behind the
// real agentapi handler with the sandbox's policy (testdata/toolsgw).

var toolBins struct {
	once              sync.Once
	files, docs, gway string
	err               error
}

// buildToolPlugins builds tools-files, dataproc-docs and the toolsgw
// gateway helper once per test run.
func buildToolPlugins(t *testing.T) (files, docs, gway string) {
	t.Helper()
	toolBins.once.Do(func() {
		dir := filepath.Join(testBase, "plugins")
		if toolBins.err = os.MkdirAll(dir, 0o755); toolBins.err != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", dir+"/",
			"github.com/nemoclave/nemoclave/plugins/tools-files", "github.com/nemoclave/nemoclave/plugins/dataproc-docs",
			"github.com/nemoclave/nemoclave/sandbox/local/testdata/toolsgw").CombinedOutput()
		if err != nil {
			toolBins.err = fmt.Errorf("build tool plugins: %v\n%s", err, out)
			return
		}
		toolBins.files, toolBins.docs, toolBins.gway = filepath.Join(dir, "tools-files"), filepath.Join(dir, "dataproc-docs"), filepath.Join(dir, "toolsgw")
	})
	if toolBins.err != nil {
		t.Fatal(toolBins.err)
	}
	return toolBins.files, toolBins.docs, toolBins.gway
}

type toolsFixture struct {
	s *mcp.ClientSession
	// url is the gateway helper's; pid and filesPid are the gateway's and
	// tools-files' processes.
	url           string
	pid, filesPid int
}

// newTools serves the workspace ws with the given filesystem policy the
// way the runtime does (agentapi with the real plugins, in the toolsgw
// helper process), and connects an MCP client to it.
func newTools(t *testing.T, ws string, fsp policy.Filesystem) *toolsFixture {
	t.Helper()
	filesBin, docsBin, gwBin := buildToolPlugins(t)
	fsJSON, _ := json.Marshal(fsp)
	cmd := exec.Command(gwBin, ws, string(fsJSON), filesBin, docsBin)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	var hello struct {
		URL      string `json:"url"`
		PID      int    `json:"pid"`
		FilesPID int    `json:"files_pid"`
	}
	if err := json.NewDecoder(stdout).Decode(&hello); err != nil {
		t.Fatalf("toolsgw did not start: %v", err)
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "escape-test", Version: "1"}, nil)
	s, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: hello.URL + "/mcp"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &toolsFixture{s: s, url: hello.URL, pid: hello.PID, filesPid: hello.FilesPID}
}

// ingested returns the text document_ingest indexed so far.
func (f *toolsFixture) ingested(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(f.url + "/ingested")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// call runs one tool; a protocol error fails the test, a tool error is
// returned as isErr.
func (f *toolsFixture) call(t *testing.T, name string, args map[string]any) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := f.s.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Errorf("%s %v: protocol error: %v", name, args, err)
		return err.Error(), true
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String(), res.IsError
}

const hostSecret = "HOST-SECRET-7d1e"

// hostFiles puts a secret file and directory next to the workspace, where
// the agent's links point.
func hostFiles(t *testing.T, dir string) (file string) {
	t.Helper()
	file = filepath.Join(dir, "outside.txt")
	if err := os.WriteFile(file, []byte(hostSecret+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func assertHostUntouched(t *testing.T, dir, file string) {
	t.Helper()
	if b, _ := os.ReadFile(file); string(b) != hostSecret+"\n" {
		t.Errorf("host file behind the links changed: %q", b)
	}
	for _, n := range []string{"new.txt", "new.csv", "new.xlsx", "pwned"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			t.Errorf("a tool created %s outside the workspace", n)
		}
	}
}

// readTools and writeTools are every tool that reads or writes a path.
var readTools = []struct{ name, arg string }{{"read_file", "path"}, {"document_read", "path"}, {"document_ingest", "path"}}

func writeCalls(p string) []struct {
	name string
	args map[string]any
} {
	return []struct {
		name string
		args map[string]any
	}{
		{"write_file", map[string]any{"path": p, "content": "pwned"}},
		{"write_file", map[string]any{"path": p, "content": "pwned", "append": true}},
		// The agent made a matching "<p>.csv" link where p is one.
		{"spreadsheet_create", map[string]any{"path": p + ".csv", "table": map[string]any{"columns": []string{"a"}, "rows": [][]any{{"pwned"}}}}},
	}
}

func TestEscape_T1_SymlinkThroughTools(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		dir, ws := jobDir(t, mode)
		secret := hostFiles(t, dir)
		res := run(t, mode, dir, ws, job{Argv: []string{"/bin/sh", "-c", fmt.Sprintf(`cd /workspace
ln -s %[1]s abs && ln -s ../outside.txt rel && ln -s .. up && ln -s %[2]s absdir && ln -s /etc etc
mkdir -p docs && ln -s ../../outside.txt docs/deep
for l in abs rel docs/deep; do ln -s "$(readlink $l)" $l.csv; done
echo inside > docs/ok.txt && ln -s ok.txt docs/inner && echo made`, secret, dir)}})
		if res.StartErr != "" || !strings.Contains(res.Output, "made") {
			t.Fatalf("sandbox: %s %s", res.StartErr, res.Output)
		}
		f := newTools(t, ws, protectedPolicyFS())
		for _, p := range []string{"abs", "rel", "up/outside.txt", "absdir/outside.txt", "docs/deep", "/workspace/abs", "etc/passwd"} {
			for _, rt := range readTools {
				text, isErr := f.call(t, rt.name, map[string]any{rt.arg: p})
				if !isErr || strings.Contains(text, hostSecret) || strings.Contains(text, "root:") {
					t.Errorf("%s %s: not refused or leaked: %q", rt.name, p, text)
				}
			}
			for _, wc := range writeCalls(p) {
				if text, isErr := f.call(t, wc.name, wc.args); !isErr {
					t.Errorf("%s %s: not refused: %q", wc.name, p, text)
				}
			}
		}
		for _, p := range []string{"up", "absdir"} {
			if text, isErr := f.call(t, "list_files", map[string]any{"path": p}); !isErr || strings.Contains(text, "outside.txt") {
				t.Errorf("list_files %s: %q", p, text)
			}
			if text, _ := f.call(t, "search_files", map[string]any{"pattern": "HOST", "path": p}); strings.Contains(text, hostSecret) {
				t.Errorf("search_files %s leaked: %q", p, text)
			}
		}
		if text, _ := f.call(t, "search_files", map[string]any{"pattern": "HOST"}); strings.Contains(text, hostSecret) {
			t.Errorf("recursive search followed a link out: %q", text)
		}
		// A link that stays inside the workspace still reads.
		if text, isErr := f.call(t, "document_read", map[string]any{"path": "docs/inner"}); isErr || !strings.Contains(text, "inside") {
			t.Errorf("in-workspace link: %q", text)
		}
		if strings.Contains(f.ingested(t), hostSecret) {
			t.Errorf("document_ingest indexed host content")
		}
		assertHostUntouched(t, dir, secret)
	})
}

func TestEscape_T2_SwapRace(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		dir, ws := jobDir(t, mode)
		secret := hostFiles(t, dir)
		f := newTools(t, ws, protectedPolicyFS())
		// The agent swaps "swap" between a file and a link to the host
		// file, and "d" between a directory and a link to the host
		// directory, until the host says stop (or two minutes pass).
		script := fmt.Sprintf(`cd /workspace
end=$(( $(date +%%s) + 110 )); touch ready
while [ ! -e stop ] && [ $(date +%%s) -lt $end ]; do
  echo inside > f.tmp && mv -T f.tmp swap
  ln -s %[1]s l.tmp && mv -T l.tmp swap
  rm -rf d; mkdir d; rm -rf d; ln -s %[2]s d
done; echo stopped`, secret, dir)
		done := make(chan result, 1)
		go func() { done <- run(t, mode, dir, ws, job{Argv: []string{"/bin/sh", "-c", script}}) }()
		for {
			if _, err := os.Stat(filepath.Join(ws, "ready")); err == nil {
				break
			}
			select {
			case res := <-done:
				t.Fatalf("sandbox ended early: %s %s", res.StartErr, res.Output)
			case <-time.After(20 * time.Millisecond):
			}
		}
		calls := 0
		for i := 0; i < 150; i++ {
			for _, rt := range readTools {
				if text, _ := f.call(t, rt.name, map[string]any{rt.arg: "swap"}); strings.Contains(text, hostSecret) {
					t.Errorf("%s read the host file through the swapped link: %q", rt.name, text)
				}
				calls++
			}
			for _, p := range []string{"swap", "d/new.txt"} {
				for _, wc := range writeCalls(p) {
					f.call(t, wc.name, wc.args)
					calls++
				}
			}
		}
		if err := os.WriteFile(filepath.Join(ws, "stop"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		res := <-done
		if !strings.Contains(res.Output, "stopped") {
			t.Fatalf("swap loop did not run to the end: %s %s", res.StartErr, res.Output)
		}
		t.Logf("%d tool calls raced against the swap loop", calls)
		assertHostUntouched(t, dir, secret)
		if strings.Contains(f.ingested(t), hostSecret) {
			t.Errorf("document_ingest indexed host content")
		}
	})
}

// protectedPolicyFS is the filesystem block of protectedPolicy.
func protectedPolicyFS() policy.Filesystem {
	var j job
	protectedPolicy(&j)
	return j.Policy.Filesystem
}
