package agentapi

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// dataprocDocs launches the real dataproc-docs plugin binary.
func dataprocDocs(t *testing.T) *plugin.Launched {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dataproc-docs")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/nemoclave/nemoclave/plugins/dataproc-docs").CombinedOutput()
	if err != nil {
		t.Fatalf("build dataproc-docs: %v\n%s", err, out)
	}
	l, err := plugin.Launch(context.Background(), plugin.LaunchOptions{Path: bin, Env: []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Kill)
	if ds, err := l.Configure(context.Background(), plugin.ConfigureOptions{Config: []byte(`{}`)}); err != nil || len(ds) > 0 {
		t.Fatalf("configure: %v %+v", err, ds)
	}
	return l
}

// docStore is a minimal retrieval store: it records upserts.
type docStore struct {
	retrieval.NotSupported
	mu   sync.Mutex
	cols map[string]bool
	docs []retrieval.Document
}

func (s *docStore) CreateCollection(_ context.Context, name string, _ int) (retrieval.Collection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cols[name] {
		return retrieval.Collection{}, status.Errorf(status.InvalidArgument, "exists")
	}
	s.cols[name] = true
	return retrieval.Collection{Name: name}, nil
}

func (s *docStore) Upsert(_ context.Context, _ string, docs []retrieval.Document) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.docs = append(s.docs, docs...)
	return len(docs), nil
}

func TestDocumentToolsStayInTheWorkspace(t *testing.T) {
	t.Parallel()
	dp := dataprocDocs(t)
	ws := t.TempDir()
	if err := os.WriteFile(filepath.Join(ws, "notes.md"), []byte("# Plan\n\nShip the **gateway** first.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(outside, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(ws, "link.txt")); err != nil {
		t.Fatal(err)
	}
	store := &docStore{cols: map[string]bool{}}
	h, err := New(context.Background(), Config{Identity: Identity{Sandbox: "s", Agent: "a"}, DataProc: dp.DataProc(), Workspace: ws, Retrieval: store})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	s := connectHandler(t, h)

	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "document_read", Arguments: map[string]any{"path": "/workspace/notes.md"}})
	if err != nil || res.IsError || !strings.Contains(text(res), "Ship the gateway first") {
		t.Fatalf("read: %v %s", err, text(res))
	}
	for _, p := range []string{"../secret.txt", "link.txt", outside} {
		res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "document_read", Arguments: map[string]any{"path": p}})
		if err != nil || !res.IsError || strings.Contains(text(res), "host secret") {
			t.Fatalf("read %s escaped the workspace: %v %s", p, err, text(res))
		}
	}
	res, err = s.CallTool(ctx, &mcp.CallToolParams{Name: "spreadsheet_create", Arguments: map[string]any{
		"path": "out/sales.xlsx", "table": map[string]any{"columns": []string{"region", "revenue"}, "rows": [][]any{{"emea", 120}, {"americas", 210}}}}})
	if err != nil || res.IsError {
		t.Fatalf("spreadsheet: %v %s", err, text(res))
	}
	b, err := os.ReadFile(filepath.Join(ws, "out", "sales.xlsx"))
	if err != nil || len(b) < 4 || string(b[:2]) != "PK" {
		t.Fatalf("no xlsx written: %v", err)
	}
	res, _ = s.CallTool(ctx, &mcp.CallToolParams{Name: "spreadsheet_create", Arguments: map[string]any{"path": "../../escape.csv", "table": []any{[]any{"a"}}}})
	if _, err := os.Stat(filepath.Join(filepath.Dir(ws), "escape.csv")); err == nil || (res != nil && !res.IsError && !strings.Contains(text(res), "/workspace/escape.csv")) {
		t.Fatalf("spreadsheet escaped the workspace: %s", text(res))
	}
	res, err = s.CallTool(ctx, &mcp.CallToolParams{Name: "document_ingest", Arguments: map[string]any{"path": "notes.md"}})
	if err != nil || res.IsError {
		t.Fatalf("ingest: %v %s", err, text(res))
	}
	if len(store.docs) == 0 || store.docs[0].Metadata["source"] != "notes.md" || !strings.Contains(store.docs[0].Text, "gateway") {
		t.Fatalf("ingested %+v", store.docs)
	}
}

func connectHandler(t *testing.T, h *Handler) *mcp.ClientSession {
	t.Helper()
	srv := newServer(t, h)
	return connect(t, srv, nil)
}

func text(res *mcp.CallToolResult) string {
	if res == nil {
		return ""
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}
