package agentapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nemoclave/nemoclave/sdk/dataproc"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// Document tools: the blueprint's data-processing plugin applied to files
// in the sandbox's workspace. The gateway opens the workspace through
// os.Root, so a path can never leave it (.., absolute paths and symlinks
// pointing out are refused by the kernel's openat2-style resolution).

// maxDocumentBytes bounds a document read from the workspace.
const maxDocumentBytes = 50 << 20

type readArgs struct {
	Path     string `json:"path" jsonschema:"file in the workspace, e.g. reports/q3.pdf"`
	MaxChars int    `json:"max_chars,omitempty" jsonschema:"truncate the text to this many characters (default 20000)"`
}

type spreadsheetArgs struct {
	Path   string `json:"path" jsonschema:"file to write in the workspace, ending in .xlsx or .csv"`
	Table  any    `json:"table" jsonschema:"the data: {\"columns\":[...],\"rows\":[[...]]}, an array of objects, or {\"sheets\":[...]}"`
	Format string `json:"format,omitempty" jsonschema:"xlsx (default) or csv; taken from the path's extension when omitted"`
}

type ingestArgs struct {
	Path       string `json:"path" jsonschema:"document in the workspace (text, Markdown, HTML, PDF or DOCX)"`
	Collection string `json:"collection,omitempty" jsonschema:"retrieval collection (default: documents)"`
}

func (h *Handler) addDocumentTools(s *mcp.Server) {
	if h.cfg.DataProc == nil || h.cfg.Workspace == "" {
		return
	}
	mcp.AddTool(s, &mcp.Tool{Name: "document_read", Description: "Extract the text of a document in the workspace (PDF, DOCX, HTML, Markdown, text, XLSX)."},
		func(ctx context.Context, _ *mcp.CallToolRequest, a readArgs) (*mcp.CallToolResult, any, error) {
			start := time.Now()
			text, err := h.extract(ctx, a.Path)
			h.audit("document", "read", a.Path, start, err)
			if err != nil {
				return toolErr(err)
			}
			if a.MaxChars <= 0 {
				a.MaxChars = 20000
			}
			if r := []rune(text); len(r) > a.MaxChars {
				text = string(r[:a.MaxChars]) + fmt.Sprintf("\n[truncated: %d of %d characters]", a.MaxChars, len(r))
			}
			return textResult(text), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "spreadsheet_create", Description: "Write tabular data to an XLSX workbook or CSV file in the workspace."},
		func(ctx context.Context, _ *mcp.CallToolRequest, a spreadsheetArgs) (*mcp.CallToolResult, any, error) {
			start := time.Now()
			out, err := h.spreadsheet(ctx, a)
			h.audit("document", "spreadsheet_create", a.Path, start, err)
			if err != nil {
				return toolErr(err)
			}
			return textResult(out), nil, nil
		})
	if h.cfg.Retrieval != nil {
		mcp.AddTool(s, &mcp.Tool{Name: "document_ingest", Description: "Extract, chunk and index a workspace document so retrieval_search finds it."},
			func(ctx context.Context, _ *mcp.CallToolRequest, a ingestArgs) (*mcp.CallToolResult, any, error) {
				start := time.Now()
				n, err := h.Ingest(ctx, a.Path, a.Collection)
				h.audit("document", "ingest", a.Path, start, err)
				if err != nil {
					return toolErr(err)
				}
				return textResult(fmt.Sprintf("Indexed %s as %d passages.", a.Path, n)), nil, nil
			})
	}
}

