package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/internal/testupstream"
)

// The agents people already use, as released on npm, each run inside a
// real sandbox with every model call going through the gateway to a
// scripted stand-in provider (internal/testupstream): the model asks for
// one tool call that writes a file into /workspace, then answers. The
// blueprints are the ones docs/agents.md shows, taken from the page.

var (
	agentsOnce sync.Once
	agentsDir  string
	agentsErr  string
)

// agentCLIs installs the pinned CLIs with scripts/install-agents.sh (cached
// between runs) and returns the cache directory. Without npm the test
// skips, saying so; a failed install fails it.
func agentCLIs(t *testing.T) string {
	t.Helper()
	agentsOnce.Do(func() {
		if _, err := exec.LookPath("npm"); err != nil {
			agentsErr = "skip: npm is not installed, so the agent CLIs cannot be installed (apt-get install npm)"
			return
		}
		cmd := exec.Command(filepath.Join(repoRoot(t), "scripts", "install-agents.sh"))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			agentsErr = "scripts/install-agents.sh: " + err.Error()
			return
		}
		agentsDir = strings.TrimSpace(string(out))
	})
	if strings.HasPrefix(agentsErr, "skip: ") {
		t.Skip(strings.TrimPrefix(agentsErr, "skip: "))
	}
	if agentsErr != "" {
		t.Fatal(agentsErr)
	}
	return agentsDir
}

// docBlueprint returns the ```hcl block of docs/agents.md that begins with
// the comment line "# blueprint: <name>".
func docBlueprint(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "agents.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)```hcl\n(# blueprint: " + regexp.QuoteMeta(name) + "\n.*?)```")
	m := re.FindSubmatch(b)
	if m == nil {
		t.Fatalf("docs/agents.md has no ```hcl block starting with \"# blueprint: %s\"", name)
	}
	return string(m[1])
}

