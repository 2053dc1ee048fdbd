package runtime

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox/pluginbox"
)

// TestPluginAccess pins the rule docs/plugins.md states: paths the config
// names are visible (writable for memory, retrieval and tools), addresses
// open their ports on the host network, and nothing else is reachable.
func TestPluginAccess(t *testing.T) {
	dir := t.TempDir()
	cassette := filepath.Join(dir, "cassette.json")
	if err := os.WriteFile(cassette, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, source, kind, config string
		ro, rw                     []string
		network                    pluginbox.Network
		ports                      []int
		forwards                   []pluginbox.Forward
		endpoints                  []policy.Endpoint
	}{
		{name: "nothing named", source: "builtin/embeddings-hash", kind: "embeddings", config: `{"dimensions":384}`},
		{name: "llm reads its cassette", source: "builtin/llm-replay", kind: "llm", config: `{"cassette":"` + cassette + `"}`, ro: []string{cassette}},
		{name: "a path that does not exist is not granted to a reader", source: "builtin/llm-replay", kind: "llm", config: `{"cassette":"` + filepath.Join(dir, "missing.json") + `"}`},
		{name: "tools write their root", source: "builtin/tools-files", kind: "tools", config: `{"root":"` + dir + `","workspace_path":"/workspace"}`, rw: []string{dir}},
		{name: "a database file grants its directory", source: "builtin/memory-sqlite", kind: "memory", config: `{"path":"` + filepath.Join(dir, "mem.db") + `"}`, rw: []string{dir}},
		{name: "provider URL goes through the egress gateway", source: "builtin/llm-openai", kind: "llm", config: `{"base_url":"https://api.example.com/v1","api_key":"sk-x"}`,
			network: pluginbox.NetworkProxy, endpoints: []policy.Endpoint{{Host: "api.example.com", Ports: []int{443}, AllowPrivate: true}}},
		{name: "in-house provider on a private address and port", source: "builtin/llm-openai", kind: "llm", config: `{"base_url":"http://10.1.2.3:8000/v1"}`,
			network: pluginbox.NetworkProxy, endpoints: []policy.Endpoint{{Host: "10.1.2.3", Ports: []int{8000}, AllowPrivate: true}}},
		{name: "a loopback URL is forwarded", source: "builtin/llm-openai", kind: "llm", config: `{"base_url":"http://localhost:11434/v1"}`, network: pluginbox.NetworkForward, forwards: []pluginbox.Forward{{Host: "localhost", Port: 11434}}},
		{name: "URL with a port", source: "builtin/embeddings-openai", kind: "embeddings", config: `{"base_url":"http://127.0.0.1:8081/v1"}`, network: pluginbox.NetworkForward, forwards: []pluginbox.Forward{{Host: "127.0.0.1", Port: 8081}}},
		{name: "postgres URL: only its server", source: "builtin/memory-postgres", kind: "memory", config: `{"dsn":"postgres://u@db.internal/mem"}`, network: pluginbox.NetworkForward, forwards: []pluginbox.Forward{{Host: "db.internal", Port: 5432}}},
		{name: "libpq key/value DSN", source: "builtin/retrieval-pgvector", kind: "retrieval", config: `{"dsn":"host=db port=6543 user=u"}`, network: pluginbox.NetworkForward, forwards: []pluginbox.Forward{{Host: "db", Port: 6543}}},
		{name: "libpq hostaddr is what is dialled; several hosts", source: "builtin/retrieval-pgvector", kind: "retrieval", config: `{"dsn":"host=a.db,b.db port=5433,5434 user=u"}`, network: pluginbox.NetworkForward, forwards: []pluginbox.Forward{{Host: "a.db", Port: 5433}, {Host: "b.db", Port: 5434}}},
		{name: "libpq hostaddr", source: "builtin/memory-postgres", kind: "memory", config: `{"dsn":"host=db.internal hostaddr=10.0.0.7 dbname=m"}`, network: pluginbox.NetworkForward, forwards: []pluginbox.Forward{{Host: "10.0.0.7", Port: 5432}}},
		{name: "a unix socket DSN names no network", source: "builtin/memory-postgres", kind: "memory", config: `{"dsn":"host=/nonexistent/run/postgresql dbname=m"}`},
		{name: "a provider URL and a database: host network, those ports", source: "builtin/memory-postgres", kind: "memory", config: `{"dsn":"postgres://db.internal:5433/m","base_url":"https://api.example.com/v1"}`, network: pluginbox.NetworkHost, ports: []int{443, 5433}},
		{name: "tools-http goes through the egress gateway (under its agents' policy)", source: "builtin/tools-http", kind: "tools", config: `{}`, network: pluginbox.NetworkProxy},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, eps := pluginAccess(c.source, c.kind, json.RawMessage(c.config))
			if !reflect.DeepEqual(eps, c.endpoints) {
				t.Errorf("egress endpoints %+v, want %+v", eps, c.endpoints)
			}
			if !reflect.DeepEqual(p.ReadOnly, c.ro) || !reflect.DeepEqual(p.ReadWrite, c.rw) {
				t.Errorf("paths: read-only %v read-write %v, want %v %v", p.ReadOnly, p.ReadWrite, c.ro, c.rw)
			}
			if p.Network != c.network || !reflect.DeepEqual(p.Ports, c.ports) || !reflect.DeepEqual(p.Forwards, c.forwards) {
				t.Errorf("network %v ports %v forwards %v, want %v %v %v", p.Network, p.Ports, p.Forwards, c.network, c.ports, c.forwards)
			}
		})
	}
	if why := unboxable("builtin/tools-mcp", json.RawMessage(`{"command":["npx","server"]}`)); why == "" {
		t.Error("a stdio tools-mcp was not recognised as needing its own sandbox")
	}
	if why := unboxable("builtin/tools-mcp", json.RawMessage(`{"url":"https://mcp.example.com/mcp"}`)); why != "" {
		t.Errorf("an HTTP tools-mcp was exempted from its box: %s", why)
	}
}
