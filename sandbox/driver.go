package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"time"

	"github.com/nemoclave/nemoclave/policy"
)

// Driver creates and runs sandboxes. The runtime in host/ talks only to this
// interface, so the local driver and the Kubernetes driver are
// interchangeable. Every method is safe for concurrent use.
type Driver interface {
	// Create validates the spec and records the sandbox. It starts nothing:
	// a sandbox that fails validation never leaves a process behind.
	Create(ctx context.Context, spec Spec) (Info, error)
	// Start launches the agent and returns the gateway listeners created
	// inside the sandbox's network, keyed by ListenerSpec.Name. The caller
	// serves them; a connection's sandbox is known by the listener it
	// arrived on.
	Start(ctx context.Context, name string) (*Started, error)
	// Exec runs an extra command inside a running sandbox, under the same
	// restrictions as the agent.
	Exec(ctx context.Context, name string, req ExecRequest) (Process, error)
	// Attach runs a command inside a running sandbox on a new pseudo
	// terminal and returns the terminal's controlling side.
	Attach(ctx context.Context, name string, req AttachRequest) (Terminal, error)
	// Console returns the input side of the agent's own standard input,
	// for a sandbox created with Spec.Stdin set. The agent's output stays
	// where it always is (Logs); writing is typing into the agent.
	Console(ctx context.Context, name string) (Console, error)
	// Logs returns the agent's combined stdout and stderr so far.
	Logs(ctx context.Context, name string) (io.ReadCloser, error)
	// Stop asks the agent to exit (SIGTERM) and kills the whole sandbox
	// process tree once grace has passed.
	Stop(ctx context.Context, name string, grace time.Duration) error
	// Delete kills everything the sandbox runs and removes its state.
	Delete(ctx context.Context, name string) error
	// List reports every sandbox the driver knows about, including ones
	// created by an earlier run of the supervisor.
	List(ctx context.Context) ([]Info, error)
	// UpdatePolicy records a new policy revision for a sandbox (hot
	// reload). The network part is the gateway's to enforce on new
	// connections; the filesystem, process and Landlock parts of a running
	// sandbox never change (Landlock cannot be widened), so they take
	// effect only when the sandbox is created again.
	UpdatePolicy(ctx context.Context, name string, p *policy.Policy) error
	// Status reports one sandbox.
	Status(ctx context.Context, name string) (Info, error)
	// Wait blocks until the sandbox's agent has exited and returns its
	// final Info.
	Wait(ctx context.Context, name string) (Info, error)
}

// Spec describes one sandbox. Everything the agent can touch is derived from
// it; nothing is inherited from the supervisor's environment.
type Spec struct {
	// Name identifies the sandbox: lower-case letters, digits and '-', at
	// most 48 characters. It names the state directory and the cgroup.
	Name string `json:"name"`
	// Command is the agent's argv; Command[0] is resolved on the sandbox's
	// PATH, inside the sandbox's view of the filesystem.
	Command []string `json:"command"`
	// Env is added to the sandbox's minimal environment. Credentials never
	// belong here: the driver refuses names that look like secrets
	// (*_API_KEY, *_TOKEN, *SECRET*, *PASSWORD*), because the gateway injects
	// credentials and the agent must never see one.
	Env map[string]string `json:"env,omitempty"`
	// Workspace is the host directory mounted at /workspace. It is writable
	// only when the policy lists /workspace in filesystem.read_write.
	Workspace string `json:"workspace"`
	// Policy is the effective policy. A nil or invalid policy refuses to
	// start; there is no implicit default.
	Policy *policy.Policy `json:"policy"`
	// Resources bounds memory, processes and CPU.
	Resources Resources `json:"resources"`
	// Listeners are the gateway listeners to create inside the sandbox's
	// network namespace.
	Listeners []ListenerSpec `json:"listeners,omitempty"`
	// Timeout kills the whole sandbox when it has run this long. Zero means
	// no timeout.
	Timeout time.Duration `json:"timeout,omitempty"`
	// DriverConfig is the sandbox's driver-specific settings (a
	// blueprint's kubernetes {} block) as JSON. It is opaque here: only the
	// driver it is meant for decodes and validates it (as Nomad's
	// DecodeDriverConfig does), so a new driver setting needs no change to
	// this generic Spec, and a driver that takes no settings refuses a spec
	// that carries some.
	DriverConfig json.RawMessage `json:"driver_config,omitempty"`
	// Stdin says what the agent's standard input is: nothing (/dev/null),
	// a pipe, or a terminal inside the sandbox (Console writes to both).
	Stdin StdinMode `json:"stdin,omitempty"`
	// Files are small files the driver places inside the sandbox,
	// read-only, at fixed paths below FilesDir (the gateway's CA bundle).
	// They never come from a host path the sandbox would have to see, so a
	// file kept in the nemoclave home reaches the agent without exposing
	// the home, wherever it is (under /tmp too, which the sandbox replaces).
	// Each is kept by reference: the host file the driver copies from and
	// the hash of its content, so a record that stores the spec stores no
	// file bytes.
	Files []File `json:"files,omitempty"`
}

