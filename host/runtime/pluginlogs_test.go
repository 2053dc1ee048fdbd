package runtime

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/host/daemon"
)

// `logs <sandbox> --source plugin` shows the lines of that run's plugins
// only, as text, with a crashed plugin's stack trace on lines of its own.
func TestPluginLogsPerSandboxAsText(t *testing.T) {
	t.Parallel()
	d := newFakeDriver(0)
	d.stayUp = true
	r := newRuntime(t, d, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := r.Run(ctx, daemon.RunRequest{Path: writeBlueprint(t, withModel(oneAgent)), Detach: true}, &events{}); err != nil {
		t.Fatal(err)
	}
	// What a crash of this run's plugin and a line of another run's plugin
	// look like in the shared file (hclog JSON).
	now := time.Now().UTC().Format(time.RFC3339Nano)
	crash := `{"@level":"error","@message":"the crashed plugin's last output","@module":"nemoclave.plugin.llm.replay","@timestamp":"` + now +
		`","pid":4242,"stderr":"panic: boom\n\ngoroutine 7 [running]:\nmain.crash()\n\t/src/main.go:12 +0x1d\n"}` + "\n"
	other := `{"@level":"info","@message":"someone else's","@module":"nemoclave.plugin.tools.elsewhere","@timestamp":"` + now + `"}` + "\n"
	f, err := os.OpenFile(filepath.Join(r.opts.Home, "logs", "plugins.log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(crash + other)
	f.Close()
	var out bytes.Buffer
	if err := r.Logs(ctx, daemon.LogsRequest{Sandbox: "box", Source: "plugin"}, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"error plugin.llm.replay: the crashed plugin's last output pid=4242", "  stderr:\n    panic: boom\n", "\n    goroutine 7 [running]:\n", "\n    \t/src/main.go:12 +0x1d\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("plugin logs lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "someone else's") || strings.Contains(got, `"@module"`) {
		t.Errorf("plugin logs show another run's plugin or raw JSON:\n%s", got)
	}
	out.Reset()
	if err := r.Logs(ctx, daemon.LogsRequest{Sandbox: "box", Source: "plugin", Tail: 2}, &out); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 2 {
		t.Errorf("--tail 2 printed %d lines:\n%s", n, out.String())
	}
	if _, err := r.DeleteSandbox(ctx, "box"); err != nil {
		t.Fatal(err)
	}
}
