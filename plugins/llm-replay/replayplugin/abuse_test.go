package replayplugin

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestAbuse_R6_CassetteMustBeAnOrdinaryFile: a cassette at /dev/zero or a
// FIFO is refused at once with a message, instead of growing the plugin
// without bound or hanging it.
func TestAbuse_R6_CassetteMustBeAnOrdinaryFile(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/dev/zero", fifo} {
		_, err := LoadCassette(p, false)
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("LoadCassette(%s) = %v, want a not-a-regular-file error", p, err)
		}
	}
}
