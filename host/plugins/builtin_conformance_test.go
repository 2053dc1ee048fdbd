package plugins

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/nemoclave/nemoclave/internal/cloudstandin"
	"github.com/nemoclave/nemoclave/internal/testupstream"
	"github.com/nemoclave/nemoclave/sandbox/pluginbox"
	"github.com/nemoclave/nemoclave/sdk/dataproc"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/sdktest"
)

// builtinBinDir is where `make build` puts the built-in plugins:
// $NEMOCLAVE_BIN_DIR, else this checkout's bin/.
func builtinBinDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("NEMOCLAVE_BIN_DIR")
	if dir == "" {
		dir, _ = filepath.Abs("../../bin")
	}
	if _, err := os.Stat(filepath.Join(dir, BinaryPrefix+"embeddings-hash")); err != nil {
		t.Fatalf("the built-in plugin binaries are not built in %s: run `make build` (or set NEMOCLAVE_BIN_DIR): %v", dir, err)
	}
	return dir
}

// builtinCase is how one built-in plugin binary is configured for the
// suites, and what its box must grant.
type builtinCase struct {
	opts   []sdktest.Option
	access *pluginbox.Profile
	// unconfined: the daemon does not box it either (a stdio MCP server
	// needs its own sandbox, see host/runtime unboxable).
	unconfined bool
}

// TestBuiltinBinariesConformance runs sdktest.RunBinary against every
// built-in plugin binary, launched by the host's real launch path (a
// plugin box, checksum verified), as the daemon launches them.
func TestBuiltinBinariesConformance(t *testing.T) {
	bin := builtinBinDir(t)
	m, _ := boxedManagerIn(t, bin)
	const key = "sk-conformance"
	// The provider plugins' stand-in, shared by their cases; started here
	// so a failure fails this test, not a subtest through its parent.
	up := testupstream.Start(t, key)
	upstream := func(t *testing.T) (string, *pluginbox.Profile) { return up, forwardTo(t, up) }
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "a.txt"), []byte("alpha\nbeta\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cassette, _ := filepath.Abs("../../plugins/llm-replay/replayplugin/testdata/conformance.json")
	cases := map[string]func(t *testing.T) builtinCase{
		"dataproc-docs": func(*testing.T) builtinCase {
			text := dataproc.Document{Name: "notes.txt", MIMEType: "text/plain", Data: []byte("One paragraph.\n\nAnother one.")}
			csv := dataproc.Document{Name: "t.csv", MIMEType: "text/csv", Data: []byte("a,b\n1,2\n")}
			return builtinCase{opts: []sdktest.Option{
				sdktest.WithDocument(dataproc.OpExtractText, text, ""),
				sdktest.WithDocument(dataproc.OpChunk, text, `{"size":60}`),
				sdktest.WithDocument(dataproc.OpGenerate, csv, ""),
				sdktest.WithDocument(dataproc.OpConvert, csv, `{"to":"text"}`)}}
		},
		"embeddings-hash": func(*testing.T) builtinCase { return builtinCase{} },
		"embeddings-openai": func(t *testing.T) builtinCase {
			base, access := upstream(t)
			return builtinCase{access: access, opts: []sdktest.Option{sdktest.WithDeterministic(),
				sdktest.WithConfig(`{"base_url":"` + base + `/v1","api_key":"` + key + `","model":"embed-test"}`)}}
		},
		"llm-openai": func(t *testing.T) builtinCase {
			base, access := upstream(t)
			return builtinCase{access: access, opts: []sdktest.Option{sdktest.WithModel("gpt-test"), sdktest.WithDeterministic(),
				sdktest.WithConfig(`{"base_url":"` + base + `/v1","api_key":"` + key + `","timeout":"30s"}`)}}
		},
		"llm-anthropic": func(t *testing.T) builtinCase {
			base, access := upstream(t)
			return builtinCase{access: access, opts: []sdktest.Option{sdktest.WithModel("claude-test"), sdktest.WithDeterministic(),
				sdktest.WithConfig(`{"base_url":"` + base + `","api_key":"` + key + `","timeout":"30s"}`)}}
		},
		"llm-bedrock": func(t *testing.T) builtinCase {
			creds := aws.Credentials{AccessKeyID: "AKIACONFORMANCE00001", SecretAccessKey: "conformance-bedrock-secret"}
			s := cloudstandin.StartBedrock(t, "eu-west-1", creds)
			cfg, _ := json.Marshal(map[string]any{"region": "eu-west-1", "endpoint_url": s.URL, "models": []string{"anthropic.claude-test"},
				"access_key_id": creds.AccessKeyID, "secret_access_key": creds.SecretAccessKey, "max_attempts": 1, "timeout": "60s"})
			return builtinCase{access: forwardTo(t, s.URL), opts: []sdktest.Option{sdktest.WithModel("anthropic.claude-test"),
				sdktest.WithDeterministic(), sdktest.WithConfig(string(cfg))}}
		},
		"llm-azure-openai": func(t *testing.T) builtinCase {
			const azureKey = "conformance-azure-key"
			a := cloudstandin.StartAzure(t, nil, azureKey)
			cfg, _ := json.Marshal(map[string]any{"endpoint": a.URL, "deployments": map[string]string{"gpt-4o": "gpt-test"}, "api_key": azureKey, "timeout": "60s"})
			return builtinCase{access: forwardTo(t, a.URL), opts: []sdktest.Option{sdktest.WithModel("gpt-4o"),
				sdktest.WithDeterministic(), sdktest.WithConfig(string(cfg))}}
		},
		"llm-replay": func(*testing.T) builtinCase {
			return builtinCase{access: &pluginbox.Profile{ReadOnly: []string{cassette}},
				opts: []sdktest.Option{sdktest.WithDeterministic(), sdktest.WithConfig(`{"cassette":` + quoteJSON(cassette) + `}`)}}
		},
		"memory-sqlite":    func(*testing.T) builtinCase { return builtinCase{} },
		"retrieval-sqlite": func(*testing.T) builtinCase { return builtinCase{opts: []sdktest.Option{sdktest.WithDimensions(8)}} },
		"memory-postgres": func(t *testing.T) builtinCase {
			return postgresCase(t, "NEMOCLAVE_TEST_POSTGRES_URL", nil)
		},
		"retrieval-pgvector": func(t *testing.T) builtinCase {
			return postgresCase(t, "NEMOCLAVE_TEST_PGVECTOR_URL", []sdktest.Option{sdktest.WithDimensions(8)})
		},
		"tools-files": func(*testing.T) builtinCase {
			return builtinCase{access: &pluginbox.Profile{ReadWrite: []string{work}}, opts: []sdktest.Option{
				sdktest.WithConfig(`{"root":` + quoteJSON(work) + `}`),
				sdktest.WithToolSample("list_files", `{"recursive":true}`),
				sdktest.WithToolSample("read_file", `{"path":"a.txt"}`),
				sdktest.WithToolSample("search_files", `{"pattern":"beta"}`),
				sdktest.WithToolSample("write_file", `{"path":"out/b.txt","content":"x"}`)}}
		},
		// Listed and schema-checked only: fetching needs the web.
		"tools-http": func(*testing.T) builtinCase { return builtinCase{} },
		"tools-mcp": func(t *testing.T) builtinCase {
			server := mcpServer(t)
			cmd, _ := json.Marshal([]string{"/usr/bin/python3", server})
			return builtinCase{unconfined: true, opts: []sdktest.Option{
				sdktest.WithConfig(`{"command":` + string(cmd) + `,"sandbox":"none"}`),
				sdktest.WithToolSample("echo", `{"text":"hi"}`)}}
		},
	}
	entries, err := os.ReadDir(bin)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, e := range entries {
		name, ok := cutPrefix(e.Name(), BinaryPrefix)
		if !ok {
			continue
		}
		seen++
		setup, ok := cases[name]
		if !ok {
			t.Errorf("built-in plugin %s has no conformance case here; add one to TestBuiltinBinariesConformance", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			c := setup(t)
			b, err := m.Resolve("builtin/" + name)
			if err != nil {
				t.Fatal(err)
			}
			state := t.TempDir()
			access := c.access
			if access == nil {
				access = &pluginbox.Profile{}
			}
			access.Resources = boxAccess().Resources
			launch := func(ctx context.Context, t *testing.T, _ string) (*plugin.Launched, error) {
				return m.Launch(ctx, b, Spec{Name: "conformance", StateDir: state, Access: access, Unconfined: c.unconfined})
			}
			// The state dir the suites configure is the one the box grants.
			sdktest.RunBinary(t, b.Path, append(c.opts, sdktest.WithLauncher(launch), sdktest.WithStateDir(state))...)
		})
	}
	if seen < len(cases) {
		t.Errorf("%d built-in plugins in %s, %d cases: rebuild with `make build`", seen, bin, len(cases))
	}
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

func quoteJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// forwardTo is the box profile the daemon gives a database plugin: a
// network of its own in which only rawURL's server is reachable, through
// the host's forwarder (pluginbox.NetworkForward).
func forwardTo(t *testing.T, rawURL string) *pluginbox.Profile {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		port = 5432
	}
	return &pluginbox.Profile{Network: pluginbox.NetworkForward, Forwards: []pluginbox.Forward{{Host: u.Hostname(), Port: port}}}
}

