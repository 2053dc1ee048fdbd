package retrieval_test

import (
	"testing"

	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/status"
)

func TestMatchFilters(t *testing.T) {
	t.Parallel()
	meta := map[string]any{
		"lang":    "go",
		"stars":   42,
		"score":   0.5,
		"tags":    []string{"cli", "plugin"},
		"date":    "2026-11-26T07:00:00Z",
		"draft":   false,
		"nothing": nil,
		"author":  map[string]any{"name": "ada", "age": 36.0},
	}
	f := func(field string, op retrieval.Op, v any) retrieval.Filter {
		return retrieval.Filter{Field: field, Op: op, Value: v}
	}
	for _, tc := range []struct {
		name    string
		filters []retrieval.Filter
		want    bool
	}{
		{"no filters", nil, true},
		{"eq string", []retrieval.Filter{f("lang", retrieval.OpEq, "go")}, true},
		{"eq string mismatch", []retrieval.Filter{f("lang", retrieval.OpEq, "rust")}, false},
		{"eq int against float", []retrieval.Filter{f("stars", retrieval.OpEq, 42.0)}, true},
		{"eq bool", []retrieval.Filter{f("draft", retrieval.OpEq, false)}, true},
		{"eq number vs string never equal", []retrieval.Filter{f("stars", retrieval.OpEq, "42")}, false},
		{"eq list contains", []retrieval.Filter{f("tags", retrieval.OpEq, "plugin")}, true},
		{"eq list does not contain", []retrieval.Filter{f("tags", retrieval.OpEq, "web")}, false},
		{"eq missing", []retrieval.Filter{f("nope", retrieval.OpEq, "x")}, false},
		{"eq nested", []retrieval.Filter{f("author.name", retrieval.OpEq, "ada")}, true},
		{"ne", []retrieval.Filter{f("lang", retrieval.OpNe, "rust")}, true},
		{"ne equal", []retrieval.Filter{f("lang", retrieval.OpNe, "go")}, false},
		{"ne missing matches", []retrieval.Filter{f("nope", retrieval.OpNe, "x")}, true},
		{"ne list containing", []retrieval.Filter{f("tags", retrieval.OpNe, "cli")}, false},
		{"in", []retrieval.Filter{f("lang", retrieval.OpIn, []any{"rust", "go"})}, true},
		{"in typed list", []retrieval.Filter{f("stars", retrieval.OpIn, []int{1, 42})}, true},
		{"in none", []retrieval.Filter{f("lang", retrieval.OpIn, []string{"rust"})}, false},
		{"in list field", []retrieval.Filter{f("tags", retrieval.OpIn, []string{"web", "cli"})}, true},
		{"in missing", []retrieval.Filter{f("nope", retrieval.OpIn, []string{"x"})}, false},
		{"gt", []retrieval.Filter{f("stars", retrieval.OpGt, 41)}, true},
		{"gt equal", []retrieval.Filter{f("stars", retrieval.OpGt, 42)}, false},
		{"gte equal", []retrieval.Filter{f("stars", retrieval.OpGte, 42)}, true},
		{"lt", []retrieval.Filter{f("score", retrieval.OpLt, 0.6)}, true},
		{"lte nested", []retrieval.Filter{f("author.age", retrieval.OpLte, 36)}, true},
		{"lt string dates", []retrieval.Filter{f("date", retrieval.OpLt, "2027-01-01")}, true},
		{"gt string dates", []retrieval.Filter{f("date", retrieval.OpGt, "2027-01-01")}, false},
		{"gt type mismatch", []retrieval.Filter{f("lang", retrieval.OpGt, 1)}, false},
		{"gt missing", []retrieval.Filter{f("nope", retrieval.OpGt, 1)}, false},
		{"exists", []retrieval.Filter{f("lang", retrieval.OpExists, nil)}, true},
		{"exists null value", []retrieval.Filter{f("nothing", retrieval.OpExists, true)}, true},
		{"exists nested missing", []retrieval.Filter{f("author.email", retrieval.OpExists, nil)}, false},
		{"exists false", []retrieval.Filter{f("nope", retrieval.OpExists, false)}, true},
		{"exists false present", []retrieval.Filter{f("lang", retrieval.OpExists, false)}, false},
		{"and: all match", []retrieval.Filter{f("lang", retrieval.OpEq, "go"), f("stars", retrieval.OpGte, 10)}, true},
		{"and: one fails", []retrieval.Filter{f("lang", retrieval.OpEq, "go"), f("stars", retrieval.OpGte, 100)}, false},
		{"path through non-object", []retrieval.Filter{f("lang.x", retrieval.OpExists, nil)}, false},
	} {
		got, err := retrieval.MatchFilters(meta, tc.filters)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s: MatchFilters = %v, want %v", tc.name, got, tc.want)
		}
	}
	if ok, _ := retrieval.MatchFilters(nil, []retrieval.Filter{f("x", retrieval.OpNe, 1)}); !ok {
		t.Error("ne on nil metadata should match")
	}
}

func TestMatchFiltersRejectsMalformed(t *testing.T) {
	t.Parallel()
	for name, f := range map[string]retrieval.Filter{
		"unknown op":       {Field: "a", Op: "like", Value: "x"},
		"empty field":      {Op: retrieval.OpEq, Value: "x"},
		"in scalar":        {Field: "a", Op: retrieval.OpIn, Value: "x"},
		"eq list":          {Field: "a", Op: retrieval.OpEq, Value: []string{"x"}},
		"gt bool":          {Field: "a", Op: retrieval.OpGt, Value: true},
		"exists string":    {Field: "a", Op: retrieval.OpExists, Value: "yes"},
		"gt missing value": {Field: "a", Op: retrieval.OpGt},
	} {
		// The malformed filter comes second: a failing first filter must
		// not hide it.
		_, err := retrieval.MatchFilters(map[string]any{}, []retrieval.Filter{{Field: "zz", Op: retrieval.OpEq, Value: 1}, f})
		if status.CodeOf(err) != status.InvalidArgument {
			t.Errorf("%s: err = %v, want InvalidArgument", name, err)
		}
	}
}