// docAgentBlock returns the ```hcl block of docs/agents.md that is
// `agent "<name>" {...}`.
func docAgentBlock(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "agents.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```hcl\n(agent \"" + regexp.QuoteMeta(name) + "\" \\{.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatalf("docs/agents.md has no ```hcl block with agent %q", name)
	}
	return string(m[1])
}

// squash collapses white space, so a block compares equal to the file it
// was copied from whatever the indentation.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

// probe is what each agent's tool call runs (bash /workspace/probe.sh
// <name>): it writes <name>.txt, and into it whether a direct connection
// out of the sandbox opens and whether the provider key (found by a
// fragment, so the script does not carry it) is anywhere the agent can
// read: its environment, every process's, its home.
const probe = `#!/bin/bash
out=/workspace/$1.txt
echo "written by $1" > "$out"
if timeout 5 bash -c 'exec 3<>/dev/tcp/1.1.1.1/443' 2>/dev/null; then echo "direct connection: open"; else echo "direct connection: refused"; fi >> "$out"
if { env; cat /proc/[0-9]*/environ | tr '\0' '\n'; grep -rs -D skip . "$HOME"; } 2>/dev/null | grep -q 7f3a9c1d5b2e8f40; then echo "key: visible"; else echo "key: hidden"; fi >> "$out"
echo "probe done" >> "$out"
`

// agentCase is one agent's run.
type agentCase struct {
	name    string // subtest and blueprint name in docs/agents.md
	sandbox string
	// blueprint is its text, the page's block unless set.
	blueprint func(t *testing.T) string
	// vars are --var flags beyond base_url.
	vars func(cli string) []string
	// script is the stand-in's part: tools it may call (first offered
	// wins) with arguments that write file into /workspace.
	calls []testupstream.ScriptCall
	file  string
	// mcpAdd is the agent's command that registers the gateway's MCP
	// server, as docs/agents.md shows it ("codex mcp add"), and config
	// the file (under $HOME) it must write the server's URL into.
	mcpAdd, mcpConfig string
	// dialect is the provider path the gateway must have used, and
	// suffix what its plugin's base_url adds to the stand-in's root.
	dialect, suffix string
}

const agentFinal = "All done: the file is written."

func TestAgents(t *testing.T) {
	if os.Getenv("NEMOCLAVE_TEST_AGENTS") == "" {
		// The CLIs come from npm: `make test` and `make test-agents`
		// install them (scripts/install-agents.sh) and set the variable.
		t.Skip("the real agent CLIs run in `make test` and `make test-agents`, which install them first (or run scripts/install-agents.sh and set NEMOCLAVE_TEST_AGENTS=1)")
	}
	cli := agentCLIs(t)
	cases := []agentCase{
		{
			name: "codex", sandbox: "codex", file: "codex.txt", dialect: "/v1/chat/completions", suffix: "/v1",
			mcpAdd: "codex mcp add", mcpConfig: ".codex/config.toml",
			vars: func(cli string) []string { return []string{"node_modules=" + filepath.Join(cli, "node_modules")} },
			calls: []testupstream.ScriptCall{
				{Tool: "exec_command", Arguments: json.RawMessage(`{"cmd":"bash /workspace/probe.sh codex"}`)},
				{Tool: "shell_command", Arguments: json.RawMessage(`{"command":"bash /workspace/probe.sh codex"}`)},
				{Tool: "shell", Arguments: json.RawMessage(`{"command":["bash","/workspace/probe.sh","codex"]}`)},
			},
		},
		{
			name: "claude-code", sandbox: "claude", file: "claude.txt", dialect: "/v1/messages",
			mcpAdd: "claude mcp add", mcpConfig: ".claude.json",
			vars: func(cli string) []string { return []string{"node_modules=" + filepath.Join(cli, "node_modules")} },
			calls: []testupstream.ScriptCall{
				{Tool: "Bash", Arguments: json.RawMessage(`{"command":"bash /workspace/probe.sh claude","description":"Write claude.txt"}`)},
			},
		},
		{
			name: "openclaw", sandbox: "openclaw", file: "openclaw.txt", dialect: "/v1/chat/completions", suffix: "/v1",
			blueprint: func(t *testing.T) string {
				b, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", "openclaw", "blueprint.hcl"))
				if err != nil {
					t.Fatal(err)
				}
				// docs/agents.md shows this file's agent block.
				if block := docAgentBlock(t, "openclaw"); !strings.Contains(squash(string(b)), squash(block)) {
					t.Fatalf("docs/agents.md's agent \"openclaw\" block is not the one in examples/openclaw/blueprint.hcl:\n%s", block)
				}
				return string(b)
			},
			vars: func(cli string) []string {
				return []string{"node_modules=" + filepath.Join(cli, "node_modules"), "node_dir=" + filepath.Join(cli, "node26")}
			},
			calls: []testupstream.ScriptCall{
				{Tool: "exec", Arguments: json.RawMessage(`{"command":"bash /workspace/probe.sh openclaw"}`)},
				{Tool: "bash", Arguments: json.RawMessage(`{"command":"bash /workspace/probe.sh openclaw"}`)},
				{Tool: "write", Arguments: json.RawMessage(`{"path":"/workspace/openclaw.txt","content":"written by openclaw\n"}`)},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runAgent(t, cli, c) })
	}
}

func runAgent(t *testing.T, cli string, c agentCase) {
	script := filepath.Join(t.TempDir(), "script.json")
	sb, _ := json.Marshal(testupstream.Script{Calls: c.calls, Final: agentFinal})
	if err := os.WriteFile(script, sb, 0o644); err != nil {
		t.Fatal(err)
	}
	up := testupstream.Start(t, providerKey, "-script", script)

	dir := filepath.Join(t.TempDir(), c.name)
	if err := os.MkdirAll(filepath.Join(dir, "workspace"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "workspace", "probe.sh"), []byte(probe), 0o755); err != nil {
		t.Fatal(err)
	}
	var text string
	if c.blueprint != nil {
		text = c.blueprint(t)
	} else {
		text = docBlueprint(t, c.name)
	}
	bp := filepath.Join(dir, "blueprint.hcl")
	if err := os.WriteFile(bp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "OPENAI_API_KEY="+providerKey, "ANTHROPIC_API_KEY="+providerKey)
	args := []string{"run", "-d", bp, "--var", "base_url=" + up + c.suffix}
	for _, v := range c.vars(cli) {
		args = append(args, "--var", v)
	}
	e.must(args...)
	waitExited(t, e, c.sandbox)
	out := e.must("logs", c.sandbox, "--source", "sandbox")
	seen := upstreamSeen(t, up)
	t.Logf("agent output:\n%s\nupstream saw: %+v", tail(out, 60), seen)

	// The tool ran: the file is in the workspace, written by the agent.
	got, err := os.ReadFile(filepath.Join(dir, "workspace", c.file))
	if err != nil {
		t.Fatalf("the agent's tool call did not write %s: %v\nagent output:\n%s", c.file, err, tail(out, 80))
	}
	for _, want := range []string{"written by", "direct connection: refused", "key: hidden", "probe done"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("%s (what the agent's tool saw) lacks %q:\n%s", c.file, want, got)
		}
	}
	// The answer came back to the agent.
	if !strings.Contains(out, agentFinal) {
		t.Errorf("the final answer %q is not in the agent's output:\n%s", agentFinal, tail(out, 80))
	}
	// The stand-in saw both turns through the right dialect, with the key
	// the gateway injects (it answers 401 to any other).
	var called, answered bool
	for _, s := range seen {
		if !s.Authorised {
			t.Errorf("a request reached the provider without the injected key: %+v", s)
		}
		if s.Path != c.dialect {
			t.Errorf("a request reached the provider on %s, want %s", s.Path, c.dialect)
		}
		called = called || strings.HasPrefix(s.Answer, "tool:")
		answered = answered || (s.ToolResult && s.Answer == "text")
	}
	if !called || !answered {
		t.Errorf("the provider did not see the tool call and then its result: %+v", seen)
	}
	if strings.Contains(out, providerKey) {
		t.Error("the provider key is in the agent's output")
	}
	// Usage and the gateway log recorded the calls.
	waitUsage(t, e, c.sandbox, 2)
	if gw := e.must("logs", c.sandbox, "--source", "gateway"); !strings.Contains(gw, `"msg":"inference call"`) || !strings.Contains(gw, `"alias":"default"`) {
		t.Errorf("the gateway log does not show the model calls:\n%s", tail(gw, 20))
	}
	e.must("sandbox", "delete", c.sandbox)
	if c.mcpAdd != "" {
		mcpAdd(t, cli, c)
	}
}

// mcpAdd runs the line of docs/agents.md that registers the gateway's
// MCP server with the agent (it only writes the agent's configuration)
// as a user would, with the pinned CLI and a fresh $HOME, and checks the
// server's URL is in the agent's configuration file.
func mcpAdd(t *testing.T, cli string, c agentCase) {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "agents.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("`(" + regexp.QuoteMeta(c.mcpAdd) + " [^`]+)`").FindSubmatch(doc)
	if m == nil {
		t.Fatalf("docs/agents.md shows no `%s ...` line", c.mcpAdd)
	}
	line := string(m[1])
	home := t.TempDir()
	const url = "http://127.0.0.1:9/mcp"
	cmd := exec.Command("/bin/sh", "-c", line)
	cmd.Dir = home
	cmd.Env = append(os.Environ(), "HOME="+home, "NEMOCLAVE_MCP_URL="+url,
		"PATH="+filepath.Join(cli, "node_modules", ".bin")+":"+filepath.Join(cli, "node26", "bin")+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docs/agents.md's %q: %v\n%s", line, err, out)
	}
	cfg, err := os.ReadFile(filepath.Join(home, c.mcpConfig))
	if err != nil {
		t.Fatalf("%q wrote no %s: %v\n%s", line, c.mcpConfig, err, out)
	}
	if !strings.Contains(string(cfg), "nemoclave") || !strings.Contains(string(cfg), url) {
		t.Errorf("%q did not register the server nemoclave at %s in %s:\n%s", line, url, c.mcpConfig, cfg)
	}
}

// waitExited waits for the agent to finish (a real agent turn, even
// against a local model, takes a while on a loaded machine: OpenClaw
// alone took 4 to 6 minutes on a shared 2-core machine).
func waitExited(t *testing.T, e *env, name string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Minute)
	for {
		var list []struct{ Name, State string }
		if err := json.Unmarshal([]byte(e.must("sandbox", "list", "-o", "json")), &list); err != nil {
			t.Fatal(err)
		}
		for _, s := range list {
			if s.Name == name && s.State != "running" && s.State != "creating" && s.State != "starting" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent in %s did not finish in 15 minutes:\n%s", name, tail(e.must("logs", name, "--source", "sandbox"), 60))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func upstreamSeen(t *testing.T, up string) []testupstream.Seen {
	t.Helper()
	resp, err := http.Get(up + "/_requests")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var seen []testupstream.Seen
	if err := json.NewDecoder(resp.Body).Decode(&seen); err != nil {
		t.Fatal(err)
	}
	return seen
}

// waitUsage waits until usage.db holds at least n requests of the sandbox
// (usage is written in batches).
func waitUsage(t *testing.T, e *env, name string, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var rep struct {
			UsageToday []struct {
				Sandbox  string `json:"sandbox"`
				Requests int64  `json:"requests"`
			} `json:"usage_today"`
		}
		// Not --sandbox: that asks the daemon for the sandbox's live
		// routes, and the agent has exited.
		raw := e.must("inference", "status", "-o", "json")
		if err := json.Unmarshal([]byte(raw), &rep); err != nil {
			t.Fatal(err)
		}
		var got int64
		for _, u := range rep.UsageToday {
			if u.Sandbox == name {
				got += u.Requests
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage has %d requests of %s, want >= %d:\n%s", got, name, n, raw)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
