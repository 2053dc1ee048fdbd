package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildWordcount builds examples/tools-wordcount as a third-party author
// would (its own module, GOWORK=off).
func buildWordcount(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "nemoclave-plugin-tools-wordcount")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = filepath.Join(repoRoot(t), "examples", "tools-wordcount")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build wordcount: %v\n%s", err, b)
	}
	return out
}

// wordcountBlueprint is the quickstart plus the wordcount plugin by
// address, in a second file of the blueprint directory.
func wordcountBlueprint(t *testing.T, version string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "wc")
	copyDir(t, filepath.Join(repoRoot(t), "examples", "quickstart"), dir)
	writeWordcount(t, dir, version)
	return dir
}

func writeWordcount(t *testing.T, dir, version string) {
	t.Helper()
	hcl := `plugin "tools" "wordcount" {
  source  = "example.com/acme/wordcount"
  version = "` + version + `"
  config {
    min_length = 2
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "wordcount.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
}

func wantFail(t *testing.T, r result, what string, want ...string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("%s succeeded; stdout:\n%s\nstderr:\n%s", what, r.stdout, r.stderr)
	}
	// Diagnostics are wrapped at 100 columns: compare with spaces folded.
	got := strings.Join(strings.Fields(r.stdout+r.stderr), " ")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s: output lacks %q:\n%s%s", what, w, r.stdout, r.stderr)
		}
	}
}

// TestThirdPartyPluginByAddress is issue 15's acceptance: wordcount,
// installed as example.com/acme/wordcount 0.1.0, is used by address;
// validate, plan and run work once it is locked; a swapped binary is
// refused by validate and run; a constraint it does not meet fails
// validate naming what is installed.
func TestThirdPartyPluginByAddress(t *testing.T) {
	e := newEnv(t)
	bin := buildWordcount(t)
	out := e.must("plugin", "install", "example.com/acme/wordcount", "--path", bin, "--version", "0.1.0")
	if !strings.Contains(out, "installed example.com/acme/wordcount 0.1.0") {
		t.Fatalf("install: %s", out)
	}
	dir := wordcountBlueprint(t, ">= 0.1")

	// Not locked yet: validate says what to run.
	wantFail(t, e.run(t.Context(), "validate", dir), "validate before init", "nemoclave init", ".nemoclave.lock.hcl")

	out = e.must("init", dir)
	lock, err := os.ReadFile(filepath.Join(dir, ".nemoclave.lock.hcl"))
	if err != nil {
		t.Fatalf("init wrote no lock: %v\n%s", err, out)
	}
	for _, w := range []string{`plugin "example.com/acme/wordcount"`, `version     = "0.1.0"`, `constraints = ">= 0.1"`, `"sha256:`} {
		if !strings.Contains(string(lock), w) {
			t.Errorf("lock lacks %q:\n%s", w, lock)
		}
	}
	e.must("validate", dir)
	plan := e.must("plan", dir)
	if !strings.Contains(plan, "example.com/acme/wordcount") {
		t.Errorf("plan does not show the plugin:\n%s", plan)
	}
	r := e.run(t.Context(), "run", dir)
	if r.code != 0 {
		t.Fatalf("run: exit %d\nstdout:\n%s\nstderr:\n%s\n%s", r.code, r.stdout, r.stderr, e.daemonLog())
	}
	if strings.TrimSpace(r.stdout) == "" {
		t.Fatalf("the agent printed no answer; stderr:\n%s", r.stderr)
	}
	// The attached run forgot its sandbox; the plugin log stays, with
	// the wordcount plugin's lines, until sandbox delete.
	// (Its last line, the process's exit or, with the daemon's
	// --plugin-idle-ttl, its being kept idle, may land just after run
	// returns.)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		logs := e.must("logs", "quickstart", "--source", "plugin")
		end := strings.Contains(logs, "plugin.tools.wordcount: plugin process exited") || strings.Contains(logs, "plugin.tools.wordcount: plugin process kept idle")
		if end && !strings.Contains(logs, `"@module"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs --source plugin after the run:\n%s", logs)
		}
	}
	e.must("sandbox", "delete", "quickstart")
	wantFail(t, e.run(t.Context(), "logs", "quickstart", "--source", "plugin"), "logs after sandbox delete", `no sandbox named "quickstart"`)

	// Swap the installed binary (another plugin in its place, as a
	// tampering or a botched copy would): validate and run refuse it.
	installed := filepath.Join(e.home, "plugins", "example.com", "acme", "wordcount", "0.1.0", "nemoclave-plugin-tools-wordcount")
	swap := installed + ".new"
	if b, err := os.ReadFile(filepath.Join(e.bin, "nemoclave-plugin-tools-files")); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(swap, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(swap, installed); err != nil {
		t.Fatal(err)
	}
	wantFail(t, e.run(t.Context(), "validate", dir), "validate with a swapped binary", "checksum mismatch")
	wantFail(t, e.run(t.Context(), "run", dir), "run with a swapped binary", "checksum mismatch")

	// Reinstalled, it works again; a constraint 0.1.0 does not meet fails
	// validate naming the installed version.
	e.must("plugin", "install", "example.com/acme/wordcount", "--path", bin, "--version", "0.1.0")
	e.must("validate", dir)
	writeWordcount(t, dir, ">= 0.2")
	wantFail(t, e.run(t.Context(), "validate", dir), "validate with >= 0.2", ">= 0.2", "0.1.0")
	wantFail(t, e.run(t.Context(), "init", dir), "init with >= 0.2", ">= 0.2", "installed: 0.1.0")
}

// TestPathPluginIsLocked: a plugin named by path is locked like an
// installed one, so a rebuilt or replaced binary is refused until init
// records it again.
func TestPathPluginIsLocked(t *testing.T) {
	e := newEnv(t)
	bin := buildWordcount(t)
	dir := filepath.Join(t.TempDir(), "bp")
	copyDir(t, filepath.Join(repoRoot(t), "examples", "quickstart"), dir)
	local := filepath.Join(dir, "nemoclave-plugin-tools-wordcount")
	if b, err := os.ReadFile(bin); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(local, b, 0o755); err != nil {
		t.Fatal(err)
	}
	hcl := "plugin \"tools\" \"wordcount\" {\n  source = \"./nemoclave-plugin-tools-wordcount\"\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "wordcount.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	wantFail(t, e.run(t.Context(), "validate", dir), "validate before init", "nemoclave init")
	e.must("init", dir)
	lock, _ := os.ReadFile(filepath.Join(dir, ".nemoclave.lock.hcl"))
	if !strings.Contains(string(lock), `plugin "./nemoclave-plugin-tools-wordcount"`) {
		t.Fatalf("lock does not key the path relative to the blueprint:\n%s", lock)
	}
	e.must("validate", dir)
	if b, err := os.ReadFile(filepath.Join(e.bin, "nemoclave-plugin-tools-files")); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(local+".new", b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(local+".new", local); err != nil {
		t.Fatal(err)
	}
	wantFail(t, e.run(t.Context(), "validate", dir), "validate with a replaced path plugin", "does not match", "nemoclave init")
	wantFail(t, e.run(t.Context(), "run", dir), "run with a replaced path plugin", "does not match", "nemoclave init")

	// A dev override (in the home, keyed as the lock keys the source)
	// runs a local build unchecked, with a warning from validate and run.
	override := "dev_overrides = {\n  \"./nemoclave-plugin-tools-wordcount\" = \"" + bin + "\"\n}\n"
	if err := os.WriteFile(filepath.Join(e.home, "dev_overrides.hcl"), []byte(override), 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.run(t.Context(), "validate", dir)
	if got := strings.Join(strings.Fields(r.stdout+r.stderr), " "); r.code != 0 || !strings.Contains(got, "Plugin dev override in effect") || !strings.Contains(got, "overridden by "+bin) {
		t.Errorf("validate with a dev override: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = e.run(t.Context(), "run", dir)
	if r.code != 0 || !strings.Contains(r.stdout+r.stderr, "WARNING: DEV OVERRIDE") || !strings.Contains(r.stdout+r.stderr, "plugin.tools.wordcount = "+bin) {
		t.Errorf("run with a dev override: exit %d\nstdout:\n%s\nstderr:\n%s\n%s", r.code, r.stdout, r.stderr, e.daemonLog())
	}
}

// TestPythonPluginInBlueprint: the Python example, installed as a directory
// under an address, is used from a blueprint like a Go plugin (init,
// validate, plan, run, the daemon boxing it), and an edit to one of its
// sibling modules is refused as a changed plugin.
func TestPythonPluginInBlueprint(t *testing.T) {
	if out, err := exec.Command("/usr/bin/python3", "-c", "import grpc, google.protobuf, cryptography").CombinedOutput(); err != nil {
		t.Skipf("the Python plugin needs /usr/bin/python3 with grpcio, protobuf and cryptography (apt-get install -y python3-grpcio python3-protobuf python3-cryptography): %v: %s", err, out)
	}
	e := newEnv(t)
	src := filepath.Join(repoRoot(t), "examples", "python-tools")
	out := e.must("plugin", "install", "example.com/acme/pywordcount", "--path", src, "--version", "0.1.0")
	if !strings.Contains(out, "installed example.com/acme/pywordcount 0.1.0 (tools)") {
		t.Fatalf("install: %s", out)
	}
	dir := filepath.Join(t.TempDir(), "py")
	copyDir(t, filepath.Join(repoRoot(t), "examples", "quickstart"), dir)
	hcl := `plugin "tools" "words" {
  source  = "example.com/acme/pywordcount"
  version = ">= 0.1"
  config {
    min_length = 2
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "words.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	e.must("init", dir)
	e.must("validate", dir)
	if plan := e.must("plan", dir); !strings.Contains(plan, "example.com/acme/pywordcount") {
		t.Errorf("plan does not show the plugin:\n%s", plan)
	}
	r := e.run(t.Context(), "run", dir)
	if r.code != 0 {
		t.Fatalf("run: exit %d\nstdout:\n%s\nstderr:\n%s\n%s", r.code, r.stdout, r.stderr, e.daemonLog())
	}

	// A sibling module is part of the plugin: editing it is refused.
	mod := filepath.Join(e.home, "plugins", "example.com", "acme", "pywordcount", "0.1.0", "nemoclave_plugin", "__init__.py")
	if err := os.Chmod(mod, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(mod, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("\n# tampered\n")
	f.Close()
	wantFail(t, e.run(t.Context(), "validate", dir), "validate with an edited module", "checksum mismatch")
}
