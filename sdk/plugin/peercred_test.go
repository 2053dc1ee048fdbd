//go:build linux

package plugin

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// peerDialEnv makes the test binary a client that dials the socket it
// names and waits for the server to close (TestPeerCred_OtherUID).
const peerDialEnv = "NEMOCLAVE_TEST_PEERCRED_DIAL"

func TestMain(m *testing.M) {
	if path := os.Getenv(peerDialEnv); path != "" {
		c, err := net.Dial("unix", path)
		if err != nil {
			os.Exit(3)
		}
		var b [1]byte
		_, _ = c.Read(b[:])
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// socketPair listens in a private dir and returns both ends of one
// connection made by this process.
func socketPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	dir, err := os.MkdirTemp("", "pc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestPeerCred_SameProcess(t *testing.T) {
	client, server := socketPair(t)
	self := os.Getpid()
	p := &PeerCred{Side: "host", Pid: func() int { return self }}
	_, info, err := p.ClientHandshake(context.Background(), "", client)
	if err != nil {
		t.Fatal(err)
	}
	pi := info.(PeerCredInfo)
	if pi.Pid != self || pi.UID != os.Geteuid() || pi.AuthType() != "peercred" {
		t.Errorf("info = %+v, want pid %d uid %d", pi, self, os.Geteuid())
	}
	if _, _, err := (&PeerCred{Side: "plugin"}).ServerHandshake(server); err != nil {
		t.Errorf("server side, same uid: %v", err)
	}
}

// The listening process must be the launched plugin or descend from it:
// another process of the same uid is refused.
func TestPeerCred_OtherProcessRefused(t *testing.T) {
	client, _ := socketPair(t)
	other := exec.Command("sleep", "30")
	if err := other.Start(); err != nil {
		t.Skipf("no sleep binary: %v", err)
	}
	t.Cleanup(func() { _ = other.Process.Kill(); _ = other.Wait() })
	p := &PeerCred{Side: "host", Pid: func() int { return other.Process.Pid }}
	_, _, err := p.ClientHandshake(context.Background(), "", client)
	if err == nil || !strings.Contains(err.Error(), "not the launched plugin") {
		t.Fatalf("err = %v, want a refusal naming the launched plugin", err)
	}
	// Our child descends from us: the check walks parent links.
	if !descendsFrom(other.Process.Pid, os.Getpid()) {
		t.Errorf("pid %d does not descend from %d", other.Process.Pid, os.Getpid())
	}
}

// A launch whose process is not known (yet) refuses rather than fall back
// to the uid alone.
func TestPeerCred_UnknownPidRefused(t *testing.T) {
	client, _ := socketPair(t)
	p := &PeerCred{Side: "host", Pid: func() int { return -1 }}
	if _, _, err := p.ClientHandshake(context.Background(), "", client); err == nil || !strings.Contains(err.Error(), "not known") {
		t.Fatalf("err = %v, want a refusal", err)
	}
}

func TestPeerCred_NotUnixRefused(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, _, err := (&PeerCred{Side: "host"}).ClientHandshake(context.Background(), "", a); err == nil || !strings.Contains(err.Error(), "not a unix socket") {
		t.Fatalf("err = %v, want a refusal of a non-unix connection", err)
	}
}

// A process of another uid that reaches the socket is refused (needs root
// to run the dialing process as nobody).
func TestPeerCred_OtherUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a process as another uid")
	}
	dir, err := os.MkdirTemp("", "pc")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The dir and the test binary must be reachable by nobody for this
	// test (a private dir is exactly what keeps it out in real use).
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_ = os.Chmod(filepath.Join(dir, "s"), 0o777)
	// go test's build dir is private: run a copy from the shared dir.
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	exe = filepath.Join(dir, "dialer")
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = []string{peerDialEnv + "=" + filepath.Join(dir, "s")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start the test binary as nobody: %v", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	ln.(*net.UnixListener).SetDeadline(time.Now().Add(20 * time.Second))
	conn, err := ln.Accept()
	if err != nil {
		t.Skipf("the process as nobody did not connect (test binary not readable by nobody?): %v", err)
	}
	defer conn.Close()
	_, _, err = (&PeerCred{Side: "plugin"}).ServerHandshake(conn)
	if err == nil || !strings.Contains(err.Error(), "from uid 65534") {
		t.Fatalf("err = %v, want a refusal of uid 65534", err)
	}
}
