package egress

import (
	"bytes"
	"cmp"
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
)

// Event is one audit record: one JSON line per decision. An allowed tunnel
// gets an "open" record before any byte goes upstream (so a daemon killed
// mid-tunnel still leaves a line, and a log that cannot be written refuses
// the tunnel) and its final record when it ends, with bytes and duration;
// refusals are written at once.
type Event struct {
	Time     time.Time `json:"time"`
	Sandbox  string    `json:"sandbox"`
	Kind     string    `json:"kind"` // connect, http, inspected, approval, policy
	Host     string    `json:"host,omitempty"`
	Port     int       `json:"port,omitempty"`
	SNI      string    `json:"sni,omitempty"`
	Method   string    `json:"method,omitempty"`
	Path     string    `json:"path,omitempty"`
	Rule     string    `json:"rule,omitempty"`
	Endpoint string    `json:"endpoint,omitempty"`
	Revision int       `json:"revision"`
	Decision string    `json:"decision"` // open, allow, deny, closed, ask, answer, reload
	Reason   string    `json:"reason,omitempty"`
	IP       string    `json:"resolved_ip,omitempty"`
	BytesUp  int64     `json:"bytes_up"`
	BytesDn  int64     `json:"bytes_down"`
	Duration float64   `json:"duration_ms"`
	Status   int       `json:"status,omitempty"`
	// Operator and Approval name who answered which approval.
	Operator string `json:"operator,omitempty"`
	Approval string `json:"approval,omitempty"`
}

// auditLog appends events to <dir>/egress.jsonl and rotates it to
// egress-<time>.jsonl once it passes maxBytes, keeping the newest keep files.
type auditLog struct {
	mu       sync.Mutex
	dir      string
	maxBytes int64
	keep     int
	f        *os.File
	size     int64
	err      error // first write error, reported by Close
}

const auditName = "egress.jsonl"

func openAudit(dir string, maxBytes int64, keep int) (*auditLog, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("egress audit: create %s: %w; set Config.AuditDir to a writable directory", dir, err)
	}
	a := &auditLog{dir: dir, maxBytes: maxBytes, keep: keep}
	if err := a.open(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *auditLog) open() error {
	f, err := os.OpenFile(filepath.Join(a.dir, auditName), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("egress audit: open: %w; check permissions on %s", err, a.dir)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("egress audit: stat: %w", err)
	}
	a.f, a.size = f, st.Size()
	if st.Mode().IsRegular() && a.size > 0 {
		if err := a.repairTail(); err != nil {
			f.Close()
			a.f = nil
			return err
		}
	}
	return nil
}

// repairTail drops a torn last line (a crash or a full disk in the middle
// of a write), so the next line starts on a line of its own instead of
// being glued to the fragment and lost to every JSON-lines reader.
func (a *auditLog) repairTail() error {
	last := make([]byte, 1)
	if _, err := a.f.ReadAt(last, a.size-1); err != nil {
		return fmt.Errorf("egress audit: read tail: %w", err)
	}
	if last[0] == '\n' {
		return nil
	}
	const chunk = 64 << 10
	end := a.size
	for end > 0 {
		start := max(end-chunk, 0)
		buf := make([]byte, end-start)
		if _, err := a.f.ReadAt(buf, start); err != nil {
			return fmt.Errorf("egress audit: read tail: %w", err)
		}
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			end = start + int64(i) + 1
			break
		}
		end = start
	}
	if err := a.f.Truncate(end); err != nil {
		return fmt.Errorf("egress audit: repair torn last line: %w", err)
	}
	a.size = end
	return nil
}

// Write appends one event. A write error is returned (for the operational
// log) and kept for Close; the decision it records has already been
// enforced either way.
func (a *auditLog) Write(e Event) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("egress audit: encode: %w", err)
	}
	line = append(line, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return errors.New("egress audit: log is closed")
	}
	if a.size+int64(len(line)) > a.maxBytes && a.size > 0 {
		if err := a.rotate(); err != nil {
			a.err = cmp.Or(a.err, err)
			if a.f == nil {
				return err
			}
		}
	}
	// One write per line (O_APPEND): lines never interleave. A short
	// write is cut back off, so no torn fragment is left for the next
	// line to be glued to.
	n, err := a.f.Write(line)
	if err == nil && n < len(line) {
		err = io.ErrShortWrite
	}
	if err != nil {
		if n > 0 {
			_ = a.f.Truncate(a.size)
		}
		err = fmt.Errorf("egress audit: write: %w; free space under %s (egress that cannot be audited is refused)", err, a.dir)
		a.err = cmp.Or(a.err, err)
		return err
	}
	a.size += int64(n)
	return nil
}

func (a *auditLog) rotate() error {
	a.f.Close()
	a.f = nil
	stamp := time.Now().UTC().Format("20060102T150405.000000000")
	if err := os.Rename(filepath.Join(a.dir, auditName), filepath.Join(a.dir, "egress-"+stamp+".jsonl")); err != nil {
		return fmt.Errorf("egress audit: rotate: %w", err)
	}
	entries, _ := os.ReadDir(a.dir)
	var old []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "egress-") && strings.HasSuffix(e.Name(), ".jsonl") {
			old = append(old, e.Name())
		}
	}
	sort.Strings(old)
	for len(old) > a.keep {
		os.Remove(filepath.Join(a.dir, old[0]))
		old = old[1:]
	}
	return a.open()
}

func (a *auditLog) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f != nil {
		if err := a.f.Close(); err != nil && a.err == nil {
			a.err = err
		}
		a.f = nil
	}
	return a.err
}
