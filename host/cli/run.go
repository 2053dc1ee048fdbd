package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/spf13/cobra"

	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

func newRunCmd(g *Globals) *cobra.Command {
	var f blueprintFlags
	var detach, replace, thisReplicaOnly bool
	var attachAgent string
	cmd := &cobra.Command{
		Use:   "run <blueprint file or directory>",
		Short: "Run a blueprint: plugins, gateway, sandbox and agent",
		Long: `Evaluate the blueprint, launch its plugins, configure the gateway, create
each agent's sandbox and start the agent. Attached (the default) the agent's
output is your terminal until it exits, and your input is its input: on a
terminal the agent gets a terminal of its own inside the sandbox (window
size, Ctrl-C goes to the agent), and Ctrl-P Ctrl-Q detaches, leaving it
running as with -d; a pipe is copied to the agent's stdin, and its end is
the agent's end of input. Stopping the run (Ctrl-C while the sandbox starts,
or SIGTERM) stops the agent and removes what the run created. With -d the
run continues in the daemon: watch it with 'nemoclave sandbox list' and
'nemoclave logs <sandbox> --tail', type into it with
'nemoclave <sandbox> connect'.

Re-running a blueprint replaces its own sandboxes when they no longer run
(exited, failed, lost); a running one is replaced only with --replace. A
sandbox of another blueprint is never deleted for you. A failed start
leaves nothing behind.

With several agents, an attached run's input goes to the first agent, or to
the one --attach-agent names; the run says which, and the others read no
input (run with -d to type into each with 'nemoclave <sandbox> connect').

Signed in to a remote daemon (nemoclave login --server URL), the
blueprint's directory and var files are uploaded to it (at most 1 MiB per
file, 8 MiB in all) and evaluated there, confined to the upload: see
docs/operators.md, "Remote runs".

On a daemon whose replicas share their state (Kubernetes with PostgreSQL),
a run of a driver = "kubernetes" blueprint keeps the blueprint the same way
in the state, so that every replica serves its sandboxes; a blueprint that
reads files outside its directory or names a plugin by path is refused
there unless --this-replica-only (see docs/deploy/kubernetes.md).`,
		Example: `  nemoclave run examples/quickstart/blueprint.hcl
  nemoclave run examples/quickstart/blueprint.hcl --var prompt=   # a chat
  printf 'What files are in my workspace?\n' | nemoclave run examples/quickstart/blueprint.hcl --var prompt=
  nemoclave run ./blueprints/assistant -d --var model=llama3.1
  nemoclave run ./blueprints/team --attach-agent reviewer`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			remote, err := daemon.LoadLogin(g.Home)
			if err != nil {
				return err
			}
			path := args[0]
			var upload *pb.Upload
			var uploadVars []string
			if remote != nil {
				// A remote daemon cannot read this machine's files: the
				// blueprint's directory travels with the run. A path
				// that exists only on the daemon's host is read there,
				// from a directory its admin opened for runs.
				if _, err := os.Stat(path); err == nil {
					if upload, uploadVars, err = daemon.PackUpload(path, f.varFiles); err != nil {
						return err
					}
					path = ""
				} else if !filepath.IsAbs(path) {
					return fmt.Errorf("blueprint %s: %w; give a blueprint file or directory on this machine (it is uploaded to %s), or the absolute path of one on the daemon's host (under the run_dirs of its access.hcl)", path, err, remote.Server)
				}
			} else {
				if path, err = filepath.Abs(path); err != nil {
					return err
				}
				if _, err := os.Stat(path); err != nil {
					return fmt.Errorf("blueprint %s: %w", args[0], err)
				}
			}
			req := daemon.RunRequest{Path: path, Vars: map[string]string{}, Detach: detach, Replace: replace, VarEnv: map[string]string{},
				ThisReplicaOnly: thisReplicaOnly,
				// The daemon was started with another environment: a
				// debug plugin exported in this shell reaches it per run.
				ReattachPlugins: os.Getenv(plugin.ReattachEnv)}
			for _, kv := range f.vars {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--var %q: write --var name=value", kv)
				}
				req.Vars[k] = v
			}
			if upload != nil {
				req.Upload, req.VarFiles = upload, uploadVars
				n := 0
				for _, uf := range upload.Files {
					n += len(uf.Data)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "uploading %s (%d entries, %d KiB) to %s\n", upload.Name, len(upload.Files), (n+1023)/1024, remote.Server)
			}
			for _, vf := range f.varFiles {
				if upload != nil {
					break
				}
				if remote != nil {
					if !filepath.IsAbs(vf) {
						return fmt.Errorf("--var-file %s: the daemon at %s reads it on its own host; give the absolute path there", vf, remote.Server)
					}
					req.VarFiles = append(req.VarFiles, vf)
					continue
				}
				abs, err := filepath.Abs(vf)
				if err != nil {
					return err
				}
				req.VarFiles = append(req.VarFiles, abs)
			}
			for _, kv := range os.Environ() {
				if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "NEMOCLAVE_VAR_") {
					req.VarEnv[k] = v
				}
			}
			c, err := connect(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			// The agent's output reaches the terminal escaped (F20), like
			// `nemoclave logs`.
			out := newEscapeWriter(cmd.OutOrStdout())
			defer out.Flush()
			ev := &runPrinter{out: out, progress: cmd.ErrOrStderr(), tty: isTerminal(cmd.ErrOrStderr())}
			defer ev.stopSpinner()
			var sess *attachedRun
			if attachAgent != "" && detach {
				return fmt.Errorf("--attach-agent %s is for attached runs: with -d every agent gets a terminal; type into one with `nemoclave <sandbox> connect`", attachAgent)
			}
			req.AttachAgent = attachAgent
			if !detach {
				req.Stdin = stdinMode()
			}
			if req.Stdin == "tty" {
				req.Rows, req.Cols = terminalSize()
				restore, err := rawTerminal()
				if err != nil {
					return fmt.Errorf("%w; run with -d and `nemoclave <sandbox> connect`, or pipe the input", err)
				}
				defer restore()
				tw := newTerminalWriter(cmd.OutOrStdout())
				defer tw.Flush()
				ev.out, ev.progress = tw, crlfWriter{cmd.ErrOrStderr()}
			}
			if req.Stdin != "" {
				sess = &attachedRun{c: c, ctx: ctx, cancel: cancel, tty: req.Stdin == "tty", progress: ev.progress}
				sess.input = readInput(os.Stdin, sess.tty, sess.started.Load, sess.interrupt)
				ev.attach = sess.attach
			}
			err = c.Run(ctx, req, ev)
			ev.stopSpinner()
			if sess != nil && sess.detached.Load() {
				fmt.Fprintf(ev.progress, "detached from %s; it keeps running: type into it again with `nemoclave %s connect`, stop it with `nemoclave sandbox delete %s`\n", sess.sandbox, sess.sandbox, sess.sandbox)
				return nil
			}
			if err != nil {
				if ctx.Err() != nil {
					fmt.Fprintln(ev.progress, "interrupted: the run was stopped and cleaned up")
					return &ExitError{Code: 130}
				}
				if ev.stepFailed {
					// The failed step already showed the diagnostic;
					// print each diagnostic once.
					return &ExitError{Code: 1}
				}
				return err
			}
			if detach {
				fmt.Fprintf(cmd.ErrOrStderr(), "running in the background; see `nemoclave sandbox list` and `nemoclave logs <sandbox> --tail`\n")
				return nil
			}
			if ev.failed != 0 {
				return &ExitError{Code: ev.failed}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "start and return; the run continues in the daemon")
	cmd.Flags().BoolVar(&replace, "replace", false, "delete this blueprint's sandboxes first even when they are running")
	cmd.Flags().BoolVar(&thisReplicaOnly, "this-replica-only", false, "on a daemon whose replicas share their state (Kubernetes, PostgreSQL): start a sandbox whose blueprint the other replicas cannot evaluate, served by this replica alone (its agent fails the calls the gateway Service sends elsewhere)")
	cmd.Flags().StringVar(&attachAgent, "attach-agent", "", "the agent (or its sandbox) that reads an attached run's input when the blueprint has several (default: the first)")
	// Terraform's spelling (-var name=value) works as for validate and plan.
	allowSingleDash(cmd, "var", "var-file", "preset-dir", "replace")
	return cmd
}

