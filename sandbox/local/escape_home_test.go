package local

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// F19 at run: whatever the blueprint said, the driver refuses a policy that
// would mount the daemon's home (a custom one, not named .nemoclave) or
// its own state root into the sandbox, naming the path, before any
// process starts.
func TestEscape_F19_RunRefusesDaemonHome(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		dir, ws := jobDir(t, mode)
		home := filepath.Join(dir, "srv", "nc-home")
		if err := os.MkdirAll(filepath.Join(home, "run"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, "credentials.json"), []byte(`{"OPENAI_API_KEY":"`+testCanary+`"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		sock := filepath.Join(home, "run", "nemoclave.sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		link := filepath.Join(dir, "data-link")
		if err := os.Symlink(filepath.Join(dir, "srv"), link); err != nil {
			t.Fatal(err)
		}
		cases := map[string]func(j *job){
			"parent read_only": func(j *job) {
				j.Policy.Filesystem.ReadOnly = append(j.Policy.Filesystem.ReadOnly, filepath.Join(dir, "srv"))
			},
			"home read_write": func(j *job) { j.Policy.Filesystem.ReadWrite = append(j.Policy.Filesystem.ReadWrite, home) },
			"credentials file": func(j *job) {
				j.Policy.Filesystem.ReadOnly = append(j.Policy.Filesystem.ReadOnly, filepath.Join(home, "credentials.json"))
			},
			"socket":             func(j *job) { j.Policy.Filesystem.ReadOnly = append(j.Policy.Filesystem.ReadOnly, sock) },
			"symlink to parent":  func(j *job) { j.Policy.Filesystem.ReadOnly = append(j.Policy.Filesystem.ReadOnly, link) },
			"driver state root":  func(j *job) { j.Policy.Filesystem.ReadOnly = append(j.Policy.Filesystem.ReadOnly, dir) },
			"workspace contains": func(j *job) { j.Workspace = dir },
		}
		for name, mut := range cases {
			j := job{Argv: []string{"/bin/sh", "-c", "cat " + filepath.Join(home, "credentials.json") + "; echo RAN"}, Policy: testPolicy(), DaemonHome: home}
			mut(&j)
			var res result
			if j.Workspace != "" {
				// run() fills in the job's own workspace; this case replaces it.
				res = runWorkspace(t, mode, dir, j)
			} else {
				res = run(t, mode, dir, ws, j)
			}
			if res.CreateErr == "" || strings.Contains(res.Output, "RAN") {
				t.Errorf("%s: not refused at create: %+v", name, res)
				continue
			}
			if !strings.Contains(res.CreateErr, "nemoclave home") && !strings.Contains(res.CreateErr, "contains") {
				t.Errorf("%s: error does not say why: %s", name, res.CreateErr)
			}
			if strings.Contains(res.Output, testCanary) {
				t.Errorf("%s: credentials leaked", name)
			}
		}
	})
}

// runWorkspace is run with a caller-chosen workspace.
func runWorkspace(t *testing.T, mode, dir string, j job) result {
	t.Helper()
	ws := j.Workspace
	j.Workspace = ""
	return run(t, mode, dir, ws, j)
}
