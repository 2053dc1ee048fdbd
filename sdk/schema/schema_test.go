package schema

import (
	"encoding/json"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

func TestSpecDecodesWithDefaultsAndNesting(t *testing.T) {
	t.Parallel()
	s := Schema{Block: Block{
		Attributes: []Attribute{
			{Name: "base_url", Required: true},
			{Name: "dims", Type: "number", Default: json.RawMessage(`256`)},
			{Name: "headers", Type: "map(string)"},
		},
		Blocks: []NestedBlock{{Name: "retry", Nesting: NestingSingle, Block: Block{
			Attributes: []Attribute{{Name: "max", Type: "number"}},
		}}},
	}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	spec, err := s.Spec()
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig([]byte("base_url = \"http://x\"\nretry {\n  max = 3\n}\n"), "c.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	v, diags := hcldec.Decode(f.Body, spec, nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	raw, err := EncodeJSON(v)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got["base_url"] != "http://x" || got["dims"] != float64(256) {
		t.Fatalf("decoded %s", raw)
	}
	if r, _ := got["retry"].(map[string]any); r["max"] != float64(3) {
		t.Fatalf("retry not decoded: %s", raw)
	}
}

func TestSpecRejectsUnknownAndMissing(t *testing.T) {
	t.Parallel()
	s := Schema{Block: Block{Attributes: []Attribute{{Name: "a", Required: true}}}}
	spec, err := s.Spec()
	if err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]string{
		"unknown": "a = \"x\"\nb = 1\n",
		"missing": "",
	} {
		f, _ := hclsyntax.ParseConfig([]byte(src), "c.hcl", hcl.InitialPos)
		if _, diags := hcldec.Decode(f.Body, spec, nil); !diags.HasErrors() {
			t.Errorf("%s: expected a diagnostic", name)
		}
	}
}

func TestValidateCatchesBadDeclarations(t *testing.T) {
	t.Parallel()
	cases := map[string]Schema{
		"dup":          {Block: Block{Attributes: []Attribute{{Name: "a"}, {Name: "a"}}}},
		"badtype":      {Block: Block{Attributes: []Attribute{{Name: "a", Type: "strang"}}}},
		"baddefault":   {Block: Block{Attributes: []Attribute{{Name: "a", Type: "number", Default: json.RawMessage(`"x"`)}}}},
		"reqdefault":   {Block: Block{Attributes: []Attribute{{Name: "a", Required: true, Default: json.RawMessage(`"x"`)}}}},
		"badnesting":   {Block: Block{Blocks: []NestedBlock{{Name: "b", Nesting: "set"}}}},
		"emptyattname": {Block: Block{Attributes: []Attribute{{}}}},
	}
	for name, s := range cases {
		if err := s.Validate(); err == nil {
			t.Errorf("%s: Validate accepted a bad schema", name)
		}
	}
}
