package daemon

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The operator recorded for a daemon call is the kernel's account of the
// caller (SO_PEERCRED), not anything the client says.
func TestOperatorFromPeerCredentials(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	cl := credListener{ln}
	defer cl.Close()
	go func() {
		c, err := net.Dial("unix", sock)
		if err == nil {
			defer c.Close()
			var b [1]byte
			_, _ = c.Read(b[:])
		}
	}()
	c, err := cl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := c.RemoteAddr().String()
	if !strings.Contains(got, "uid "+strconv.Itoa(os.Geteuid())+")") && !strings.HasPrefix(got, "uid "+strconv.Itoa(os.Geteuid())) {
		t.Errorf("operator %q does not name uid %d", got, os.Geteuid())
	}
	if !strings.HasSuffix(got, "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("operator %q does not name pid %d", got, os.Getpid())
	}
}
