package kubernetes

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/local"
)

// The supervisor tests re-execute the test binary as the in-pod
// supervisor (as the pod runs `nemoclave sandbox-supervisor`), with its
// configuration at a temporary path instead of the ConfigMap mount.
const (
	envHelperConfig = "NEMOCLAVE_TEST_SUPERVISOR_CONFIG"
	envHelperArgs   = "NEMOCLAVE_TEST_SUPERVISOR_ARGS"
	helperCanary    = "sk-canary-supervisor-env"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envHelperConfig); path != "" {
		os.Exit(runSupervisor(path, strings.Split(os.Getenv(envHelperArgs), "\x1f")))
	}
	os.Exit(m.Run())
}

// fakeFront answers each connection with an HTTP response whose body is
// the preamble it received.
func fakeFront(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n%s", line)
			}()
		}
	}()
	return ln
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type supervisorRig struct {
	dir, ws, secret, cfgPath string
	port                     int
	front                    net.Listener
}

func newSupervisorRig(t *testing.T, script string) *supervisorRig {
	t.Helper()
	for _, tool := range []string{"/bin/sh", "/usr/bin/curl"} {
		if _, err := os.Stat(tool); err != nil {
			t.Skipf("%s is needed to play the agent", tool)
		}
	}
	if abi, err := ll.LandlockGetABIVersion(); err != nil || abi < local.DefaultMinLandlockABI {
		t.Skipf("this kernel offers Landlock ABI %d (%v); the supervisor needs %d", abi, err, local.DefaultMinLandlockABI)
	}
	r := &supervisorRig{dir: t.TempDir(), port: freePort(t), front: fakeFront(t)}
	r.ws = filepath.Join(r.dir, "ws")
	r.secret = filepath.Join(r.dir, "outside", "key")
	for _, d := range []string{r.ws, filepath.Dir(r.secret), filepath.Join(r.dir, "id")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(r.secret, []byte("host-secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "id", "token"), []byte("pod-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	script = strings.NewReplacer("$WS", r.ws, "$SECRET", r.secret, "$PORT", fmt.Sprint(r.port), "$FRONT", r.front.Addr().String(), "$OUT", r.dir).Replace(script)
	cfg := supervisorConfig{
		Name: "sup", Command: []string{"/bin/sh", "-c", script},
		Env: map[string]string{"AGENT_SETTING": "on"},
		Policy: &policy.Policy{Name: "t", Revision: 1, UnknownHosts: policy.UnknownDeny, Filesystem: policy.Filesystem{
			ReadOnly: []string{"/usr", "/bin", "/lib", "/lib64", "/etc"}, ReadWrite: []string{r.ws},
		}},
		Listeners: map[string]int{sandbox.ListenerInference: r.port},
		Gateway:   r.front.Addr().String(), TokenFile: filepath.Join(r.dir, "id", "token"), Workspace: r.ws,
	}
	b, _ := json.Marshal(cfg)
	r.cfgPath = filepath.Join(r.dir, "config.json")
	if err := os.WriteFile(r.cfgPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *supervisorRig) run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelperConfig+"="+r.cfgPath, envHelperArgs+"="+strings.Join(args, "\x1f"),
		"OPENAI_API_KEY="+helperCanary, "GORACE=atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("supervisor: %v\n%s", err, out)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

func (r *supervisorRig) file(name string) string {
	b, _ := os.ReadFile(filepath.Join(r.ws, name))
	return string(b)
}

func TestSupervisorConfinesTheAgentAndForwardsToTheGateway(t *testing.T) {
	r := newSupervisorRig(t, `
cat $SECRET && echo LEAKED-SECRET
echo x > $OUT/outside-write && echo WROTE-OUTSIDE
echo inside > $WS/inside
env > $WS/env
curl -s --noproxy '*' -m 10 http://127.0.0.1:$PORT/ > $WS/via-gateway
curl -s --noproxy '*' -m 5 http://$FRONT/ > $WS/direct || echo refused > $WS/direct
exit 7`)
	code, out := r.run(t, "run")
	if code != 7 {
		t.Fatalf("exit code %d, want the agent's 7\n%s", code, out)
	}
	if strings.Contains(out, "LEAKED-SECRET") || strings.Contains(out, "host-secret") {
		t.Errorf("the agent read a file outside its policy:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(r.dir, "outside-write")); err == nil || strings.Contains(out, "WROTE-OUTSIDE") {
		t.Errorf("the agent wrote outside its policy")
	}
	if r.file("inside") != "inside\n" {
		t.Errorf("the agent could not write its workspace:\n%s", out)
	}
	env := r.file("env")
	for _, want := range []string{"NEMOCLAVE_SANDBOX=sup", fmt.Sprintf("OPENAI_BASE_URL=http://127.0.0.1:%d/v1", r.port), "AGENT_SETTING=on"} {
		if !strings.Contains(env, want) {
			t.Errorf("agent environment lacks %s:\n%s", want, env)
		}
	}
	for _, leak := range []string{helperCanary, envHelperConfig, "GORACE"} {
		if strings.Contains(env, leak) {
			t.Errorf("the supervisor's environment leaked into the agent (%s)", leak)
		}
	}
	if got := r.file("via-gateway"); got != "NEMOCLAVE-SANDBOX/1 inference pod-token\n" {
		t.Errorf("through the listener the gateway got %q, want the preamble with the pod token", got)
	}
	if got := r.file("direct"); got != "refused\n" {
		t.Errorf("the agent reached the gateway without the supervisor (Landlock connect rule): %q", got)
	}
}

func TestSupervisorExecIsConfinedToo(t *testing.T) {
	r := newSupervisorRig(t, "true")
	code, out := r.run(t, "exec", "--env", "EXTRA=1", "--", "/bin/sh", "-c", `echo "$EXTRA" > `+r.ws+`/exec; cat `+r.secret)
	if code == 0 || strings.Contains(out, "host-secret") {
		t.Fatalf("exec read a file outside the policy (code %d):\n%s", code, out)
	}
	if r.file("exec") != "1\n" {
		t.Fatalf("exec did not run with its environment:\n%s", out)
	}
	code, out = r.run(t, "exec", "--env", "GITHUB_TOKEN=x", "--", "/bin/true")
	if code != 125 || !strings.Contains(out, "credential") {
		t.Fatalf("exec with a credential-looking variable: code %d\n%s", code, out)
	}
}
