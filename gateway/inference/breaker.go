package inference

import (
	"sync"
	"time"
)

// Breaker settings: after FailureThreshold consecutive failures a
// provider is skipped for Cooldown, then one trial request decides.
type BreakerSettings struct {
	FailureThreshold int
	Cooldown         time.Duration
}

// DefaultBreaker is used when Config.Breaker is zero.
var DefaultBreaker = BreakerSettings{FailureThreshold: 5, Cooldown: 30 * time.Second}

// Health tracks each provider's circuit. One Health is shared by every
// sandbox's router, because a provider outage is not per sandbox.
type Health struct {
	mu       sync.Mutex
	settings BreakerSettings
	circuits map[string]*circuit
}

type circuit struct {
	failures  int
	openUntil time.Time
	trial     bool
	lastError string
	lastOK    time.Time
}

// NewHealth returns a Health with the given settings (zero: defaults).
func NewHealth(s BreakerSettings) *Health {
	if s.FailureThreshold <= 0 {
		s.FailureThreshold = DefaultBreaker.FailureThreshold
	}
	if s.Cooldown <= 0 {
		s.Cooldown = DefaultBreaker.Cooldown
	}
	return &Health{settings: s, circuits: map[string]*circuit{}}
}

func (h *Health) get(provider string) *circuit {
	c := h.circuits[provider]
	if c == nil {
		c = &circuit{}
		h.circuits[provider] = c
	}
	return c
}

// allow reports whether a request may go to provider now. While open it
// refuses until the cooldown passes, then lets exactly one trial through.
func (h *Health) allow(provider string, now time.Time) (bool, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.get(provider)
	if c.openUntil.IsZero() {
		return true, time.Time{}
	}
	if now.Before(c.openUntil) || c.trial {
		return false, c.openUntil
	}
	c.trial = true
	return true, time.Time{}
}

func (h *Health) success(provider string, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.get(provider)
	c.failures, c.openUntil, c.trial, c.lastOK = 0, time.Time{}, false, now
}

// abandon ends a trial whose outcome says nothing about the provider (the
// agent went away), so the next request may try again.
func (h *Health) abandon(provider string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.get(provider).trial = false
}

func (h *Health) failure(provider string, now time.Time, msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.get(provider)
	c.failures++
	c.lastError = msg
	if c.trial || c.failures >= h.settings.FailureThreshold {
		c.openUntil = now.Add(h.settings.Cooldown)
		c.trial = false
	}
}

// ProviderHealth is one provider's circuit state for status output.
type ProviderHealth struct {
	Provider            string    `json:"provider"`
	State               string    `json:"state"` // closed, open, half-open
	ConsecutiveFailures int       `json:"consecutive_failures"`
	OpenUntil           time.Time `json:"open_until,omitzero"`
	LastError           string    `json:"last_error,omitempty"`
	LastSuccess         time.Time `json:"last_success,omitzero"`
}

// Snapshot reports every provider seen so far.
func (h *Health) Snapshot(now time.Time) []ProviderHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]ProviderHealth, 0, len(h.circuits))
	for _, name := range keys(h.circuits) {
		c := h.circuits[name]
		st := "closed"
		switch {
		case c.trial:
			st = "half-open"
		case !c.openUntil.IsZero() && now.Before(c.openUntil):
			st = "open"
		case !c.openUntil.IsZero():
			st = "half-open"
		}
		out = append(out, ProviderHealth{Provider: name, State: st, ConsecutiveFailures: c.failures, OpenUntil: c.openUntil, LastError: c.lastError, LastSuccess: c.lastOK})
	}
	return out
}
