package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nemoclave/nemoclave/host/daemon"
)

// pluginLogs is `nemoclave logs <sandbox> --source plugin`: the lines of
// the daemon's plugins.log that come from the plugins the sandbox's run
// uses (a plugin shared by several runs shows in each), rendered as text,
// so a crashed plugin's panic and stack trace read as they were written.
// A sandbox whose run is gone (its agent exited) shows the lines written
// while it existed.
func (r *Runtime) pluginLogs(ctx context.Context, req daemon.LogsRequest, w io.Writer) error {
	f := pluginLogFilter{}
	r.mu.Lock()
	if rn := r.runs[req.Sandbox]; rn != nil {
		for addr := range rn.plugins {
			f.modules = append(f.modules, addr)
		}
	}
	r.mu.Unlock()
	if f.modules == nil {
		s, err := r.record(ctx, req.Sandbox)
		if err != nil {
			return err
		}
		f.from, f.to = s.CreatedAt, s.UpdatedAt
	}
	sort.Strings(f.modules)
	fh, err := openOrEmpty(filepath.Join(r.opts.Home, "logs", "plugins.log"))
	if err != nil {
		return err
	}
	defer fh.Close()
	all, err := io.ReadAll(fh)
	if err != nil {
		return err
	}
	cut := bytes.LastIndexByte(all, '\n') + 1 // an unfinished line waits for its end
	out := f.render(all[:cut])
	if req.Tail > 0 {
		out = lastLines(out, req.Tail)
	}
	if _, err := w.Write(out); err != nil || !req.Follow {
		return err
	}
	pending := append([]byte(nil), all[cut:]...)
	buf := make([]byte, 32*1024)
	for {
		n, err := fh.Read(buf)
		pending = append(pending, buf[:n]...)
		if i := bytes.LastIndexByte(pending, '\n'); i >= 0 {
			if _, werr := w.Write(f.render(pending[:i+1])); werr != nil {
				return werr
			}
			pending = append(pending[:0], pending[i+1:]...)
		}
		if err != nil && err != io.EOF {
			return err
		}
		if n == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// pluginLogFilter keeps the lines of the named plugin loggers
// (plugin.<kind>.<name>), or without names those of a time window.
type pluginLogFilter struct {
	modules  []string
	from, to time.Time
}

// render turns hclog JSON lines into text: time, level, plugin, message,
// then the fields; a field that spans lines (a stack trace) follows
// indented, as written.
func (f pluginLogFilter) render(lines []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.Split(lines, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var v map[string]any
		if json.Unmarshal(line, &v) != nil {
			continue // not a log record of ours
		}
		module, _ := v["@module"].(string)
		ts, _ := v["@timestamp"].(string)
		t, _ := time.Parse(time.RFC3339Nano, ts)
		if !f.keep(module, t) {
			continue
		}
		level, _ := v["@level"].(string)
		msg, _ := v["@message"].(string)
		fmt.Fprintf(&out, "%s %-5s %s: %s", ts, level, strings.TrimPrefix(module, "nemoclave."), msg)
		keys := make([]string, 0, len(v))
		for k := range v {
			if !strings.HasPrefix(k, "@") {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		var long []string
		for _, k := range keys {
			s, ok := v[k].(string)
			if !ok {
				b, _ := json.Marshal(v[k])
				s = string(b)
			}
			if strings.Contains(s, "\n") {
				long = append(long, k)
				continue
			}
			fmt.Fprintf(&out, " %s=%s", k, s)
		}
		out.WriteByte('\n')
		for _, k := range long {
			fmt.Fprintf(&out, "  %s:\n", k)
			for _, l := range strings.Split(strings.TrimRight(v[k].(string), "\n"), "\n") {
				fmt.Fprintf(&out, "    %s\n", l)
			}
		}
	}
	return out.Bytes()
}

func (f pluginLogFilter) keep(module string, t time.Time) bool {
	if f.modules == nil {
		return !t.IsZero() && !t.Before(f.from) && (f.to.IsZero() || !t.After(f.to.Add(time.Minute)))
	}
	for _, m := range f.modules {
		if module == m || strings.HasSuffix(module, "."+m) || strings.Contains(module, "."+m+".") || strings.HasPrefix(module, m+".") {
			return true
		}
	}
	return false
}
