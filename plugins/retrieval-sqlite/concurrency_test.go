package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// TestConcurrentWritersAndReaders runs upserts, deletes, queries and
// collection churn at once (under -race in CI): no deadlock, no race, and
// every document that survives is found by its own vector.
func TestConcurrentWritersAndReaders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := defaultConfig()
	cfg.HNSWThreshold = 200 // the graph builds while writers run
	s := openTest(t, t.TempDir(), cfg)
	if _, err := s.CreateCollection(ctx, "c", 16); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range 8 {
				docs := randomDocs(r, 20, 16)
				for j := range docs {
					docs[j].ID = fmt.Sprintf("w%d-%d-%d", w, i, j)
				}
				if _, err := s.Upsert(ctx, "c", docs); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Delete(ctx, &retrieval.DeleteRequest{Collection: "c", IDs: []string{docs[0].ID}}); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Query(ctx, &retrieval.QueryRequest{Collection: "c", Vector: docs[1].Vector, TopK: 5}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(9, 9))
		for i := range 8 {
			name := fmt.Sprintf("tmp%d", i%2)
			if _, err := s.CreateCollection(ctx, name, 16); err != nil {
				t.Error(err)
				return
			}
			if _, err := s.CreateCollection(ctx, "c", 16); err != nil {
				t.Error(err)
				return
			}
			if _, err := s.Upsert(ctx, name, randomDocs(r, 5, 16)); err != nil && status.CodeOf(err) != status.NotFound {
				t.Error(err)
				return
			}
			if err := s.DeleteCollection(ctx, name); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	c, _ := s.get("c")
	c.mu.RLock()
	live := c.vec.live()
	c.mu.RUnlock()
	if live != 3*8*19 {
		t.Fatalf("%d live vectors, want %d", live, 3*8*19)
	}
}
