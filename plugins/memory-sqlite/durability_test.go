package main

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/memory"
)

// TestAcknowledgedWritesSurviveSIGKILL launches the real plugin binary,
// remembers items from several goroutines while a killer SIGKILLs the
// process mid-stream, relaunches it on the same state dir and checks that
// every Remember that returned success is there.
func TestAcknowledgedWritesSurviveSIGKILL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	sc := memory.Scope{Agent: "a", User: "u"}

	p := launch(t, "memory-sqlite")
	configure(t, p.Client, dir, `{}`, nil)
	st := p.Memory()

	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				m, err := st.Remember(ctx, sc, fmt.Sprintf("worker %d item %d", w, i), map[string]any{"i": i})
				if err != nil {
					return // the process is gone
				}
				mu.Lock()
				acked[m.ID] = true
				mu.Unlock()
			}
		}()
	}
	// Kill once a good number of writes are acknowledged, while more are
	// in flight.
	// The kill waits for 200 acknowledged writes, or for 20s once the 50
	// the check below needs are there (a loaded machine writes slowly);
	// two minutes is only a failure bound.
	started := time.Now()
	deadline := started.Add(2 * time.Minute)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 200 || (n >= 50 && time.Since(started) > 20*time.Second) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if len(acked) < 50 {
		t.Fatalf("only %d writes acknowledged before the kill; the test proves nothing", len(acked))
	}

	p2 := launch(t, "memory-sqlite")
	configure(t, p2.Client, dir, `{}`, nil)
	found := map[string]bool{}
	token := ""
	for {
		page, err := p2.Memory().List(ctx, sc, 1000, token)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Memories {
			found[m.ID] = true
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	var lost int
	for id := range acked {
		if !found[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged memories lost after SIGKILL", lost, len(acked))
	}
	t.Logf("%d acknowledged, %d present after SIGKILL (unacknowledged in-flight writes may also have committed)", len(acked), len(found))
}
