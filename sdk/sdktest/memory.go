package sdktest

import (
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/status"
)

var memoryTexts = []string{
	"The user's favourite drink is green tea.",
	"The user is allergic to peanuts.",
	"The deployment runs on Kubernetes in eu-west-1.",
}

// Memory checks the Store contract: Remember returns a complete memory;
// Recall finds a memory by its own text first, best first, within limit
// and minScore; scopes are isolated (another user or agent sees nothing,
// another session sees only shared memories, per Scope.Sees); List pages
// through everything exactly once; Forget removes by ID and by scope
// (per Scope.Owns) and ignores IDs outside the scope; empty text is
// InvalidArgument.
func Memory(t *testing.T, p plugin.Plugin, opts ...Option) {
	t.Helper()
	o := collect(opts)
	ctx := suiteContext(t, o)
	c, _ := start(t, p, o)
	s := c.Memory()
	run := fmt.Sprintf("sdktest-%d", time.Now().UnixNano())
	alice := memory.Scope{Agent: run, User: "alice", Session: "s1"}
	aliceShared := memory.Scope{Agent: run, User: "alice"}
	aliceOther := memory.Scope{Agent: run, User: "alice", Session: "s2"}
	bob := memory.Scope{Agent: run, User: "bob", Session: "s1"}
	otherAgent := memory.Scope{Agent: run + "-other", User: "alice", Session: "s1"}

	remember := func(t *testing.T, sc memory.Scope, text string, md map[string]any) memory.Memory {
		t.Helper()
		m, err := s.Remember(ctx, sc, text, md)
		if err != nil {
			t.Fatalf("Remember(%+v, %q): %v", sc, text, err)
		}
		if m.ID == "" || m.Text != text || m.Scope != sc || m.CreatedAt.IsZero() {
			t.Fatalf("Remember returned %+v; want an ID, the text, scope %+v and a creation time", m, sc)
		}
		if !sameJSON(m.Metadata, md) {
			t.Errorf("Remember returned metadata %v, want %v", m.Metadata, md)
		}
		return m
	}

	var stored []memory.Memory
	for i, text := range memoryTexts {
		stored = append(stored, remember(t, alice, text, map[string]any{"n": i, "source": "sdktest"}))
	}
	shared := remember(t, aliceShared, "The user's name is Alice.", nil)

	t.Run("recall finds by own text", func(t *testing.T) {
		for _, m := range stored {
			got, err := s.Recall(ctx, alice, m.Text, 10, 0)
			if err != nil {
				t.Fatalf("Recall: %v", err)
			}
			if len(got) == 0 || got[0].Memory.ID != m.ID {
				t.Errorf("Recall(%q) returned %v first; want %s", m.Text, scoredIDs(got), m.ID)
				continue
			}
			if got[0].Memory.Text != m.Text || !sameJSON(got[0].Memory.Metadata, m.Metadata) {
				t.Errorf("recalled %+v, stored %+v", got[0].Memory, m)
			}
			if !sort.SliceIsSorted(got, func(a, b int) bool { return got[a].Score > got[b].Score }) {
				t.Errorf("Recall is not sorted best first: %v", scoredScores(got))
			}
		}
	})

	t.Run("limit and minScore", func(t *testing.T) {
		got, err := s.Recall(ctx, alice, memoryTexts[0], 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Errorf("Recall with limit 1 returned %d memories", len(got))
		}
		all, err := s.Recall(ctx, alice, memoryTexts[0], 10, 0)
		if err != nil || len(all) == 0 {
			t.Fatalf("Recall: %v, %d results", err, len(all))
		}
		min := all[0].Score
		got, err = s.Recall(ctx, alice, memoryTexts[0], 10, min)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			t.Errorf("Recall with minScore %v (the best score) returned nothing", min)
		}
		for _, sm := range got {
			if sm.Score < min {
				t.Errorf("Recall with minScore %v returned score %v", min, sm.Score)
			}
		}
	})

	t.Run("scopes are isolated", func(t *testing.T) {
		for name, sc := range map[string]memory.Scope{"another user": bob, "another agent": otherAgent} {
			got, err := s.Recall(ctx, sc, memoryTexts[0], 10, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 0 {
				t.Errorf("%s recalled alice's memories %v", name, scoredIDs(got))
			}
			if page, err := s.List(ctx, sc, 100, ""); err != nil || len(page.Memories) != 0 {
				t.Errorf("%s listed %d of alice's memories (err %v)", name, len(page.Memories), err)
			}
		}
		got, err := s.Recall(ctx, aliceOther, memoryTexts[0], 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		if ids := scoredIDs(got); slices.Contains(ids, stored[0].ID) {
			t.Errorf("session s2 recalled session s1's memory %s", stored[0].ID)
		}
		got, err = s.Recall(ctx, aliceOther, shared.Text, 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(scoredIDs(got), shared.ID) {
			t.Errorf("session s2 did not recall the user's shared memory %s (got %v)", shared.ID, scoredIDs(got))
		}
	})

	t.Run("list pages", func(t *testing.T) {
		want := []string{shared.ID}
		for _, m := range stored {
			want = append(want, m.ID)
		}
		var got []string
		token := ""
		for pages := 0; ; pages++ {
			if pages > len(want)+1 {
				t.Fatalf("List never returned an empty NextPageToken; tokens must end")
			}
			page, err := s.List(ctx, alice, 2, token)
			if err != nil {
				t.Fatalf("List(limit 2, %q): %v", token, err)
			}
			if len(page.Memories) > 2 {
				t.Errorf("List with limit 2 returned %d memories", len(page.Memories))
			}
			for _, m := range page.Memories {
				got = append(got, m.ID)
			}
			if page.NextPageToken == "" {
				break
			}
			token = page.NextPageToken
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("paging through List returned %v, want each of %v exactly once", got, want)
		}
	})

	t.Run("invalid", func(t *testing.T) {
		if _, err := s.Remember(ctx, alice, "", nil); status.CodeOf(err) != status.InvalidArgument {
			t.Errorf("Remember of empty text: %v, want InvalidArgument", err)
		}
		if _, err := s.Forget(ctx, alice, nil, false); status.CodeOf(err) != status.InvalidArgument {
			t.Errorf("Forget with neither ids nor all: %v, want InvalidArgument", err)
		}
	})

	t.Run("forget", func(t *testing.T) {
		if n, err := s.Forget(ctx, bob, []string{stored[0].ID}, false); err != nil || n != 0 {
			t.Errorf("bob forgetting alice's memory = %d, %v; want 0 and no error", n, err)
		}
		if n, err := s.Forget(ctx, alice, []string{stored[0].ID}, false); err != nil || n != 1 {
			t.Fatalf("Forget by id = %d, %v; want 1", n, err)
		}
		if ids := listIDs(t, s, alice); slices.Contains(ids, stored[0].ID) {
			t.Errorf("forgotten memory %s is still listed", stored[0].ID)
		}
		if got, _ := s.Recall(ctx, alice, stored[0].Text, 10, 0); slices.Contains(scoredIDs(got), stored[0].ID) {
			t.Errorf("forgotten memory %s is still recalled", stored[0].ID)
		}
		// Forget all in a session leaves the user's shared memories.
		if n, err := s.Forget(ctx, alice, nil, true); err != nil || n != len(stored)-1 {
			t.Errorf("Forget all in session s1 = %d, %v; want %d", n, err, len(stored)-1)
		}
		if ids := listIDs(t, s, alice); !slices.Equal(ids, []string{shared.ID}) {
			t.Errorf("after forgetting session s1, alice's s1 lists %v; want only the shared %s", ids, shared.ID)
		}
		remember(t, aliceOther, "in session two", nil)
		if n, err := s.Forget(ctx, aliceShared, nil, true); err != nil || n != 2 {
			t.Errorf("Forget all without a session = %d, %v; want 2 (shared + session s2)", n, err)
		}
		if ids := listIDs(t, s, aliceOther); len(ids) != 0 {
			t.Errorf("after forgetting everything, alice still has %v", ids)
		}
	})
}

func listIDs(t *testing.T, s memory.Store, sc memory.Scope) []string {
	t.Helper()
	page, err := s.List(t.Context(), sc, 100, "")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var ids []string
	for _, m := range page.Memories {
		ids = append(ids, m.ID)
	}
	return ids
}

func scoredIDs(ms []memory.Scored) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Memory.ID
	}
	return out
}

func scoredScores(ms []memory.Scored) []float64 {
	out := make([]float64, len(ms))
	for i, m := range ms {
		out[i] = m.Score
	}
	return out
}
