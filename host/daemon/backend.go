package daemon

import (
	"context"
	"io"

	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
)

// RunRequest asks the daemon to run a blueprint.
type RunRequest struct {
	Path     string
	Vars     map[string]string
	VarFiles []string
	VarEnv   map[string]string
	Detach   bool
	// Replace deletes a running sandbox of the same blueprint first.
	Replace bool
	// Stdin is what an attached run forwards to its attached agent (see
	// AttachAgent): "tty", "pipe" or "" (sandbox.StdinMode); Rows and Cols
	// size the terminal.
	Stdin      string
	Rows, Cols uint16
	// ReattachPlugins is the CLI's NEMOCLAVE_REATTACH_PLUGINS: debug
	// plugins this run attaches to instead of launching them.
	ReattachPlugins string
	// AttachAgent is the agent of an attached run that reads its input
	// (empty: the first).
	AttachAgent string
	// Upload, from a CLI whose daemon cannot read its files (a remote
	// one), is the blueprint's directory tree; Path is then empty and
	// VarFiles are relative to the upload (see PackUpload).
	Upload *pb.Upload
	// Root is set by the daemon for an upload: the directory it was stored
	// in, to which the evaluation is confined (blueprints.Options.Root).
	Root string
	// HandRun is set by the daemon's API for a run a user asked for
	// (`nemoclave run`), as opposed to one the AgentEnvironment
	// controller makes: with shared state and the kubernetes driver its
	// blueprint is stored for the other replicas to serve its sandboxes.
	HandRun bool
	// ThisReplicaOnly (`run --this-replica-only`) starts a hand run whose
	// blueprint the other replicas cannot evaluate, served by this
	// replica only, instead of refusing it.
	ThisReplicaOnly bool
}

// Step is a progress report of a run.
type Step struct {
	Name string
	// "start", "progress" (Detail says what the step waits for now, such
	// as a pod's phase and last event), "done" or "failed". A client that
	// does not know a phase ignores it.
	Phase      string
	DurationMS int64
	Detail     string
}

// RunEvents receives a run's progress, agent output and exit.
type RunEvents interface {
	Step(Step)
	Output([]byte)
	Exit(sandbox string, code int, reason string)
	// Console says the sandbox's agent reads the run's input now; the CLI
	// attaches to it (Attach without output) to type.
	Console(sandbox string, tty bool)
}

// AttachRequest attaches to a running agent's console.
type AttachRequest struct {
	Sandbox    string
	Rows, Cols uint16
	// Output streams the agent's output, starting with the last Tail
	// lines of its log.
	Output bool
	Tail   int
}

// AttachInput is one message from an attached client: input bytes, a
// window size, the end of input, or a detach.
type AttachInput struct {
	Stdin      []byte
	Resize     *[2]uint16
	CloseStdin bool
	Detach     bool
}

// AttachEvents receives what an attach produces.
type AttachEvents interface {
	// Ready is sent once the console is open.
	Ready(tty bool)
	Output([]byte)
	// Detached acknowledges a detach: the agent keeps running.
	Detached()
	// Exit reports the agent's exit; the attach ends.
	Exit(code int, reason string)
}

// ExecRequest runs a command in a sandbox.
type ExecRequest struct {
	Sandbox string
	Command []string
	TTY     bool
	Rows    uint16
	Cols    uint16
	Env     map[string]string
}

// ExecIO carries an exec's streams. Resize delivers terminal size changes.
type ExecIO struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Resize <-chan [2]uint16
}

// LogsRequest selects a log.
type LogsRequest struct {
	Sandbox string
	Source  string
	Follow  bool
	Tail    int
}

// Backend is what the daemon serves; host/runtime implements it. Every
// answer is a message of the API (host/api/daemon.proto), sent as it is.
type Backend interface {
	Run(ctx context.Context, req RunRequest, ev RunEvents) error
	ListSandboxes(ctx context.Context) ([]*pb.Sandbox, error)
	GetSandbox(ctx context.Context, name string) (*pb.Sandbox, error)
	DeleteSandbox(ctx context.Context, name string) (*pb.DeleteSandboxResponse, error)
	Exec(ctx context.Context, req ExecRequest, io ExecIO) (int, error)
	// Attach serves one attached client until the agent exits, the client
	// detaches, or in closes (the client went away: the agent runs on).
	Attach(ctx context.Context, req AttachRequest, in <-chan AttachInput, ev AttachEvents) error
	Logs(ctx context.Context, req LogsRequest, w io.Writer) error
	// GetPolicy answers view "effective" (or ""), "full" or "base".
	GetPolicy(ctx context.Context, sandbox, view string) (*pb.GetPolicyResponse, error)
	SetPolicy(ctx context.Context, sandbox string, policyJSON []byte, addPresets []string) (*pb.SetPolicyResponse, error)
	ListApprovals(ctx context.Context, sandbox string) ([]*pb.Approval, error)
	// WatchApprovals sends the pending list now and after every change
	// until ctx ends.
	WatchApprovals(ctx context.Context, sandbox string, send func([]*pb.Approval) error) error
	AnswerApproval(ctx context.Context, id string, allow bool, scope string) (*pb.ApprovalAnswer, error)
	InferenceStatus(ctx context.Context, sandbox string) (*pb.InferenceStatusResponse, error)
	InferenceSet(ctx context.Context, sandbox, provider, model string) (*pb.InferenceSetResponse, error)
	// Close stops every sandbox and plugin; the daemon is exiting.
	Close(ctx context.Context) error
}

// ActiveCounter is implemented by backends that can say how many sandboxes
// they run; the version handshake restarts only an idle daemon.
type ActiveCounter interface {
	ActiveSandboxes() int
}