// runPrinter shows a run's steps on stderr and the agent's output on
// stdout, so `nemoclave run ... > answer.txt` captures only the answer.
type runPrinter struct {
	mu       sync.Mutex
	out      io.Writer
	progress io.Writer
	failed   int
	// stepFailed is set once a failed step printed its diagnostic.
	stepFailed bool
	// attach, when set, connects the run's input to the agent that reads it.
	attach func(sandbox string, tty bool)
	// tty: progress reaches a terminal, so a running step shows a spinner
	// with what it waits for; elsewhere each step is one line when it ends.
	tty  bool
	spin *spinner
}

// stopSpinner clears the running step's spinner, if any. Callers hold mu
// or own the printer alone.
func (p *runPrinter) stopSpinner() {
	if p.spin != nil {
		p.spin.Stop()
		p.spin = nil
	}
}

func (p *runPrinter) Console(sandbox string, tty bool) {
	p.mu.Lock()
	p.stopSpinner()
	p.mu.Unlock()
	if p.attach != nil {
		go p.attach(sandbox, tty)
	}
}

func (p *runPrinter) Step(s daemon.Step) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch s.Phase {
	case "start":
		p.stopSpinner()
		p.spin = newSpinner(p.progress, p.tty, s.Name)
	case "progress":
		// What the step waits for now: a pod's phase and last event.
		if p.spin != nil {
			p.spin.Set(s.Name + " — " + s.Detail)
		}
	case "done":
		p.stopSpinner()
		detail := ""
		if s.Detail != "" {
			detail = " — " + s.Detail
		}
		fmt.Fprintf(p.progress, "✓ %s (%d ms)%s\n", s.Name, s.DurationMS, detail)
	case "failed":
		p.stopSpinner()
		fmt.Fprintf(p.progress, "✗ %s failed after %d ms:\n%s\n", s.Name, s.DurationMS, indent(s.Detail))
		p.stepFailed = true
	}
}

