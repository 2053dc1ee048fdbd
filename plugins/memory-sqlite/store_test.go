package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/status"
)

func ids(ms []memory.Memory) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Text)
	}
	sort.Strings(out)
	return out
}

func TestScopeRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := inProcess(t, t.TempDir(), nil).Memory()
	shared := memory.Scope{Agent: "a", User: "u"}
	s1 := memory.Scope{Agent: "a", User: "u", Session: "s1"}
	s2 := memory.Scope{Agent: "a", User: "u", Session: "s2"}
	other := memory.Scope{Agent: "a", User: "v"}
	otherAgent := memory.Scope{Agent: "b", User: "u"}
	for _, tc := range []struct {
		scope memory.Scope
		text  string
	}{{shared, "shared note about coffee"}, {s1, "s1 note about coffee"}, {s2, "s2 note about coffee"}, {other, "v note about coffee"}, {otherAgent, "b note about coffee"}} {
		if _, err := st.Remember(ctx, tc.scope, tc.text, map[string]any{"n": 1}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		reader memory.Scope
		want   []string
	}{
		{shared, []string{"shared note about coffee"}},
		{s1, []string{"s1 note about coffee", "shared note about coffee"}},
		{s2, []string{"s2 note about coffee", "shared note about coffee"}},
		{other, []string{"v note about coffee"}},
		{otherAgent, []string{"b note about coffee"}},
	} {
		page, err := st.List(ctx, tc.reader, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(page.Memories); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("List as %+v = %v, want %v", tc.reader, got, tc.want)
		}
		rec, err := st.Recall(ctx, tc.reader, "coffee", 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rec {
			got = append(got, r.Memory.Text)
			if r.Score < 0 || r.Score > 1 {
				t.Errorf("score %v outside [0,1]", r.Score)
			}
			if !tc.reader.Sees(r.Memory.Scope) {
				t.Errorf("reader %+v recalled %+v", tc.reader, r.Memory.Scope)
			}
		}
		sort.Strings(got)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Recall as %+v = %v, want %v", tc.reader, got, tc.want)
		}
	}

	// A session cannot forget the user's shared memories, nor probe
	// another user's ids; the user (no session) forgets everything.
	all, _ := st.List(ctx, shared, 0, "")
	sharedID := all.Memories[0].ID
	vPage, _ := st.List(ctx, other, 0, "")
	if n, err := st.Forget(ctx, s1, []string{sharedID, vPage.Memories[0].ID}, false); err != nil || n != 0 {
		t.Fatalf("session forgot %d (err %v) of shared/other memories, want 0", n, err)
	}
	if n, err := st.Forget(ctx, s1, nil, true); err != nil || n != 1 {
		t.Fatalf("session forget all = %d, %v; want its 1 memory", n, err)
	}
	if n, err := st.Forget(ctx, shared, nil, true); err != nil || n != 2 {
		t.Fatalf("user forget all = %d, %v; want shared + s2", n, err)
	}
	if page, _ := st.List(ctx, other, 0, ""); len(page.Memories) != 1 {
		t.Fatalf("other user's memory went too: %+v", page)
	}
	if _, err := st.Forget(ctx, shared, nil, false); status.CodeOf(err) != status.InvalidArgument {
		t.Fatalf("forget with neither ids nor all: %v, want invalid argument", err)
	}
	if _, err := st.Remember(ctx, shared, "  ", nil); status.CodeOf(err) != status.InvalidArgument {
		t.Fatalf("empty text: %v, want invalid argument", err)
	}
}

func TestListPagesNewestFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := inProcess(t, t.TempDir(), nil).Memory()
	sc := memory.Scope{Agent: "a", User: "u", Session: "s"}
	for i := range 25 {
		if _, err := st.Remember(ctx, sc, fmt.Sprintf("memory %02d", i), map[string]any{"i": i, "tags": []string{"x"}}); err != nil {
			t.Fatal(err)
		}
	}
	var texts []string
	token := ""
	pages := 0
	for {
		p, err := st.List(ctx, sc, 10, token)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, m := range p.Memories {
			texts = append(texts, m.Text)
			if m.Metadata["tags"].([]any)[0] != "x" || m.CreatedAt.IsZero() {
				t.Fatalf("metadata or time lost: %+v", m)
			}
		}
		if token = p.NextPageToken; token == "" {
			break
		}
	}
	if pages != 3 || len(texts) != 25 || texts[0] != "memory 24" || texts[24] != "memory 00" {
		t.Fatalf("pages=%d got %d: first %q last %q", pages, len(texts), texts[0], texts[len(texts)-1])
	}
	if _, err := st.List(ctx, sc, 10, "garbage"); status.CodeOf(err) != status.InvalidArgument {
		t.Fatalf("bad token: %v", err)
	}
}

