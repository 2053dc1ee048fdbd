package plugins

import (
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// Every call has a deadline: the kind's default unless the plugin block
// sets timeout (Spec.CallTimeout), and a fallback for a kind without one.
func TestCallTimeoutDefaultsAndOverride(t *testing.T) {
	t.Parallel()
	for _, k := range plugin.Kinds() {
		if DefaultCallTimeouts[k] <= 0 {
			t.Errorf("kind %s has no default call deadline", k)
		}
	}
	for _, c := range []struct {
		kind     string
		override time.Duration
		want     time.Duration
	}{
		{"llm", 0, 10 * time.Minute},
		{"memory", 0, 2 * time.Minute},
		{"llm", 90 * time.Second, 90 * time.Second},
		{"unknown", 0, 5 * time.Minute},
	} {
		s := &Supervised{kind: c.kind, spec: Spec{CallTimeout: c.override}}
		if got := s.callTimeout(); got != c.want {
			t.Errorf("%s with timeout %v: deadline %v, want %v", c.kind, c.override, got, c.want)
		}
	}
}
