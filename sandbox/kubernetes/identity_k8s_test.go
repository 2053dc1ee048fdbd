package kubernetes

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sandbox"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// serveNames answers every connection on the started listeners with
// "<sandbox>/<listener>", so a test sees where the Front delivered it.
func serveNames(name string, st *sandbox.Started) {
	for ln, l := range st.Listeners {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				fmt.Fprintf(c, "%s/%s\n", name, ln)
				c.Close()
			}
		}()
	}
}

// mintToken asks the API server for a token as the kubelet does for the
// projected volume: for the sandbox's service account, bound to its pod.
func (d *testDriver) mintToken(t *testing.T, sa string, audience string, pod *corev1.Pod) string {
	t.Helper()
	req := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: ptr.To(int64(600))}}
	if pod != nil {
		req.Spec.BoundObjectRef = &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	}
	tr, err := d.client.CoreV1().ServiceAccounts(d.ns).CreateToken(context.Background(), sa, req, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token request for %s: %v", sa, err)
	}
	return tr.Status.Token
}

// dialFront sends a preamble and returns what came back: the listener's
// answer, or "" when the Front closed the connection.
func dialFront(t *testing.T, addr, listener, token string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	fmt.Fprintf(c, "%s %s %s\n", preambleMagic, listener, token)
	line, _ := bufio.NewReader(c).ReadString('\n')
	return line
}

func TestIdentityIsTheSandboxsOwnPodToken(t *testing.T) {
	d := newTestDriver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stA, podA := d.createStarted(t, testSpec("alpha"))
	stB, podB := d.createStarted(t, testSpec("beta"))
	serveNames("alpha", stA)
	serveNames("beta", stB)
	addr := d.front.Addr().String()
	tokA := d.mintToken(t, "nc-alpha", "nemoclave-gateway", podA)
	tokB := d.mintToken(t, "nc-beta", "nemoclave-gateway", podB)

	if got := dialFront(t, addr, "inference", tokA); got != "alpha/inference\n" {
		t.Fatalf("alpha's token reached %q", got)
	}
	if got := dialFront(t, addr, "egress", tokB); got != "beta/egress\n" {
		t.Fatalf("beta's token reached %q", got)
	}

	// Through the real supervisor forwarder, as the agent's connection goes.
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte(tokA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go forward(ctx, ln, "agentapi", &supervisorConfig{Gateway: addr, TokenFile: tokFile})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "alpha/agentapi\n" {
		t.Fatalf("through the supervisor: %q", b)
	}

	// Everything else is refused before a byte reaches a sandbox listener.
	refused := map[string]string{
		"garbage token":                           "not-a-token",
		"another audience":                        d.mintToken(t, "nc-alpha", "kubernetes", podA),
		"token not bound to a pod":                d.mintToken(t, "nc-alpha", "nemoclave-gateway", nil),
		"the namespace's default service account": d.mintToken(t, "default", "nemoclave-gateway", nil),
		"unknown listener":                        "",
	}
	for what, tok := range refused {
		listener := "inference"
		if what == "unknown listener" {
			tok, listener = tokA, "admin"
		}
		if got := dialFront(t, addr, listener, tok); got != "" {
			t.Errorf("%s: the Front delivered the connection (%q)", what, got)
		}
	}
	if got := dialFront(t, addr, "inference", ""); got != "" {
		t.Errorf("empty preamble token delivered: %q", got)
	}

	// A sandbox created again under the same name has a new pod: the old
	// pod's token is dead, the new one's works.
	if err := d.Delete(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	if got := dialFront(t, addr, "inference", tokA); got != "" {
		t.Fatalf("deleted sandbox's token delivered: %q", got)
	}
	stA2, podA2 := d.createStarted(t, testSpec("alpha"))
	serveNames("alpha", stA2)
	if got := dialFront(t, addr, "inference", tokA); got != "" {
		t.Fatalf("the earlier pod's token reached the new sandbox: %q", got)
	}
	if got := dialFront(t, addr, "inference", d.mintToken(t, "nc-alpha", "nemoclave-gateway", podA2)); got != "alpha/inference\n" {
		t.Fatalf("new pod's token reached %q", got)
	}
}
