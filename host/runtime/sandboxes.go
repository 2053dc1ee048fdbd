package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/host/state"
	"github.com/nemoclave/nemoclave/sandbox"
)

// view is what `sandbox list` and `sandbox get` show of s: the record,
// with the driver's live state while it knows the sandbox.
func (r *Runtime) view(ctx context.Context, s state.Sandbox) *pb.Sandbox {
	v := &pb.Sandbox{Name: s.Name, Agent: s.Agent, Driver: s.Driver, State: s.State, Reason: s.Reason,
		Blueprint: s.Blueprint, CreatedAt: timestamppb.New(s.CreatedAt)}
	if d, err := daemon.JSONStruct(s.Detail); err == nil {
		v.Detail = d
	} else {
		r.log.Warn("sandbox detail is not a JSON object", "sandbox", s.Name, "err", err)
	}
	if d, ok := r.drivers[s.Driver]; ok {
		if info, err := d.Status(ctx, s.Name); err == nil {
			// The driver knows best while it is alive; a sandbox the daemon
			// already marked lost stays lost.
			if s.State != string(sandbox.StateLost) {
				v.State = string(info.State)
				if info.Reason != "" {
					v.Reason = info.Reason
				}
			}
			if len(info.Ports) > 0 {
				v.Ports = make(map[string]int32, len(info.Ports))
				for k, p := range info.Ports {
					v.Ports[k] = int32(p)
				}
			}
			if info.State == sandbox.StateExited {
				v.ExitCode = proto.Int32(int32(info.ExitCode))
			}
		}
	}
	if v.ExitCode == nil && v.State == string(sandbox.StateExited) {
		v.ExitCode = proto.Int32(int32(s.ExitCode))
	}
	if rev, err := r.db.LatestPolicy(ctx, s.Name); err == nil {
		v.Policy, v.PolicyRevision = rev.Policy.Name, int32(rev.Revision)
	}
	return v
}

func (r *Runtime) ListSandboxes(ctx context.Context) ([]*pb.Sandbox, error) {
	recs, err := r.db.Sandboxes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*pb.Sandbox, 0, len(recs))
	for _, s := range recs {
		out = append(out, r.view(ctx, s))
	}
	return out, nil
}

func (r *Runtime) record(ctx context.Context, name string) (state.Sandbox, error) {
	s, err := r.db.Sandbox(ctx, name)
	if errors.Is(err, state.ErrNotFound) {
		return s, fmt.Errorf("no sandbox named %q (see `nemoclave sandbox list`)", name)
	}
	return s, err
}

func (r *Runtime) GetSandbox(ctx context.Context, name string) (*pb.Sandbox, error) {
	s, err := r.record(ctx, name)
	if err != nil {
		return nil, err
	}
	return r.view(ctx, s), nil
}

// DeleteSandbox stops a sandbox, kills everything it runs (agent, and its
// plugins when no other sandbox of the run uses them) and forgets it,
// its plugin log included. A sandbox an attached run already forgot
// leaves only its plugin log, which this removes.
func (r *Runtime) DeleteSandbox(ctx context.Context, name string) (*pb.DeleteSandboxResponse, error) {
	_, err := r.db.Sandbox(ctx, name)
	if errors.Is(err, state.ErrNotFound) && sandbox.ValidName(name) == nil && r.pluginLog.exists(name) {
		if err := r.pluginLog.remove(name); err != nil {
			return nil, err
		}
		return &pb.DeleteSandboxResponse{Deleted: name}, nil
	}
	if err := r.deleteSandbox(ctx, name); err != nil {
		return nil, err
	}
	if err := r.pluginLog.remove(name); err != nil {
		return nil, err
	}
	return &pb.DeleteSandboxResponse{Deleted: name}, nil
}

// deleteSandbox is DeleteSandbox keeping the plugin log: a run replacing
// a sandbox of its blueprint appends to it.
func (r *Runtime) deleteSandbox(ctx context.Context, name string) error {
	s, err := r.record(ctx, name)
	if err != nil {
		return err
	}
	r.mu.Lock()
	rn := r.runs[name]
	r.mu.Unlock()
	if rn != nil {
		rn.stop(ctx, "deleted")
		return rn.deleteState(ctx)
	}
	if d, ok := r.drivers[s.Driver]; ok {
		if err := d.Delete(ctx, name); err != nil && !errors.Is(err, sandbox.ErrNotFound) {
			return err
		}
	}
	_ = os.RemoveAll(filepath.Join(r.opts.Home, "run", name))
	return r.db.DeleteSandbox(ctx, name)
}

