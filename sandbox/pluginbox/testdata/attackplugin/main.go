// Command attackplugin is a tools plugin built by the plugin box's escape
// tests: its one tool, "attack", tries what SECURITY-TESTS.md's Plugins
// rows (PL1–PL6) name from inside the confined plugin process and reports
// each outcome ("ok: …" or "error: <errno text>") for the test to judge.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

type attacker struct{ plugin.Base }

func (*attacker) Info() plugin.Info {
	return plugin.Info{Name: "tools-attack", Version: "0.0.1", Description: "escape probes", Kinds: []plugin.Kind{plugin.KindTools}}
}

func (*attacker) ConfigSchema() *schema.Schema { return &schema.Schema{} }

func (*attacker) ListTools(context.Context) ([]tools.Tool, error) {
	return []tools.Tool{{Name: "attack", Description: "run one probe", InputSchema: json.RawMessage(`{"type":"object"}`)}}, nil
}

type args struct {
	Op     string `json:"op"`
	Target string `json:"target"`
	N      int    `json:"n"`
}

func result(err error, okText string) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return "ok: " + okText
}

func (*attacker) CallTool(_ context.Context, req *tools.CallRequest) (*tools.CallResult, error) {
	var a args
	if err := json.Unmarshal(req.Arguments, &a); err != nil {
		return tools.ErrorResult(err.Error()), nil
	}
	return &tools.CallResult{Content: []tools.Content{tools.TextContent(probe(a))}}, nil
}

func probe(a args) string {
	switch a.Op {
	case "read":
		b, err := os.ReadFile(a.Target)
		return result(err, fmt.Sprintf("%d bytes", len(b)))
	case "list":
		ents, err := os.ReadDir(a.Target)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return result(err, strings.Join(names, " "))
	case "write":
		return result(os.WriteFile(a.Target, []byte("escaped"), 0o644), "wrote")
	case "dial_unix", "dial_tcp":
		network := strings.TrimPrefix(a.Op, "dial_")
		c, err := net.DialTimeout(network, a.Target, 5*time.Second)
		if err == nil {
			c.Close()
		}
		return result(err, "connected")
	case "read_tcp":
		// Connect and report what the server says first (a database's
		// banner): proves the bytes come from the server, not a listener.
		c, err := net.DialTimeout("tcp", a.Target, 5*time.Second)
		if err != nil {
			return result(err, "")
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, 64)
		n, err := c.Read(b)
		return result(err, "read "+string(b[:n]))
	case "http_get":
		// Through whatever proxy the environment names, as the provider
		// plugins' HTTP clients do.
		cl := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}}
		resp, err := cl.Get(a.Target)
		if err != nil {
			return "error: " + err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Sprintf("ok: %d %s", resp.StatusCode, strings.TrimSpace(string(b)))
	case "env":
		b, _ := json.Marshal(os.Environ())
		return "ok: " + string(b)
	case "signal":
		pid, _ := strconv.Atoi(a.Target)
		return result(syscall.Kill(pid, 0), "signal delivered")
	case "ptrace":
		pid, _ := strconv.Atoi(a.Target)
		_, _, e := syscall.RawSyscall(syscall.SYS_PTRACE, syscall.PTRACE_ATTACH, uintptr(pid), 0)
		if e != 0 {
			return "error: " + e.Error()
		}
		return "ok: attached"
	case "forkbomb":
		// Start up to N sleepers; report how many the limits allowed.
		var procs []*exec.Cmd
		var err error
		for i := 0; i < a.N; i++ {
			c := exec.Command("/proc/self/exe", "sleep")
			if err = c.Start(); err != nil {
				break
			}
			procs = append(procs, c)
		}
		for _, c := range procs {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		return fmt.Sprintf("started %d of %d: %v", len(procs), a.N, err)
	case "memhog":
		c := exec.Command("/proc/self/exe", "hog", strconv.Itoa(a.N))
		out, err := c.CombinedOutput()
		return fmt.Sprintf("hog exited: %v: %s", err, strings.TrimSpace(string(out)))
	case "setsid":
		c := exec.Command("/proc/self/exe", "sleep", a.Target)
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		err := c.Start()
		return result(err, "started")
	case "caps":
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return "error: " + err.Error()
		}
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Cap") || strings.HasPrefix(l, "NoNewPrivs") || strings.HasPrefix(l, "Seccomp:") {
				out = append(out, l)
			}
		}
		return "ok: " + strings.Join(out, "\n")
	}
	return "error: unknown op " + a.Op
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "sleep": // a child that outlives nothing; the marker is in argv
			time.Sleep(time.Hour)
			return
		case "hog": // allocate and touch N MiB
			n, _ := strconv.Atoi(os.Args[2])
			var keep [][]byte
			for i := 0; i < n; i++ {
				b := make([]byte, 1<<20)
				for j := range b {
					b[j] = 1
				}
				keep = append(keep, b)
			}
			fmt.Printf("allocated %d MiB\n", len(keep))
			return
		}
	}
	plugin.Serve(&attacker{})
}
