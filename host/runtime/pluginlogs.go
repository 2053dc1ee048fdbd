package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nemoclave/nemoclave/host/daemon"
)

// pluginLogMaxBytes caps one sandbox's plugins.log; past it the file is
// rotated to plugins.log.1 (the previous one is dropped), as the agent's
// log is, so a chatty or crash-looping plugin costs each sandbox at most
// twice this.
const pluginLogMaxBytes = 8 << 20

// pluginLogFiles are the sandboxes' plugin logs,
// $NEMOCLAVE_HOME/logs/<sandbox>/plugins.log, written as text. They
// outlive the run (an attached run forgets its sandbox when the agent
// exits, its plugin log stays for `logs --source plugin`) and are removed
// by `sandbox delete`.
type pluginLogFiles struct {
	dir string // $NEMOCLAVE_HOME/logs
	max int64

	mu sync.Mutex // serialises appends and rotation of every file
}

func (p *pluginLogFiles) path(sandbox string) string {
	return filepath.Join(p.dir, sandbox, "plugins.log")
}

// append adds text (whole lines) to the sandbox's log, rotating it first
// when the text would take it past the cap. The file is opened per write:
// plugins log little, and no descriptor is left to close when the last
// run holding a plugin ends.
func (p *pluginLogFiles) append(sandbox string, text []byte) error {
	return p.appendPath(p.path(sandbox), text)
}

