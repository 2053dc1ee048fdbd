package local

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/sandbox"
)

// Network rows the sandbox itself guarantees: N1, N2, N4, N5 (socket
// level), N17, N18, N19. The egress rows that judge requests (N3, N6–N16,
// N20, N21) belong to gateway/ and e2e/.

var allListeners = func(j *job) {
	j.Listeners = []string{sandbox.ListenerEgress, sandbox.ListenerInference, sandbox.ListenerAgentAPI}
}

// gatewayPort extracts the egress listener's port from the agent's
// environment, as the agent would.
const egressPort = `EP=${HTTP_PROXY##*:}; echo "egress port: $EP"`

func TestEscape_N1_DirectInternet(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		out, _ := sh(t, mode, egressPort+`
$PROBE connect-tcp 1.1.1.1:80
$PROBE connect-tcp 1.1.1.1:$EP
$PROBE socket 40 1 0
bash -c 'echo x > /dev/tcp/1.1.1.1/80' 2>/dev/null && echo "BASH connected" || echo "bash denied"`, allListeners)
		// Landlock refuses the non-gateway port first; on a gateway port
		// the connection reaches routing and the namespace has no route.
		// vsock is not confined by the network namespace (it reaches the
		// hypervisor from a VM), so seccomp refuses the socket.
		expectLines(t, out, "connect-tcp: errno=EACCES", "connect-tcp: errno=ENETUNREACH", "socket: errno=EPERM", "bash denied")
		if strings.Contains(out, "connect-tcp: ok") || strings.Contains(out, "BASH connected") {
			t.Errorf("reached the internet directly:\n%s", out)
		}
	})
}

func TestEscape_N2_DNS(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		out, _ := sh(t, mode, `getent hosts example.com && echo "RESOLVED" || echo "no dns"
$PROBE udp-send 8.8.8.8:53
$PROBE udp-send 1.1.1.1:53
ip route 2>/dev/null | head -3; cat /proc/net/route | wc -l`, allListeners)
		expectLines(t, out, "no dns", "udp-send: errno=ENETUNREACH")
		if strings.Contains(out, "RESOLVED") || strings.Contains(out, "udp-send: ok") {
			t.Errorf("a DNS query left the sandbox:\n%s", out)
		}
	})
}

func TestEscape_N4_RawAndPacketSockets(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		out, _ := sh(t, mode, `$PROBE socket 2 3 1; $PROBE socket 10 3 58; $PROBE socket 17 3 768; $PROBE socket 17 2 768; $PROBE socket 2 10 0; $PROBE socket 2 3 1 high
ping -c 1 -W 1 127.0.0.1 >/dev/null 2>&1 && echo "PING worked" || echo "ping denied"`)
		if n := strings.Count(out, "socket: errno=EPERM"); n != 6 {
			t.Errorf("want 6 raw/packet sockets refused with EPERM, got %d:\n%s", n, out)
		}
		expectLines(t, out, "ping denied")
	})
}

func TestEscape_N5_IPv6AndMappedForms(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		out, _ := sh(t, mode, egressPort+`
for a in "[::ffff:1.1.1.1]" "[64:ff9b::101:101]" "[2002:101:101::1]" "[2606:4700:4700::1111]"; do
  $PROBE connect-tcp "$a:443"; $PROBE connect-tcp "$a:$EP"; done
$PROBE connect-tcp "[::ffff:127.0.0.1]:22"
$PROBE connect-tcp "[::1]:5432"`, allListeners)
		if strings.Contains(out, "connect-tcp: ok") {
			t.Errorf("an IPv6 or mapped address got through:\n%s", out)
		}
		expectLines(t, out, "connect-tcp: errno=EACCES")
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "connect-tcp: ") && !strings.Contains(l, "errno=") {
				t.Errorf("unexpected result %q", l)
			}
		}
	})
}

func TestEscape_N17_UnsetProxy(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		out, _ := sh(t, mode, egressPort+`
$PROBE http-get http://example.com/through-proxy
unset HTTP_PROXY HTTPS_PROXY ALL_PROXY http_proxy https_proxy all_proxy
$PROBE http-get http://93.184.215.14/direct
$PROBE connect-tcp 93.184.215.14:$EP
$PROBE connect-tcp 93.184.215.14:443`, allListeners)
		// With the variables the request reaches the gateway's listener;
		// without them there is no route and nothing else to reach.
		expectLines(t, out, `http-get: status=200 body="gateway:egress GET /through-proxy"`,
			"connect-tcp: errno=ENETUNREACH", "connect-tcp: errno=EACCES")
		if strings.Count(out, "http-get: status=") != 1 {
			t.Errorf("the request without proxy variables succeeded:\n%s", out)
		}
	})
}

func TestEscape_N18_HostLoopback(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("HOST SERVICE"))
				c.Close()
			}
		}()
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		// The host port may coincide with one of the sandbox's own gateway
		// ports (both are ephemeral, in different namespaces); then the
		// agent reaches its gateway, which is allowed. What must never
		// come back is the host service's banner.
		out, _ := sh(t, mode, `$PROBE tcp-read 127.0.0.1:`+port+`; $PROBE tcp-read "[::1]:`+port+`"; $PROBE tcp-read "[::ffff:127.0.0.1]:`+port+`"
$PROBE connect-tcp 127.0.0.1:5432; $PROBE connect-tcp localhost:22`, allListeners)
		if strings.Contains(out, "HOST SERVICE") {
			t.Errorf("reached a host loopback service:\n%s", out)
		}
		expectLines(t, out, "connect-tcp: errno=EACCES")
	})
}

func TestEscape_N19_CredentialHunt(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		// The supervisor's environment holds a provider key (TestMain and
		// the rootless helper set OPENAI_API_KEY to the canary).
		if mode == rootMode && os.Getenv("OPENAI_API_KEY") != testCanary {
			t.Fatal("test setup: the supervisor should hold the canary credential")
		}
		out, _ := sh(t, mode, `env; cat /proc/self/environ | tr '\0' '\n'; cat /proc/1/environ 2>&1 | tr '\0' '\n'
grep -rl "`+testCanary+`" /workspace /tmp /etc 2>/dev/null | head
$PROBE http-get "$OPENAI_BASE_URL/models"`, allListeners)
		if strings.Contains(out, testCanary) {
			t.Errorf("the provider key is visible in the sandbox:\n%s", out)
		}
		expectLines(t, out, "OPENAI_BASE_URL=http://127.0.0.1:", "ANTHROPIC_BASE_URL=http://127.0.0.1:",
			"NEMOCLAVE_MCP_URL=http://127.0.0.1:", "NEMOCLAVE_API_URL=http://127.0.0.1:", "https_proxy=http://127.0.0.1:",
			`http-get: status=200 body="gateway:inference GET /v1/models"`)
		// And a spec that tries to pass a credential is refused outright.
		dir, ws := jobDir(t, mode)
		res := run(t, mode, dir, ws, job{Argv: []string{"true"}, Env: map[string]string{"OPENAI_API_KEY": testCanary}})
		if !strings.Contains(res.CreateErr, "looks like a credential") {
			t.Errorf("a credential in the spec was not refused: %q", res.CreateErr)
		}
	})
}