// FilesDir is the sandbox directory that holds Spec.Files.
const FilesDir = "/opt/nemoclave/etc"

// CABundlePath is where every sandbox finds the CA bundle that trusts the
// egress gateway; SSL_CERT_FILE and its kin point here.
const CABundlePath = FilesDir + "/ca-bundle.pem"

// MaxFilesBytes bounds the total size of a spec's Files.
const MaxFilesBytes = 2 << 20

// File is one entry of Spec.Files: a host file the driver copies to Path.
type File struct {
	// Path is the absolute sandbox path, directly below FilesDir.
	Path string `json:"path"`
	// Source is the absolute host path of the content, readable by the
	// driver (the runtime's run/<sandbox>/ca-bundle.pem).
	Source string `json:"source"`
	// SHA256 is the hex SHA-256 of Source's content when the spec was
	// made; ReadFile refuses a source that changed since.
	SHA256 string `json:"sha256"`
	// Size is the content's length in bytes, for CheckFiles' bound.
	Size int64 `json:"size"`
}

// NewFile makes the entry placing at path the host file source, whose
// content the caller has just written (or read) as content.
func NewFile(path, source string, content []byte) File {
	sum := sha256.Sum256(content)
	return File{Path: path, Source: source, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content))}
}

// ReadFile reads f's content from its source and checks it against the
// hash the spec carries: a source replaced after the spec was made is
// refused rather than shipped into the sandbox.
func ReadFile(f File) ([]byte, error) {
	b, err := os.ReadFile(f.Source)
	if err != nil {
		return nil, fmt.Errorf("sandbox file %s: %w", f.Path, err)
	}
	return b, VerifyFile(f, b)
}

// VerifyFile checks content read from f.Source against f's hash.
func VerifyFile(f File, content []byte) error {
	sum := sha256.Sum256(content)
	if hex.EncodeToString(sum[:]) != f.SHA256 {
		return fmt.Errorf("sandbox file %s: its source %s changed after the sandbox was created (SHA-256 differs); run the sandbox again to pick up the new content", f.Path, f.Source)
	}
	return nil
}

// CheckFiles refuses files outside FilesDir, duplicates, entries without
// an absolute source or hash, and oversized sets.
func CheckFiles(files []File) error {
	seen := map[string]bool{}
	var total int64
	for _, f := range files {
		if path.Dir(f.Path) != FilesDir || path.Base(f.Path) == "." || path.Base(f.Path) == ".." || path.Clean(f.Path) != f.Path {
			return fmt.Errorf("sandbox file %q: files the driver places must be directly below %s", f.Path, FilesDir)
		}
		if !path.IsAbs(f.Source) || len(f.SHA256) != 2*sha256.Size || f.Size < 0 {
			return fmt.Errorf("sandbox file %q: needs an absolute source path and its SHA-256 (make it with sandbox.NewFile)", f.Path)
		}
		if seen[f.Path] {
			return fmt.Errorf("sandbox file %q is listed twice", f.Path)
		}
		seen[f.Path] = true
		total += f.Size
	}
	if total > MaxFilesBytes {
		return fmt.Errorf("sandbox files total %d bytes, over the %d-byte limit", total, MaxFilesBytes)
	}
	return nil
}

// StdinMode is what the agent reads as its standard input.
type StdinMode string

// Stdin modes.
const (
	// StdinNull reads /dev/null: the agent sees end of input at once.
	StdinNull StdinMode = ""
	// StdinPipe is a pipe; Console.CloseInput gives the agent EOF.
	StdinPipe StdinMode = "pipe"
	// StdinTTY makes the agent's stdin, stdout and stderr a terminal
	// allocated inside the sandbox: the agent is an interactive program
	// (line editing, Ctrl-C as SIGINT, window size). Its output still goes
	// to the agent log.
	StdinTTY StdinMode = "tty"
)

// Resources are enforced with cgroups. Zero fields mean the driver's default.
type Resources struct {
	CPUs        float64 `json:"cpus,omitempty"`
	MemoryBytes int64   `json:"memory_bytes,omitempty"`
	Pids        int64   `json:"pids,omitempty"`
	// TmpBytes is the size of the sandbox's /tmp (and /dev/shm) tmpfs;
	// zero means the memory limit (tmpfs pages are charged to it anyway).
	TmpBytes int64 `json:"tmp_bytes,omitempty"`
	// WorkspaceBytes bounds the workspace's total size (P11). The
	// kubernetes driver makes it the workspace emptyDir's sizeLimit. The
	// local driver does not mount anything for it: the caller covers the
	// workspace with a sandbox/volume before anything (a gateway tool)
	// opens it, and the driver refuses to start a sandbox whose workspace
	// is not a mount point, unless AllowUnlimited.
	WorkspaceBytes int64 `json:"workspace_bytes,omitempty"`
	// AllowUnlimited lets the sandbox start when the host cannot apply
	// cgroup limits (no delegated cgroup for an unprivileged supervisor).
	// Off by default: without it such a sandbox refuses to start.
	AllowUnlimited bool `json:"allow_unlimited,omitempty"`
}