func (r *Runtime) driverOf(ctx context.Context, name string) (sandbox.Driver, error) {
	s, err := r.record(ctx, name)
	if err != nil {
		return nil, err
	}
	d, ok := r.drivers[s.Driver]
	if !ok {
		return nil, fmt.Errorf("sandbox %s uses driver %q, which this daemon does not have", name, s.Driver)
	}
	return d, nil
}

// Exec runs a command in a running sandbox, on a terminal when asked.
func (r *Runtime) Exec(ctx context.Context, req daemon.ExecRequest, eio daemon.ExecIO) (int, error) {
	d, err := r.driverOf(ctx, req.Sandbox)
	if err != nil {
		return -1, err
	}
	if len(req.Command) == 0 {
		req.Command = []string{"/bin/sh"}
	}
	if !req.TTY {
		p, err := d.Exec(ctx, req.Sandbox, sandbox.ExecRequest{Command: req.Command, Env: req.Env, Stdin: eio.Stdin, Stdout: eio.Stdout, Stderr: eio.Stderr})
		if err != nil {
			return -1, err
		}
		return p.Wait(ctx)
	}
	term, err := d.Attach(ctx, req.Sandbox, sandbox.AttachRequest{Command: req.Command, Env: req.Env, Rows: req.Rows, Cols: req.Cols})
	if err != nil {
		return -1, err
	}
	defer term.Close()
	go func() { _, _ = io.Copy(term, eio.Stdin) }()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case sz := <-eio.Resize:
				_ = term.Resize(sz[0], sz[1])
			}
		}
	}()
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(eio.Stdout, term); close(copied) }()
	code, err := term.Wait(ctx)
	select {
	case <-copied:
	case <-time.After(time.Second):
	}
	return code, err
}

// Logs serves `nemoclave logs`: sandbox (the agent's output), gateway
// (inference and egress decisions for the sandbox), plugin (the log of
// the plugins the sandbox's runs used) or audit (egress and agent API
// decisions of the sandbox).
func (r *Runtime) Logs(ctx context.Context, req daemon.LogsRequest, w io.Writer) error {
	if _, err := r.record(ctx, req.Sandbox); err != nil {
		// The plugin log outlives the record of an attached run.
		if req.Source != "plugin" || sandbox.ValidName(req.Sandbox) != nil || !r.pluginLog.exists(req.Sandbox) {
			return err
		}
	}
	switch req.Source {
	case "", "sandbox":
		d, err := r.driverOf(ctx, req.Sandbox)
		if err != nil {
			return err
		}
		return followFile(ctx, func() (io.ReadCloser, error) { return d.Logs(ctx, req.Sandbox) }, w, req.Follow, req.Tail)
	case "gateway":
		p := filepath.Join(r.opts.Home, "logs", req.Sandbox, "gateway.log")
		return followFile(ctx, func() (io.ReadCloser, error) { return openOrEmpty(p) }, w, req.Follow, req.Tail)
	case "plugin":
		return r.pluginLogs(ctx, req, w)
	case "audit":
		return r.auditLogs(ctx, req, w)
	}
	return fmt.Errorf("unknown log source %q: use sandbox, gateway, plugin or audit", req.Source)
}

// auditLogs merges the egress audit files and the agent API audit of one
// sandbox, in file order.
func (r *Runtime) auditLogs(ctx context.Context, req daemon.LogsRequest, w io.Writer) error {
	dir := filepath.Join(r.opts.Home, "audit")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var files []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, "agentapi-") && n != "agentapi-"+req.Sandbox+".jsonl" {
			continue
		}
		files = append(files, filepath.Join(dir, n))
	}
	sort.Strings(files)
	var buf strings.Builder
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		_ = grepJSONLines(fh, req.Sandbox, &buf)
		fh.Close()
	}
	out := []byte(buf.String())
	if req.Tail > 0 {
		out = lastLines(out, req.Tail)
	}
	_, err = w.Write(out)
	return err
}

// ActiveSandboxes counts the sandboxes this daemon runs now (attached or
// detached); the CLI's version handshake restarts only an idle daemon.
func (r *Runtime) ActiveSandboxes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.runs)
}
