package local

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// openUnder counts the descriptors of process pid that point below dir
// (tools-files keeps dir itself open as its root).
func openUnder(t *testing.T, pid int, dir string) int {
	t.Helper()
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join(fdDir, e.Name())); err == nil && strings.HasPrefix(target, dir+"/") {
			n++
		}
	}
	return n
}

func TestEscape_T3_FIFODeviceSparse(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		dir, ws := jobDir(t, mode)
		res := run(t, mode, dir, ws, job{Argv: []string{"/bin/sh", "-c", `cd /workspace
mkfifo fifo && ln -s /dev/zero zero && truncate -s 10G sparse.bin && echo "small file" > ok.txt && echo made`}})
		if res.StartErr != "" || !strings.Contains(res.Output, "made") {
			t.Fatalf("sandbox: %s %s", res.StartErr, res.Output)
		}
		f := newTools(t, ws, protectedPolicyFS())
		// A flood of concurrent FIFO reads through both tool paths: each is
		// refused before it can block, and the gateway answers an ordinary
		// call in the middle of it.
		const flood = 400
		var wg sync.WaitGroup
		var mu sync.Mutex
		refused := 0
		for i := 0; i < flood; i++ {
			name := "document_read"
			if i%2 == 1 {
				name = "read_file"
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				text, isErr := f.call(t, name, map[string]any{"path": "fifo"})
				if isErr && strings.Contains(text, "FIFO") {
					mu.Lock()
					refused++
					mu.Unlock()
				} else {
					t.Errorf("%s fifo: %v %q", name, isErr, text)
				}
			}()
		}
		if text, isErr := f.call(t, "read_file", map[string]any{"path": "ok.txt"}); isErr || !strings.Contains(text, "small file") {
			t.Errorf("gateway not responsive during the flood: %q", text)
		}
		wg.Wait()
		if refused != flood {
			t.Errorf("%d of %d FIFO calls refused", refused, flood)
		}
		if n := openUnder(t, f.pid, ws); n != 0 {
			t.Errorf("gateway holds %d descriptors in the workspace after the flood", n)
		}
		if n := openUnder(t, f.filesPid, ws); n != 0 {
			t.Errorf("tools-files holds %d descriptors in the workspace after the flood", n)
		}
		for _, c := range []struct{ tool, path, want string }{
			{"document_read", "sparse.bin", "larger than"},
			{"document_ingest", "sparse.bin", "larger than"},
			{"read_file", "sparse.bin", "binary"},
			{"document_read", "zero", "outside the workspace"},
			{"read_file", "zero", "outside the workspace"},
			{"document_read", "/dev/zero", "outside the workspace"},
			{"write_file", "fifo", "FIFO"},
		} {
			args := map[string]any{"path": c.path}
			if c.tool == "write_file" {
				args["content"] = "x"
			}
			if text, isErr := f.call(t, c.tool, args); !isErr || !strings.Contains(text, c.want) {
				t.Errorf("%s %s: %v %q, want an error saying %q", c.tool, c.path, isErr, text, c.want)
			}
		}
		if text, _ := f.call(t, "search_files", map[string]any{"pattern": "x"}); strings.Contains(text, "sparse.bin") {
			t.Errorf("search read the sparse file: %q", text)
		}
	})
}

func TestEscape_T4_ToolsWriteProtected(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		dir, ws := jobDir(t, mode)
		protectedWorkspace(t, mode, ws)
		j := job{Argv: []string{"/bin/sh", "-c", `cd /workspace
echo '[core]' >> .git/config; echo '#!/bin/sh' > .git/hooks/post-checkout
ln -s .git gitlink && echo linked`}}
		protectedPolicy(&j)
		res := run(t, mode, dir, ws, j)
		if res.StartErr != "" || !strings.Contains(res.Output, "linked") {
			t.Fatalf("sandbox: %s %s", res.StartErr, res.Output)
		}
		// The direct writes failed with EROFS; the tools must say the same.
		expectLines(t, res.Output, ".git/config: Read-only file system", ".git/hooks/post-checkout: Read-only file system")
		f := newTools(t, ws, protectedPolicyFS())
		for _, p := range []string{".git/config", ".git/hooks/post-checkout", "/workspace/.git/hooks/pre-commit", "src/../.git/config", ".bashrc", ".git/commondir", ".claude/settings.json"} {
			for _, wc := range writeCalls(p) {
				if wc.name == "spreadsheet_create" && !strings.Contains(p, ".git/") {
					continue // p + ".csv" is a different, unprotected name
				}
				if text, isErr := f.call(t, wc.name, wc.args); !isErr || !strings.Contains(strings.ToLower(text), "read-only file system") {
					t.Errorf("%s %s: %v %q, want a read-only refusal", wc.name, p, isErr, text)
				}
			}
		}
		// Through the agent's link to .git: refused too (no symlink is
		// followed by a write).
		for _, wc := range writeCalls("gitlink/config") {
			if text, isErr := f.call(t, wc.name, wc.args); !isErr {
				t.Errorf("%s through a link to .git: %q", wc.name, text)
			}
		}
		if text, isErr := f.call(t, "write_file", map[string]any{"path": "src/ok.txt", "content": "fine"}); isErr {
			t.Errorf("ordinary write refused: %q", text)
		}
		assertUnchanged(t, ws)
		if _, err := os.Stat(filepath.Join(ws, ".git/commondir")); err == nil {
			t.Errorf(".git/commondir was created")
		}
	})
}
