package retrieval

import (
	"encoding/json"
	"reflect"
	"strings"

	"github.com/nemoclave/nemoclave/sdk/status"
)

// Op is a filter operator.
type Op string

// The filter operators. Stores translate them to their own query language
// but must give the results MatchFilters gives.
const (
	OpEq     Op = "eq"
	OpNe     Op = "ne"
	OpIn     Op = "in"
	OpGt     Op = "gt"
	OpGte    Op = "gte"
	OpLt     Op = "lt"
	OpLte    Op = "lte"
	OpExists Op = "exists"
)

// Filter restricts a query or delete to documents whose metadata matches.
// Filters in a list are ANDed.
type Filter struct {
	// Field is a metadata key; dots reach into nested objects
	// ("author.name").
	Field string
	Op    Op
	// Value is JSON-compatible: a string, number or bool for eq and ne;
	// a list for in; a number or string for the ordering ops; a bool (or
	// nil, meaning true) for exists.
	Value any
}

// Validate reports a malformed filter as status.InvalidArgument, so stores
// that translate filters reject the same requests MatchFilters does.
func (f Filter) Validate() error {
	if f.Field == "" {
		return status.Errorf(status.InvalidArgument, "filter with an empty field; name a metadata key")
	}
	switch f.Op {
	case OpEq, OpNe:
		if _, ok := normalize(f.Value).([]any); ok {
			return status.Errorf(status.InvalidArgument, "filter %s %s: value is a list; use op %q", f.Field, f.Op, OpIn)
		}
	case OpIn:
		if _, ok := normalize(f.Value).([]any); !ok {
			return status.Errorf(status.InvalidArgument, "filter %s in: value must be a list, got %T", f.Field, f.Value)
		}
	case OpGt, OpGte, OpLt, OpLte:
		switch normalize(f.Value).(type) {
		case float64, string:
		default:
			return status.Errorf(status.InvalidArgument, "filter %s %s: value must be a number or a string, got %T", f.Field, f.Op, f.Value)
		}
	case OpExists:
		switch f.Value.(type) {
		case nil, bool:
		default:
			return status.Errorf(status.InvalidArgument, "filter %s exists: value must be true, false or absent, got %T", f.Field, f.Value)
		}
	default:
		return status.Errorf(status.InvalidArgument, "filter %s: unknown op %q (use eq, ne, in, gt, gte, lt, lte or exists)", f.Field, f.Op)
	}
	return nil
}

// MatchFilters reports whether metadata satisfies every filter. It is the
// reference semantics of filters; stores that translate filters into
// their own query language must agree with it (sdktest checks):
//
//   - eq: the field is present and equal to Value. Numbers compare by
//     value whatever their Go type (3 equals 3.0). When the field holds a
//     list, eq matches if any element is equal (tags = "x").
//   - ne: the negation of eq; a missing field matches.
//   - in: eq against any element of Value.
//   - gt, gte, lt, lte: both sides numbers, or both strings (compared
//     bytewise, so RFC 3339 timestamps order correctly); otherwise, and
//     for a missing field, no match.
//   - exists: the key is present (even with a null value); Value false
//     inverts it.
//
// A malformed filter is an error (status.InvalidArgument), never a silent
// non-match, so a typo in an op cannot return everything or nothing.
func MatchFilters(meta map[string]any, filters []Filter) (bool, error) {
	ok := true
	for _, f := range filters {
		if err := f.Validate(); err != nil {
			return false, err
		}
		if ok && !match(meta, f) {
			ok = false
		}
	}
	return ok, nil
}

func match(meta map[string]any, f Filter) bool {
	v, present := lookup(meta, f.Field)
	want := normalize(f.Value)
	switch f.Op {
	case OpEq:
		return present && equalOrContains(v, want)
	case OpNe:
		return !present || !equalOrContains(v, want)
	case OpIn:
		if !present {
			return false
		}
		for _, w := range want.([]any) {
			if equalOrContains(v, normalize(w)) {
				return true
			}
		}
		return false
	case OpGt, OpGte, OpLt, OpLte:
		if !present {
			return false
		}
		c, ok := compare(v, want)
		if !ok {
			return false
		}
		switch f.Op {
		case OpGt:
			return c > 0
		case OpGte:
			return c >= 0
		case OpLt:
			return c < 0
		default:
			return c <= 0
		}
	case OpExists:
		wantPresent, isBool := f.Value.(bool)
		if !isBool {
			wantPresent = true
		}
		return present == wantPresent
	}
	return false
}

func lookup(meta map[string]any, field string) (any, bool) {
	if v, ok := meta[field]; ok {
		return normalize(v), true
	}
	parts := strings.Split(field, ".")
	var cur any = meta
	for _, p := range parts {
		m, ok := normalize(cur).(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return normalize(cur), true
}

func equalOrContains(v, want any) bool {
	if list, ok := v.([]any); ok {
		for _, e := range list {
			if equal(normalize(e), want) {
				return true
			}
		}
		return false
	}
	return equal(v, want)
}

func equal(a, b any) bool {
	if c, ok := compare(a, b); ok {
		return c == 0
	}
	return reflect.DeepEqual(a, b)
}

func compare(a, b any) (int, bool) {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		if !ok {
			return 0, false
		}
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		}
		return 0, true
	case string:
		y, ok := b.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(x, y), true
	}
	return 0, false
}

// normalize maps Go values to the JSON data model (float64, string, bool,
// nil, []any, map[string]any) so metadata written as int or []string in
// process compares the same as metadata that crossed the wire.
func normalize(v any) any {
	switch x := v.(type) {
	case nil, bool, string, float64, []any, map[string]any:
		return x
	case int:
		return float64(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	case uint32:
		return float64(x)
	case uint64:
		return float64(x)
	case float32:
		return float64(x)
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return x.String()
		}
		return f
	}
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return v
	}
	return out
}
