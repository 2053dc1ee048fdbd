package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/status"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// fixture is a configured plugin over gRPC with a workspace and a sibling
// directory outside it holding a secret.
type fixture struct {
	tools   tools.Provider
	root    string
	outside string
}

func newFixture(t *testing.T, extra string) *fixture {
	t.Helper()
	base := t.TempDir()
	f := &fixture{root: filepath.Join(base, "ws"), outside: filepath.Join(base, "outside")}
	for _, d := range []string{f.root, f.outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(f.outside, "secret.txt"), "TOP-SECRET\n")
	c := plugin.InProcess(t, &filesPlugin{cfg: defaultConfig()})
	cfg := `{"root":` + quote(f.root) + extra + `}`
	if ds, err := c.Configure(context.Background(), plugin.ConfigureOptions{Config: json.RawMessage(cfg)}); err != nil || len(ds) > 0 {
		t.Fatalf("configure: %v %+v", err, ds)
	}
	f.tools = c.Tools()
	return f
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// call runs a tool and returns its text and IsError. A transport error
// fails the test: tool failures must be tool results.
func (f *fixture) call(t *testing.T, name, args string) (string, bool) {
	t.Helper()
	res, err := f.tools.CallTool(context.Background(), &tools.CallRequest{Name: name, Arguments: json.RawMessage(args)})
	if err != nil {
		t.Fatalf("%s(%s): transport error %v; tool failures must be IsError results", name, args, err)
	}
	var parts []string
	for _, c := range res.Content {
		parts = append(parts, c.Text)
	}
	return strings.Join(parts, "\n"), res.IsError
}

func (f *fixture) mustCall(t *testing.T, name, args string) string {
	t.Helper()
	text, isErr := f.call(t, name, args)
	if isErr {
		t.Fatalf("%s(%s) failed: %s", name, args, text)
	}
	return text
}

func TestListTools(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	ts, err := f.tools.ListTools(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tl := range ts {
		names[tl.Name] = true
		var s map[string]any
		if err := json.Unmarshal(tl.InputSchema, &s); err != nil || s["type"] != "object" {
			t.Errorf("%s: input schema is not an object schema: %v", tl.Name, err)
		}
	}
	for _, n := range []string{"list_files", "read_file", "write_file", "search_files"} {
		if !names[n] {
			t.Errorf("missing tool %s", n)
		}
	}
	ro := newFixture(t, `,"read_only":true`)
	ts, _ = ro.tools.ListTools(context.Background())
	for _, tl := range ts {
		if tl.Name == "write_file" {
			t.Error("read_only still offers write_file")
		}
	}
	if _, isErr := ro.call(t, "write_file", `{"path":"x","content":"y"}`); !isErr {
		t.Error("read_only accepted a write")
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	out := f.mustCall(t, "write_file", `{"path":"a/b/c.txt","content":"one\ntwo\n"}`)
	if !strings.Contains(out, "wrote 8 bytes") {
		t.Errorf("write result %q", out)
	}
	f.mustCall(t, "write_file", `{"path":"/workspace/a/b/c.txt","content":"three\n","append":true}`)
	if got, _ := os.ReadFile(filepath.Join(f.root, "a/b/c.txt")); string(got) != "one\ntwo\nthree\n" {
		t.Fatalf("file holds %q", got)
	}
	if got := f.mustCall(t, "read_file", `{"path":"a/b/c.txt"}`); got != "one\ntwo\nthree\n" {
		t.Errorf("read %q", got)
	}
	// Absolute paths under the root itself work too.
	if got := f.mustCall(t, "read_file", `{"path":`+quote(filepath.Join(f.root, "a/b/c.txt"))+`}`); !strings.HasPrefix(got, "one") {
		t.Errorf("absolute root path read %q", got)
	}
	if text, isErr := f.call(t, "write_file", `{"path":"new/x.txt","content":"x","create_dirs":false}`); !isErr || !strings.Contains(text, "no such file") {
		t.Errorf("create_dirs=false into a missing dir: %v %q", isErr, text)
	}
}

func TestReadWindowing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, `,"max_bytes":64`)
	var b strings.Builder
	for i := 1; i <= 30; i++ {
		b.WriteString(strings.Repeat("x", 5) + "\n") // 6 bytes a line
	}
	writeFile(t, filepath.Join(f.root, "long.txt"), b.String())
	got := f.mustCall(t, "read_file", `{"path":"long.txt","offset":3,"limit":2}`)
	if got != "xxxxx\nxxxxx\n\n[showing lines 3-4; the file continues: call read_file with offset=5 to read more]" {
		t.Errorf("window: %q", got)
	}
	// max_bytes caps the window: 64 bytes hold 10 lines of 6.
	got = f.mustCall(t, "read_file", `{"path":"long.txt"}`)
	if !strings.Contains(got, "lines 1-10;") {
		t.Errorf("max_bytes cap: %q", got)
	}
	if text, isErr := f.call(t, "read_file", `{"path":"long.txt","offset":99}`); !isErr || !strings.Contains(text, "past the end") {
		t.Errorf("offset past end: %v %q", isErr, text)
	}
	writeFile(t, filepath.Join(f.root, "bin"), "a\x00b")
	if text, isErr := f.call(t, "read_file", `{"path":"bin"}`); !isErr || !strings.Contains(text, "binary") {
		t.Errorf("binary: %v %q", isErr, text)
	}
	if text, isErr := f.call(t, "write_file", `{"path":"big","content":"`+strings.Repeat("y", 65)+`"}`); !isErr || !strings.Contains(text, "max_bytes") {
		t.Errorf("oversized write: %v %q", isErr, text)
	}
}

func TestListFiles(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	writeFile(t, filepath.Join(f.root, "main.go"), "package main\n")
	writeFile(t, filepath.Join(f.root, "src/util/u.go"), "package util\n")
	writeFile(t, filepath.Join(f.root, "src/readme.md"), "# hi\n")
	writeFile(t, filepath.Join(f.root, ".git/HEAD"), "ref\n")

	if got := f.mustCall(t, "list_files", `{}`); got != ".git/\nmain.go  13\nsrc/" {
		t.Errorf("top level:\n%s", got)
	}
	if got := f.mustCall(t, "list_files", `{"recursive":true}`); got != "main.go  13\nsrc/\nsrc/readme.md  5\nsrc/util/\nsrc/util/u.go  13" {
		t.Errorf("recursive (skipping .git):\n%s", got)
	}
	if got := f.mustCall(t, "list_files", `{"recursive":true,"glob":"*.go"}`); got != "main.go  13\nsrc/util/u.go  13" {
		t.Errorf("glob *.go:\n%s", got)
	}
	if got := f.mustCall(t, "list_files", `{"path":"src","recursive":true,"glob":"src/**/*.go"}`); got != "src/util/u.go  13" {
		t.Errorf("glob src/**/*.go:\n%s", got)
	}
	if text, isErr := f.call(t, "list_files", `{"path":"nope"}`); !isErr || !strings.Contains(text, "no such file") {
		t.Errorf("missing dir: %v %q", isErr, text)
	}
	if text, isErr := f.call(t, "list_files", `{"glob":"[abc"}`); !isErr || !strings.Contains(text, "unclosed") {
		t.Errorf("bad glob: %v %q", isErr, text)
	}
}

func TestSearchFiles(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	writeFile(t, filepath.Join(f.root, "a.go"), "package a\n\nfunc Hello() {}\nfunc hello2() {}\n")
	writeFile(t, filepath.Join(f.root, "docs/n.md"), "say Hello (a+b)\n")
	writeFile(t, filepath.Join(f.root, "bin.dat"), "Hello\x00")

	if got := f.mustCall(t, "search_files", `{"pattern":"func [A-Z]\\w*"}`); got != "a.go:3: func Hello() {}" {
		t.Errorf("regex:\n%s", got)
	}
	if got := f.mustCall(t, "search_files", `{"pattern":"hello","case_insensitive":true}`); got != "a.go:3: func Hello() {}\na.go:4: func hello2() {}\ndocs/n.md:1: say Hello (a+b)" {
		t.Errorf("case-insensitive (binary skipped):\n%s", got)
	}
	if got := f.mustCall(t, "search_files", `{"pattern":"(a+b)","literal":true}`); got != "docs/n.md:1: say Hello (a+b)" {
		t.Errorf("literal:\n%s", got)
	}
	if got := f.mustCall(t, "search_files", `{"pattern":"Hello","glob":"*.md"}`); got != "docs/n.md:1: say Hello (a+b)" {
		t.Errorf("glob:\n%s", got)
	}
	if got := f.mustCall(t, "search_files", `{"pattern":"Hello","max_results":1}`); !strings.HasPrefix(got, "a.go:3:") || !strings.Contains(got, "stopped after 1") {
		t.Errorf("max_results:\n%s", got)
	}
	if got := f.mustCall(t, "search_files", `{"pattern":"zzz"}`); got != "no matches" {
		t.Errorf("no match: %q", got)
	}
	if text, isErr := f.call(t, "search_files", `{"pattern":"("}`); !isErr || !strings.Contains(text, "literal=true") {
		t.Errorf("bad regex: %v %q", isErr, text)
	}
}

// TestEscapes tries every way out of the workspace: each attempt must be a
// readable tool error and must neither leak nor change anything outside.
func TestEscapes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	ws, out := f.root, f.outside
	for _, l := range []struct{ link, target string }{
		{"link-file", filepath.Join(out, "secret.txt")},
		{"link-dir", out},
		{"link-dangling", filepath.Join(out, "created-through-link.txt")},
		{"link-rel", "../outside/secret.txt"},
		{"sub/link-up", "../../outside"},
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(ws, l.link)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(l.target, filepath.Join(ws, l.link)); err != nil {
			t.Fatal(err)
		}
	}
	// A symlink that stays inside is fine.
	writeFile(t, filepath.Join(ws, "real.txt"), "inside\n")
	if err := os.Symlink("real.txt", filepath.Join(ws, "link-inside")); err != nil {
		t.Fatal(err)
	}
	if got := f.mustCall(t, "read_file", `{"path":"link-inside"}`); got != "inside\n" {
		t.Errorf("in-workspace symlink: %q", got)
	}

	secret := filepath.Join(out, "secret.txt")
	for _, tc := range []struct{ name, tool, args string }{
		{"dotdot read", "read_file", `{"path":"../outside/secret.txt"}`},
		{"dotdot deep read", "read_file", `{"path":"sub/../../outside/secret.txt"}`},
		{"dotdot list", "list_files", `{"path":".."}`},
		{"dotdot search", "search_files", `{"pattern":"SECRET","path":"../outside"}`},
		{"dotdot write", "write_file", `{"path":"../outside/secret.txt","content":"pwned"}`},
		{"absolute read", "read_file", `{"path":` + quote(secret) + `}`},
		{"absolute etc", "read_file", `{"path":"/etc/passwd"}`},
		{"absolute workspace dotdot", "read_file", `{"path":"/workspace/../etc/passwd"}`},
		{"absolute write", "write_file", `{"path":` + quote(secret) + `,"content":"pwned"}`},
		{"absolute list", "list_files", `{"path":` + quote(out) + `}`},
		{"symlink file read", "read_file", `{"path":"link-file"}`},
		{"symlink relative read", "read_file", `{"path":"link-rel"}`},
		{"symlink file write", "write_file", `{"path":"link-file","content":"pwned"}`},
		{"symlink file append", "write_file", `{"path":"link-file","content":"pwned","append":true}`},
		{"symlink dangling write", "write_file", `{"path":"link-dangling","content":"pwned"}`},
		{"symlink dir read", "read_file", `{"path":"link-dir/secret.txt"}`},
		{"symlink dir write", "write_file", `{"path":"link-dir/new.txt","content":"pwned"}`},
		{"symlink dir mkdir", "write_file", `{"path":"link-dir/deeper/new.txt","content":"pwned"}`},
		{"symlink dir list", "list_files", `{"path":"link-dir"}`},
		{"symlink dir search", "search_files", `{"pattern":"SECRET","path":"link-dir"}`},
		{"symlink up dir read", "read_file", `{"path":"sub/link-up/secret.txt"}`},
	} {
		text, isErr := f.call(t, tc.tool, tc.args)
		if !isErr {
			t.Errorf("%s: not refused: %q", tc.name, text)
		}
		if strings.Contains(text, "TOP-SECRET") || strings.Contains(text, "root:") {
			t.Errorf("%s: leaked outside content: %q", tc.name, text)
		}
		if !strings.Contains(text, "outside the workspace") && !strings.Contains(text, "climbs out") {
			t.Errorf("%s: error does not say why: %q", tc.name, text)
		}
	}
	// Whole-tree operations stay inside: symlinks are not followed.
	if got := f.mustCall(t, "search_files", `{"pattern":"SECRET"}`); got != "no matches" {
		t.Errorf("recursive search followed a symlink out: %q", got)
	}
	if got := f.mustCall(t, "list_files", `{"recursive":true}`); strings.Contains(got, "secret") {
		t.Errorf("recursive list followed a symlink out: %q", got)
	}
	// Nothing outside changed.
	entries, _ := os.ReadDir(out)
	if len(entries) != 1 {
		t.Errorf("outside dir now holds %d entries", len(entries))
	}
	if got, _ := os.ReadFile(secret); string(got) != "TOP-SECRET\n" {
		t.Errorf("secret changed: %q", got)
	}
}

func TestBadArgumentsAreToolErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	for _, tc := range []struct{ tool, args, want string }{
		{"read_file", `{}`, "path is required"},
		{"read_file", `{"path":"x","colour":1}`, "unknown field"},
		{"read_file", `{"path":5}`, "invalid arguments"},
		{"write_file", `{"path":"x"}`, "required"},
		{"write_file", `{"path":".","content":"x"}`, "workspace itself"},
		{"search_files", `{}`, "pattern is required"},
	} {
		if text, isErr := f.call(t, tc.tool, tc.args); !isErr || !strings.Contains(text, tc.want) {
			t.Errorf("%s(%s) = %v %q, want error containing %q", tc.tool, tc.args, isErr, text, tc.want)
		}
	}
	_, err := f.tools.CallTool(context.Background(), &tools.CallRequest{Name: "delete_everything"})
	if status.CodeOf(err) != status.NotFound {
		t.Errorf("unknown tool: %v, want NotFound", err)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ raw, path string }{
		{`{"root":"relative"}`, "root"},
		{`{"root":""}`, "root"},
		{`{"workspace_path":"ws"}`, "workspace_path"},
		{`{"max_bytes":0}`, "max_bytes"},
	} {
		ds := (&filesPlugin{}).ValidateConfig(context.Background(), json.RawMessage(tc.raw))
		if len(ds) != 1 || ds[0].Path[0] != tc.path {
			t.Errorf("%s: diags %+v, want one at %s", tc.raw, ds, tc.path)
		}
	}
	if ds := (&filesPlugin{}).ValidateConfig(context.Background(), json.RawMessage(`{"root":"/srv/x","max_bytes":10}`)); len(ds) != 0 {
		t.Errorf("valid config rejected: %+v", ds)
	}
	if err := (&filesPlugin{}).ConfigSchema().Validate(); err != nil {
		t.Errorf("schema: %v", err)
	}
	err := (&filesPlugin{}).Configure(context.Background(), plugin.Config{JSON: json.RawMessage(`{"root":"/does/not/exist"}`)}, nil)
	if err == nil || !strings.Contains(err.Error(), "create the directory") {
		t.Errorf("missing root: %v", err)
	}
}
