package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// A docBlock is one fenced shell block of a document: the commands a
// reader is told to type.
type docBlock struct {
	file string // relative to the repository root
	line int    // of the opening fence
	lang string
	// script is the commands, one per line, exactly as written (console
	// blocks: the text after each "$ " prompt and its continuation lines).
	script string
	// skip is the reason of a <!-- not run: reason --> marker on the line
	// before the fence; empty when the block runs.
	skip string
	// marked is true when a marker exists (even one without a reason).
	marked bool
}

var (
	fenceOpen = regexp.MustCompile("^```([A-Za-z0-9_+-]*)\\s*$")
	notRun    = regexp.MustCompile(`^<!--\s*not run:(.*?)-->\s*$`)
)

// shellLangs are the fence languages whose blocks are commands to run.
var shellLangs = map[string]bool{"sh": true, "bash": true, "console": true, "shell": true}

// docBlocks extracts the shell blocks of one markdown file.
func docBlocks(file string, src []byte) []docBlock {
	var (
		blocks []docBlock
		cur    *docBlock
		body   []string
		prev   string
		inside bool // any fence, shell or not
	)
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case !inside && fenceOpen.MatchString(line):
			inside = true
			lang := fenceOpen.FindStringSubmatch(line)[1]
			if shellLangs[lang] {
				cur = &docBlock{file: file, line: n, lang: lang}
				if m := notRun.FindStringSubmatch(strings.TrimSpace(prev)); m != nil {
					cur.marked, cur.skip = true, strings.TrimSpace(m[1])
				}
				body = nil
			}
		case inside && strings.TrimSpace(line) == "```":
			inside = false
			if cur != nil {
				cur.script = shellScript(cur.lang, body)
				blocks = append(blocks, *cur)
				cur = nil
			}
		case cur != nil:
			body = append(body, line)
		}
		prev = line
	}
	return blocks
}

// shellScript turns a block's lines into the script to run. sh and bash
// blocks are scripts already; console blocks hold "$ command" lines (with
// backslash continuations) among the output they print.
func shellScript(lang string, lines []string) string {
	if lang != "console" {
		return strings.Join(lines, "\n") + "\n"
	}
	var b strings.Builder
	cont := false
	for _, l := range lines {
		switch {
		case cont:
			b.WriteString(l + "\n")
		case strings.HasPrefix(l, "$ "):
			b.WriteString(strings.TrimPrefix(l, "$ ") + "\n")
		default:
			continue
		}
		cont = strings.HasSuffix(l, "\\")
	}
	return b.String()
}

// docFiles are README.md and every markdown file under docs/.
func docFiles(t *testing.T, root string) []string {
	t.Helper()
	files := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files[1:])
	return files
}

// TestDocsCommands runs every shell block of README.md and docs/ exactly
// as written, so the documentation cannot rot: the project's contract is
// that every command a reader is shown works. The blocks of one document
// run in order from the repository root, with its bin/ first on PATH, a
// fresh NEMOCLAVE_HOME and a fresh HOME (the docs write their files under
// ~, never into the checkout), so each block finds what the document's
// earlier blocks set up. A block preceded by `<!-- not run: reason -->` is
// skipped; the reason is required.
func TestDocsCommands(t *testing.T) {
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "bin", "nemoclave")); err != nil {
		t.Fatalf("the docs run bin/nemoclave of the checkout: run make build first (%v)", err)
	}
	goEnv := goCacheEnv(t)
	var all []docBlock
	for _, f := range docFiles(t, root) {
		src, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, docBlocks(f, src)...)
	}
	if len(all) == 0 {
		t.Fatal("no shell blocks found in README.md and docs/: the extractor is broken")
	}
	byFile := map[string][]docBlock{}
	var order []string
	skipped := 0
	for _, b := range all {
		if b.marked && b.skip == "" {
			t.Errorf("%s:%d: <!-- not run: --> needs a reason (why this block cannot run here)", b.file, b.line-1)
		}
		if b.marked {
			skipped++
			t.Logf("%s:%d: not run: %s", b.file, b.line, b.skip)
		}
		if _, ok := byFile[b.file]; !ok {
			order = append(order, b.file)
		}
		byFile[b.file] = append(byFile[b.file], b)
	}
	t.Logf("%d shell blocks in README.md and docs/, %d marked not run", len(all), skipped)
	for _, f := range order {
		blocks := byFile[f]
		t.Run(strings.ReplaceAll(f, "/", "_"), func(t *testing.T) {
			runDocBlocks(t, root, goEnv, blocks)
		})
	}
}