// appendPath appends text to the log file at path, rotating it to
// path.1 first when the text would take it past the cap.
func (p *pluginLogFiles) appendPath(path string, text []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st, err := os.Stat(path); err == nil && st.Size() > 0 && st.Size()+int64(len(text)) > p.max {
		if err := os.Rename(path, path+".1"); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// managerLog is $NEMOCLAVE_HOME/logs/plugins.log, the plugin manager's
// own lines (launches, probes of plugins no sandbox holds), capped and
// rotated to plugins.log.1 as the sandboxes' plugin logs are. Each Write
// is one whole line (hclog writes an entry at once).
type managerLog struct {
	files *pluginLogFiles
	path  string
}

func (m managerLog) Write(b []byte) (int, error) {
	if err := m.files.appendPath(m.path, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// exists says whether the sandbox has a plugin log (current or rotated).
func (p *pluginLogFiles) exists(sandbox string) bool {
	for _, f := range []string{p.path(sandbox), p.path(sandbox) + ".1"} {
		if _, err := os.Stat(f); err == nil {
			return true
		}
	}
	return false
}

// remove deletes the sandbox's plugin logs, and its log directory when
// nothing else is left in it.
func (p *pluginLogFiles) remove(sandbox string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	path := p.path(sandbox)
	for _, f := range []string{path, path + ".1"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	_ = os.Remove(filepath.Dir(path)) // only when empty: gateway.log stays
	return nil
}

// pluginLogFanout is the log output of one plugin process: each hclog
// JSON entry (the plugin's stderr, its Host.Log calls, the host's lines
// about it) is rendered as text and appended to the plugin log of every
// sandbox holding the process. A process shared by several runs
// (pool.go) serves all their sandboxes, so its lines belong to each of
// them; except that a line carrying a "sandbox" field that names one of
// its holders (a plugin logging about a call, which carries the caller's
// sandbox) goes to that sandbox alone. A "sandbox" field naming anything
// else is not trusted to route: the line goes to every holder, and never
// to a sandbox that does not hold the process, so no plugin can write
// into the log of a sandbox it does not serve.
type pluginLogFanout struct {
	files *pluginLogFiles

	mu      sync.Mutex
	holders map[string]int // sandbox → holds (runs of it holding the process)
	pending []byte
}

func newPluginLogFanout(files *pluginLogFiles) *pluginLogFanout {
	return &pluginLogFanout{files: files, holders: map[string]int{}}
}

// logger is the hclog logger a launch writes through (Spec.Logger).
func (f *pluginLogFanout) logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "nemoclave", Output: f, JSONFormat: true, Level: hclog.Info})
}

func (f *pluginLogFanout) hold(sandboxes []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range sandboxes {
		f.holders[s]++
	}
}

func (f *pluginLogFanout) drop(sandboxes []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range sandboxes {
		if f.holders[s]--; f.holders[s] <= 0 {
			delete(f.holders, s)
		}
	}
}

// Write takes hclog's output: one JSON entry per line.
func (f *pluginLogFanout) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = append(f.pending, p...)
	for {
		i := bytes.IndexByte(f.pending, '\n')
		if i < 0 {
			break
		}
		f.route(f.pending[:i])
		f.pending = f.pending[i+1:]
	}
	return len(p), nil
}

func (f *pluginLogFanout) route(line []byte) {
	if len(bytes.TrimSpace(line)) == 0 || len(f.holders) == 0 {
		return
	}
	var entry map[string]any
	text := append(append([]byte(nil), line...), '\n')
	to := ""
	if json.Unmarshal(line, &entry) == nil {
		text = renderLogEntry(entry)
		if sb, ok := entry["sandbox"].(string); ok && f.holders[sb] > 0 {
			to = sb
		}
	}
	if to != "" {
		_ = f.files.append(to, text)
		return
	}
	for sb := range f.holders {
		_ = f.files.append(sb, text)
	}
}

// noteRun marks the start of a run in each of its sandboxes' plugin logs,
// which outlive runs and so hold several, one after another.
func (p *pluginLogFiles) noteRun(sandboxes []string, blueprint string) {
	line := fmt.Sprintf("%s info  nemoclave: run of %s started\n", time.Now().UTC().Format(time.RFC3339Nano), blueprint)
	for _, sb := range sandboxes {
		_ = p.append(sb, []byte(line))
	}
}

// renderLogEntry turns one hclog JSON entry into text: time, level,
// plugin, message, then the fields; a field that spans lines (a stack
// trace) follows indented, as written.
func renderLogEntry(v map[string]any) []byte {
	var out bytes.Buffer
	module, _ := v["@module"].(string)
	ts, _ := v["@timestamp"].(string)
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
	return out.Bytes()
}

// pluginLogs is `nemoclave logs <sandbox> --source plugin`: the sandbox's
// plugin log, its rotated predecessor first. --tail reads both files from
// their ends, never whole.
func (r *Runtime) pluginLogs(ctx context.Context, req daemon.LogsRequest, w io.Writer) error {
	path := r.pluginLog.path(req.Sandbox)
	cur, err := os.Open(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if cur == nil {
		// No plugin has logged for it yet: follow the file once it exists.
		return followFile(ctx, func() (io.ReadCloser, error) { return openOrEmpty(path) }, w, req.Follow, 0)
	}
	start, found := int64(0), 0
	if req.Tail > 0 {
		if start, found, err = tailOffset(cur, req.Tail); err != nil {
			cur.Close()
			return err
		}
	}
	if req.Tail <= 0 || found < req.Tail {
		if err := copyTail(path+".1", req.Tail-found, w); err != nil {
			cur.Close()
			return err
		}
	}
	if _, err := cur.Seek(start, io.SeekStart); err != nil {
		cur.Close()
		return err
	}
	first := true
	return followFile(ctx, func() (io.ReadCloser, error) {
		if first {
			first = false
			return cur, nil
		}
		return openOrEmpty(path)
	}, w, req.Follow, 0)
}

// copyTail writes the last n lines of the file at path to w (all of it
// when n <= 0); a missing file is empty.
func copyTail(path string, n int, w io.Writer) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if n > 0 {
		start, _, err := tailOffset(f, n)
		if err != nil {
			return err
		}
		if _, err := f.Seek(start, io.SeekStart); err != nil {
			return err
		}
	}
	_, err = io.Copy(w, f)
	return err
}

// tailOffset finds where the last n lines of f start by reading it
// backwards from its end, one block at a time, and how many lines it has
// from there (fewer than n when the whole file holds fewer; then start
// is 0). A final unterminated line counts as a line.
func tailOffset(f *os.File, n int) (start int64, lines int, err error) {
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	size := st.Size()
	if size == 0 {
		return 0, 0, nil
	}
	buf := make([]byte, 32<<10)
	pos, breaks := size, 0
	for pos > 0 {
		m := min(int64(len(buf)), pos)
		pos -= m
		if _, err := f.ReadAt(buf[:m], pos); err != nil && err != io.EOF {
			return 0, 0, err
		}
		for i := m - 1; i >= 0; i-- {
			if buf[i] != '\n' || pos+i == size-1 { // the last line's own end
				continue
			}
			if breaks++; breaks == n {
				return pos + i + 1, n, nil
			}
		}
	}
	return 0, breaks + 1, nil
}
