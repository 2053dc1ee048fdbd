package plugins

import (
	"context"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// TestAbuse_R4_LargeMessagesCrossThePluginHop: a request between gRPC's
// default 4 MiB and the inference router's 32 MiB body limit reaches a
// real plugin process (it used to fail as ResourceExhausted, which the
// gateway reported as "429 rate limited"); one above plugin.MaxMessageBytes
// is refused as too large, not as a rate limit.
func TestAbuse_R4_LargeMessagesCrossThePluginHop(t *testing.T) {
	ctx := context.Background()
	m, _ := testManager(t, Options{})
	s, err := m.Start(ctx, helperSpec("serve"))
	if err != nil {
		t.Fatal(err)
	}
	in := strings.Repeat("abcdefgh", 6<<20/8) // 6 MiB
	resp, err := s.Embeddings().Embed(ctx, &embeddings.EmbedRequest{Inputs: []string{in}})
	if err != nil {
		t.Fatalf("a 6 MiB request: %v", err)
	}
	if len(resp.Vectors) != 1 {
		t.Fatalf("vectors: %d", len(resp.Vectors))
	}
	over := strings.Repeat("x", plugin.MaxMessageBytes+1)
	_, err = s.Embeddings().Embed(ctx, &embeddings.EmbedRequest{Inputs: []string{over}})
	if err == nil || !strings.Contains(err.Error(), "larger than max") {
		t.Fatalf("a request above plugin.MaxMessageBytes: %v", err)
	}
}
