package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox"
)

// The supervisor and the init stage talk over a SOCK_SEQPACKET socketpair:
// one JSON message per packet, with file descriptors attached as
// SCM_RIGHTS. Packets keep message boundaries, so a descriptor always
// arrives with the message that explains it.

const maxMessage = 1 << 20

// Message operations.
const (
	opConfig    = "config"    // supervisor → init: initConfig, first message
	opListeners = "listeners" // init → supervisor: listener fds, in Names order
	opStarted   = "started"   // init → supervisor: a process (ID) is running
	opExited    = "exited"    // init → supervisor: a process (ID) exited
	opError     = "error"     // init → supervisor: setup or spawn failed
	opExec      = "exec"      // supervisor → init: run a process; fds 0,1,2 attached
)

// message is the one envelope for every operation.
type message struct {
	Op     string      `json:"op"`
	ID     int         `json:"id,omitempty"`
	Config *initConfig `json:"config,omitempty"`
	Names  []string    `json:"names,omitempty"`
	Ports  []int       `json:"ports,omitempty"`
	Argv   []string    `json:"argv,omitempty"`
	Env    []string    `json:"env,omitempty"`
	TTY    bool        `json:"tty,omitempty"`
	Pid    int         `json:"pid,omitempty"`
	Code   int         `json:"code,omitempty"`
	Signal string      `json:"signal,omitempty"`
	Error  string      `json:"error,omitempty"`
}

// initConfig is everything the init stage needs. It crosses the socket, never
// the environment, so nothing about the sandbox shows in /proc/1/environ.
type initConfig struct {
	Name      string         `json:"name"`
	Rootfs    string         `json:"rootfs"`    // host path of an empty directory
	Workspace string         `json:"workspace"` // host path
	Policy    *policy.Policy `json:"policy"`
	Listeners []string       `json:"listeners"`
	Argv      []string       `json:"argv"`
	Env       []string       `json:"env"`
	// Protected are workspace-relative paths that exist on the host (the
	// supervisor created placeholders for missing ones).
	Protected []string `json:"protected"`
	// TmpBytes caps the /tmp and /dev/shm tmpfs.
	TmpBytes int64 `json:"tmp_bytes"`
	// RunAs, when set, is the host uid/gid sandboxed processes run as: a
	// root supervisor runs the agent as the workspace's owner rather than
	// as root.
	RunAs *[2]int `json:"run_as,omitempty"`
	// Binary is the host path of the nemoclave binary bound at BinaryPath.
	Binary string `json:"binary,omitempty"`
	// LogMaxBytes caps agent.log; the stage rotates it to agent.log.1
	// (replacing the previous one) when a write would pass the cap.
	LogMaxBytes int64 `json:"log_max_bytes,omitempty"`
	// Stdin is the agent's standard input: "" (/dev/null), "pipe" or
	// "tty" (sandbox.StdinMode). For pipe and tty the started message
	// carries the input side to the supervisor.
	Stdin string `json:"stdin,omitempty"`
	// Files are copied read-only into the root tmpfs below
	// sandbox.FilesDir (sandbox.Spec.Files). The init stage reads each
	// from its host source (a packet could not carry a CA bundle of the
	// host's size) and checks its hash.
	Files []sandbox.File `json:"files,omitempty"`
}

// send writes one message with optional descriptors.
func send(fd int, m message, files ...int) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s message: %w", m.Op, err)
	}
	if len(b) > maxMessage {
		return fmt.Errorf("%s message is %d bytes, over the %d limit", m.Op, len(b), maxMessage)
	}
	var oob []byte
	if len(files) > 0 {
		oob = unix.UnixRights(files...)
	}
	for {
		err = unix.Sendmsg(fd, b, oob, nil, 0)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("send %s message: %w", m.Op, err)
	}
	return nil
}

// errClosed means the other side is gone.
var errClosed = errors.New("control socket closed")

// recv reads one message and the descriptors that came with it. The caller
// owns the returned files.
func recv(fd int) (message, []*os.File, error) {
	// Learn the packet's length first (MSG_PEEK|MSG_TRUNC returns the
	// whole length of a unix packet) and read it into a buffer of that
	// size: a maxMessage buffer per call cost the supervisor 1 MiB of
	// allocation and zeroing for every message (29 % of its CPU in the
	// 50-concurrent bench), and held 1 MiB per running sandbox while
	// blocked here. Each socket has one reader at a time, so the packet
	// peeked is the packet read.
	var n, oobn int
	var err error
	for {
		n, _, _, _, err = unix.Recvmsg(fd, nil, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return message{}, nil, fmt.Errorf("receive: %w", err)
	}
	buf := make([]byte, max(1, min(n, maxMessage)))
	oob := make([]byte, unix.CmsgSpace(16*4))
	for {
		n, oobn, _, _, err = unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return message{}, nil, fmt.Errorf("receive: %w", err)
	}
	if n == 0 && oobn == 0 {
		return message{}, nil, errClosed
	}
	var files []*os.File
	if oobn > 0 {
		scms, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return message{}, nil, fmt.Errorf("parse control message: %w", err)
		}
		for _, scm := range scms {
			fds, err := unix.ParseUnixRights(&scm)
			if err != nil {
				continue
			}
			for _, f := range fds {
				files = append(files, os.NewFile(uintptr(f), "sandbox-fd"))
			}
		}
	}
	var m message
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		closeAll(files)
		return message{}, nil, fmt.Errorf("decode control message: %w", err)
	}
	return m, files, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}
