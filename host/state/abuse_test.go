package state

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/gateway/inference"
)

// TestAbuse_R10_DataFilesArePrivate: the state and usage databases and
// their WAL/SHM side files are 0600 in 0700 directories, even when an
// older version left them 0644, and another local user cannot read them.
func TestAbuse_R10_DataFilesArePrivate(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	statePath := filepath.Join(home, "state.db")
	usagePath := filepath.Join(home, inference.UsageFileName)
	// An older daemon's world-readable usage database is tightened.
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(usagePath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	old := syscall.Umask(0o022) // the umask most users run with
	defer syscall.Umask(old)

	db, err := Open(statePath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PutSandbox(context.Background(), Sandbox{Name: "sb", Driver: "local", State: "running"}); err != nil {
		t.Fatal(err)
	}
	u, err := inference.OpenSQLiteUsage(usagePath)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if err := u.Add(context.Background(), []inference.UsageRecord{{Time: time.Now(), Sandbox: "sb", Model: "m", InputTokens: 1}}); err != nil {
		t.Fatal(err)
	}

	var files []string
	err = filepath.WalkDir(home, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s is %v: group or others may access it", p, perm)
		}
		if !d.IsDir() {
			files = append(files, filepath.Base(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"state.db-wal", "state.db-shm", "usage.db-wal", "usage.db-shm"} {
		if !strings.Contains(strings.Join(files, " "), want) {
			t.Errorf("%s was not created, so its mode was not checked (files: %v)", want, files)
		}
	}

	// Another local user, even given a way into the directory, cannot
	// read the files.
	if os.Geteuid() != 0 {
		t.Log("not root: the read attempt as another user is skipped (the modes above were checked)")
		return
	}
	// Make the test's own directories traversable, so only the file mode
	// stands in the way.
	tmp := filepath.Dir(home)
	for _, d := range []string{home, tmp, filepath.Dir(tmp)} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(d, 0o700)
	}
	for dir := filepath.Dir(filepath.Dir(tmp)); dir != "/"; dir = filepath.Dir(dir) {
		if st, err := os.Stat(dir); err == nil && st.Mode().Perm()&0o001 == 0 {
			t.Logf("%s is not traversable by others; the read attempt proves only the directory mode", dir)
			break
		}
	}
	for _, f := range []string{statePath, usagePath, statePath + "-wal"} {
		cmd := exec.Command("/bin/cat", f)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("uid 65534 read %s (%d bytes)", f, len(out))
		}
	}
}
