package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAgentCapabilities runs examples/research-assistant: memory across
// chats and across a daemon restart, a shipped document ingested through
// dataproc-docs into retrieval and cited, a subagent delegation visible in
// the gateway log, and an xlsx file the agent writes to its workspace.
func TestAgentCapabilities(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "research-assistant")
	copyDir(t, filepath.Join(repoRoot(t), "examples", "research-assistant"), dir)
	ask := func(prompt string) string {
		t.Helper()
		r := e.run(t.Context(), "run", dir, "--var", "prompt="+prompt)
		if r.code != 0 {
			t.Fatalf("run %q: exit %d\nstdout:\n%s\nstderr:\n%s\n%s", prompt, r.code, r.stdout, r.stderr, e.daemonLog())
		}
		return r.stdout
	}

	if out := ask("Remember that my favourite colour is teal."); !strings.Contains(out, "→ memory_remember") || !strings.Contains(out, "Remembered") {
		t.Fatalf("remember:\n%s", out)
	}
	e.must("daemon", "stop") // the next chat starts a fresh daemon and fresh plugins
	if out := ask("What is my favourite colour?"); !strings.Contains(out, "→ memory_recall") || !strings.Contains(out, "favourite colour is teal") {
		t.Fatalf("recall after a daemon restart:\n%s", out)
	}

	out := ask("What does the handbook say about on-call?")
	for _, want := range []string{"→ document_ingest", "→ retrieval_search", `source="handbook.md"`, "The pager goes to the primary"} {
		if !strings.Contains(out, want) {
			t.Fatalf("retrieval answer lacks %q:\n%s", want, out)
		}
	}

	if out := ask("Ask the researcher what is in the workspace."); !strings.Contains(out, "→ delegate_researcher") || !strings.Contains(out, "handbook.md") {
		t.Fatalf("delegation:\n%s", out)
	}
	gw, _ := os.ReadFile(filepath.Join(e.home, "logs", "research", "gateway.log"))
	if !strings.Contains(string(gw), `"msg":"delegating to subagent"`) || !strings.Contains(string(gw), `"subagent":"researcher"`) {
		t.Fatalf("the delegation is not in the gateway log:\n%s", gw)
	}

	if out := ask("Make a spreadsheet of the sales figures."); !strings.Contains(out, "Wrote /workspace/sales-summary.xlsx") {
		t.Fatalf("spreadsheet:\n%s", out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "workspace", "sales-summary.xlsx"))
	if err != nil || len(b) < 100 || string(b[:2]) != "PK" {
		t.Fatalf("no xlsx in the workspace: %v", err)
	}
}
