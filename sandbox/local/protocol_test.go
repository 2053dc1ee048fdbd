package local

import (
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRecvSizesItsBuffer: recv reads each packet whole into a buffer of the
// packet's own size (peeked first): small and near-limit messages, messages
// carrying descriptors, and the peer closing. (The socket's send buffer,
// about 200 KiB by default, is what bounds a packet in practice; send
// refuses anything over maxMessage before that.)
func TestRecvSizesItsBuffer(t *testing.T) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := pair[0], pair[1]
	defer unix.Close(b)

	if err := send(a, message{Op: opStarted, ID: 7, Pid: 42}); err != nil {
		t.Fatal(err)
	}
	m, files, err := recv(b)
	if err != nil || m.Op != opStarted || m.ID != 7 || m.Pid != 42 || len(files) != 0 {
		t.Fatalf("small message: %+v %v %v", m, files, err)
	}

	big := strings.Repeat("x", 150<<10)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := send(a, message{Op: opError, Error: big}, int(r.Fd()), int(w.Fd())); err != nil {
		t.Fatal(err)
	}
	m, files, err = recv(b)
	if err != nil || m.Op != opError || m.Error != big || len(files) != 2 {
		t.Fatalf("150 KiB message with two descriptors: op %q, %d bytes, %d files, %v", m.Op, len(m.Error), len(files), err)
	}
	closeAll(files)

	// The next message reads cleanly after a large one.
	if err := send(a, message{Op: opExited, ID: 3, Code: 1}); err != nil {
		t.Fatal(err)
	}
	if m, _, err := recv(b); err != nil || m.Op != opExited || m.ID != 3 || m.Code != 1 {
		t.Fatalf("after a large message: %+v %v", m, err)
	}

	unix.Close(a)
	if _, _, err := recv(b); !errors.Is(err, errClosed) {
		t.Fatalf("peer closed: %v, want errClosed", err)
	}
}
