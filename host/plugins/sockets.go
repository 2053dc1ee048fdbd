package plugins

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// Plugin sockets live in a directory of the manager's own under
// $NEMOCLAVE_HOME/run/.sock/<pid>.<n>/ (0700; short, since a socket path may
// not exceed 107 bytes), not in /tmp: go-plugin
// makes one private directory per launch inside it and removes it when the
// plugin is killed (including after a crash, when the supervisor reaps the
// dead client); Close removes the manager's directory; and a new manager
// removes the directories of managers whose process is gone (a daemon that
// was SIGKILLed). When the home's path is too long for a unix socket
// address (108 bytes), the directory is made in the system temp dir
// instead, with the same lifecycle; the shared parent there
// (nemoclave-plugins-<uid>) is removed by the last Close.
//
// A debug plugin the host reattaches to (NEMOCLAVE_REATTACH_PLUGINS) is
// the exception: go-plugin makes the host's broker socket for it in the
// temp dir (it ignores UnixSocketConfig when reattaching); stopping the
// plugin removes it (plugin.Launched.Kill).

// maxSocketPath is the longest unix socket path we let go-plugin build:
// sun_path is 108 bytes, and go-plugin adds /plugin-dirNNNNNNNNNN/pluginNNNNNNNNNN.
const maxSocketPath = 107 - len("/plugin-dir0000000000/plugin0000000000")

// socketDir returns the manager's socket directory, creating it on first
// use.
func (m *Manager) socketDir() (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sockets != "" {
		return m.sockets, nil
	}
	parent := filepath.Join(m.opts.Home, "run", ".sock")
	if m.opts.Home == "" || len(parent)+len("/4194304.000") > maxSocketPath {
		parent = filepath.Join(os.TempDir(), fmt.Sprintf("nemoclave-plugins-%d", os.Getuid()))
	}
	for tries := 0; ; tries++ {
		if err := os.MkdirAll(parent, 0o700); err != nil {
			return "", fmt.Errorf("plugin socket directory: %w (check that %s is writable)", err, parent)
		}
		dir := filepath.Join(parent, fmt.Sprintf("%d.%d", os.Getpid(), socketDirs.Add(1)))
		err := os.Mkdir(dir, 0o700)
		switch {
		case errors.Is(err, os.ErrExist):
			continue // a number taken by a process that had our pid
		case errors.Is(err, os.ErrNotExist) && tries < 5:
			continue // another manager's Close removed the parent it found empty
		case err != nil:
			return "", fmt.Errorf("plugin socket directory: %w", err)
		}
		// Our directory now keeps the parent from being removed; it must
		// be ours (in the temp dir, another user could have made it).
		if st, err := os.Lstat(parent); err != nil || !st.IsDir() || st.Sys().(*syscall.Stat_t).Uid != uint32(os.Getuid()) {
			_ = os.Remove(dir)
			return "", fmt.Errorf("plugin socket directory %s is not a directory owned by you; remove it", parent)
		}
		removeStaleSocketDirs(parent)
		m.sockets = dir
		return dir, nil
	}
}

// socketDirs numbers the managers of this process.
var socketDirs atomic.Int64

// removeStaleSocketDirs removes the socket directories of processes that
// no longer exist.
func removeStaleSocketDirs(parent string) {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range ents {
		pidStr, _, ok := strings.Cut(e.Name(), ".")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(filepath.Join(parent, e.Name()))
		}
	}
}

// removeSocketDir is called by Close once every plugin is gone.
func (m *Manager) removeSocketDir() {
	m.mu.Lock()
	dir := m.sockets
	m.sockets = ""
	m.mu.Unlock()
	if dir != "" {
		_ = os.RemoveAll(dir)
		// The parent too once no manager uses it (it fails while one
		// does), after the directories of managers that died since this
		// one started: nothing of ours stays in the temp dir.
		removeStaleSocketDirs(filepath.Dir(dir))
		_ = os.Remove(filepath.Dir(dir))
	}
}
