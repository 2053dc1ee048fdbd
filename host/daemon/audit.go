package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ControlAuditPath is the log of every mutating control call and every
// refused one, with its caller.
func ControlAuditPath(home string) string { return filepath.Join(home, "logs", "control.jsonl") }

// ControlEvent is one line of the control audit log.
type ControlEvent struct {
	Time    time.Time `json:"time"`
	Caller  string    `json:"caller"`
	Method  string    `json:"method"`
	Sandbox string    `json:"sandbox,omitempty"`
	// Outcome is "ok", "denied" (authentication or role) or "error".
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
}

// controlAudit appends ControlEvents to a 0600 file. A failed write is
// reported on the daemon's log once per failure streak; the call itself
// has already happened, so it is not undone.
type controlAudit struct {
	mu     sync.Mutex
	f      *os.File
	failed bool
}

func openControlAudit(home string) (*controlAudit, error) {
	p := ControlAuditPath(home)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, fmt.Errorf("control audit log: %w", err)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("control audit log: %w", err)
	}
	return &controlAudit{f: f}, nil
}

// record writes the event of a finished call: every mutating call and
// every refusal. Reads that succeed are not recorded (the log would be
// mostly `sandbox list` polling).
func (a *controlAudit) record(ci *callInfo, method string, cls Class, err error) {
	if a == nil {
		return
	}
	code := status.Code(err)
	denied := code == codes.Unauthenticated || code == codes.PermissionDenied
	if !cls.Mutating && !denied {
		return
	}
	ev := ControlEvent{Time: time.Now().UTC(), Caller: "unauthenticated", Method: method, Sandbox: ci.sandbox, Outcome: "ok"}
	if ci.caller != nil {
		ev.Caller = ci.caller.Subject
	}
	switch {
	case denied:
		ev.Outcome, ev.Error = "denied", status.Convert(err).Message()
	case err != nil:
		ev.Outcome, ev.Error = "error", status.Convert(err).Message()
	}
	b, _ := json.Marshal(ev)
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, werr := a.f.Write(append(b, '\n')); werr != nil {
		if !a.failed {
			fmt.Fprintf(os.Stderr, "daemon: cannot write the control audit log: %v\n", werr)
		}
		a.failed = true
		return
	}
	a.failed = false
}

func (a *controlAudit) close() {
	if a != nil {
		a.f.Close()
	}
}
