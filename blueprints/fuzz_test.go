package blueprints

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseEvaluate feeds arbitrary source through parsing, evaluation
// and formatting. Invariants: nothing panics; a blueprint without errors
// marshals to JSON and every sandbox's effective policy passes
// policy.Validate (the evaluator must never hand enforcers a policy they
// would refuse); credentials never reach a sandbox environment.
func FuzzParseEvaluate(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.hcl")
	more, _ := filepath.Glob("../examples/*/*.hcl")
	for _, s := range append(seeds, more...) {
		if b, err := readFileQuiet(s); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		l := NewLoader(Options{Schemas: testSchemas(), LookupEnv: testEnv})
		bp, diags := l.LoadSources(context.Background(), "testdata/valid", map[string][]byte{"fuzz.hcl": src})
		_ = FormatDiagnostics(l.Files(), diags, 0)
		_, _ = Format("fuzz.hcl", src)
		if diags.HasErrors() {
			if bp != nil {
				t.Fatal("a blueprint was returned despite errors")
			}
			return
		}
		if bp == nil {
			t.Fatal("no blueprint and no errors")
		}
		if _, err := json.Marshal(bp); err != nil {
			t.Fatalf("blueprint does not marshal: %v", err)
		}
		for _, s := range bp.Sandboxes {
			if s.Policy == nil {
				t.Fatalf("sandbox %s has no effective policy", s.Name)
			}
			if err := s.Policy.Validate(); err != nil {
				t.Fatalf("sandbox %s: evaluator produced an invalid policy: %v", s.Name, err)
			}
			for k, v := range s.Environment {
				if strings.Contains(v, `"credential"`) {
					t.Fatalf("sandbox %s: credential placeholder in environment %s", s.Name, k)
				}
			}
		}
	})
}
