package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"

	"github.com/nemoclave/nemoclave/blueprints"
	"github.com/nemoclave/nemoclave/gateway/egress"
	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/confine"
)

type nameResolver map[string]netip.Addr

func (m nameResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := m[host]; ok {
		return []netip.Addr{a}, nil
	}
	return nil, fmt.Errorf("no such host %s", host)
}

var (
	boxDirOnce sync.Once
	boxDir     string
	boxDirErr  error
)

// confinedBinDir is a plugin directory as a release lays it out: the test
// plugins beside a real nemoclave-pluginbox, the boxes' init stage, built
// once for the package.
func confinedBinDir(t *testing.T) string {
	t.Helper()
	if abi, err := ll.LandlockGetABIVersion(); err != nil || abi < confine.DefaultMinLandlockABI {
		t.Skipf("kernel Landlock ABI %d (%v) is below %d; plugin boxes refuse to start here", abi, err, confine.DefaultMinLandlockABI)
	}
	boxDirOnce.Do(func() {
		boxDir = filepath.Join(pluginDir, "confined")
		if boxDirErr = os.MkdirAll(boxDir, 0o755); boxDirErr != nil {
			return
		}
		for _, f := range []string{"nemoclave-plugin-llm-openai", "nemoclave-plugin-llm-replay"} {
			b, err := os.ReadFile(filepath.Join(pluginDir, f))
			if err == nil {
				err = os.WriteFile(filepath.Join(boxDir, f), b, 0o755)
			}
			if err != nil {
				boxDirErr = err
				return
			}
		}
		_, file, _, _ := goruntime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		if out, err := exec.Command("go", "build", "-C", root, "-o", filepath.Join(boxDir, "nemoclave-pluginbox"), "./sandbox/pluginbox/cmd/nemoclave-pluginbox").CombinedOutput(); err != nil {
			boxDirErr = fmt.Errorf("build the plugin box: %v\n%s", err, out)
		}
	})
	if boxDirErr != nil {
		t.Fatal(boxDirErr)
	}
	return boxDir
}

// TestPluginEgressThroughGateway is PL2 as the daemon wires it: a real,
// confined llm-openai plugin whose base_url names a remote host reaches
// it only through the daemon's egress gateway, and the call is audited
// under the plugin's identity.
func TestPluginEgressThroughGateway(t *testing.T) {
	binDir := confinedBinDir(t)

	// The "provider" on a loopback address other than the host's own, the
	// only place this test may send traffic to; a name resolves to it.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("127.0.0.2 not usable here: %v", err)
	}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"object":"list","data":[{"id":"through-the-gateway","object":"model"}]}`)
	}))
	up.Listener.Close()
	up.Listener = ln
	up.Start()
	defer up.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	home := t.TempDir()
	r, err := New(context.Background(), Options{
		Home: home, Drivers: map[string]sandbox.Driver{"local": newFakeDriver(0)}, Executable: "/bin/true", PluginBinDir: binDir,
		ConfinePlugins: true, EgressResolver: nameResolver{"provider.test": netip.MustParseAddr("127.0.0.2")}, UnsafeAllowLoopback: true,
		Credential: func(name string) (string, error) { return "", fmt.Errorf("no credential %s", name) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())

	cfg, _ := json.Marshal(map[string]any{"base_url": fmt.Sprintf("http://provider.test:%d/v1", port), "api_key": "sk-test-not-a-secret"})
	p := &blueprints.Plugin{Kind: "llm", Name: "up", Address: "plugin.llm.up", Source: "builtin/llm-openai", SourceType: blueprints.SourceBuiltin, Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := r.startPlugin(ctx, p, launched{}, nil, nil)
	if err != nil {
		t.Fatalf("start the confined provider plugin: %v", err)
	}
	defer s.Close()
	models, err := s.LLM().ListModels(ctx)
	if err != nil {
		t.Fatalf("the confined plugin could not reach its provider through the gateway: %v", err)
	}
	if len(models) != 1 || models[0].ID != "through-the-gateway" {
		t.Fatalf("models %+v", models)
	}

	f, err := os.Open(filepath.Join(home, "audit", "egress.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	found := false
	for sc.Scan() {
		var ev egress.Event
		if json.Unmarshal(sc.Bytes(), &ev) == nil && strings.HasPrefix(ev.Sandbox, "plugin.llm.up#") && ev.Host == "provider.test" && ev.Decision == "allow" {
			found = true
		}
	}
	if !found {
		b, _ := os.ReadFile(filepath.Join(home, "audit", "egress.jsonl"))
		t.Errorf("no allow line for the plugin's call in the audit log:\n%s", b)
	}
}
