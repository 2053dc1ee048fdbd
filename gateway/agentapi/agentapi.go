package agentapi

import (
	"context"
	"net/http"
	"path"
	"time"

	"github.com/nemoclave/nemoclave/internal/secrets"
	"github.com/nemoclave/nemoclave/internal/wsfs"
	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sdk/dataproc"
	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// Identity is who is calling: fixed per listener by the runtime.
type Identity struct {
	Sandbox string
	Agent   string
	// User the agent acts for; memories are scoped by it.
	User string
}

// ToolSource is one tools plugin as the blueprint names it.
type ToolSource struct {
	// Name is the plugin's blueprint name ("files" for plugin.tools.files);
	// it prefixes a tool whose name another source already uses.
	Name     string
	Provider tools.Provider
}

// Event is an audit record of one agent API call.
type Event struct {
	Time       time.Time `json:"time"`
	Sandbox    string    `json:"sandbox"`
	Agent      string    `json:"agent"`
	Kind       string    `json:"kind"` // "tool_call", "memory", "retrieval"
	Name       string    `json:"name"` // tool or operation
	Source     string    `json:"source,omitempty"`
	Decision   string    `json:"decision"` // "ok" or "error"
	Error      string    `json:"error,omitempty"`
	DurationMS float64   `json:"duration_ms"`
	// Args are a tool call's arguments as the agent sent them, key-shaped
	// values redacted and cut to maxAuditArgs bytes (R9).
	Args string `json:"args,omitempty"`
}

// maxAuditArgs caps the arguments one audit line keeps.
const maxAuditArgs = 2048

// auditArgs is a tool call's arguments as the audit log keeps them.
func auditArgs(raw []byte) string {
	s := (*secrets.Scrubber)(nil).Scrub(string(raw))
	if len(s) > maxAuditArgs {
		s = s[:maxAuditArgs] + "…"
	}
	return s
}

// Config is the agent API of one sandbox.
type Config struct {
	Identity  Identity
	Tools     []ToolSource
	Memory    memory.Store    // nil: no memory API, no memory tools
	Retrieval retrieval.Store // nil: no retrieval API, no retrieval tools
	// DataProc and Workspace (the host directory the sandbox sees as
	// /workspace) enable the document tools; both are needed.
	DataProc  dataproc.Processor
	Workspace string
	// Filesystem is the sandbox's effective filesystem policy. Every file
	// the gateway writes or reads on the agent's behalf obeys it as a
	// direct access from the sandbox would: protected paths (and the
	// workspace .git) stay read-only, a workspace not granted read_write
	// is not written. Nil applies the defaults of an empty policy
	// (workspace writable, .git protected).
	Filesystem *policy.Filesystem
	// Audit receives one event per call; nil drops them.
	Audit func(Event)
}

// Handler serves /mcp (MCP streamable HTTP) and /v1/memory…, /v1/retrieval…
type Handler struct {
	cfg   Config
	mux   *http.ServeMux
	tools *toolServer
	// ws is the workspace as the sandbox's policy lets the agent touch
	// it; nil without a workspace.
	ws *wsfs.Dir
}

// New builds the handler and loads the tool lists. Stop it with Close.
func New(ctx context.Context, cfg Config) (*Handler, error) {
	if cfg.Audit == nil {
		cfg.Audit = func(Event) {}
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux()}
	if cfg.Workspace != "" {
		h.ws = workspaceDir(cfg)
	}
	ts, err := newToolServer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	h.tools = ts
	ts.bind(h)
	h.mux.Handle("/mcp", ts.handler())
	h.mux.Handle("/mcp/", ts.handler())
	h.routeREST()
	return h, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Close stops watching tool lists.
func (h *Handler) Close() { h.tools.close() }

func (h *Handler) audit(kind, name, source string, start time.Time, err error, args ...[]byte) {
	e := Event{Time: start.UTC(), Sandbox: h.cfg.Identity.Sandbox, Agent: h.cfg.Identity.Agent, Kind: kind, Name: name,
		Source: source, Decision: "ok", DurationMS: float64(time.Since(start).Microseconds()) / 1000}
	if len(args) > 0 {
		e.Args = auditArgs(args[0])
	}
	if err != nil {
		e.Decision, e.Error = "error", err.Error()
	}
	h.cfg.Audit(e)
}

func (h *Handler) scope(session string) memory.Scope {
	return memory.Scope{Agent: h.cfg.Identity.Agent, User: h.cfg.Identity.User, Session: session}
}

// workspaceDir applies the sandbox's filesystem policy to the gateway's
// own file access.
func workspaceDir(cfg Config) *wsfs.Dir {
	fsp := policy.Filesystem{ReadWrite: []string{wsfs.SandboxPath}}
	if cfg.Filesystem != nil {
		fsp = *cfg.Filesystem
	}
	writable := false
	for _, p := range fsp.ReadWrite {
		if p == "/" || path.Clean(p) == wsfs.SandboxPath {
			writable = true
		}
	}
	return wsfs.New(cfg.Workspace, wsfs.Options{Protected: fsp.EffectiveProtected(), ReadOnly: !writable})
}
