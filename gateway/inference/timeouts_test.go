package inference

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nemoclave/nemoclave/plugins/llm-openai/openaiplugin"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// stalling sends one chunk and then waits for its context: a provider
// that hangs mid-answer.
type stalling struct{ llm.NotSupported }

func (stalling) ChatStream(ctx context.Context, _ *llm.ChatRequest, send func(*llm.ChatChunk) error) error {
	if err := send(&llm.ChatChunk{DeltaText: "partial "}); err != nil {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}

// TestTotalTimeoutBoundsWholeStream checks timeouts.total ends a stream
// that started in time but never finishes, with an error event that names
// the setting. The stream can end no other way, so the test does not
// depend on timing.
func TestTotalTimeoutBoundsWholeStream(t *testing.T) {
	t.Parallel()
	r, err := New(context.Background(), Config{Sandbox: "sb", Providers: map[string]llm.Provider{"s": stalling{}},
		Routes: Routes{Default: "a", Models: map[string]Route{"a": {Provider: "s", Model: "m", Timeout: time.Minute, Total: time.Second}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	e := &env{url: serve(t, r)}
	for _, tc := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"a","stream":true,"messages":[{"role":"user","content":"hi"}]}`},
		{"/v1/messages", `{"model":"a","stream":true,"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`},
		{"/v1/responses", `{"model":"a","stream":true,"input":"hi"}`},
	} {
		code, _, body := e.post(t, tc.path, tc.body, nil)
		if code != 200 || !strings.Contains(body, "partial ") || !strings.Contains(body, "timeouts.total") {
			t.Fatalf("%s: %d %s", tc.path, code, body)
		}
	}
	_, _, body := e.post(t, "/v1/responses", `{"model":"a","stream":true,"input":"hi"}`, nil)
	if !strings.Contains(body, `"type":"response.failed"`) || !strings.Contains(body, "event: error") {
		t.Fatalf("responses stream did not end with error + response.failed: %s", body)
	}
}

// TestTotalTimeoutCutsStalledProviderStream runs streams through the real
// plugins to the stand-in's "stall" model, which sends its first event and
// then hangs: translated (Responses to chat completions) and passed
// through (chat completions, Messages, native Responses). timeouts.total
// must end each with an error event naming the setting; nothing else can.
func TestTotalTimeoutCutsStalledProviderStream(t *testing.T) {
	t.Parallel()
	p := startProviders(t)
	e := newEnv(t, p, nativeResponses(t, p), func(c *Config) {
		c.Routes.Models["stall"] = Route{Provider: "openai", Model: "stall", Timeout: time.Minute, Total: time.Second}
		c.Routes.Models["stall-anthropic"] = Route{Provider: "anthropic", Model: "stall", Timeout: time.Minute, Total: time.Second}
		c.Routes.Models["stall-native"] = Route{Provider: "openai-native", Model: "stall", Timeout: time.Minute, Total: time.Second}
	})
	for _, tc := range []struct{ name, path, body, end string }{
		{"openai-forwarded", "/v1/chat/completions", `{"model":"stall","stream":true,"messages":[{"role":"user","content":"hi there"}]}`, `"error"`},
		{"anthropic-forwarded", "/v1/messages", `{"model":"stall-anthropic","stream":true,"max_tokens":5,"messages":[{"role":"user","content":"hi there"}]}`, "event: error"},
		{"responses-translated", "/v1/responses", `{"model":"stall","stream":true,"input":"hi there"}`, "event: response.failed"},
		{"responses-native", "/v1/responses", `{"model":"stall-native","stream":true,"input":"hi there"}`, "event: response.failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := e.post(t, tc.path, tc.body, map[string]string{"anthropic-version": "2023-06-01"})
			if code != 200 || !strings.Contains(body, "echo") || !strings.Contains(body, "timeouts.total") || !strings.Contains(body, tc.end) {
				t.Fatalf("status %d, want the first event then an error naming timeouts.total (%s):\n%s", code, tc.end, body)
			}
		})
	}
}

// TestConnectTimeout points llm-openai (over gRPC, as a plugin runs) at a
// port whose accept queue is full, so the provider never accepts the
// connection: the route's timeouts.connect, carried to the plugin with the
// call, ends the attempt, and the agent's error names the setting. The
// route's other timeouts are a minute, so nothing else can end it first.
func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	addr := saturatedListener(t)
	oc := plugin.InProcess(t, openaiplugin.New())
	cfg, _ := json.Marshal(map[string]any{"base_url": "http://" + addr + "/v1", "api_key": upstreamKey, "timeout": "60s"})
	if diags, err := oc.Configure(context.Background(), plugin.ConfigureOptions{Config: cfg}); err != nil || len(diags) > 0 {
		t.Fatalf("configure llm-openai: %v %v", err, diags)
	}
	r, err := New(context.Background(), Config{Sandbox: "sb", Providers: map[string]llm.Provider{"o": oc.LLM()},
		Routes: Routes{Default: "a", Models: map[string]Route{"a": {Provider: "o", Model: "m", Timeout: time.Minute, Total: time.Minute, Connect: 200 * time.Millisecond}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	e := &env{url: serve(t, r)}
	for _, tc := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"a","messages":[{"role":"user","content":"hi"}]}`},
		{"/v1/chat/completions", `{"model":"a","stream":true,"messages":[{"role":"user","content":"hi"}]}`},
		{"/v1/responses", `{"model":"a","input":"hi"}`},
	} {
		code, _, body := e.post(t, tc.path, tc.body, nil)
		if code != http.StatusGatewayTimeout || !strings.Contains(body, "timeouts.connect") || strings.Contains(body, addr) {
			t.Fatalf("%s: status %d, want 504 naming timeouts.connect (and not the address): %s", tc.path, code, body)
		}
	}
}

// saturatedListener listens on loopback with a backlog of zero and fills
// its accept queue, so further connections are never accepted: the
// kernel drops their SYNs and the dialler waits.
func saturatedListener(t *testing.T) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*unix.SockaddrInet4).Port))
	for i := 0; i < 16; i++ {
		c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err != nil {
			return addr // this one was not accepted: the queue is full
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("the kernel kept accepting connections on a listener with a full backlog; cannot simulate a provider that does not accept")
	return ""
}
