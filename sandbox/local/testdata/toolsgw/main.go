// Command toolsgw serves one workspace's agent API (the gateway's
// document tools and the real tools-files plugin) on a loopback port, for
// the sandbox/local escape tests. It runs as its own process so the test
// binary, which doubles as the in-sandbox probe, does not link the plugin
// client (whose dependencies open descriptors at start and would show up
// in the probe's F15 check).
//
// Usage: toolsgw <workspace> <filesystem-policy-json> <tools-files> <dataproc-docs>
// It prints {"url","pid","files_pid"} on one line, serves /mcp and
// /ingested (what document_ingest indexed), and exits when stdin closes.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"

	"github.com/nemoclave/nemoclave/gateway/agentapi"
	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/status"
)

type store struct {
	retrieval.NotSupported
	mu   sync.Mutex
	docs []retrieval.Document
}

func (s *store) CreateCollection(context.Context, string, int) (retrieval.Collection, error) {
	return retrieval.Collection{}, status.Errorf(status.InvalidArgument, "exists")
}

func (s *store) Upsert(_ context.Context, _ string, docs []retrieval.Document) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.docs = append(s.docs, docs...)
	return len(docs), nil
}

func main() {
	if err := serve(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "toolsgw:", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	if len(args) != 4 {
		return fmt.Errorf("usage: toolsgw <workspace> <filesystem-json> <tools-files> <dataproc-docs>")
	}
	ws := args[0]
	var fsp policy.Filesystem
	if err := json.Unmarshal([]byte(args[1]), &fsp); err != nil {
		return err
	}
	ctx := context.Background()
	launch := func(bin, cfg string) (*plugin.Launched, error) {
		l, err := plugin.Launch(ctx, plugin.LaunchOptions{Path: bin, Env: []string{"PATH=/usr/bin:/bin", "HOME=" + os.TempDir()}})
		if err != nil {
			return nil, err
		}
		if ds, err := l.Configure(ctx, plugin.ConfigureOptions{Config: []byte(cfg)}); err != nil || len(ds) > 0 {
			l.Kill()
			return nil, fmt.Errorf("configure %s: %v %+v", bin, err, ds)
		}
		return l, nil
	}
	cfg, _ := json.Marshal(map[string]any{"root": ws})
	files, err := launch(args[2], string(cfg))
	if err != nil {
		return err
	}
	defer files.Kill()
	docs, err := launch(args[3], `{}`)
	if err != nil {
		return err
	}
	defer docs.Kill()
	st := &store{}
	h, err := agentapi.New(ctx, agentapi.Config{
		Identity: agentapi.Identity{Sandbox: "t", Agent: "a", User: "u"},
		Tools:    []agentapi.ToolSource{{Name: "files", Provider: files.Tools()}},
		DataProc: docs.DataProc(), Retrieval: st, Workspace: ws, Filesystem: &fsp,
	})
	if err != nil {
		return err
	}
	defer h.Close()
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)
	mux.HandleFunc("/ingested", func(w http.ResponseWriter, _ *http.Request) {
		st.mu.Lock()
		defer st.mu.Unlock()
		_ = json.NewEncoder(w).Encode(st.docs)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = http.Serve(l, mux) }()
	out, _ := json.Marshal(map[string]any{"url": "http://" + l.Addr().String(), "pid": os.Getpid(), "files_pid": files.Pid()})
	fmt.Println(string(out))
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}
