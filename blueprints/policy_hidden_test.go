package blueprints

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// F19 at validate: a policy whose paths expose the nemoclave home — the
// home itself, a parent of it, a file in it, or a symlink leading to it —
// is an error naming the path; the home anywhere (not only ~/.nemoclave).
func TestEscape_F19_ValidateRefusesDaemonHome(t *testing.T) {
	// Outside /tmp: the sandbox's /tmp is its own tmpfs, so paths below it
	// never expose a host directory.
	base, err := os.MkdirTemp("/var/tmp", "nemoclave-f19-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	home := filepath.Join(base, "srv", "nc-state") // a custom NEMOCLAVE_HOME
	if err := os.MkdirAll(filepath.Join(home, "run"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "credentials.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "data")
	if err := os.Symlink(filepath.Join(base, "srv"), link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ attr, path string }{
		{"read_only", filepath.Join(base, "srv")},
		{"read_only", base},
		{"read_write", home},
		{"read_only", filepath.Join(home, "credentials.json")},
		{"read_only", filepath.Join(home, "run", "nemoclave.sock")},
		{"read_only", filepath.Join(home, "state.db")},
		{"read_only", link},
	} {
		t.Run(c.attr+c.path, func(t *testing.T) {
			src := fmt.Sprintf(`
policy "p" {
  filesystem {
    read_only  = ["/usr"]
    %s = [%q]
  }
}
sandbox "s" {
  policy = policy.p
}
`, c.attr, c.path)
			if c.attr == "read_only" {
				src = fmt.Sprintf(`
policy "p" {
  filesystem {
    read_only = ["/usr", %q]
  }
}
sandbox "s" {
  policy = policy.p
}
`, c.path)
			}
			wantError(t, src, Options{DaemonHome: home}, "filesystem path "+c.path+" exposes "+home)
		})
	}
	// Paths the sandbox builds itself, and unrelated host paths, are fine
	// even when the home lives below /tmp.
	mustLoad(t, `
policy "p" {
  filesystem {
    read_only  = ["/usr", "/etc"]
    read_write = ["/workspace", "/tmp"]
  }
}
sandbox "s" {
  policy = policy.p
}
`, Options{DaemonHome: "/tmp/x/home"})
}