// goCacheEnv pins the Go caches, which default to places under $HOME, so
// a documented `make` or `go build` with the reader's fresh HOME still
// finds the warm caches.
func goCacheEnv(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	v := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(v) != 3 {
		t.Fatalf("go env printed %q", out)
	}
	return []string{"GOCACHE=" + v[0], "GOMODCACHE=" + v[1], "GOPATH=" + v[2]}
}

// runDocBlocks runs one document's blocks in order in a fresh reader's
// environment.
func runDocBlocks(t *testing.T, root string, goEnv []string, blocks []docBlock) {
	home, userHome := t.TempDir(), t.TempDir()
	vars := append(docEnv(root, home, userHome), goEnv...)
	t.Cleanup(func() {
		// The document may have left a daemon and sandboxes running.
		cmd := exec.Command(filepath.Join(root, "bin", "nemoclave"), "daemon", "stop")
		cmd.Env = vars
		_ = cmd.Run()
	})
	for _, b := range blocks {
		if b.marked {
			continue
		}
		name := fmt.Sprintf("%s:%d", b.file, b.line)
		start := time.Now()
		out, err := runDocScript(root, vars, b.script)
		if err != nil {
			daemonLog, _ := os.ReadFile(filepath.Join(home, "logs", "daemon.log"))
			t.Fatalf("%s: the block fails as written (%v):\n%s\n--- output ---\n%s\n--- daemon.log (tail) ---\n%s",
				name, err, b.script, out, tail(string(daemonLog), 30))
		}
		t.Logf("%s: ok in %s\n%s", name, time.Since(start).Round(time.Second), tail(out, 8))
	}
}

// docEnv is a reader's environment: the test's own, minus anything that
// points nemoclave elsewhere, plus fresh homes and the checkout's bin/
// first on PATH.
func docEnv(root, home, userHome string) []string {
	var vars []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "NEMOCLAVE_") || strings.HasPrefix(k, "XDG_") || k == "PATH" || k == "HOME" {
			continue
		}
		vars = append(vars, kv)
	}
	return append(vars, "NEMOCLAVE_HOME="+home, "HOME="+userHome, "PATH="+filepath.Join(root, "bin")+":"+os.Getenv("PATH"))
}

// runDocScript runs one block with bash -e -o pipefail: a failing command
// anywhere in it fails the block. The generous timeout covers a documented
// `make build` on a loaded machine.
func runDocScript(dir string, vars []string, script string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", script)
	cmd.Dir, cmd.Env = dir, vars
	cmd.Stdin = nil // /dev/null: a command that waits for a reader fails instead of hanging
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	return out.String(), err
}

// TestDocBlocksExtraction pins the extractor on a document with every case.
func TestDocBlocksExtraction(t *testing.T) {
	t.Parallel()
	doc := "# t\n```sh\necho a\necho b\n```\n<!-- not run: needs a cloud account -->\n```bash\naws eks list\n```\n" +
		"```hcl\nnot = \"shell\"\n```\n```console\n$ echo one \\\n  two\none two\n$ true\n```\n<!-- not run: -->\n```sh\nx\n```\n"
	got := docBlocks("t.md", []byte(doc))
	if len(got) != 4 {
		t.Fatalf("blocks = %+v", got)
	}
	if got[0].script != "echo a\necho b\n" || got[0].marked || got[0].line != 2 {
		t.Errorf("sh block: %+v", got[0])
	}
	if !got[1].marked || got[1].skip != "needs a cloud account" {
		t.Errorf("marked block: %+v", got[1])
	}
	if got[2].script != "echo one \\\n  two\ntrue\n" {
		t.Errorf("console block script = %q", got[2].script)
	}
	if !got[3].marked || got[3].skip != "" {
		t.Errorf("a marker without a reason must be seen as marked with no reason: %+v", got[3])
	}
}
