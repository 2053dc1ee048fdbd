package runtime

import (
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/blueprints"
)

// TestRoutesForTimeouts checks a model block's timeouts reach its route:
// connect as the plugin's dial bound, total as the whole-call bound, and
// the first-chunk bound as first_byte when that is shorter than total.
func TestRoutesForTimeouts(t *testing.T) {
	bp := &blueprints.Blueprint{Inference: &blueprints.Inference{Default: "a", Models: []*blueprints.Model{
		{Alias: "a", Provider: "openai", Model: "m", Timeouts: blueprints.Timeouts{
			Connect: blueprints.Duration(2 * time.Second), FirstByte: blueprints.Duration(30 * time.Second), Total: blueprints.Duration(5 * time.Minute)}},
		{Alias: "b", Provider: "openai", Model: "m"},
	}}}
	routes, _, err := routesFor(bp)
	if err != nil {
		t.Fatal(err)
	}
	a := routes.Models["a"]
	if a.Connect != 2*time.Second || a.Timeout != 30*time.Second || a.Total != 5*time.Minute || a.Provider != "plugin.llm.openai" {
		t.Fatalf("route a: %+v", a)
	}
	if b := routes.Models["b"]; b.Connect != 0 || b.Timeout != 0 || b.Total != 0 {
		t.Fatalf("route b without timeouts: %+v", b)
	}
}
