package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
)

// TestAcknowledgedUpsertsSurviveSIGKILL launches the real binary, upserts
// from several goroutines, SIGKILLs it mid-stream, relaunches it on the
// same state dir and finds every acknowledged document by its own vector.
func TestAcknowledgedUpsertsSurviveSIGKILL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bin := filepath.Join(t.TempDir(), "retrieval-sqlite")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/nemoclave/nemoclave/plugins/retrieval-sqlite").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	start := func() *plugin.Launched {
		l, err := plugin.Launch(ctx, plugin.LaunchOptions{Path: bin})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Kill)
		if ds, err := l.Configure(ctx, plugin.ConfigureOptions{Config: json.RawMessage(`{}`), StateDir: dir}); err != nil || len(ds) > 0 {
			t.Fatalf("configure: %v %+v", err, ds)
		}
		return l
	}
	p := start()
	if _, err := p.Retrieval().CreateCollection(ctx, "c", 8); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string][]float32{}
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; ; i++ {
				docs := randomDocs(r, 5, 8)
				for j := range docs {
					docs[j].ID = fmt.Sprintf("w%d-%d-%d", w, i, j)
				}
				if _, err := p.Retrieval().Upsert(ctx, "c", docs); err != nil {
					return // the process is gone
				}
				mu.Lock()
				for _, d := range docs {
					acked[d.ID] = d.Vector
				}
				mu.Unlock()
			}
		}()
	}
	// The kill waits for 300 acknowledged documents, or for 20s once the 50
	// the check below needs are there (a loaded machine writes slowly);
	// two minutes is only a failure bound.
	started := time.Now()
	deadline := started.Add(2 * time.Minute)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 || (n >= 50 && time.Since(started) > 20*time.Second) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if len(acked) < 50 {
		t.Fatalf("only %d documents acknowledged before the kill; the test proves nothing", len(acked))
	}
	st := start().Retrieval()
	for id, v := range acked {
		ms, err := st.Query(ctx, &retrieval.QueryRequest{Collection: "c", Vector: v, TopK: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 1 || ms[0].Document.ID != id {
			t.Fatalf("acknowledged document %s lost after SIGKILL (query returned %v)", id, ms)
		}
	}
	t.Logf("%d acknowledged documents, all present after SIGKILL", len(acked))
}