// readWorkspace reads a file confined to the workspace.
func (h *Handler) readWorkspace(p string) ([]byte, error) {
	root, err := os.OpenRoot(h.cfg.Workspace)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(cleanRel(p))
	if err != nil {
		return nil, status.Errorf(status.InvalidArgument, "%s: %v (paths are relative to /workspace and cannot leave it)", p, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxDocumentBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxDocumentBytes {
		return nil, status.Errorf(status.InvalidArgument, "%s is larger than %d MiB", p, maxDocumentBytes>>20)
	}
	return b, nil
}

// cleanRel maps "/workspace/x", "./x" and "x" to the root-relative "x".
func cleanRel(p string) string {
	p = strings.TrimPrefix(p, "/workspace")
	p = strings.TrimLeft(path.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	return p
}

func (h *Handler) extract(ctx context.Context, p string) (string, error) {
	data, err := h.readWorkspace(p)
	if err != nil {
		return "", err
	}
	resp, err := h.cfg.DataProc.Transform(ctx, &dataproc.TransformRequest{Operation: dataproc.OpExtractText,
		Input: dataproc.Document{Name: path.Base(p), Data: data}})
	if err != nil {
		return "", err
	}
	return resp.Text, nil
}

func (h *Handler) spreadsheet(ctx context.Context, a spreadsheetArgs) (string, error) {
	format := a.Format
	if format == "" {
		format = strings.TrimPrefix(path.Ext(a.Path), ".")
	}
	if format != "xlsx" && format != "csv" {
		return "", status.Errorf(status.InvalidArgument, "format %q: write .xlsx or .csv", format)
	}
	if a.Table == nil {
		return "", status.Errorf(status.InvalidArgument, "table is required")
	}
	table, err := json.Marshal(a.Table)
	if err != nil {
		return "", status.Errorf(status.InvalidArgument, "table: %v", err)
	}
	opts, _ := json.Marshal(map[string]string{"format": format, "name": strings.TrimSuffix(path.Base(a.Path), path.Ext(a.Path))})
	resp, err := h.cfg.DataProc.Transform(ctx, &dataproc.TransformRequest{Operation: dataproc.OpGenerate,
		Input: dataproc.Document{Name: "table.json", MIMEType: "application/json", Data: table}, Options: opts})
	if err != nil {
		return "", err
	}
	if len(resp.Outputs) != 1 {
		return "", status.Errorf(status.InvalidArgument, "the table has %d sheets; CSV takes one (use .xlsx for several)", len(resp.Outputs))
	}
	root, err := os.OpenRoot(h.cfg.Workspace)
	if err != nil {
		return "", err
	}
	defer root.Close()
	rel := cleanRel(a.Path)
	if dir := path.Dir(rel); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return "", status.Errorf(status.InvalidArgument, "%s: %v", a.Path, err)
		}
	}
	f, err := root.OpenFile(rel, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return "", status.Errorf(status.InvalidArgument, "%s: %v (paths are relative to /workspace and cannot leave it)", a.Path, err)
	}
	if _, err := f.Write(resp.Outputs[0].Data); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return fmt.Sprintf("Wrote /workspace/%s (%d bytes).", rel, len(resp.Outputs[0].Data)), nil
}

// Ingest extracts, chunks and upserts a workspace document into a
// retrieval collection; it returns the number of passages. The runtime
// also calls it for documents a blueprint asks to ingest at start.
func (h *Handler) Ingest(ctx context.Context, p, collection string) (int, error) {
	if h.cfg.DataProc == nil || h.cfg.Retrieval == nil {
		return 0, status.Errorf(status.NotSupported, "ingesting needs a dataproc plugin and the agent's retrieval plugin")
	}
	if collection == "" {
		collection = "documents"
	}
	text, err := h.extract(ctx, p)
	if err != nil {
		return 0, err
	}
	resp, err := h.cfg.DataProc.Transform(ctx, &dataproc.TransformRequest{Operation: dataproc.OpChunk,
		Input: dataproc.Document{Name: path.Base(p) + ".txt", MIMEType: "text/plain", Data: []byte(text)}})
	if err != nil {
		return 0, err
	}
	if _, err := h.cfg.Retrieval.CreateCollection(ctx, collection, 0); err != nil && status.CodeOf(err) != status.InvalidArgument {
		return 0, err
	}
	rel := cleanRel(p)
	docs := make([]retrieval.Document, 0, len(resp.Chunks))
	for _, c := range resp.Chunks {
		docs = append(docs, retrieval.Document{ID: fmt.Sprintf("%s#%d", rel, c.Index), Text: c.Text,
			Metadata: map[string]any{"source": rel, "chunk": c.Index}})
	}
	if len(docs) == 0 {
		return 0, nil
	}
	return h.cfg.Retrieval.Upsert(ctx, collection, docs)
}
