package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sandbox"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	remotecommandconsts "k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// fakeKubelet answers what the API server forwards to a node's kubelet for
// pods/log and pods/exec (the API server speaks SPDY to kubelets). Exec
// prints the command it was asked to run, echoes stdin, and exits with
// the code named by the last argument when that is a number.
type fakeKubelet struct {
	srv *httptest.Server
	mu  sync.Mutex
	ran [][]string
}

func newFakeKubelet(t *testing.T) *fakeKubelet {
	t.Helper()
	k := &fakeKubelet{}
	k.srv = httptest.NewUnstartedServer(http.HandlerFunc(k.serve))
	k.srv.StartTLS()
	t.Cleanup(k.srv.Close)
	return k
}

func (k *fakeKubelet) port() int32 {
	u, _ := url.Parse(k.srv.URL)
	p, _ := strconv.Atoi(u.Port())
	return int32(p)
}

func (k *fakeKubelet) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/containerLogs/"):
		fmt.Fprintln(w, "agent log line")
	case strings.HasPrefix(r.URL.Path, "/exec/"):
		k.exec(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (k *fakeKubelet) exec(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cmd := q["command"]
	k.mu.Lock()
	k.ran = append(k.ran, cmd)
	k.mu.Unlock()
	want := 1 // the status ("error") stream
	for _, p := range []string{"input", "output", "error", "tty"} {
		if q.Get(p) == "1" || q.Get(p) == "true" {
			want++
		}
	}
	if _, err := httpstream.Handshake(r, w, []string{"v5.channel.k8s.io", "v4.channel.k8s.io"}); err != nil {
		return
	}
	streams := make(chan httpstream.Stream, 8)
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(s httpstream.Stream, _ <-chan struct{}) error {
		streams <- s
		return nil
	})
	if conn == nil {
		return
	}
	defer conn.Close()
	byType := map[string]httpstream.Stream{}
	timeout := time.After(10 * time.Second)
	for len(byType) < want {
		select {
		case s := <-streams:
			byType[s.Headers().Get("streamType")] = s
		case <-timeout:
			return
		}
	}
	out := byType["stdout"]
	fmt.Fprintf(out, "ran: %s\n", strings.Join(cmd, " "))
	if in := byType["stdin"]; in != nil {
		_, _ = io.Copy(out, in)
	}
	code, err := strconv.Atoi(cmd[len(cmd)-1])
	if err == nil && code != 0 {
		st := metav1.Status{Status: metav1.StatusFailure, Reason: remotecommandconsts.NonZeroExitCodeReason,
			Message: fmt.Sprintf("command terminated with non-zero exit code: %d", code),
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: remotecommandconsts.ExitCodeCauseType, Message: strconv.Itoa(code)}}}}
		b, _ := json.Marshal(st)
		_, _ = byType["error"].Write(b)
	}
	for _, s := range byType {
		s.Close()
	}
}

// onNode registers a Node whose kubelet is k and binds the sandbox's pod
// to it, as the scheduler would, then reports the container running.
func (d *testDriver) onNode(t *testing.T, k *fakeKubelet, name string) {
	t.Helper()
	ctx := context.Background()
	node := "nc-node-" + d.ns
	n, err := d.client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create node: %v", err)
	}
	t.Cleanup(func() { _ = d.client.CoreV1().Nodes().Delete(context.Background(), node, metav1.DeleteOptions{}) })
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = k.port()
	if _, err := d.client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("node status: %v", err)
	}
	err = d.client.CoreV1().Pods(d.ns).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: objectName(name), Namespace: d.ns},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("bind pod: %v", err)
	}
	d.setStatus(t, name, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodRunning
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: "sandbox", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}}
	})
	eventually(t, "running", func() bool { i, _ := d.Status(ctx, name); return i.State == sandbox.StateRunning })
}

func TestExecAttachLogsThroughTheAPIServer(t *testing.T) {
	d := newTestDriver(t)
	k := newFakeKubelet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d.createStarted(t, testSpec("kubelet"))
	d.onNode(t, k, "kubelet")

	var out bytes.Buffer
	p, err := d.Exec(ctx, "kubelet", sandbox.ExecRequest{Command: []string{"sh", "-c", "exit", "3"}, Env: map[string]string{"MODE": "x"}, Stdout: &out})
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	code, err := p.Wait(ctx)
	if err != nil || code != 3 {
		t.Fatalf("Exec Wait = %d, %v; want exit code 3", code, err)
	}
	want := "ran: /usr/local/bin/nemoclave sandbox-supervisor exec --env MODE=x -- sh -c exit 3\n"
	if out.String() != want {
		t.Fatalf("exec output %q, want %q (the command must run under the in-pod supervisor)", out.String(), want)
	}

	out.Reset()
	p, err = d.Exec(ctx, "kubelet", sandbox.ExecRequest{Command: []string{"cat"}, Stdin: strings.NewReader("piped"), Stdout: &out})
	if err != nil {
		t.Fatalf("Exec with stdin: %v", err)
	}
	if code, err := p.Wait(ctx); err != nil || code != 0 || !strings.HasSuffix(out.String(), "piped") {
		t.Fatalf("Exec with stdin = %d, %v, %q", code, err, out.String())
	}

	term, err := d.Attach(ctx, "kubelet", sandbox.AttachRequest{Command: []string{"bash"}, Rows: 24, Cols: 80})
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if err := term.Resize(40, 120); err != nil {
		t.Fatal(err)
	}
	if _, err := term.Write([]byte("typed")); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		term.(*terminal).in.Close() // end of keyboard input
	}()
	screen, _ := io.ReadAll(term)
	if code, err := term.Wait(ctx); err != nil || code != 0 {
		t.Fatalf("Attach Wait = %d, %v", code, err)
	}
	if !strings.Contains(string(screen), "sandbox-supervisor exec -- bash") || !strings.Contains(string(screen), "typed") {
		t.Fatalf("terminal showed %q", screen)
	}

	rc, err := d.Logs(ctx, "kubelet")
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "agent log line\n" {
		t.Fatalf("Logs = %q", b)
	}
}
