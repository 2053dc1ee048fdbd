package agentapi

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nemoclave/nemoclave/internal/wsfs"
	"github.com/nemoclave/nemoclave/sdk/dataproc"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// Document tools: the blueprint's data-processing plugin applied to files
// in the sandbox's workspace. Every file goes through wsfs, with the
// sandbox's filesystem policy: no symlink leads out (openat2
// RESOLVE_BENEATH, decided by the kernel at open time), FIFOs and devices
// are refused before a byte moves, reads are size-bounded, and a write to a
// protected path fails as it would from inside the sandbox.

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

// readWorkspace reads a regular file confined to the workspace.
func (h *Handler) readWorkspace(ctx context.Context, p string) ([]byte, error) {
	if h.ws == nil {
		return nil, status.Errorf(status.NotSupported, "this sandbox has no workspace to read %s from", p)
	}
	b, err := h.ws.ReadFile(ctx, p, maxDocumentBytes)
	if err != nil {
		return nil, status.Errorf(status.InvalidArgument, "%v", err)
	}
	return b, nil
}

func (h *Handler) extract(ctx context.Context, p string) (string, error) {
	data, err := h.readWorkspace(ctx, p)
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
	rel, err := h.ws.Rel(a.Path)
	if err == nil {
		err = h.ws.CheckWritable(a.Path, rel)
	}
	if err != nil {
		return "", status.Errorf(status.InvalidArgument, "%v", err)
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
	rel, err = h.ws.WriteFile(ctx, a.Path, resp.Outputs[0].Data, wsfs.WriteOptions{})
	if err != nil {
		return "", status.Errorf(status.InvalidArgument, "%v", err)
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
	rel, _ := h.ws.Rel(p) // extract succeeded, so p is a workspace path
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
