package blueprints

import "testing"

func TestLaunchOrderStartsTargetsFirst(t *testing.T) {
	t.Parallel()
	bp := mustLoad(t, `
plugin "memory" "m" {
  source = "builtin/memory-sqlite"
  config {
    embeddings = plugin.embeddings.z
  }
}

plugin "retrieval" "r" {
  source = "builtin/retrieval-sqlite"
  config {
    embeddings = plugin.embeddings.z
  }
}

plugin "embeddings" "z" {
  source = "builtin/embeddings-hash"
}

plugin "llm" "rec" {
  source = "./plugins/relay"
  config {
    cassette = "c.json"
    mode     = "record"
    upstream = plugin.llm.up
  }
}

plugin "llm" "up" {
  source = "builtin/llm-openai"
}
`, Options{})
	pos := map[string]int{}
	for i, p := range bp.LaunchOrder() {
		pos[p.Address] = i
	}
	if len(pos) != 5 {
		t.Fatalf("launch order has %d plugins", len(pos))
	}
	for _, edge := range [][2]string{
		{"plugin.embeddings.z", "plugin.memory.m"},
		{"plugin.embeddings.z", "plugin.retrieval.r"},
		{"plugin.llm.up", "plugin.llm.rec"},
	} {
		if pos[edge[0]] > pos[edge[1]] {
			t.Errorf("%s starts after %s, which needs it", edge[0], edge[1])
		}
	}
}

func TestWiringCycle(t *testing.T) {
	t.Parallel()
	wantError(t, `
plugin "llm" "a" {
  source = "./plugins/relay"
  config {
    cassette = "a.json"
    mode     = "record"
    upstream = plugin.llm.b
  }
}

plugin "llm" "b" {
  source = "./plugins/relay"
  config {
    cassette = "b.json"
    mode     = "record"
    upstream = plugin.llm.a
  }
}
`, Options{}, "plugin.llm.a → plugin.llm.b → plugin.llm.a")
}
