package egress

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Event is one audit record: one JSON line per decision. Allowed tunnels and
// requests are written when they end, so bytes and duration are final;
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
	Decision string    `json:"decision"` // allow, deny, closed, ask, answer, reload
	Reason   string    `json:"reason,omitempty"`
	IP       string    `json:"resolved_ip,omitempty"`
	BytesUp  int64     `json:"bytes_up"`
	BytesDn  int64     `json:"bytes_down"`
	Duration float64   `json:"duration_ms"`
	Status   int       `json:"status,omitempty"`
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
	f, err := os.OpenFile(filepath.Join(a.dir, auditName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("egress audit: open: %w; check permissions on %s", err, a.dir)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("egress audit: stat: %w", err)
	}
	a.f, a.size = f, st.Size()
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
	n, err := a.f.Write(line)
	a.size += int64(n)
	if err != nil {
		err = fmt.Errorf("egress audit: write: %w; check free space under %s", err, a.dir)
		a.err = cmp.Or(a.err, err)
		return err
	}
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
