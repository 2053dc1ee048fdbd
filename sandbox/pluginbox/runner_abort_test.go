package pluginbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// A box whose init stage dies before it is started says why: abort returns
// the start error with the last lines the stage wrote to stderr, which
// go-plugin never reads for a plugin that did not start.
func TestAbortKeepsTheInitStagesReason(t *testing.T) {
	cmd := exec.Command("sh", "-c", `for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo "line $i" >&2; done; echo "panic: boom" >&2; exit 3`)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// As in Start's failures after the stage died: it has exited (a zombie)
	// before abort kills it.
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 && f[0] == "Z" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	r := &boxRunner{logger: hclog.NewNullLogger(), cmd: cmd, profile: Profile{Name: "t"}, stderr: stderr}
	start := errors.New("plugin box t: proxy socket: EOF")
	got := r.abort(start)
	if !errors.Is(got, start) {
		t.Fatalf("abort lost the start error: %v", got)
	}
	msg := got.Error()
	if !strings.Contains(msg, "the plugin box said:\n") || !strings.HasSuffix(msg, "  panic: boom") || strings.Contains(msg, "line 3\n") || !strings.Contains(msg, "line 4") {
		t.Fatalf("abort's error does not end with the stage's last 10 lines:\n%s", msg)
	}
	if !r.cleaned {
		t.Error("abort did not clean up")
	}
}