// Listener names the driver knows how to advertise to the agent.
const (
	// ListenerEgress becomes HTTP_PROXY, HTTPS_PROXY and ALL_PROXY (and the
	// lower-case forms).
	ListenerEgress = "egress"
	// ListenerInference becomes OPENAI_BASE_URL (…/v1) and ANTHROPIC_BASE_URL.
	ListenerInference = "inference"
	// ListenerAgentAPI becomes NEMOCLAVE_API_URL (…/v1) and
	// NEMOCLAVE_MCP_URL (…/mcp).
	ListenerAgentAPI = "agentapi"
)

// ListenerSpec asks for one TCP listener on 127.0.0.1 inside the sandbox.
type ListenerSpec struct {
	// Name is one of the Listener* constants, which decides the environment
	// variables pointing at it.
	Name string `json:"name"`
}

// Started is what Start hands back to the caller.
type Started struct {
	Info Info
	// Listeners by ListenerSpec.Name. The caller owns them and closes them.
	Listeners map[string]net.Listener
}

// State is a sandbox's lifecycle state.
type State string

// Sandbox states.
const (
	StateCreated State = "created"
	StateRunning State = "running"
	StateExited  State = "exited"
	// StateLost means the sandbox was running under a supervisor that is
	// gone; its processes were killed with it (parent-death signal) and its
	// agent's exit status was never recorded.
	StateLost State = "lost"
)

// Info reports a sandbox.
type Info struct {
	Name      string    `json:"name"`
	Driver    string    `json:"driver"`
	State     State     `json:"state"`
	CreatedAt time.Time `json:"created_at"`
	StartedAt time.Time `json:"started_at,omitzero"`
	ExitedAt  time.Time `json:"exited_at,omitzero"`
	// ExitCode is the agent's exit status; -1 when it was killed by a
	// signal (see Signal) or is unknown.
	ExitCode int `json:"exit_code"`
	// Signal names the signal that killed the agent, if any.
	Signal string `json:"signal,omitempty"`
	// Reason says why the sandbox stopped when the agent did not simply
	// exit: "timeout", "deleted", "stopped", "start failed: …".
	Reason string `json:"reason,omitempty"`
	// Ports of the gateway listeners inside the sandbox, by name.
	Ports map[string]int `json:"ports,omitempty"`
}

// ExecRequest runs one extra process in a running sandbox.
type ExecRequest struct {
	Command []string
	Env     map[string]string
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
}

// Process is a command running inside a sandbox.
type Process interface {
	// Wait returns the exit code (-1 if killed by a signal). It returns an
	// error when the sandbox went away before the process reported.
	Wait(ctx context.Context) (int, error)
}

// AttachRequest runs a command on a new pseudo terminal.
type AttachRequest struct {
	Command []string
	Env     map[string]string
	Rows    uint16
	Cols    uint16
}

// Terminal is the controlling side of an attached pseudo terminal. Reading
// returns the command's output; writing is its keyboard input.
type Terminal interface {
	io.ReadWriteCloser
	Resize(rows, cols uint16) error
	Process
}

// Console is the keyboard of an agent started with Spec.Stdin set. Several
// consoles of one agent may be open at once; closing one leaves the agent
// running.
type Console interface {
	// Write types into the agent: raw bytes to its terminal (Ctrl-C is
	// 0x03 and the terminal turns it into SIGINT) or to its stdin pipe.
	io.Writer
	// Resize sets the terminal's window size (SIGWINCH to the agent); a
	// no-op for a pipe.
	Resize(rows, cols uint16) error
	// CloseInput ends the agent's input: the pipe is closed, or the
	// terminal is sent its end-of-file character.
	CloseInput() error
	// TTY reports whether the agent is on a terminal.
	TTY() bool
	// Close releases this console; the agent keeps running.
	Close() error
}

// Errors a caller can test for with errors.Is.
var (
	ErrNotFound   = errors.New("sandbox not found")
	ErrExists     = errors.New("sandbox already exists")
	ErrNotRunning = errors.New("sandbox is not running")
	// ErrNoConsole means the agent was started without Spec.Stdin.
	ErrNoConsole = errors.New("the agent was started without an input (its stdin is /dev/null)")
)