func TestRecallBM25WithoutEmbedder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := inProcess(t, t.TempDir(), nil).Memory()
	sc := memory.Scope{Agent: "a", User: "u"}
	for _, txt := range []string{
		"The user deploys to Kubernetes on Fridays",
		"The user prefers tabs over spaces",
		"Lunch is usually at noon",
	} {
		if _, err := st.Remember(ctx, sc, txt, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Stemming: "deploying" finds "deploys"; FTS syntax in user text is
	// quoted, never parsed.
	rec, err := st.Recall(ctx, sc, `deploying "kubernetes" NEAR( AND`, 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec) != 1 || !strings.Contains(rec[0].Memory.Text, "Kubernetes") || rec[0].Score != 1 {
		t.Fatalf("recall = %+v", rec)
	}
	if rec, _ := st.Recall(ctx, sc, "kubernetes", 5, 1.01); len(rec) != 0 {
		t.Fatalf("minScore ignored: %+v", rec)
	}
}

// TestHybridRecall uses the real embeddings-hash plugin: a memory that
// shares no word with the query (British vs American spelling) is found by
// the vector side, and an exact keyword match ranks first.
func TestHybridRecall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := inProcess(t, t.TempDir(), hashEmbedder(t)).Memory()
	sc := memory.Scope{Agent: "a", User: "u", Session: "s"}
	for _, txt := range []string{
		"The user's favourite colour is teal",
		"The build uses Go 1.26 and make",
		"Quarterly revenue grew in Europe",
	} {
		if _, err := st.Remember(ctx, sc, txt, nil); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := st.Recall(ctx, sc, "favorite color", 3, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec) == 0 || !strings.Contains(rec[0].Memory.Text, "teal") {
		t.Fatalf("vector side missed the spelling variant: %+v", rec)
	}
	rec, err = st.Recall(ctx, sc, "Go build make", 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec) == 0 || !strings.Contains(rec[0].Memory.Text, "build") {
		t.Fatalf("keyword match not first: %+v", rec)
	}
	for i, r := range rec {
		if r.Score < 0 || r.Score > 1 || (i > 0 && r.Score > rec[i-1].Score) {
			t.Fatalf("scores not in [0,1] best first: %+v", rec)
		}
	}
	// Forgotten memories leave the vector index too.
	if n, err := st.Forget(ctx, sc, []string{rec[0].Memory.ID}, false); err != nil || n != 1 {
		t.Fatalf("forget: %d %v", n, err)
	}
	rec, _ = st.Recall(ctx, sc, "Go build make", 3, 0)
	for _, r := range rec {
		if strings.Contains(r.Memory.Text, "build") {
			t.Fatalf("forgotten memory recalled: %+v", r)
		}
	}
}

// TestBackfillOnWiringAnEmbedder: memories stored before an embedder was
// wired become recallable by meaning after a reconfigure.
func TestBackfillOnWiringAnEmbedder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	c := inProcess(t, dir, nil)
	sc := memory.Scope{Agent: "a", User: "u"}
	if _, err := c.Memory().Remember(ctx, sc, "The user's favourite colour is teal", nil); err != nil {
		t.Fatal(err)
	}
	if rec, _ := c.Memory().Recall(ctx, sc, "favorite color", 3, 0); len(rec) != 0 {
		t.Fatalf("BM25 alone should miss the spelling variant: %+v", rec)
	}
	configure(t, c, dir, `{}`, hashEmbedder(t))
	rec, err := c.Memory().Recall(ctx, sc, "favorite color", 3, 0.05)
	if err != nil || len(rec) != 1 {
		t.Fatalf("after backfill: %+v %v", rec, err)
	}
}

func TestExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	st := inProcess(t, dir, nil).Memory()
	for _, sc := range []memory.Scope{{Agent: "a", User: "u"}, {Agent: "a", User: "v", Session: "s"}} {
		if _, err := st.Remember(ctx, sc, "note for "+sc.User, map[string]any{"k": "v"}); err != nil {
			t.Fatal(err)
		}
	}
	var out, errOut bytes.Buffer
	if code := runExport([]string{"-db", filepath.Join(dir, "memory.db"), "-agent", "a", "-user", "v"}, &out, &errOut); code != 0 {
		t.Fatalf("export exit %d: %s", code, errOut.String())
	}
	var line exportLine
	if err := json.Unmarshal(out.Bytes(), &line); err != nil || line.User != "v" || line.Session != "s" || line.Text != "note for v" || line.Metadata["k"] != "v" {
		t.Fatalf("export = %q (%v)", out.String(), err)
	}
	if code := runExport(nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "-db is required") {
		t.Fatalf("export without -db: %d %q", code, errOut.String())
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	p := newPlugin()
	if err := p.ConfigSchema().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		raw, path string
	}{
		{`{"vector_weight":2}`, "vector_weight"},
		{`{"keyword_weight":-1}`, "keyword_weight"},
		{`{"vector_weight":0,"keyword_weight":0}`, "keyword_weight"},
	} {
		ds := p.ValidateConfig(context.Background(), json.RawMessage(tc.raw))
		if len(ds) != 1 || ds[0].Path[0] != tc.path {
			t.Errorf("%s: %+v, want one diagnostic at %s", tc.raw, ds, tc.path)
		}
	}
	if ds := p.ValidateConfig(context.Background(), json.RawMessage(`{"path":"x.db","vector_weight":0.5,"embeddings":{"name":"x"}}`)); len(ds) != 0 {
		t.Errorf("valid config rejected: %+v", ds)
	}
}