// postgresCase runs a database-backed plugin against the server make test
// starts (scripts/test-postgres.sh), as the plugin's own tests do.
func postgresCase(t *testing.T, env string, opts []sdktest.Option) builtinCase {
	dsn := os.Getenv(env)
	if dsn == "" {
		t.Skipf("%s is not set: make test starts PostgreSQL and PGlite+pgvector as root (scripts/test-postgres.sh)", env)
	}
	return builtinCase{access: forwardTo(t, dsn), opts: append(opts, sdktest.WithConfig(`{"dsn":`+quoteJSON(dsn)+`}`))}
}

// mcpServer writes a minimal MCP server (JSON-RPC over stdio, one tool
// "echo") for tools-mcp to start.
func mcpServer(t *testing.T) string {
	t.Helper()
	needPython(t)
	path := filepath.Join(t.TempDir(), "mcp_server.py")
	const src = `import json, sys
TOOL = {"name": "echo", "description": "Echo the text.",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}
for line in sys.stdin:
    msg = json.loads(line)
    if "id" not in msg:
        continue
    m, result = msg.get("method"), None
    if m == "initialize":
        result = {"protocolVersion": msg["params"].get("protocolVersion", "2025-06-18"),
                  "capabilities": {"tools": {}}, "serverInfo": {"name": "echo", "version": "1"}}
    elif m == "tools/list":
        result = {"tools": [TOOL]}
    elif m == "tools/call":
        result = {"content": [{"type": "text", "text": msg["params"]["arguments"].get("text", "")}]}
    elif m == "ping":
        result = {}
    reply = {"jsonrpc": "2.0", "id": msg["id"]}
    if result is None:
        reply["error"] = {"code": -32601, "message": "unknown method " + str(m)}
    else:
        reply["result"] = result
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("/usr/bin/python3"); err != nil {
		t.Skip("tools-mcp's conformance uses a Python MCP server and /usr/bin/python3 is missing")
	}
	return path
}