func (p *runPrinter) Output(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// The agent's output takes the screen from a spinner.
	p.stopSpinner()
	p.out.Write(b)
}

func (p *runPrinter) Exit(sandbox string, code int, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopSpinner()
	msg := fmt.Sprintf("agent in sandbox %s exited with code %d", sandbox, code)
	if reason != "" {
		msg += " (" + reason + ")"
	}
	fmt.Fprintln(p.progress, msg)
	if code != 0 && p.failed == 0 {
		p.failed = code
		if code < 0 {
			p.failed = 1
		}
	}
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// attachedRun forwards the CLI's input to the agent of an attached run.
type attachedRun struct {
	c        *daemon.Client
	ctx      context.Context
	cancel   context.CancelFunc
	tty      bool
	progress io.Writer
	input    <-chan []byte

	started  atomic.Bool
	detached atomic.Bool
	sandbox  string
}

// interrupt is a Ctrl-C typed before the agent runs: stop the run.
func (a *attachedRun) interrupt() { a.cancel() }

func (a *attachedRun) attach(sandbox string, tty bool) {
	a.sandbox = sandbox
	s, done, err := a.c.Attach(a.ctx, daemon.AttachRequest{Sandbox: sandbox}, runAttachEvents{a})
	if err != nil {
		if a.ctx.Err() == nil {
			fmt.Fprintf(a.progress, "nemoclave: cannot forward input to the agent: %v\n", err)
		}
		return
	}
	a.started.Store(true)
	if a.tty && tty {
		if r, c := terminalSize(); r > 0 && c > 0 {
			_ = s.Resize(r, c)
		}
		followWindow(a.ctx, s.Resize)
	}
	go func() { <-done; s.Close() }()
	pumpInput(a.input, s, a.tty, func() {
		if err := s.Detach(); err != nil {
			fmt.Fprintf(a.progress, "nemoclave: cannot detach: %v\n", err)
		}
	})
}

type runAttachEvents struct{ a *attachedRun }

func (runAttachEvents) Ready(bool)       {}
func (runAttachEvents) Output([]byte)    {}
func (runAttachEvents) Exit(int, string) {}
func (e runAttachEvents) Detached() {
	// The daemon recorded the detach: ending the run's stream now leaves
	// the agent running.
	e.a.detached.Store(true)
	e.a.cancel()
}
