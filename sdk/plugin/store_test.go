package plugin

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/status"
)

type closer struct {
	id     int
	closed atomic.Bool
}

func (c *closer) Close() error { c.closed.Store(true); return nil }

// A call holding the store keeps it open across a Swap; the swap finishes
// when the call releases it, and closes the old store then.
func TestStoreSwapWaitsForCalls(t *testing.T) {
	s := Store[*closer]{Name: "demo"}
	if _, _, err := s.Acquire(); status.CodeOf(err) != status.Unavailable {
		t.Fatalf("before configure: %v, want Unavailable", err)
	}
	first := &closer{id: 1}
	if err := s.Swap(false, func() (*closer, error) { return first, nil }); err != nil {
		t.Fatal(err)
	}
	got, release, err := s.Acquire()
	if err != nil || got != first {
		t.Fatalf("acquire: %v %v", got, err)
	}
	swapped := make(chan error)
	go func() { swapped <- s.Swap(false, func() (*closer, error) { return &closer{id: 2}, nil }) }()
	select {
	case <-swapped:
		t.Fatal("swap finished while a call held the store")
	case <-time.After(50 * time.Millisecond):
	}
	if first.closed.Load() {
		t.Fatal("the store was closed under a call")
	}
	release()
	if err := <-swapped; err != nil {
		t.Fatal(err)
	}
	if !first.closed.Load() {
		t.Fatal("the old store was not closed")
	}
	got, release, _ = s.Acquire()
	release()
	if got.id != 2 {
		t.Fatalf("after swap: store %d, want 2", got.id)
	}
}

// A failed open keeps the old store unless closeFirst asked to drop it.
func TestStoreSwapFailure(t *testing.T) {
	s := Store[*closer]{Name: "demo"}
	old := &closer{id: 1}
	_ = s.Swap(false, func() (*closer, error) { return old, nil })
	boom := errors.New("boom")
	if err := s.Swap(false, func() (*closer, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("swap: %v", err)
	}
	if got, release, err := s.Acquire(); err != nil || got != old || old.closed.Load() {
		t.Fatalf("after a failed open the old store should stay: %v %v closed=%v", got, err, old.closed.Load())
	} else {
		release()
	}
	if err := s.Swap(true, func() (*closer, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("swap: %v", err)
	}
	if !old.closed.Load() {
		t.Fatal("closeFirst did not close the old store")
	}
	if _, _, err := s.Acquire(); status.CodeOf(err) != status.Unavailable {
		t.Fatalf("after closeFirst and a failed open: %v, want Unavailable", err)
	}
}
